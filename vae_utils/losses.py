"""The negative ELBO, in nats per image: reconstruction plus beta times KL.

References: Kingma & Welling, "Auto-Encoding Variational Bayes" (2014), Appendix B for the closed-form KL;
Higgins et al., "beta-VAE" (2017); Kingma et al., "Improved Variational
Inference with Inverse Autoregressive Flow" (2016) for free bits.
Every term is summed over an image's pixels or latent elements and averaged over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


class LossParts(NamedTuple):
    """total: what the optimiser minimises (with beta and free bits); recon, kl: the true terms, nats per image;
    kl_per_channel: (256,) KL of each latent channel, summed over the latent grid, nats per image."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_channel: torch.Tensor


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element, in nats: 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
                       sigma: float = 0.1) -> torch.Tensor:
    """-log p(x | z) in nats per image, from the decoder's logits.

    bernoulli: binary cross-entropy on the logits (numerically stable; x may be grey levels in [0, 1]).
    gaussian: N(x; sigmoid(logits), sigma^2) per pixel, constant 0.5 log(2 pi sigma^2) included, so the value
    is a true negative log-density and comparable across sigma.
    """
    b = x.shape[0]
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
    if likelihood == "gaussian":
        sq = (torch.sigmoid(logits) - x).pow(2).sum() / b
        return sq / (2 * sigma**2) + x[0].numel() * 0.5 * math.log(2 * math.pi * sigma**2)
    raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {likelihood!r}")


def negative_elbo(logits, x, mu, logvar, beta: float = 1.0, likelihood: str = "bernoulli", sigma: float = 0.1,
                  free_bits: float = 0.0) -> LossParts:
    """-ELBO = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)), in nats per image (one-sample estimate).

    free_bits > 0 keeps each latent channel's batch-mean KL from being pushed below that many nats: the
    optimised total uses max(KL_c, free_bits) per channel; `kl` and `kl_per_channel` report the true values.
    """
    recon = reconstruction_nll(logits.float(), x.float(), likelihood, sigma)
    kl_el = kl_divergence(mu.float(), logvar.float())  # (B, 256, H/64, W/64)
    kl_per_channel = kl_el.sum(dim=(2, 3)).mean(0)  # (256,)
    kl = kl_per_channel.sum()
    kl_opt = kl_per_channel.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return LossParts(recon + beta * kl_opt, recon, kl, kl_per_channel)
