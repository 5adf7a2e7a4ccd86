"""Run-time helpers every notebook needs: paths, device and precision choice, seeding, the smoke-test switch,
figure saving."""
from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from . import perf

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
SKIP_STUDY_RUN = Path("runs/07_skips")  # notebook 07's default out_dir


def is_tutorial_run(path) -> bool:
    """True for notebook 05's default out_dir or its checkpoint, or notebook 07's default out_dir, as a parameter
    names them. Only those runs write figures/; experiments with their own paths leave the committed figures alone."""
    return Path(path) in (TUTORIAL_RUN, TUTORIAL_RUN / "checkpoint.pt", SKIP_STUDY_RUN)


def figure_names(own: bool):
    """name -> name when a notebook draws the tutorial's own model (figures/ gets the picture), name -> None for an
    experiment, whose pictures are only shown."""
    return (lambda name: name) if own else (lambda name: None)


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


class EmulatedBF16Warning(UserWarning):
    """precision='bf16' on a CPU that emulates bf16: training runs, but slower than in fp32."""


def native_bf16(device) -> bool:
    """True where bf16 runs natively: a CPU with AVX512-BF16 or AMX that oneDNN may use, or a CUDA GPU with bf16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return perf.cpu_native_bf16()
    return False  # MPS and the rest: fp32, the choice that is never slow


def resolve_precision(precision: str, device) -> str:
    """The precision a run really uses: "auto" is "bf16" where native_bf16(device), else "fp32"; any other value
    is kept. An explicit "bf16" on a CPU without native bf16 warns once per process, with measured rates."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and torch.device(device).type == "cpu" and not native_bf16(device):
        _warn_emulated_bf16()
    return precision


_warned_bf16 = False


def _warn_emulated_bf16():
    global _warned_bf16
    if _warned_bf16:
        return
    _warned_bf16 = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: a fair measurement on a busy machine, well under 0.2 s
    try:  # 256 x 256: about 17 ms per emulated bf16 matmul, 0.4 ms in fp32
        bf16, fp32 = (perf.matmul_gflops(dtype, n=256, repeats=3) for dtype in (torch.bfloat16, torch.float32))
    finally:
        torch.set_num_threads(threads)
    warnings.warn(f"bf16 matmul runs at {bf16:.1f} GFLOP/s against {fp32:.0f} for fp32 on this CPU (no AVX512-BF16/AMX "
                  f"that oneDNN may use): expect training to be slower; use precision='auto' or 'fp32'",
                  EmulatedBF16Warning, stacklevel=3)


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
