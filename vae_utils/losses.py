"""The negative ELBO in nats per image (summed over pixels and latents, averaged over the batch), and the IWAE bound.

References: Kingma & Welling (2014), Appendix B, the closed-form KL; Alemi et al. (2018), distortion and rate;
Higgins et al. (2017), beta; Kingma et al. (2016), free bits; Burda, Grosse & Salakhutdinov (2016), the IWAE bound.
"""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


class LossParts(NamedTuple):
    """total: what the optimiser minimises (with beta and free bits); distortion, rate: the true terms, nats per
    image; rate_per_channel: (256,) the rate of each latent channel, summed over the latent grid."""

    total: torch.Tensor
    distortion: torch.Tensor
    rate: torch.Tensor
    rate_per_channel: torch.Tensor


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element, in nats: 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def nll_per_image(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
                  sigma: float = 0.1) -> torch.Tensor:
    """-log p(x | z) of each image (B,), in nats, from the decoder's logits. bernoulli: binary cross-entropy on the
    logits (x may be grey levels); gaussian: N(x; sigmoid(logits), sigma^2) per pixel, constant included."""
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    if likelihood == "gaussian":
        sq = (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)
        return sq / (2 * sigma**2) + x[0].numel() * 0.5 * math.log(2 * math.pi * sigma**2)
    raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {likelihood!r}")


def negative_elbo(logits, x, mu, logvar, beta: float = 1.0, likelihood: str = "bernoulli", sigma: float = 0.1,
                  free_bits: float = 0.0) -> LossParts:
    """-ELBO = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)), nats per image, one sample. With free_bits > 0 the
    total uses max(rate_c, free_bits) per channel c; `rate` and `rate_per_channel` stay the true values."""
    distortion = nll_per_image(logits.float(), x.float(), likelihood, sigma).mean()
    rate_per_channel = kl_divergence(mu.float(), logvar.float()).sum(dim=(2, 3)).mean(0)  # (B, 256, h, w) -> (256,)
    rate = rate_per_channel.sum()
    rate_opt = rate_per_channel.clamp(min=free_bits).sum() if free_bits > 0 else rate
    return LossParts(distortion + beta * rate_opt, distortion, rate, rate_per_channel)


@torch.no_grad()
def importance_weighted_bound(model, x: torch.Tensor, k: int, likelihood: str = "bernoulli", sigma: float = 0.1,
                              chunk: int = 100) -> torch.Tensor:
    """The IWAE bound of each image (B,), nats, on the CPU: log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x).
    K = 1 is the ELBO; it rises with K towards log p(x). The decoder sees the model's own skips, if any."""
    x = x.to(next(model.parameters()).device)
    mu, logvar, skips = model.encode(x)  # (B, 256, h, w) each
    std = torch.exp(0.5 * logvar)
    log_w = []
    for start in range(0, k, chunk):
        eps = torch.randn(min(chunk, k - start), *mu.shape, device=mu.device)  # (K', B, 256, h, w)
        z = mu + std * eps
        logits = model.decoder(z.flatten(0, 1), {j: s.repeat(len(eps), 1, 1, 1) for j, s in skips.items()})
        log_px = -nll_per_image(logits.float(), x.repeat(len(eps), 1, 1, 1).float(), likelihood, sigma)
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(2).sum(2)  # (K', B)
        log_qz = (-0.5 * eps.pow(2) - torch.log(std) - 0.5 * math.log(2 * math.pi)).flatten(2).sum(2)
        log_w.append(log_px.view(len(eps), -1) + log_pz - log_qz)
    return (torch.logsumexp(torch.cat(log_w), 0) - math.log(k)).cpu()
