"""Every picture function runs on a small model, returns a figure of the expected layout, and saves a file."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vae_utils import SkipVAE, viz  # noqa: E402
from vae_utils.data import make_dataset  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ds = make_dataset(size=40)
    return SkipVAE(in_channels=1, skip_source="z").eval(), ds


@pytest.fixture(autouse=True)
def figures_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr("vae_utils.runtime.figures_dir", lambda: tmp_path)
    yield tmp_path
    plt.close("all")


def _n_images(fig):
    return sum(len(ax.get_images()) for ax in fig.axes)


def test_grid_reconstructions_samples(setup, figures_in_tmp):
    model, ds = setup
    assert _n_images(viz.show_grid(ds.images[:10], nrow=5, save="grid")) == 1
    assert _n_images(viz.reconstructions(model, ds.images[:6], save="rec")) == 1
    assert _n_images(viz.prior_samples(model, n=8, save="samples")) == 1
    assert {p.name for p in figures_in_tmp.iterdir()} == {"grid.png", "rec.png", "samples.png"}


def test_prior_samples_explain_why_not(setup, figures_in_tmp):
    fig = viz.prior_samples(SkipVAE(in_channels=1), save="nosamples")  # skips="all": no sampling
    assert _n_images(fig) == 0 and "No prior samples" in fig.axes[0].texts[0].get_text()
    assert (figures_in_tmp / "nosamples.png").exists()


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(256, 1, 1), torch.randn(256, 1, 1)
    assert torch.allclose(viz.slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(viz.slerp(a, b, 1.0), b, atol=1e-5)
    u, v = a / a.norm(), b / b.norm()
    assert torch.isclose(viz.slerp(u, v, 0.37).norm(), torch.tensor(1.0), atol=1e-5)  # stays on the sphere


def test_interpolation_and_traversal(setup, figures_in_tmp):
    model, ds = setup
    fig = viz.interpolation(model, ds.images[0], ds.images[1], steps=5, save="interp")
    assert _n_images(fig) == 1 and len(fig.axes[0].get_xticklabels()) == 5
    fig = viz.traversal(model, ds.images[0], channels=[3, 7, 11], steps=5, save="trav")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["z[3]", "z[7]", "z[11]"]
    assert (figures_in_tmp / "interp.png").exists() and (figures_in_tmp / "trav.png").exists()


def test_kl_bars_count_active_units(figures_in_tmp):
    kl = [0.0] * 250 + [0.5, 2.0, 0.02, 0.005, 3.0, 0.0]
    fig = viz.kl_per_channel(kl, active=[k > 0.01 for k in kl], save="kl")
    assert "4 of 256 active" in fig.axes[0].get_title()
    assert viz.top_channels(kl, 2) == [254, 251]


def test_embedding_and_factor_correlation(setup, figures_in_tmp):
    model, ds = setup
    means = viz.posterior_means(model, ds.images)
    assert means.shape == (40, 256)
    colors = {"shape": (ds.labels.tolist(), ds.label_names), "x": ds.factors[:, 3].tolist()}
    fig = viz.embedding(means, colors, save="emb")
    assert len([ax for ax in fig.axes if ax.get_title()]) == 4  # 2 methods x 2 colourings
    assert len(fig.axes) == 6  # plus one colour bar per numeric colouring
    fig = viz.factor_correlation(means, ds.factors, ds.factor_names, channels=[0, 1, 2], save="corr")
    assert fig.corr.shape == (4, 3) and (0 <= fig.corr).all() and (fig.corr <= 1 + 1e-9).all()  # rotation (±30°) kept
    assert fig.factor_names == ["scale", "rotation", "x", "y"]  # shape is categorical: the probe measures it
    assert any(ax.get_ylabel() == "|Pearson r|" for ax in fig.axes)  # the colour bar


def test_factor_correlation_finds_a_planted_factor(figures_in_tmp):
    torch.manual_seed(0)
    factors = torch.rand(200, 2)
    means = torch.randn(200, 4)
    means[:, 2] = 3 * factors[:, 1] + 0.01 * torch.randn(200)
    corr = viz.factor_correlation(means, factors, ["a", "b"], channels=[0, 1, 2, 3]).corr
    assert corr[1, 2] > 0.99 and corr[0, 2] < 0.3


def test_history_plot(figures_in_tmp):
    history = {"step": [{"epoch": i / 10, "loss": 100 - i, "recon": 90 - i, "kl": i, "beta": min(1, i / 5)}
                        for i in range(1, 11)],
               "epoch": [{"epoch": 1, "val_neg_elbo": 95, "val_recon": 85, "val_kl": 10}]}
    fig = viz.plot_history(history, save="hist")
    assert [ax.get_ylabel() for ax in fig.axes[:3]] == ["nats per image"] * 3
    assert (figures_in_tmp / "hist.png").exists()


def test_a_rotation_of_a_quarter_turn_or_more_is_left_out_of_the_heatmap(figures_in_tmp):
    g = torch.Generator().manual_seed(0)
    means = torch.randn(200, 4, generator=g)
    wide = torch.stack([torch.rand(200, generator=g) * 6.2, torch.rand(200, generator=g)], 1)  # 0..355 degrees
    fig = viz.factor_correlation(means, wide, ["rotation", "x"], channels=[0, 1])
    assert fig.factor_names == ["x"] and fig.corr.shape == (1, 2)
    narrow = wide.clone()
    narrow[:, 0] = (narrow[:, 0] / 6.2 - 0.5) * 1.04  # -30..30 degrees
    assert viz.factor_correlation(means, narrow, ["rotation", "x"], channels=[0, 1]).factor_names == ["rotation", "x"]
