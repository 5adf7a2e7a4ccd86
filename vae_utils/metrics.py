"""Evaluation that works offline on any labelled dataset: likelihood, reconstruction, latent use, sample quality.

References: PSNR; active units (Burda et al., 2016); the Inception Score (Salimans et al., 2016) and the Fréchet
Inception Distance (Heusel et al., 2017), both computed here with a small CNN trained on the dataset's own labels
instead of Inception weights, which cannot be downloaded offline. Each sample-quality figure comes with its
real-versus-real baseline, so it has a scale.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .train import TrainConfig, evaluate


# --- reconstruction and latent use ---------------------------------------------------------------------

def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def reliance(mse_normal: float, mse_without: float) -> float:
    """How much reconstruction depends on an input: 1 - normal error / error without it, clipped to [0, 1].

    0: removing it changes nothing (the decoder ignores it); near 1: the reconstruction needs it.
    """
    return float(min(1.0, max(0.0, 1.0 - mse_normal / max(mse_without, 1e-12))))


@torch.no_grad()
def latent_reliance(model, loader, seed: int = 0) -> dict:
    """Reconstruction MSE normally (posterior mean, with the configured skips), with z replaced by a prior draw,
    and with every skip zeroed; and the two reliance scores that compare them."""
    model.eval()
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    sums, n = {"normal": 0.0, "z_from_prior": 0.0, "skips_zeroed": 0.0}, 0
    for x, _ in loader:
        x = x.to(dev)
        mu, _, skips = model.encode(x)
        z_prior = torch.randn(mu.shape, generator=g).to(mu)
        outs = {"normal": model.decode(mu, skips), "z_from_prior": model.decode(z_prior, skips),
                "skips_zeroed": model.decode(mu, {})}
        for k, out in outs.items():
            sums[k] += F.mse_loss(out, x, reduction="sum").item()
        n += x.numel()
    mse = {k: v / n for k, v in sums.items()}
    return {"mse": mse["normal"], "mse_z_from_prior": mse["z_from_prior"], "mse_skips_zeroed": mse["skips_zeroed"],
            "z_reliance": reliance(mse["normal"], mse["z_from_prior"]),
            "skip_reliance": reliance(mse["normal"], mse["skips_zeroed"])}


# --- a small classifier instead of Inception -----------------------------------------------------------

class SmallCNN(nn.Module):
    """Three strided convolutions with batch norm, a global max-pool (a small shape on a large background would
    be averaged away), and a linear layer; `features` is the 64-d penultimate layer."""

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),  # -> (B, 16, H/2, W/2)
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(),  # -> (B, 32, H/4, W/4)
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # -> (B, 64, H/8, W/8)
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),  # -> (B, 64)
        )
        self.head = nn.Linear(64, n_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def train_classifier(loader, n_classes: int, epochs: int = 8, lr: float = 3e-3, seed: int = 0) -> SmallCNN:
    """Fit SmallCNN to the loader's labels (about 10 s for 2,500 shapes; 99% test accuracy in our runs)."""
    torch.manual_seed(seed)
    x0, _ = next(iter(loader))
    net = SmallCNN(x0.shape[1], n_classes).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def classify(net: SmallCNN, images: torch.Tensor, batch: int = 256):
    """(probabilities (N, K), penultimate features (N, 64)) for images in [0, 1]."""
    probs, feats = [], []
    for i in range(0, len(images), batch):
        f = net.features(images[i:i + batch].float().cpu())
        feats.append(f)
        probs.append(F.softmax(net.head(f), 1))
    return torch.cat(probs), torch.cat(feats)


