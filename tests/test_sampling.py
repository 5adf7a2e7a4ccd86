"""Codes: posterior means, active channels (Burda et al.), and the ex-post GMM sampler: shapes, ranges, seeding, and
the inactive channels it leaves alone."""
import pytest
import torch

from vae_utils import SkipVAE
from vae_utils.losses import kl_divergence
from vae_utils.sampling import LatentGMM, active_channels, encode_means, gmm_samples


def _codes(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.zeros(n, 256, 1, 1)
    z[:, 3, 0, 0] = torch.randn(n, generator=g) * 2 + 1  # two active channels, correlated
    z[:, 7, 0, 0] = 0.5 * z[:, 3, 0, 0] + 0.1 * torch.randn(n, generator=g)
    z[:, 9] = 0.3  # a channel every image shares: no variance, so not active
    return z


def test_codes_have_the_latent_shape_and_the_fitted_statistics():
    codes = _codes()
    gmm = LatentGMM(n_components=2, seed=0).fit(codes)
    z = gmm.sample(4000, torch.Generator().manual_seed(1))
    assert z.shape == (4000, 256, 1, 1) and z.dtype == torch.float32
    assert gmm.active.sum() == 2 and gmm.active[3] and gmm.active[7]
    assert torch.allclose(z[:, 9], torch.tensor(0.3))  # inactive channels are held at their mean
    assert torch.all(z[:, 0] == 0)
    # the mixture reproduces the moments of the codes it was fitted to (4,000 draws: within a few standard errors)
    assert z[:, 3].mean().item() == pytest.approx(codes[:, 3].mean().item(), abs=0.2)
    assert z[:, 3].std().item() == pytest.approx(codes[:, 3].std().item(), rel=0.1)
    r = torch.corrcoef(torch.stack([z[:, 3, 0, 0], z[:, 7, 0, 0]]))[0, 1]
    assert r > 0.9  # the full covariance keeps the correlation


def test_sampling_is_seeded():
    gmm = LatentGMM(n_components=3, seed=0).fit(_codes())
    a = gmm.sample(10, torch.Generator().manual_seed(5))
    assert torch.equal(a, gmm.sample(10, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, gmm.sample(10, torch.Generator().manual_seed(6)))


def test_gmm_samples_are_images_in_range():
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skips="none")
    with torch.no_grad():
        model.encoder.head.stats.mu.weight.mul_(100)  # an untrained encoder's codes barely vary: make them
    images = torch.rand(40, 1, 64, 64)
    gmm = LatentGMM(n_components=2).fit(encode_means(model, images))
    out = gmm_samples(model, gmm, 5, seed=0)
    assert out.shape == (5, 1, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, gmm_samples(model, gmm, 5, seed=0))


def test_too_few_codes_or_components_are_refused():
    with pytest.raises(ValueError, match="n_components"):  # scikit-learn's message names the parameter
        LatentGMM(n_components=0).fit(_codes())
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        LatentGMM(n_components=10).fit(_codes(n=5))


def test_active_units_follow_burda_not_the_rate():
    g = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500, generator=g)  # varies with the image: active
    mu[:, 1] = 2.0  # the same nonzero code for every image: pays a rate, carries nothing
    mu[:, 2] = 0.05 * torch.randn(500, generator=g)  # Var 0.0025 < 0.01
    rate = kl_divergence(mu, torch.zeros_like(mu)).mean(0)
    assert rate[1] == pytest.approx(2.0)  # 0.5 * mu^2
    assert active_channels(mu).tolist() == [True, False, False, False]
    assert active_channels(mu, threshold=0.001).tolist() == [True, False, True, False]


def test_encode_means_are_the_encoders_mu_in_batches_on_the_cpu():
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skips="none").train()  # encode_means switches to eval: no dropout, no noise
    images = torch.rand(5, 1, 64, 64)
    means = encode_means(model, images, batch=2)
    assert means.shape == (5, 256, 1, 1) and means.device.type == "cpu" and not model.training
    with torch.no_grad():
        torch.testing.assert_close(means, model.encode(images)[0])
