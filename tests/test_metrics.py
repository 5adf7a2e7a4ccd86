"""Metrics against closed forms and constructed extremes, and the one registry of their names."""
import math

import pytest
import torch

from vae_utils import SkipVAE
from vae_utils.data import make_dataset, make_loaders
from vae_utils.metrics import (METRICS, classify, evaluate_all, factor_correlations, format_table, frechet_distance,
                               inception_score, latent_reliance, load_judge, real_baseline, shape_probe,
                               train_classifier)
from vae_utils.train import TrainConfig, train


def test_frechet_distance_of_identical_features_is_zero():
    f = torch.randn(500, 8)
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    torch.manual_seed(0)
    m1, m2 = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.5, 1.0, 1.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.0, 1.0, 1.5])
    a, b = m1 + s1 * torch.randn(200_000, 3), m2 + s2 * torch.randn(200_000, 3)
    expected = ((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum()  # diagonal: Tr(C1 + C2 - 2 sqrt(C1 C2))
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=0.02)


def test_inception_score_extremes():
    assert inception_score(torch.full((100, 4), 0.25)) == pytest.approx(1.0)
    one_hot = torch.eye(4).repeat(25, 1)  # confident and balanced over 4 classes
    assert inception_score(one_hot) == pytest.approx(4.0, rel=1e-6)


def test_psnr_is_the_peak_signal_to_noise_ratio_of_the_mean_reconstructions():
    _, test = _loader()
    model = SkipVAE(in_channels=1).eval()
    x = test.dataset.images
    mse = torch.mean((model.reconstruct(x) - x) ** 2).item()  # images in [0, 1]: the peak is 1
    assert evaluate_all(model, test, None)["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)


def _loader():
    return make_loaders(n_train=256, n_test=64, batch_size=32)


def test_a_decoder_that_ignores_z_has_no_latent_reliance():
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skips="all")
    with torch.no_grad():  # cut z off: the first transposed convolution sees only zeros' bias
        model.decoder.stages[0].up.weight.zero_()
    rel = latent_reliance(model, _loader()[1])
    assert rel["z_reliance"] == pytest.approx(0.0, abs=1e-6)
    assert rel["mse_z_from_prior"] == pytest.approx(rel["mse"], rel=1e-6)


def test_skip_free_models_have_no_skip_reliance_and_generative_ones_use_z():
    train_loader, test_loader = _loader()
    torch.manual_seed(0)
    rel = latent_reliance(SkipVAE(in_channels=1, skips="none"), test_loader)
    assert rel["skip_reliance"] == 0.0
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skip_source="z")  # after a few steps, a prior draw in place of z must hurt
    train(model, train_loader, test_loader, TrainConfig(epochs=1, progress=False, precision="fp32"))
    rel = latent_reliance(model, test_loader)
    assert rel["skip_reliance"] == 0.0 and rel["z_reliance"] > 0.3


def test_classifier_learns_the_shape_labels_and_baseline_has_a_scale():
    train, test = make_loaders(n_train=1024, n_test=256, batch_size=64)
    net = train_classifier(train, n_classes=4, epochs=6, seed=0)
    base = real_baseline(net, test.dataset.images, test.dataset.labels)
    # chance is 0.25 (sd 0.03 on 256 images); six short epochs reach 0.59-0.68 across seeds, CPUs and thread
    # counts, so the bound asks for a clear gap over chance rather than for one machine's number (0.6 failed on AVX2)
    assert base["accuracy"] > 0.4
    assert 1.0 <= base["inception_score"] <= 4.0 + 1e-9
    assert base["frechet"] >= 0
    probs, feats = classify(net, test.dataset.images[:10])
    assert probs.shape == (10, 4) and feats.shape == (10, 64)
    assert torch.allclose(probs.sum(1), torch.ones(10))


def test_evaluate_all_marks_what_a_config_cannot_do():
    train, test = _loader()
    net = train_classifier(train, n_classes=4, epochs=1)
    out = evaluate_all(SkipVAE(in_channels=1), test, net, n_samples=64)  # skips="all": no prior samples
    assert out["inception_score"] is None and out["frechet"] is None
    assert 0 <= out["recon_accuracy"] <= 1 and math.isfinite(out["neg_elbo"])
    out = evaluate_all(SkipVAE(in_channels=1, skips="none"), test, net, n_samples=64)
    assert out["inception_score"] >= 1.0 and out["frechet"] >= 0


def test_the_probe_reads_a_linear_code_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (800,), generator=g)
    codes = torch.randn(800, 16, generator=g) * 0.5
    codes[:, :4] += torch.nn.functional.one_hot(labels, 4).float() * 3  # the label, written linearly into 4 channels
    assert shape_probe(codes[:600], labels[:600], codes[600:], labels[600:]) > 0.95
    noise = torch.randn(800, 16, generator=g)
    assert shape_probe(noise[:600], labels[:600], noise[600:], labels[600:]) < 0.45  # chance is 0.25


def test_factor_correlations_match_numpy():
    import numpy as np

    g = torch.Generator().manual_seed(0)
    factors, means = torch.randn(300, 3, generator=g), torch.randn(300, 5, generator=g)
    means[:, 2] = -2 * factors[:, 1] + 0.1 * means[:, 2]
    expected = np.abs(np.corrcoef(factors.T.numpy(), means.T.numpy())[:3, 3:])
    assert np.allclose(factor_correlations(means, factors).numpy(), expected, atol=1e-6)


def test_the_shipped_judge_knows_the_shapes():
    test = make_dataset("shapes", "test", size=500)
    base = real_baseline(load_judge(), test.images, test.labels)
    assert base["accuracy"] >= 0.98 and base["inception_score"] >= 3.5  # it tells the shapes apart


def test_evaluate_all_reports_the_probe_and_the_factors_with_a_train_set():
    train, test = _loader()
    out = evaluate_all(SkipVAE(in_channels=1, skips="none"), test, load_judge(), n_samples=64,
                       train_set=train.dataset, gmm=True)
    assert 0 <= out["probe"] <= 1 and {"r_scale", "r_rotation", "r_x", "r_y"} <= set(out)
    assert out["gmm_inception_score"] >= 1.0 and out["gmm_frechet"] >= 0
    assert set(METRICS) <= set(out)  # the registry names what evaluate_all returns
    assert all(out[k] is not None for k in METRICS)  # a sampling model with a judge and a train set: every number
    assert "untrained" in format_table({"untrained": out}, tuple(METRICS))  # every registered format fits its number


def test_the_registry_gives_every_metric_a_label_a_format_and_a_direction():
    assert {m.better for m in METRICS.values()} <= {"higher", "lower", ""}
    assert METRICS["neg_elbo"].better == "lower" and METRICS["psnr"].better == "higher"
    assert len({m.short for m in METRICS.values()}) == len(METRICS)  # column headers tell metrics apart


def test_format_table_prints_each_configuration_and_na_where_a_number_cannot_exist():
    rows = {"all skips (spec)": {"psnr": 31.2345, "frechet": None, "active_units": 3},
            "no skips": {"psnr": 18.0, "frechet": 412.4, "active_units": 12}}
    lines = format_table(rows, ("psnr", "frechet", "active_units")).splitlines()
    assert lines[0].startswith("configuration") and all(METRICS[k].short in lines[0] for k in rows["no skips"])
    assert lines[1].split()[-3:] == ["31.2", "n/a", "3"] and lines[2].split()[-3:] == ["18.0", "412", "12"]
    assert len({len(line) for line in lines}) == 1  # fixed width: the columns line up
