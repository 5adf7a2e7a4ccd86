"""Evaluation that works offline on any labelled dataset: likelihood, reconstruction, latent use, sample quality.

References: Burda et al. (2016), active units; Salimans et al. (2016), the Inception Score; Heusel et al. (2017), the
Fréchet distance; both with a small CNN trained on the dataset's labels (Inception weights need the network).
"""
import math
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .data import BatchLoader
from .sampling import LatentGMM, active_channels, batched, encode_means, gmm_samples
from .train import TrainConfig, evaluate


class Metric(NamedTuple):
    """How one number of `evaluate_all` is named, printed and judged."""

    label: str  # in sentences and the README's table
    short: str  # a column header
    fmt: str
    better: str  # "higher", "lower", or "" where neither is better


METRICS = {  # the one registry of metric names: the notebooks, benchmarks/ and tools/ all read it
    "neg_elbo": Metric("test -ELBO (nats per image)", "-ELBO", "{:.1f}", "lower"),
    "distortion": Metric("distortion (nats per image)", "distortion", "{:.1f}", "lower"),
    "rate": Metric("rate (nats per image)", "rate", "{:.1f}", ""),
    "active_units": Metric("active units (of 256)", "active", "{:d}", ""),
    "psnr": Metric("PSNR (dB)", "PSNR dB", "{:.1f}", "higher"),
    "z_reliance": Metric("z reliance", "z rel", "{:.2f}", "higher"),
    "skip_reliance": Metric("skip reliance", "skip rel", "{:.2f}", ""),
    "recon_accuracy": Metric("judge accuracy on reconstructions", "judge acc", "{:.3f}", "higher"),
    "inception_score": Metric("IS of prior samples (1 to 4)", "IS", "{:.2f}", "higher"),
    "frechet": Metric("Fréchet distance of prior samples", "Fréchet", "{:.0f}", "lower"),
    "gmm_inception_score": Metric("IS of GMM samples (1 to 4)", "GMM IS", "{:.2f}", "higher"),
    "gmm_frechet": Metric("Fréchet distance of GMM samples", "GMM Fréchet", "{:.0f}", "lower"),
    "probe": Metric("linear probe: shape from mu", "probe", "{:.3f}", "higher"),
    "r_scale": Metric("best |r|, scale", "|r| scale", "{:.2f}", "higher"),
    "r_rotation": Metric("best |r|, rotation", "|r| rot", "{:.2f}", "higher"),
    "r_x": Metric("best |r|, x", "|r| x", "{:.2f}", "higher"),
    "r_y": Metric("best |r|, y", "|r| y", "{:.2f}", "higher"),
}


def shape_probe(train_means: torch.Tensor, train_labels: torch.Tensor, test_means: torch.Tensor,
                test_labels: torch.Tensor) -> float:
    """Test accuracy of a logistic regression from posterior means (N, D) to labels: how linearly the code
    separates the classes (chance is 1 / classes). Features are standardised on the training codes."""
    keep = train_means.double().std(0) > 1e-6  # constant channels carry nothing and only slow the solver
    keep = keep if keep.any() else ~keep  # all constant: keep them all
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(train_means[:, keep].double().numpy(), train_labels.numpy())
    return float(clf.score(test_means[:, keep].double().numpy(), test_labels.numpy()))


def factor_correlations(means: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """|Pearson r| (F, D) between each true factor (N, F) and each channel of the posterior means (N, D)."""
    def standardise(a):  # each column to mean 0, standard deviation 1 (a constant column stays 0)
        a = a.double() - a.double().mean(0)
        return a / a.std(0, unbiased=False).clamp_min(1e-12)
    return (standardise(factors).T @ standardise(means) / len(means)).abs()


def reliance(mse_normal: float, mse_without: float) -> float:
    """1 - normal error / error without an input, clipped to [0, 1]: 0 if the decoder ignores it, near 1 if needed."""
    return float(min(1.0, max(0.0, 1.0 - mse_normal / max(mse_without, 1e-12))))


@torch.no_grad()
def latent_reliance(model, loader, seed: int = 0) -> dict:
    """Reconstruction MSE normally (posterior mean, with the configured skips), with z replaced by a prior draw,
    and with every skip zeroed; and the two reliance scores that compare them."""
    model.eval()
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    sums, n = dict.fromkeys(("mse", "mse_z_from_prior", "mse_skips_zeroed"), 0.0), 0
    for x, _ in loader:
        x = x.to(dev)
        mu, _, skips = model.encode(x)
        z_prior = torch.randn(mu.shape, generator=g).to(dev)  # drawn on the CPU: the same draw on every device
        outs = {"mse": model.decode(mu, skips), "mse_z_from_prior": model.decode(z_prior, skips),
                "mse_skips_zeroed": model.decode(mu, {})}
        for k, out in outs.items():
            sums[k] += F.mse_loss(out, x, reduction="sum").item()
        n += x.numel()
    mse = {k: v / n for k, v in sums.items()}
    return {**mse, "z_reliance": reliance(mse["mse"], mse["mse_z_from_prior"]),
            "skip_reliance": reliance(mse["mse"], mse["mse_skips_zeroed"])}


class SmallCNN(nn.Module):
    """Three strided convolutions with batch norm, a global max-pool (a small shape on a large background would
    be averaged away), and a linear layer; `body` gives the 64-d penultimate features."""

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),  # -> (B, 16, H/2, W/2)
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(),  # -> (B, 32, H/4, W/4)
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # -> (B, 64, H/8, W/8)
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),  # -> (B, 64)
        )
        self.head = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


JUDGE_FILE = Path(__file__).parent / "pretrained" / "judge_shapes.pt"  # the shipped judge of the built-in shapes


def load_judge(train_set=None, seed: int = 0) -> SmallCNN:
    """The judge, on the CPU: for the built-in 64x64 grey shapes the shipped classifier (`JUDGE_FILE`, trained by
    `python -m tools.judge`), for other data a SmallCNN trained on `train_set` (about a minute on a laptop CPU)."""
    if train_set is None or (getattr(train_set, "name", "") == "shapes" and
                             tuple(train_set.images.shape[1:]) == (1, 64, 64)):
        state = torch.load(JUDGE_FILE, map_location="cpu", weights_only=True)
        net = SmallCNN(1, len(state["label_names"]))
        net.load_state_dict(state["weights"])
        return net.eval()
    loader = BatchLoader(train_set, 64, shuffle=True, seed=seed, drop_last=True)
    return train_classifier(loader, len(train_set.label_names), seed=seed)


def judge_baseline() -> dict:
    """`real_baseline` of the shipped judge on the 2,000 real test shapes: the scale for every model's numbers."""
    return torch.load(JUDGE_FILE, map_location="cpu", weights_only=True)["real_baseline"]


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
    feats = torch.cat([net.body(b.float().cpu()) for b in images.split(batch)])  # (N, 64)
    return F.softmax(net.head(feats), 1), feats


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
    """The scale for sample quality: the judge on real test images, and the Fréchet distance between their halves."""
    probs, feats = classify(net, images)
    half = len(images) // 2
    return {"accuracy": float((probs.argmax(1) == labels).float().mean()),
            "inception_score": inception_score(probs),
            "frechet": frechet_distance(feats[:half], feats[half:2 * half])}


def _scores(net: SmallCNN, samples: torch.Tensor, real: torch.Tensor) -> tuple:
    """(IS of the samples, their Fréchet distance to as many real images)."""
    probs, feats = classify(net, samples)
    return inception_score(probs), frechet_distance(feats, classify(net, real[:len(samples)])[1])


def evaluate_all(model, test_loader, net: Optional[SmallCNN], cfg: Optional[TrainConfig] = None,
                 n_samples: int = 1000, seed: int = 0, train_set=None, gmm: bool = False) -> dict:
    """Every METRICS number for one model, as a flat dict (None where it does not apply). The judge `net` scores
    reconstructions, prior samples and (gmm=True) mixture samples; `train_set` (5,000 images) fits the probe."""
    cfg = cfg or TrainConfig(progress=False)
    elbo = evaluate(model, test_loader, cfg, seed)
    rel = latent_reliance(model, test_loader, seed)
    ds = test_loader.dataset
    means = encode_means(model, ds.images).flatten(1)  # (N, D)
    out = {"neg_elbo": elbo["neg_elbo"], "rate": elbo["rate"], "distortion": elbo["distortion"], **rel,
           "active_units": int(active_channels(means).sum()), "psnr": 10 * math.log10(1 / max(rel["mse"], 1e-12)),
           **dict.fromkeys(("recon_accuracy", "inception_score", "frechet", "probe", "gmm_inception_score",
                            "gmm_frechet"))}  # None until computed below
    if net is not None:  # the judge on reconstructions, and on prior samples where the configuration can draw them
        recs = batched(model, model.reconstruct, ds.images)
        out["recon_accuracy"] = float((classify(net, recs)[0].argmax(1) == ds.labels).float().mean())
        if not model.config.needs_encoder:
            g = torch.Generator().manual_seed(seed)
            samples = torch.cat([model.sample(min(256, n_samples - i), g).cpu() for i in range(0, n_samples, 256)])
            out["inception_score"], out["frechet"] = _scores(net, samples, ds.images)
    if train_set is not None:
        train_codes = encode_means(model, train_set.images[:5000])  # (5000, 256, h, w), encoded once for both
        out["probe"] = shape_probe(train_codes.flatten(1), train_set.labels[:5000], means, ds.labels)
        if gmm and net is not None:
            mixture = LatentGMM(seed=seed).fit(train_codes)
            out["gmm_inception_score"], out["gmm_frechet"] = _scores(net, gmm_samples(model, mixture, n_samples, seed),
                                                                     ds.images)
    if getattr(ds, "factors", None) is not None:
        corr = factor_correlations(means, ds.factors)  # (F, D)
        out.update({f"r_{name}": float(corr[j].max()) for j, name in enumerate(ds.factor_names) if name != "shape"})
    return out


def format_table(rows: dict, columns: tuple) -> str:
    """A fixed-width table of {name: evaluate_all dict}, one column per METRICS key; "n/a" where a configuration
    cannot produce a number (e.g. prior samples with encoder skips)."""
    cells = {name: [METRICS[c].fmt.format(m[c]) if m.get(c) is not None else "n/a" for c in columns]
             for name, m in rows.items()}
    widths = [max(len(METRICS[c].short), *(len(v[i]) for v in cells.values())) for i, c in enumerate(columns)]
    first = max(len("configuration"), *(len(n) for n in rows))
    lines = ["configuration".ljust(first) + "".join(f"  {METRICS[c].short:>{w}}" for c, w in zip(columns, widths))]
    lines += [name.ljust(first) + "".join(f"  {v:>{w}}" for v, w in zip(row, widths)) for name, row in cells.items()]
    return "\n".join(lines)
