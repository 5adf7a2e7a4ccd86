"""SkipVAE against the spec tables, the VAE's math, and its input contract."""
import itertools

import pytest
import torch

from vae_utils import SkipVAE, VAEConfig, shape_report, spec
from vae_utils.model import SKIP_PRESETS

SIZES = [(64, 64), (128, 64), (256, 256)]
OPTIONS = [dict(latent=lat, skips=sk) for lat, sk in itertools.product(("learned", "spec"), (*SKIP_PRESETS, (2, 5)))]
OPTIONS += [dict(skip_source="z"), dict(skip_dropout=0.5), dict(decoder_activation="relu")]


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_step_matches_the_spec(hw, channels, options):
    h, w = hw
    model = SkipVAE(in_channels=channels, **options)
    report = shape_report(model, h, w)
    assert len(report) == len(spec.ENCODER) + len(spec.DECODER)
    assert all(r.actual is not None for r in report), "a spec step never ran"
    assert report.unexpected == []
    expected = ["Step 16"] if model.config.latent == "learned" else []  # per-element mu: a documented choice
    assert [r.step for r in report if not r.match] == expected


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_shapes(hw):
    h, w = hw
    x = torch.rand(2, 3, h, w)
    logits, mu, logvar = SkipVAE()(x)
    assert logits.shape == x.shape
    assert mu.shape == logvar.shape == (2, 256, h // 64, w // 64)


def test_spec_latent_is_one_scalar_per_image():
    """Step 16 as written: every latent element of an image shares one mu and one log-variance."""
    mu, logvar, _ = SkipVAE(latent="spec").encode(torch.rand(3, 3, 128, 128))
    flat_mu, flat_lv = mu.flatten(1), logvar.flatten(1)
    assert torch.equal(flat_mu, flat_mu[:, :1].expand_as(flat_mu))
    assert torch.equal(flat_lv, flat_lv[:, :1].expand_as(flat_lv))
    assert not torch.equal(flat_mu[0, 0], flat_mu[1, 0])  # per image, not batch-wide as in the original


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_gradient_reaches_every_parameter(options):
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, **options)
    logits, mu, logvar = model(torch.rand(4, 1, 64, 64))
    (logits.square().mean() + mu.square().mean() + logvar.exp().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_sample_needs_a_decoder_that_works_without_the_encoder():
    for options in (dict(skips="none"), dict(skip_source="z"), dict(skip_dropout=0.3)):
        images = SkipVAE(in_channels=1, image_size=128, **options).sample(3, torch.Generator().manual_seed(0))
        assert images.shape == (3, 1, 128, 128)
        assert 0 <= images.min() and images.max() <= 1
    for skips in ("all", "coarse", "no-input", (3,)):
        with pytest.raises(ValueError, match="skips"):
            SkipVAE(skips=skips).sample(1)


def test_decoder_adds_the_skips_it_is_configured_with():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    for skips, uses_encoder in (("all", True), ("none", False)):
        model = SkipVAE(in_channels=1, skips=skips).eval()
        mu, _, enc_skips = model.encode(x)
        with torch.no_grad():
            changed = not torch.allclose(model.decoder(mu, enc_skips), model.decoder(mu, {}))
        assert changed == uses_encoder


def test_generative_skips_depend_on_z_only():
    model = SkipVAE(in_channels=1, skip_source="z").eval()
    x = torch.rand(2, 1, 64, 64)
    mu, _, skips = model.encode(x)
    assert skips == {}
    with torch.no_grad():
        z2 = torch.randn_like(mu)
        assert not torch.allclose(model.decoder(mu, {}), model.decoder(z2, {}))


def test_skip_dropout_acts_only_in_training():
    model = SkipVAE(in_channels=1, skip_dropout=0.5)
    torch.manual_seed(0)
    features = [torch.ones(512, 1, 1, 1)] * 6
    dropped = model.train().select_skips(features)[0]
    assert 0.4 < (dropped == 0).float().mean() < 0.6  # about half the images lose each skip
    kept = model.eval().select_skips(features)[0]
    assert torch.equal(kept, features[0])


def test_reparameterize_has_the_intended_mean_and_variance():
    torch.manual_seed(0)
    mu = torch.tensor([-1.0, 0.0, 2.0]).repeat(200_000, 1)
    logvar = torch.tensor([0.0, -2.0, 1.0]).repeat(200_000, 1)
    z = SkipVAE.reparameterize(mu, logvar)
    assert torch.allclose(z.mean(0), mu[0], atol=0.02)
    assert torch.allclose(z.var(0), logvar[0].exp(), rtol=0.02)
    mu.requires_grad_(True)
    SkipVAE.reparameterize(mu, logvar).sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))  # dz/dmu = 1: the gradient flows through the sample


