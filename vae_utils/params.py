"""Papermill parameters: checked once, where they enter a notebook, with errors that name what was expected.

`train_run(**params)` turns notebook 05's knobs into (data kwargs, VAEConfig, TrainConfig, output folder);
each config dataclass validates its own fields, so the rules live in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .data import _check_name, _image_size
from .model import VAEConfig
from .runtime import get_device, run_path
from .train import TrainConfig


@dataclass
class TrainRun:
    """Everything notebook 05 needs, validated."""

    data: dict  # keyword arguments for data.make_loaders
    model: VAEConfig
    train: TrainConfig
    out_dir: Path
    resume: bool = False  # continue from out_dir/checkpoint.pt when an earlier run stopped early


def _int(name, value, low=1, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{' or None' if allow_none else ''}, got {value!r}")
    return value


def train_run(dataset="shapes", image_size=64, channels=None, data_root="data", download=False, n_train=None, n_test=None,
              epochs=3, batch_size=64, lr=1e-3, beta=1.0, warmup=1.0, free_bits=0.0, likelihood="bernoulli",
              latent="learned", skips="none", skip_source="encoder", skip_dropout=0.0, init="kaiming", seed=0, device="auto",
              precision="fp32", out_dir="runs/05_train", resume=False) -> TrainRun:
    """Validate notebook 05's parameters; raises ValueError naming the parameter, the value and what is allowed."""
    _check_name(dataset)
    h, w = _image_size(image_size)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None (the dataset's own), got {channels!r}")
    if not isinstance(data_root, str):
        raise ValueError(f"data_root must be a folder path, got {data_root!r}")
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False, got {download!r}")
    n_train, n_test = _int("n_train", n_train, allow_none=True), _int("n_test", n_test, allow_none=True)
    _int("seed", seed, low=0)
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {device!r}")
    get_device(device)  # raises for an unknown or absent device
    if not isinstance(resume, bool):
        raise ValueError(f"resume must be True or False, got {resume!r}")
    if not isinstance(out_dir, str) or not out_dir:
        raise ValueError(f"out_dir must be a folder path, got {out_dir!r}")
    train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, warmup_epochs=warmup,
                        free_bits=free_bits, likelihood=likelihood, seed=seed, device=device, precision=precision)
    natural = 1 if dataset in ("shapes", "mnist", "fashion-mnist") else 3
    model = VAEConfig(in_channels=channels or natural, image_size=(h, w), latent=latent, skips=skips,
                      skip_source=skip_source, skip_dropout=skip_dropout, init=init)
    data = dict(name=dataset, image_size=(h, w), channels=channels, root=data_root, download=download, seed=seed,
                batch_size=batch_size, n_train=n_train, n_test=n_test)
    return TrainRun(data, model, train, run_path(out_dir), resume)


def checked_path(name: str, value, must_exist: bool = False) -> Optional[Path]:
    """A path parameter relative to the repository root (runtime.run_path); must_exist checks it."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a file path, got {value!r}")
    p = run_path(value)
    if must_exist and not p.exists():
        raise ValueError(f"{name} {value!r} does not exist")
    return p
