"""The shape report: run the real forward pass and compare every step's shape with the spec tables.

Forward hooks on the modules that `model.py` tags with their spec step record the shapes of the code that runs.
"""
from typing import NamedTuple

import torch

from . import spec
from .model import SkipVAE


class ShapeRow(NamedTuple):
    """One spec step: what the table says and what the model produced."""

    part: str
    step: str
    operation: str
    spec_shape: object  # (H, W, C) tuple or "Scalar"
    actual: object  # (H, W, C) tuple, "Scalar", or None if the step never ran
    note: str = ""
    by_design: bool = False  # a deliberate, documented deviation from the table (latent="learned" at Step 16)

    @property
    def match(self) -> bool:
        return self.spec_shape == self.actual


class ShapeReport(list):
    """A list of ShapeRows that prints as a table (and renders as one in a notebook)."""

    @property
    def unexpected(self) -> list:
        """Mismatches that are not documented deviations: these are bugs."""
        return [r for r in self if not r.match and not r.by_design]

    def __str__(self) -> str:
        rows = [("part", "step", "operation", "spec (H, W, C)", "actual (H, W, C)", "match", "note")]
        rows += [(r.part, r.step, r.operation, _fmt(r.spec_shape), _fmt(r.actual),
                  "yes" if r.match else "by design" if r.by_design else "NO", r.note) for r in self]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])

    def _repr_pretty_(self, p, cycle):  # IPython shows the table, not a list of tuples
        p.text(str(self))


def _fmt(shape) -> str:
    return shape if isinstance(shape, str) or shape is None else "(" + ", ".join(map(str, shape)) + ")"


def _hwc(t: torch.Tensor):
    """(B, C, H, W) -> (H, W, C), the spec's notation; a per-image scalar -> "Scalar"."""
    if t[0].numel() == 1:
        return spec.SCALAR
    _, c, h, w = t.shape
    return (h, w, c)


def _skip_notes(model: SkipVAE) -> dict:
    """Where each "Add Skip Connection" step's tensor comes from, under this config."""
    cfg = model.config
    pools = [r.step for r in spec.ENCODER if r.kind == "pool"]  # Steps 3, 6, 9, 12, 15
    notes = {}
    for filters, steps in spec.decoder_stages():
        level = spec.skip_level(steps[1])
        if level not in cfg.skip_levels:
            note = "nothing added (skips=%r)" % (cfg.skips,)
        elif cfg.skip_source == "z":
            note = "adds a 1x1 projection of z, upsampled"
        else:
            note = "adds the input image" if level == 0 else f"adds encoder {pools[level - 1]} output"
            if cfg.skip_dropout:
                note += f" (dropped with p={cfg.skip_dropout} in training)"
        notes[("decoder", steps[1].step)] = note
    return notes


@torch.no_grad()
def shape_report(model: SkipVAE, height: int = 64, width: int = 64, parts: tuple = ("encoder", "decoder")) -> ShapeReport:
    """One row per spec step (step, operation, spec shape, actual shape, match) for an input of this size."""
    channels = model.config.in_channels
    x = torch.rand(2, channels, height, width, device=next(model.parameters()).device)  # on the model's device
    seen: dict = {}

    def record(key):  # a forward hook records the module's output; a pre-hook (no output) its input
        def hook(module, args, output=None):
            t = args[0] if output is None else output
            seen[key] = _hwc(t[0] if isinstance(t, tuple) else t)
        return hook

    handles = [m.register_forward_hook(record(m.spec_step)) for m in model.modules() if hasattr(m, "spec_step")]
    handles += [model.encoder.register_forward_pre_hook(record(("encoder", "Input"))),
                model.decoder.register_forward_pre_hook(record(("encoder", "Step 17")))]  # z, the decoder's input
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    notes = _skip_notes(model)
    learned = model.config.latent == "learned"
    notes[("encoder", "Step 16")] = ("latent='learned': mu, log sigma^2 per latent element" if learned
                                     else "latent='spec': one mu, one log sigma^2 per image")
    return ShapeReport(ShapeRow(part, r.step, r.operation, r.shape(height, width, channels), seen.get((part, r.step)),
                                notes.get((part, r.step), ""), by_design=learned and r.kind == "stats")
                       for part in parts for r in spec.TABLES[part])


def check_step(part: str, step: str, tensor: torch.Tensor, height: int, width: int, channels: int) -> str:
    """One line comparing a tensor with its spec row, for building a stage cell by cell; raises on a mismatch."""
    (row,) = [r for r in spec.TABLES[part] if r.step == step]
    want, got = row.shape(height, width, channels), _hwc(tensor)
    if want != got:
        raise AssertionError(f"{part} {step} ({row.operation}): spec says {_fmt(want)}, got {_fmt(got)}")
    return f"{part} {step:<7} {row.operation:<34} spec {_fmt(want):<15} actual {_fmt(got):<15} ok"
