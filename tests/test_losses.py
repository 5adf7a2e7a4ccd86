"""Loss terms and the importance-weighted bound against torch.distributions and closed forms."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence as td_kl

from vae_utils import SkipVAE
from vae_utils.data import make_dataset
from vae_utils.losses import importance_weighted_bound, kl_divergence, negative_elbo, nll_per_image
from vae_utils.pretrained import load_pretrained


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 256, 2, 2), torch.randn(4, 256, 2, 2)
    expected = td_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(kl_divergence(mu, logvar), expected, atol=1e-5)


def test_bernoulli_term_matches_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(3, 1, 64, 64), torch.rand(3, 1, 64, 64).round()
    expected = -Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    nll = nll_per_image(logits, x, "bernoulli")
    assert nll.shape == (3,) and torch.allclose(nll, expected, rtol=1e-5)


def test_gaussian_term_matches_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    expected = -Normal(torch.sigmoid(logits), 0.2).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(nll_per_image(logits, x, "gaussian", sigma=0.2), expected, rtol=1e-5)


def test_elbo_parts_add_up_and_report_per_channel_rate():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    mu, logvar = torch.randn(4, 256, 1, 1), torch.randn(4, 256, 1, 1)
    parts = negative_elbo(logits, x, mu, logvar, beta=0.5)
    assert torch.allclose(parts.total, parts.distortion + 0.5 * parts.rate)
    assert parts.rate_per_channel.shape == (256,)
    assert torch.allclose(parts.rate_per_channel.sum(), parts.rate)
    per_image = td_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum((1, 2, 3))
    assert torch.allclose(parts.rate, per_image.mean(), rtol=1e-5)  # summed per image, averaged over the batch
    nll = -Bernoulli(logits=logits, validate_args=False).log_prob(x).sum((1, 2, 3))  # grey x: the same formula
    assert torch.allclose(parts.distortion, nll.mean(), rtol=1e-5)


def test_free_bits_raise_only_the_optimised_rate():
    mu, logvar = torch.zeros(2, 256, 1, 1), torch.zeros(2, 256, 1, 1)  # KL exactly 0 everywhere
    x = torch.rand(2, 1, 64, 64)
    parts = negative_elbo(torch.zeros_like(x), x, mu, logvar, free_bits=0.25)
    assert parts.rate == 0
    assert torch.allclose(parts.total - parts.distortion, torch.tensor(256 * 0.25))


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        nll_per_image(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), "poisson")


# --- the importance-weighted bound (Burda et al., 2016) ---------------------------------------------------

def _reference_bound(model, x, eps):
    """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) from torch.distributions, for given noise eps (K, B, 256, h, w)."""
    with torch.no_grad():
        mu, logvar, skips = model.encode(x)
        q = Normal(mu, (0.5 * logvar).exp())
        log_w = []
        for e in eps:
            z = mu + q.scale * e
            logits = model.decoder(z, skips)
            log_px = Bernoulli(logits=logits, validate_args=False).log_prob(x).sum((1, 2, 3))
            log_w.append(log_px + Normal(0.0, 1.0).log_prob(z).sum((1, 2, 3)) - q.log_prob(z).sum((1, 2, 3)))
        return torch.logsumexp(torch.stack(log_w), 0) - math.log(len(eps))


@pytest.mark.parametrize("k,chunk", [(1, 100), (4, 100), (4, 2)])
def test_the_bound_matches_torch_distributions_with_the_same_noise(k, chunk):
    """K = 1 is minus the one-sample -ELBO (with the sampled rate log q - log p); the decoder sees the skips."""
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skips="coarse").eval()
    x = torch.rand(2, 1, 64, 64)
    mu = model.encode(x)[0]
    torch.manual_seed(1)
    bound = importance_weighted_bound(model, x, k, chunk=chunk)
    torch.manual_seed(1)  # the same draws, in the same chunks
    eps = torch.cat([torch.randn(min(chunk, k - s), *mu.shape) for s in range(0, k, chunk)])
    assert bound.shape == (2,)
    torch.testing.assert_close(bound, _reference_bound(model, x, eps), rtol=1e-4, atol=1e-2)


@pytest.fixture(scope="module")
def pretrained_and_shapes():
    model, _ = load_pretrained()
    return model, make_dataset("shapes", "test", size=32).images


def test_the_k1_bound_is_minus_the_elbo_up_to_the_sampled_rate(pretrained_and_shapes):
    """With the same noise, K = 1 and the training loss share the distortion; the sampled rate log q - log p has
    the closed-form rate as its mean, so over 32 images they agree to within its noise (sd about 0.25 nats)."""
    model, x = pretrained_and_shapes
    torch.manual_seed(0)
    bound = importance_weighted_bound(model, x, 1)
    with torch.no_grad():
        mu, logvar, skips = model.encode(x)
        torch.manual_seed(0)
        z = mu + (0.5 * logvar).exp() * torch.randn(1, *mu.shape)[0]
        parts = negative_elbo(model.decoder(z, skips), x, mu, logvar)
    assert bound.mean().item() == pytest.approx(-parts.total.item(), abs=1.0)


def test_on_average_the_bound_rises_with_k(pretrained_and_shapes):
    model, x = pretrained_and_shapes
    torch.manual_seed(0)
    k1, k16 = importance_weighted_bound(model, x, 1).mean(), importance_weighted_bound(model, x, 16).mean()
    assert k16 > k1 + 2.0  # about 6 nats on the shipped model (seeds 0-4); a 32-image mean at K = 1 has sd 0.7


def test_the_bound_of_binary_images_is_a_log_probability(pretrained_and_shapes):
    """Pixels in {0, 1}: p(x) <= 1, so log p(x) <= 0, and the bound lies below it."""
    model, x = pretrained_and_shapes
    torch.manual_seed(0)
    bound = importance_weighted_bound(model, x.round(), 8)
    assert torch.isfinite(bound).all() and (bound < 0).all()