@pytest.mark.parametrize("x,match", [
    (torch.rand(3, 64, 64), r"4-D batch \(B, 3, H, W\).*unsqueeze"),
    (torch.rand(1, 1, 64, 64), r"expected 3 channel.*in_channels=1"),
    (torch.rand(1, 3, 96, 64), r"height 96 is not a multiple of 64.*resize to 128"),
    (torch.rand(1, 3, 64, 100), r"width 100 is not a multiple of 64.*resize to 128"),
    (torch.rand(1, 3, 32, 64), r"height 32 is not a multiple of 64.*resize to 64"),
])
def test_bad_input_names_the_expected_shape_and_the_fix(x, match):
    with pytest.raises(ValueError, match=match):
        SkipVAE()(x)


@pytest.mark.parametrize("field,value,match", [
    ("latent", "scalar", r"latent must be one of \['learned', 'spec'\]"),
    ("skips", "some", r"skips must be one of"),
    ("skips", (0, 7), r"skip levels must lie in 0..5"),
    ("skip_source", "decoder", r"skip_source must be one of"),
    ("skip_dropout", 1.0, r"skip_dropout must lie in \[0, 1\)"),
    ("image_size", 100, r"image height 100 is not a multiple of 64"),
    ("in_channels", 0, r"in_channels must be a positive integer"),
    ("init", "xavier", r"init must be one of \['kaiming', 'torch'\]"),
])
def test_bad_config_is_rejected(field, value, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**{field: value})


def test_config_round_trips_through_plain_types():
    cfg = VAEConfig(in_channels=1, image_size=128, skips="2,3", skip_dropout=0.25)
    assert cfg.skips == (2, 3)
    d = cfg.to_dict()
    assert all(isinstance(v, (int, float, str, list)) for v in d.values())
    assert VAEConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown VAEConfig field"):
        VAEConfig.from_dict({**d, "width": 3})


def test_decoder_activation_follows_the_config():
    acts = lambda m: {type(a).__name__ for s in m.decoder.stages[:-1] for a in (s.conv1[-1], s.conv2[-1])}  # noqa: E731
    assert acts(SkipVAE()) == {"LeakyReLU"}
    assert acts(SkipVAE(decoder_activation="relu")) == {"ReLU"}
    last = SkipVAE().decoder.stages[-1]
    assert {type(last.conv1[1]).__name__, type(last.conv2[1]).__name__} == {"Identity"}  # Steps 23-24: none


def test_kaiming_init_matches_he_et_al():
    """Each convolution's weight std is gain / sqrt(fan_in) for the activation after it; biases start at 0."""
    torch.manual_seed(0)  # the std of a few weights is itself noisy: seeded, not whatever RNG state came before
    model = SkipVAE(in_channels=3)
    conv = model.encoder.stages[4].conv2[0]  # 256 -> 256, fan_in 256 * 3 * 3
    gain = torch.nn.init.calculate_gain("leaky_relu", 0.2)
    assert conv.weight.std().item() == pytest.approx(gain / (256 * 9) ** 0.5, rel=0.02)
    last = model.decoder.stages[-1].conv2[0]  # Step 24: no activation, gain 1, fan_in 3 * 3 * 3
    # 81 weights: their std has a relative spread of about 8%, so 0.3 is well clear (9 weights, 24%, was not)
    assert last.weight.std().item() == pytest.approx(1 / (3 * 9) ** 0.5, rel=0.3)
    assert all(m.bias.abs().sum() == 0 for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))


def test_kaiming_init_keeps_the_signal_through_the_encoder():
    """Why the init matters: under PyTorch's default init the features fade stage by stage."""
    x = (torch.rand(16, 1, 64, 64) > 0.9).float()

    def fade(init):  # std of the deepest stage's output over the first stage's
        torch.manual_seed(0)
        _, _, features = SkipVAE(in_channels=1, init=init).encoder(x)
        return (features[5].std() / features[1].std()).item()

    assert 0.5 < fade("kaiming") < 4.0  # He et al.: the scale is kept, up to a small factor
    assert fade("torch") < 0.25


def test_device_is_where_the_weights_live():
    """Inputs go to `model.device` (x.to(model.device)), whichever device the model was moved to."""
    model = SkipVAE(in_channels=1)
    assert model.device == torch.device("cpu")
    assert model.to("meta").device == torch.device("meta")
