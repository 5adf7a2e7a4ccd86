"""One function per picture. Each returns its matplotlib Figure and, given `save="name"`, writes figures/name.png.

References: t-SNE (van der Maaten & Hinton, 2008) and PCA via scikit-learn; spherical interpolation
(Shoemake, 1985; White, "Sampling Generative Networks", 2016).
Latents are (B, 256, H/64, W/64); the pictures flatten them to (B, D).
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

from .runtime import save_figure


def _device(model):
    return next(model.parameters()).device


def _img(grid: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> an array imshow understands."""
    g = grid.detach().float().cpu().clamp(0, 1)
    return g[0].numpy() if g.shape[0] == 1 else g.permute(1, 2, 0).numpy()


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=0.5)


def show_grid(images: torch.Tensor, nrow: int = 8, title: str = "", save: Optional[str] = None):
    """A grid of images (N, C, H, W) in [0, 1]."""
    rows = int(np.ceil(len(images) / nrow))
    fig, ax = plt.subplots(figsize=(1.3 * nrow, 1.3 * rows + 0.5))
    ax.imshow(_img(_grid(images, nrow)), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, save)


@torch.no_grad()
def reconstructions(model, x: torch.Tensor, save: Optional[str] = None, title: str = ""):
    """Inputs (top row) above their reconstructions (bottom row), decoded from the posterior mean."""
    model.eval()
    x = x.to(_device(model))
    rec = model.reconstruct(x)
    n = len(x)
    fig, ax = plt.subplots(figsize=(1.3 * n, 3.0))
    ax.imshow(_img(_grid(torch.cat([x, rec]), n)), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([x.shape[2] / 2 + 2, 1.5 * x.shape[2] + 4], ["input", "reconstruction"])
    ax.set_xticks([])
    ax.set_title(title or "Reconstructions (posterior mean, with the configured skips)")
    fig.tight_layout()
    return save_figure(fig, save)


@torch.no_grad()
def prior_samples(model, n: int = 32, seed: int = 0, nrow: int = 8, save: Optional[str] = None):
    """Images decoded from z ~ N(0, I); a figure that says why, when the config needs encoder skips."""
    model.eval()
    if model.config.needs_encoder:
        fig, ax = plt.subplots(figsize=(8, 1.6))
        ax.text(0.5, 0.5, f"No prior samples: skips={model.config.skips!r} needs encoder features\n"
                          "that do not exist at sampling time (see notebook 07).", ha="center", va="center")
        ax.axis("off")
        return save_figure(fig, save)
    images = model.sample(n, torch.Generator().manual_seed(seed))
    return show_grid(images, nrow, f"{n} samples from the prior, z ~ N(0, I)", save)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latents a and b (any shape), treated as flat vectors."""
    af, bf = a.flatten(), b.flatten()
    omega = torch.arccos(torch.clamp(torch.dot(af / af.norm(), bf / bf.norm()), -1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolation(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 9, save: Optional[str] = None):
    """Decode linear (top) and spherical (bottom) paths between the posterior means of two images.

    With encoder skips, the skips are interpolated linearly too: they are part of what the decoder sees.
    """
    model.eval()
    dev = _device(model)
    (mu_a, _, sk_a), (mu_b, _, sk_b) = model.encode(x_a[None].to(dev)), model.encode(x_b[None].to(dev))
    ts = torch.linspace(0, 1, steps)
    rows = []
    for path in ("linear", "spherical"):
        for t in ts.tolist():
            z = (1 - t) * mu_a + t * mu_b if path == "linear" else slerp(mu_a, mu_b, t)
            skips = {k: (1 - t) * sk_a[k] + t * sk_b[k] for k in sk_a}
            rows.append(model.decode(z, skips))
    fig, ax = plt.subplots(figsize=(1.3 * steps, 3.0))
    ax.imshow(_img(_grid(torch.cat(rows), steps)), cmap="gray", vmin=0, vmax=1)
    h = x_a.shape[1]
    ax.set_yticks([h / 2 + 2, 1.5 * h + 4], ["linear", "spherical"])
    ax.set_xticks([(i + 0.5) * (x_a.shape[2] + 2) for i in range(steps)], [f"{t:.2f}" for t in ts.tolist()])
    ax.set_xlabel("interpolation weight t (0: image A, 1: image B)")
    ax.set_title("Interpolating between two encoded images")
    fig.tight_layout()
    return save_figure(fig, save)


def top_channels(kl_per_channel: Sequence[float], k: int) -> list:
    """The k latent channels with the largest rate (KL), most informative first."""
    kl = torch.as_tensor(kl_per_channel)
    return kl.argsort(descending=True)[:k].tolist()


@torch.no_grad()
def traversal(model, x: torch.Tensor, channels: Sequence[int], steps: int = 7, span: float = 3.0,
              save: Optional[str] = None):
    """One row per latent channel: that channel set from -span to +span (prior sigma = 1), the others held at
    the image's posterior mean. Encoder skips, if any, stay those of the image."""
    model.eval()
    mu, _, skips = model.encode(x[None].to(_device(model)))
    values = torch.linspace(-span, span, steps)
    rows = []
    for c in channels:
        z = mu.repeat(steps, 1, 1, 1)
        z[:, c] = values.view(-1, 1, 1).to(z)
        rows.append(model.decode(z, {k: s.expand(steps, -1, -1, -1) for k, s in skips.items()}))
    fig, ax = plt.subplots(figsize=(1.3 * steps + 1, 1.3 * len(channels) + 0.9))
    ax.imshow(_img(_grid(torch.cat(rows), steps)), cmap="gray", vmin=0, vmax=1)
    h, w = x.shape[1] + 2, x.shape[2] + 2
    ax.set_yticks([(i + 0.5) * h for i in range(len(channels))], [f"z[{c}]" for c in channels])
    ax.set_xticks([(i + 0.5) * w for i in range(steps)], [f"{v:+.1f}" for v in values.tolist()])
    ax.set_xlabel("value of the latent channel (prior standard deviations)")
    ax.set_title("Latent traversals: one channel varied, the others held")
    fig.tight_layout()
    return save_figure(fig, save)


def kl_per_channel(kl: Sequence[float], active: Optional[Sequence[bool]] = None, save: Optional[str] = None,
                   title: str = ""):
    """Bar chart of the rate (KL, nats per image) of each latent channel, largest first; channels marked
    `active` (metrics.active_channels: their mean code varies over the data) in blue, the others grey."""
    kl = np.asarray(kl, dtype=float)
    order = np.argsort(kl)[::-1]
    on = np.ones_like(kl, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(np.arange(len(kl)), kl[order], width=1.0, color=np.where(on[order], "tab:blue", "tab:gray"))
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlabel("latent channel, sorted by rate")
    ax.set_ylabel("rate: KL (nats per image)")
    ax.set_title(title or f"Rate per latent channel: {int(on.sum())} of {len(kl)} active")
    fig.tight_layout()
    return save_figure(fig, save)


@torch.no_grad()
def posterior_means(model, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """(N, D) posterior means, flattened over the latent grid."""
    model.eval()
    dev = _device(model)
    return torch.cat([model.encode(images[i:i + batch].to(dev))[0].flatten(1).cpu()
                      for i in range(0, len(images), batch)])


def embedding(means: torch.Tensor, colors: dict, save: Optional[str] = None, seed: int = 0):
    """PCA (top row) and t-SNE (bottom row) of posterior means, one column per colouring: {name: values}.

    A colouring given as a list of names is categorical (a legend); numbers get a colour bar.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    X = means.numpy().astype(np.float64)
    X = X[:, X.std(0) > 1e-8] if (X.std(0) > 1e-8).any() else X
    pca = PCA(n_components=2, random_state=seed).fit_transform(X)
    tsne = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(X) - 1)).fit_transform(X)
    fig, axes = plt.subplots(2, len(colors), figsize=(3.6 * len(colors), 7.0), squeeze=False)
    for j, (name, values) in enumerate(colors.items()):
        for i, (method, pts) in enumerate((("PCA", pca), ("t-SNE", tsne))):
            ax = axes[i, j]
            if isinstance(values, tuple):  # (codes, names): categorical
                codes, names = values
                for k, label in enumerate(names):
                    m = np.asarray(codes) == k
                    ax.scatter(pts[m, 0], pts[m, 1], s=6, label=label)
                if i == 0:
                    ax.legend(fontsize=7, markerscale=2, loc="best")
            else:
                sc = ax.scatter(pts[:, 0], pts[:, 1], c=np.asarray(values), s=6, cmap="viridis")
                fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(f"{method}, coloured by {name}", fontsize=9)
            ax.set_xlabel(f"{method} 1")
            ax.set_ylabel(f"{method} 2")
            ax.tick_params(labelsize=7)
    fig.suptitle(f"Posterior means of {len(X)} test images in 2-D")
    fig.tight_layout()
    return save_figure(fig, save)


def factor_correlation(means: torch.Tensor, factors: torch.Tensor, factor_names: Sequence[str],
                       channels: Sequence[int], save: Optional[str] = None):
    """|Pearson correlation| between each true factor and each chosen latent channel's posterior mean.

    Shape is left out: it is categorical, so a correlation with its code number means nothing (the linear probe
    of metrics.shape_probe measures it). So is a rotation that spans a quarter turn or more: a square turned by 90
    degrees is the same image, so no single number per channel could follow it (the default shapes turn by at most
    30 degrees either way).
    """
    from .metrics import factor_correlations  # late import: metrics imports the training loop

    keep = [j for j, n in enumerate(factor_names) if n != "shape" and
            (n != "rotation" or float(factors[:, j].max() - factors[:, j].min()) < np.pi / 2)]
    corr = factor_correlations(means[:, list(channels)], factors[:, keep]).numpy()  # (F, channels)
    names = [factor_names[j] for j in keep]
    fig, ax = plt.subplots(figsize=(0.45 * len(channels) + 2.5, 0.45 * len(names) + 1.6))
    im = ax.imshow(corr, vmin=0, vmax=1, cmap="magma", aspect="auto")
    ax.set_xticks(range(len(channels)), [str(c) for c in channels], rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("latent channel (highest rate first)")
    ax.set_ylabel("true factor")
    ax.set_title("Which channel follows which factor: |correlation|")
    fig.colorbar(im, ax=ax, label="|Pearson r|")
    fig.tight_layout()
    fig.corr, fig.factor_names = corr, names  # the numbers behind the picture, for the notebook to quote
    return save_figure(fig, save)


def plot_history(history: dict, save: Optional[str] = None, title: str = "Training"):
    """Loss curves: total, reconstruction and KL (nats per image), training steps and validation epochs."""
    steps = history["step"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, key, label in zip(axes, ("loss", "recon", "kl"), ("objective (with β)", "reconstruction", "KL")):
        ax.plot([r["epoch"] for r in steps], [r[key] for r in steps], lw=1, label="train (per step)")
        val_key = {"loss": "val_neg_elbo", "recon": "val_recon", "kl": "val_kl"}[key]
        ep = history.get("epoch", [])
        if ep:
            ax.plot([r["epoch"] for r in ep], [r[val_key] for r in ep], "o-", label="validation (−ELBO)"
                    if key == "loss" else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.set_title(label)
        ax.set_yscale("log" if key != "kl" else "symlog")  # KL can spike during warm-up, then sit near 0
        ax.legend(fontsize=8)
    if any("beta" in r for r in steps):
        twin = axes[2].twinx()
        twin.plot([r["epoch"] for r in steps], [r["beta"] for r in steps], color="tab:gray", lw=0.8, ls="--")
        twin.set_ylabel("β (KL weight, dashed)")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, save)


def labelled_rows(rows: dict, title: str = "", save: Optional[str] = None):
    """One row of images per entry of {label: images (N, C, H, W)}; every row has the same N."""
    labels, images = list(rows), list(rows.values())
    n, h = len(images[0]), images[0].shape[2] + 2
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.2, 1.2 * len(rows) + 0.6))
    ax.imshow(_img(_grid(torch.cat([im.cpu() for im in images]), n)), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([(i + 0.5) * h for i in range(len(rows))], labels)
    ax.set_xticks([])
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, save)


def grids(images: dict, nrow: int = 6, title: str = "", save: Optional[str] = None):
    """Image grids side by side, one per {title: images (N, C, H, W)}: e.g. two versions of a dataset."""
    n = len(images)
    rows = int(np.ceil(max(len(x) for x in images.values()) / nrow))
    fig, axes = plt.subplots(1, n, figsize=(1.1 * nrow * n + 0.4, 1.1 * rows + 0.8), squeeze=False)
    for ax, (name, x) in zip(axes[0], images.items()):
        ax.imshow(_img(_grid(x, nrow)), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, save)


FACTOR_UNITS = {"shape": "", "scale": "size (x base size)", "rotation": "angle (radians)",
                "x": "centre (fraction of width)", "y": "centre (fraction of height)", "hue": "hue (fraction of a turn)"}


def factor_histograms(dataset, title: str = "", save: Optional[str] = None):
    """How often each value of each factor occurs in a shapes dataset (data.ImageDataset with factors): one bar
    per grid value; the shape's bars are named (data.SHAPES), the other factors' stand at their values."""
    names = dataset.factor_names
    fig, axes = plt.subplots(1, len(names), figsize=(2.9 * len(names), 2.7), sharey=True, squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[0], names)):
        values = dataset.grid[name]
        counts = (dataset.factors[:, j, None] == values[None]).sum(0).numpy()  # the factors are exact grid values
        if name == "shape":
            ax.bar(range(len(values)), counts, color="tab:blue", tick_label=dataset.label_names[:len(values)])
            ax.tick_params(axis="x", labelrotation=30)
        else:
            step = float(values[1] - values[0]) if len(values) > 1 else 1.0
            ax.bar(values.numpy(), counts, width=0.8 * step, color="tab:blue")
            ax.set_xlabel(FACTOR_UNITS.get(name, name))
        ax.set_title(f"{name}: {len(values)} values")
    axes[0, 0].set_ylabel("images")
    fig.suptitle(title or f"The factors of {len(dataset):,} images of {dataset.name!r}")
    fig.tight_layout()
    return save_figure(fig, save)


def loss_curves(histories: dict, title: str = "", save: Optional[str] = None):
    """Distortion, rate and the KL weight β against the training step, one line per {run name: train() history},
    from the history's step log (training batches, nats per image)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, history in histories.items():
        steps = history["step"]
        for ax, key in zip(axes, ("recon", "kl", "beta")):
            ax.plot([r["step"] for r in steps], [r[key] for r in steps], lw=1.2, label=name)
    labels = ("distortion: −log p(x|z)", "rate: KL(q(z|x) ‖ p(z))", "β, the weight on the rate")
    for ax, label in zip(axes, labels):
        ax.set_title(label)
        ax.set_xlabel("training step")
        ax.set_ylabel("nats per image" if "β" not in label else "β")
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, save)