def inception_score(probs: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)): 1 for uninformative predictions, up to K for confident, balanced ones."""
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D):
    |m_a - m_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))."""
    a, b = a.double().numpy(), b.double().numpy()
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(ca @ cb)  # eigenvalues of a product of PSD matrices are real and >= 0
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(max(0.0, ((ma - mb) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt))


def real_baseline(net: SmallCNN, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """The scale for every sample-quality number: the classifier on real test images, and the Fréchet distance
    between two disjoint halves of the real test set."""
    probs, feats = classify(net, images)
    half = len(images) // 2
    return {"accuracy": float((probs.argmax(1) == labels).float().mean()),
            "inception_score": inception_score(probs),
            "frechet": frechet_distance(feats[:half], feats[half:2 * half])}


@torch.no_grad()
def sample_quality(model, net: SmallCNN, test_images: torch.Tensor, test_labels: torch.Tensor,
                   n_samples: int = 1000, seed: int = 0) -> dict:
    """Classifier accuracy on reconstructions; Inception-style score and Fréchet distance of prior samples
    (None where the configuration cannot sample)."""
    model.eval()
    dev = next(model.parameters()).device
    recs = torch.cat([model.reconstruct(test_images[i:i + 256].to(dev)).cpu() for i in range(0, len(test_images), 256)])
    acc = float((classify(net, recs)[0].argmax(1) == test_labels).float().mean())
    out = {"recon_accuracy": acc, "inception_score": None, "frechet": None}
    if not model.config.needs_encoder:
        g = torch.Generator().manual_seed(seed)
        samples = torch.cat([model.sample(min(256, n_samples - i), g).cpu() for i in range(0, n_samples, 256)])
        probs, feats = classify(net, samples)
        _, real = classify(net, test_images[:n_samples])
        out.update(inception_score=inception_score(probs), frechet=frechet_distance(feats, real))
    return out


def evaluate_all(model, test_loader, net: Optional[SmallCNN], cfg: Optional[TrainConfig] = None,
                 n_samples: int = 1000, seed: int = 0) -> dict:
    """Every metric of the skip study for one model, as a flat dict."""
    cfg = cfg or TrainConfig(progress=False)
    elbo = evaluate(model, test_loader, cfg, seed)
    rel = latent_reliance(model, test_loader, seed)
    out = {"neg_elbo": elbo["neg_elbo"], "kl": elbo["kl"], "active_units": elbo["active_units"],
           "mse": rel["mse"], "psnr": psnr(rel["mse"]), "z_reliance": rel["z_reliance"],
           "skip_reliance": rel["skip_reliance"], "mse_z_from_prior": rel["mse_z_from_prior"]}
    if net is not None:
        ds = test_loader.dataset
        out.update(sample_quality(model, net, ds.images, ds.labels, n_samples, seed))
    return out



# the six configurations of the skip study (notebook 07, benchmarks/quality.py): name -> VAEConfig fields
SKIP_STUDY = {
    "all skips (spec)": dict(skips="all"),
    "no skips": dict(skips="none"),
    "coarse skips": dict(skips="coarse"),
    "no full-res skip": dict(skips="no-input"),
    "skip dropout 0.5": dict(skips="all", skip_dropout=0.5),
    "skips from z": dict(skip_source="z"),
}

COLUMNS = {  # metric -> (header, format, better)
    "neg_elbo": ("-ELBO", "{:8.1f}", "lower"),
    "kl": ("KL", "{:6.1f}", ""),
    "active_units": ("active", "{:6d}", ""),
    "psnr": ("PSNR dB", "{:7.2f}", "higher"),
    "z_reliance": ("z reliance", "{:10.3f}", "higher"),
    "skip_reliance": ("skip reliance", "{:13.3f}", ""),
    "recon_accuracy": ("recon acc", "{:9.3f}", "higher"),
    "inception_score": ("IS", "{:6.2f}", "higher"),
    "frechet": ("Fréchet", "{:8.2f}", "lower"),
}


def format_table(rows: dict, columns=tuple(COLUMNS)) -> str:
    """A fixed-width table of {name: metrics dict}; "n/a" where a configuration cannot produce a number."""
    width = max(len(n) for n in rows) + 2
    head = "".join(COLUMNS[c][0].rjust(len(COLUMNS[c][1].format(0) if "d" in COLUMNS[c][1] else
                                         COLUMNS[c][1].format(0.0)) + 1) for c in columns)
    lines = ["configuration".ljust(width) + head]
    for name, m in rows.items():
        cells = []
        for c in columns:
            fmt = COLUMNS[c][1]
            blank = fmt.format(0) if "d" in fmt else fmt.format(0.0)
            cells.append((fmt.format(m[c]) if m.get(c) is not None else "n/a".rjust(len(blank))).rjust(len(blank) + 1))
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)
