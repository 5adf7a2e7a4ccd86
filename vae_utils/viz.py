"""Every picture of the tutorial, one function each, returning its matplotlib Figure (runtime.save_figure writes it).

References: van der Maaten & Hinton (2008), t-SNE; Shoemake (1985) and White (2016), spherical interpolation.
"""
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from torchvision.utils import make_grid

from . import spec
from .metrics import factor_correlations
from .sampling import batched


def _img(images: torch.Tensor, nrow: int) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> one grid, padded in grey, as an array imshow understands."""
    g = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=0.5).clamp(0, 1)  # (C, H', W')
    return g[0].numpy() if g.shape[0] == 1 else g.permute(1, 2, 0).numpy()


def _finish(fig, title: str = "", **kw):
    """How every picture here ends: its suptitle (if any), a tight layout, and the figure to return."""
    if title:
        fig.suptitle(title, **kw)
    fig.tight_layout()
    return fig


def grids(images: dict, nrow: int = 8, title: str = "", scale: float = 0.9):
    """Image grids side by side, one per {title: images (N, C, H, W)}: e.g. 64 samples of each sampler."""
    n = len(images)
    rows = int(np.ceil(max(len(x) for x in images.values()) / nrow))
    fig, axes = plt.subplots(1, n, figsize=(scale * nrow * n + 0.4, scale * rows + 0.9), squeeze=False)
    for ax, (name, x) in zip(axes[0], images.items()):
        ax.imshow(_img(x, nrow), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name)
        ax.axis("off")
    return _finish(fig, title)


def show_grid(images: torch.Tensor, nrow: int = 8, title: str = ""):
    """A grid of images (N, C, H, W) in [0, 1]."""
    return grids({title: images}, nrow, scale=1.3)


def labelled_rows(rows: dict, title: str = "", xticks: Sequence[str] = (), xlabel: str = ""):
    """One row of images per entry of {label: images (N, C, H, W)}; every row has the same N, one `xticks` each."""
    labels, images = list(rows), list(rows.values())
    n, h, w = len(images[0]), images[0].shape[2] + 2, images[0].shape[3] + 2
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.2, 1.2 * len(rows) + 0.6))
    ax.imshow(_img(torch.cat([im.detach().cpu() for im in images]), n), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([(i + 0.5) * h for i in range(len(rows))], labels)
    ax.set_xticks([(i + 0.5) * w for i in range(len(xticks))], xticks)
    ax.set(title=title, xlabel=xlabel)
    return _finish(fig)


def reconstructions(model, x: torch.Tensor, title: str = ""):
    """Inputs (top row) above their reconstructions from the posterior mean (bottom row)."""
    rec = batched(model, model.reconstruct, x)
    return labelled_rows({"input": x, "reconstruction": rec}, title or "Reconstructions from the posterior mean")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latents a and b (any shape), treated as flat vectors."""
    af, bf = a.flatten(), b.flatten()
    omega = torch.arccos(torch.clamp(torch.dot(af / af.norm(), bf / bf.norm()), -1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolation(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 9):
    """Decode linear (top) and spherical (bottom) paths between the posterior means of two images (C, H, W).
    With encoder skips, the skips are interpolated linearly too: they are part of what the decoder sees."""
    model.eval()
    dev = next(model.parameters()).device
    (mu_a, _, sk_a), (mu_b, _, sk_b) = model.encode(x_a[None].to(dev)), model.encode(x_b[None].to(dev))
    ts = torch.linspace(0, 1, steps).tolist()
    paths = {"linear": [(1 - t) * mu_a + t * mu_b for t in ts], "spherical": [slerp(mu_a, mu_b, t) for t in ts]}
    rows = {path: torch.cat([model.decode(z, {k: (1 - t) * sk_a[k] + t * sk_b[k] for k in sk_a}).cpu()
                             for z, t in zip(codes, ts)]) for path, codes in paths.items()}
    return labelled_rows(rows, "Interpolating between the codes of two test images", [f"{t:.2f}" for t in ts],
                         "interpolation weight t (0: image A, 1: image B)")


@torch.no_grad()
def traversal(model, x: torch.Tensor, channels: Sequence[int], steps: int = 7, span: float = 3.0,
              labels: Optional[Sequence[str]] = None):
    """One row per latent channel: that channel set from -span to +span (prior sigma = 1), the others held at the
    image's posterior mean; `labels` name each row (e.g. the factor the channel follows best)."""
    model.eval()
    mu, _, skips = model.encode(x[None].to(next(model.parameters()).device))
    values = torch.linspace(-span, span, steps)
    rows = {}
    for i, c in enumerate(channels):
        z = mu.repeat(steps, 1, 1, 1)
        z[:, c] = values.view(-1, 1, 1).to(z)
        name = f"z[{c}]" + (f"\n{labels[i]}" if labels else "")
        rows[name] = model.decode(z, {k: s.expand(steps, -1, -1, -1) for k, s in skips.items()}).cpu()
    return labelled_rows(rows, "Latent traversals: one channel varied, the others held",
                         [f"{v:+.1f}" for v in values.tolist()], "value of the latent channel (prior standard deviations)")


def rate_per_channel(rate: Sequence[float], active: Optional[Sequence[bool]] = None, title: str = ""):
    """Bar chart of the rate (KL, nats per image) of each latent channel, largest first; `active` channels (their
    mean code varies over the data) in blue, the others grey."""
    rate = np.asarray(rate, dtype=float)
    order = np.argsort(rate)[::-1]
    on = np.ones_like(rate, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(np.arange(len(rate)), rate[order], width=1.0, color=np.where(on[order], "tab:blue", "tab:gray"))
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set(xlabel="latent channel, sorted by rate", ylabel="rate (nats per image)",
           title=title or f"Rate per latent channel: {int(on.sum())} of {len(rate)} active (blue)")
    return _finish(fig)


def embedding(means: torch.Tensor, colors: dict, seed: int = 0):
    """PCA (top row) and t-SNE (bottom row) of posterior means (N, D), one column per colouring {name: values};
    a colouring given as (codes, names) is categorical (a legend below the panel), numbers get a colour bar."""
    X = means.numpy().astype(np.float64)
    X = X[:, X.std(0) > 1e-8] if (X.std(0) > 1e-8).any() else X
    pca = PCA(n_components=2, random_state=seed).fit_transform(X)
    tsne = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(X) - 1)).fit_transform(X)
    fig, axes = plt.subplots(2, len(colors), figsize=(4.2 * len(colors), 8.6), squeeze=False)
    for j, (name, values) in enumerate(colors.items()):
        for i, (method, pts) in enumerate((("PCA", pca), ("t-SNE", tsne))):
            ax = axes[i, j]
            if isinstance(values, tuple):  # (codes, names): categorical
                codes, names = values
                for k, label in enumerate(names):
                    ax.scatter(*pts[np.asarray(codes) == k].T, s=9, label=label)
                if i == 1:
                    ax.legend(fontsize=10, markerscale=2, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
            else:
                sc = ax.scatter(pts[:, 0], pts[:, 1], c=np.asarray(values), s=9, cmap="viridis")
                fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(f"{method}, coloured by {name}", fontsize=12)
            ax.set(xticks=[], yticks=[])
    return _finish(fig, f"Posterior means of {len(X)} test images in 2-D", fontsize=13)


def factor_correlation(means: torch.Tensor, factors: torch.Tensor, factor_names: Sequence[str],
                       channels: Sequence[int]):
    """|Pearson r| between each continuous true factor and the given latent channels, plus each factor's best channel.
    Left out: shape (categorical; the probe measures it) and a rotation of a quarter turn or more (no r can follow)."""
    keep = [j for j, n in enumerate(factor_names) if n != "shape" and
            (n != "rotation" or float(factors[:, j].max() - factors[:, j].min()) < np.pi / 2)]
    full = factor_correlations(means, factors[:, keep])  # (F, D)
    best = full.argmax(1).tolist()
    cols = list(channels) + [c for c in dict.fromkeys(best) if c not in channels]
    corr = full[:, cols].numpy()
    names = [factor_names[j] for j in keep]
    fig, ax = plt.subplots(figsize=(0.62 * len(cols) + 2.6, 0.55 * len(names) + 1.8))
    im = ax.imshow(corr, vmin=0, vmax=1, cmap="magma", aspect="auto")
    for (i, j), v in np.ndenumerate(corr):
        bold = cols[j] == best[i]
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, fontweight="bold" if bold else "normal",
                color="black" if v > 0.55 else "white")
    ax.set_xticks(range(len(cols)), [f"z[{c}]" for c in cols], rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(f"latent channel: the {len(channels)} with the highest rate, then each factor's best (bold)")
    ax.set_title("Which channel follows which factor: |Pearson r|")
    fig.colorbar(im, ax=ax, label="|r|")
    return _finish(fig)


def _log_axis(ax):
    ax.set_yscale("log", nonpositive="clip")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_history(history: dict, title: str = "Training"):
    """The objective, its distortion and its rate (nats per image) against the epoch: training batches as lines,
    validation (beta = 1, the true -ELBO) as dots; beta dashed on the rate panel."""
    steps, ep = history["step"], history.get("epoch", [])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("loss", "val_neg_elbo", "objective (with β); validation: −ELBO"), ("distortion", "val_distortion",
              "distortion: −log p(x|z)"), ("rate", "val_rate", "rate: KL(q(z|x) ‖ p(z))"))
    for ax, (key, val_key, label) in zip(axes, panels):
        ax.plot([r["epoch"] for r in steps], [r[key] for r in steps], lw=1, label="training batches")
        if ep:
            ax.plot([r["epoch"] for r in ep], [r[val_key] for r in ep], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel="nats per image", title=label)
        _log_axis(ax)
        ax.legend(fontsize=8)
    twin = axes[2].twinx()
    twin.plot([r["epoch"] for r in steps], [r["beta"] for r in steps], color="tab:gray", lw=0.8, ls="--")
    twin.set_ylabel("β, the weight on the rate (dashed)")
    return _finish(fig, title)


def loss_curves(histories: dict, title: str = ""):
    """Distortion, rate and beta against the training step, one line per {run name: train() history}."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, history in histories.items():
        for ax, key in zip(axes, ("distortion", "rate", "beta")):
            ax.plot([r["step"] for r in history["step"]], [r[key] for r in history["step"]], lw=1.2, label=name)
    for ax, label in zip(axes, ("distortion: −log p(x|z)", "rate: KL(q(z|x) ‖ p(z))", "β, the weight on the rate")):
        ax.set(title=label, xlabel="training step", ylabel="β" if "β," in label else "nats per image")
        ax.legend(fontsize=8)
    _log_axis(axes[0])
    return _finish(fig, title)


def compare_runs(histories: dict, title: str = ""):
    """Validation -ELBO against images seen, one line per {name: history}, on log axes."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, history in histories.items():
        ep = history["epoch"]
        ax.plot([r["images"] for r in ep], [r["val_neg_elbo"] for r in ep], "o-", ms=4, label=name)
    ax.set_xscale("log")
    _log_axis(ax)
    ax.set(xlabel="images seen in training", ylabel="validation −ELBO (nats per image)", title=title)
    ax.legend()
    return _finish(fig)


def factor_histograms(dataset, title: str = ""):
    """How often each value of each factor occurs in a shapes dataset: one bar per grid value; the shape's bars
    are named, the other factors' stand at their values."""
    names = dataset.factor_names
    units = {"scale": "size (x base size)", "rotation": "angle (radians)", "x": "centre (fraction of width)",
             "y": "centre (fraction of height)", "hue": "hue (fraction of a turn)"}
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
            ax.set_xlabel(units.get(name, name))
        ax.set_title(f"{name}: {len(values)} values")
    axes[0, 0].set_ylabel("images")
    return _finish(fig, title or f"The factors of {len(dataset):,} images of {dataset.name!r}")


def _box(ax, x, y, w, h, text, color, size=8.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="#404040", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, a, b, **kw):
    ax.add_patch(FancyArrowPatch(a, b, **{"arrowstyle": "-|>", "mutation_scale": 10, "lw": 1.0, "color": "#404040",
                                          **kw}))


def architecture_figure():
    """A U-shaped diagram of the spec from the rows of spec.py: encoder stages down the left, decoder stages up the
    right, the latent at the bottom, and one dashed arrow per "Add Skip Connection" row."""
    fig, ax = plt.subplots(figsize=(13, 8.2))
    xe, xd, w, h, dy = 2.6, 10.4, 4.6, 0.78, 1.15
    y = lambda level: -level * dy  # noqa: E731  level k sits at H/2**k
    inp = spec.ENCODER[0]
    _box(ax, xe, y(0), w, h, f"{inp.step}: {inp.operation}\n{inp.symbolic()}", "white")
    for k, (_, (c1, _, pool)) in enumerate(spec.encoder_stages(), start=1):
        _box(ax, xe, y(k), w, h, f"{c1.step}–{pool.step}: 2 × {c1.operation}\n+ {pool.operation} → {pool.symbolic()}",
             "#cfe2f3")
        _arrow(ax, (xe, y(k - 1) - h / 2), (xe, y(k) + h / 2))
    stats, latent = spec.ENCODER[-2], spec.ENCODER[-1]
    xl = (xe + xd) / 2
    _box(ax, xl, y(6), 5.2, h, f"{stats.step}: {stats.operation} ({stats.symbolic()})\n"
                               f"{latent.step}: {latent.operation} → z {latent.symbolic()}", "#d9ead3")
    _arrow(ax, (xe, y(5) - h / 2), (xl - 1.5, y(6) + h / 2))
    prev = (xl + 1.5, y(6) + h / 2)
    for _, (up, skip, c1, c2) in spec.decoder_stages():
        level = spec.skip_level(skip)
        _box(ax, xd, y(level), w + 0.6, h, f"{up.step}–{c2.step}: {up.operation}\n+ skip, 2 × {c1.operation} → "
                                            f"{c2.symbolic()}", "#f9e0c7")
        _arrow(ax, prev, (xd, y(level) - h / 2))
        prev = (xd, y(level) + h / 2)
        _arrow(ax, (xe + w / 2, y(level)), (xd - (w + 0.6) / 2, y(level)), linestyle="--", color="#7f7f7f")
        ax.text(xl, y(level) + 0.12, f"skip → decoder {skip.step}", ha="center", va="bottom", fontsize=8,
                color="#505050")
    ax.text(xd, y(0) + h / 2 + 0.25, "output: sigmoid → (H, W, C) in [0, 1]", ha="center", fontsize=9)
    ax.set(xlim=(-0.2, 13.2), ylim=(y(6) - 0.8, 0.9))
    ax.axis("off")
    ax.set_title("VAE-SkipNet, drawn from vae_utils/spec.py: encoder (left), latent (bottom), decoder (right)",
                 fontsize=11)
    return _finish(fig)
