"""The plain MLP VAE of pytorch/examples (784-400-20), adapted to the image size, as a baseline.

It has SkipVAE's interface (encode, decode, reconstruct, sample, forward returning logits, mu, logvar), so the
same training step and metrics apply. Latents are shaped (B, 20, 1, 1) to match SkipVAE's (B, 256, h, w).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class MLPConfig:
    """The baseline's shape; `needs_encoder` is always False (it has no skips)."""

    in_channels: int = 1  # C
    image_size: tuple = (64, 64)  # (H, W); the input layer has C*H*W units
    hidden: int = 400  # as in pytorch/examples
    latent: int = 20  # as in pytorch/examples
    needs_encoder: bool = False


class MLPVAE(nn.Module):
    """x -> 400 -> (mu, logvar) of 20; z -> 400 -> x, with ReLU, as in pytorch/examples/vae."""

    def __init__(self, config: Optional[MLPConfig] = None, **overrides):
        super().__init__()
        self.config = config or MLPConfig(**overrides)
        c, (h, w) = self.config.in_channels, self.config.image_size
        d = c * h * w
        self.fc1 = nn.Linear(d, self.config.hidden)  # (B, C*H*W) -> (B, 400)
        self.fc21 = nn.Linear(self.config.hidden, self.config.latent)  # -> (B, 20) mu
        self.fc22 = nn.Linear(self.config.hidden, self.config.latent)  # -> (B, 20) logvar
        self.fc3 = nn.Linear(self.config.latent, self.config.hidden)  # (B, 20) -> (B, 400)
        self.fc4 = nn.Linear(self.config.hidden, d)  # -> (B, C*H*W) logits
        self.decoder = self._decode_logits  # SkipVAE's `model.decoder(z, skips)` call shape

    def encode(self, x):
        h = F.relu(self.fc1(x.flatten(1)))
        return self.fc21(h)[..., None, None], self.fc22(h)[..., None, None], {}

    def _decode_logits(self, z, skips=None):
        c, (h, w) = self.config.in_channels, self.config.image_size
        return self.fc4(F.relu(self.fc3(z.flatten(1)))).view(-1, c, h, w)

    reparameterize = staticmethod(lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))

    def decode(self, z, skips=None):
        return torch.sigmoid(self._decode_logits(z))

    def forward(self, x):
        mu, logvar, _ = self.encode(x)
        return self._decode_logits(self.reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x):
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None):
        z = torch.randn(n, self.config.latent, 1, 1, generator=generator)
        return self.decode(z.to(next(self.parameters()).device))
