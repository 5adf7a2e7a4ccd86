"""The architecture figure, drawn with matplotlib from the rows of `spec.py` (never retyped).

Encoder stages run down the left, decoder stages up the right, the latent sits at the bottom, and each
dashed arrow is one "Add Skip Connection" row, labelled with the decoder step it feeds.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import spec
from .runtime import save_figure

ENC_COLOR, DEC_COLOR, LAT_COLOR, SKIP_COLOR = "#cfe2f3", "#f9e0c7", "#d9ead3", "#7f7f7f"


def _box(ax, x, y, w, h, text, color, size=8.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="#404040", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, a, b, **kw):
    style = dict(arrowstyle="-|>", mutation_scale=10, lw=1.0, color="#404040")
    style.update(kw)
    ax.add_patch(FancyArrowPatch(a, b, **style))


def architecture_figure(save: str | None = "architecture"):
    """A U-shaped diagram of the spec: one box per encoder/decoder stage, dashed arrows for the skips."""
    enc, dec = spec.encoder_stages(), spec.decoder_stages()
    fig, ax = plt.subplots(figsize=(13, 8.2))
    xe, xd, w, h, dy = 2.6, 10.4, 4.6, 0.78, 1.15
    y = lambda level: -level * dy  # noqa: E731  level k sits at H/2**k

    inp = spec.ENCODER[0]
    _box(ax, xe, y(0), w, h, f"{inp.step}: {inp.operation}\n{inp.symbolic()}", "white")
    for k, (filters, (c1, _, pool)) in enumerate(enc, start=1):
        text = f"{c1.step}–{pool.step}: 2 × {c1.operation}\n+ {pool.operation} → {pool.symbolic()}"
        _box(ax, xe, y(k), w, h, text, ENC_COLOR)
        _arrow(ax, (xe, y(k - 1) - h / 2), (xe, y(k) + h / 2))

    stats, latent = spec.ENCODER[-2], spec.ENCODER[-1]
    xl = (xe + xd) / 2
    _box(ax, xl, y(6), 5.2, h, f"{stats.step}: {stats.operation} ({stats.symbolic()})\n"
                               f"{latent.step}: {latent.operation} → z {latent.symbolic()}", LAT_COLOR)
    _arrow(ax, (xe, y(5) - h / 2), (xl - 1.5, y(6) + h / 2))

    prev = (xl + 1.5, y(6) + h / 2)
    for filters, (up, skip, c1, c2) in dec:
        level = spec.skip_level(skip)
        text = f"{up.step}–{c2.step}: {up.operation}\n+ skip, 2 × {c1.operation} → {c2.symbolic()}"
        _box(ax, xd, y(level), w + 0.6, h, text, DEC_COLOR)
        _arrow(ax, prev, (xd, y(level) - h / 2))
        prev = (xd, y(level) + h / 2)
        src = (xe + w / 2, y(level))
        _arrow(ax, src, (xd - (w + 0.6) / 2, y(level)), linestyle="--", color=SKIP_COLOR)
        ax.text(xl, y(level) + 0.12, f"skip → decoder {skip.step}", ha="center", va="bottom", fontsize=8,
                color="#505050")
    ax.text(xd, y(0) + h / 2 + 0.25, "output: sigmoid → (H, W, C) in [0, 1]", ha="center", fontsize=9)

    ax.set_xlim(-0.2, 13.2)
    ax.set_ylim(y(6) - 0.8, 0.9)
    ax.axis("off")
    ax.set_title("VAE-SkipNet, drawn from vae_utils/spec.py: encoder (left), latent (bottom), decoder (right)",
                 fontsize=11)
    fig.tight_layout()
    return save_figure(fig, save)
