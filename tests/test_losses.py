"""Loss terms against torch.distributions and closed forms."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence as td_kl

from vae_utils.losses import kl_divergence, negative_elbo, reconstruction_nll


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 256, 2, 2), torch.randn(4, 256, 2, 2)
    expected = td_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(kl_divergence(mu, logvar), expected, atol=1e-5)


def test_bernoulli_term_matches_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(3, 1, 64, 64), torch.rand(3, 1, 64, 64).round()
    expected = -Bernoulli(logits=logits).log_prob(x).sum() / 3
    assert torch.allclose(reconstruction_nll(logits, x, "bernoulli"), expected, rtol=1e-5)


def test_gaussian_term_matches_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    expected = -Normal(torch.sigmoid(logits), 0.2).log_prob(x).sum() / 2
    assert torch.allclose(reconstruction_nll(logits, x, "gaussian", sigma=0.2), expected, rtol=1e-5)


def test_elbo_parts_add_up_and_report_per_channel_kl():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    mu, logvar = torch.randn(4, 256, 1, 1), torch.randn(4, 256, 1, 1)
    parts = negative_elbo(logits, x, mu, logvar, beta=0.5)
    assert torch.allclose(parts.total, parts.recon + 0.5 * parts.kl)
    assert parts.kl_per_channel.shape == (256,)
    assert torch.allclose(parts.kl_per_channel.sum(), parts.kl)
    per_image = td_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum((1, 2, 3))
    assert torch.allclose(parts.kl, per_image.mean(), rtol=1e-5)  # summed per image, averaged over the batch


def test_free_bits_raise_only_the_optimised_kl():
    mu, logvar = torch.zeros(2, 256, 1, 1), torch.zeros(2, 256, 1, 1)  # KL exactly 0 everywhere
    x = torch.rand(2, 1, 64, 64)
    parts = negative_elbo(torch.zeros_like(x), x, mu, logvar, free_bits=0.25)
    assert parts.kl == 0
    assert torch.allclose(parts.total - parts.recon, torch.tensor(256 * 0.25))


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        reconstruction_nll(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), "poisson")
