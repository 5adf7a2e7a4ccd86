"""Run-time helpers every notebook needs: paths, device choice, seeding, the smoke-test switch, figure saving."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "VAE_SMOKE_TEST"  # set to 1 (as `make test` does) to run every notebook on a reduced budget


def smoke_test() -> bool:
    """True when notebooks should run their reduced CI budget (env VAE_SMOKE_TEST=1)."""
    return os.environ.get(SMOKE_ENV, "0").strip().lower() in ("1", "true", "yes")


def repo_root() -> Path:
    """The folder holding pyproject.toml above the working directory, or the working directory (e.g. Colab)."""
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "vae_utils").is_dir():
            return p
    return here


def figures_dir() -> Path:
    """Where figures are written: <repo>/figures; under the smoke test, runs/smoke-figures, so that a
    reduced-budget run never overwrites the committed figures."""
    d = repo_root() / ("runs/smoke-figures" if smoke_test() else "figures")
    d.mkdir(parents=True, exist_ok=True)
    return d


TUTORIAL_RUN = Path("runs/05_train")  # notebook 05's default out_dir: the run that the committed figures come from


def is_tutorial_run(path) -> bool:
    """True for notebook 05's default out_dir or its checkpoint (06's default), as a parameter names them.
    Only that run writes figures/; experiments with their own paths leave the committed figures alone."""
    return Path(path) in (TUTORIAL_RUN, TUTORIAL_RUN / "checkpoint.pt")


def run_path(value) -> Path:
    """A checkpoint or output path from a notebook parameter. A relative path is taken from the repository root;
    under the smoke test it moves below runs/smoke/ (runs/05_train -> runs/smoke/05_train), so that a
    reduced-budget run never overwrites the tutorial's checkpoints, as figures_dir() does for figures."""
    p = Path(value)
    if p.is_absolute():
        return p
    if smoke_test():
        p = Path("runs", "smoke", *(p.parts[1:] if p.parts[:1] == ("runs",) else p.parts))
    return repo_root() / p


def get_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; any other name is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is visible; use device='auto' or 'cpu'")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def save_figure(fig, name: str | None, directory: Path | None = None):
    """Save `fig` as figures/<name>.png (when a name is given) and return it."""
    if name:
        path = (directory or figures_dir()) / (name if name.endswith(".png") else name + ".png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig
