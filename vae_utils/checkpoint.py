"""Checkpoints: written atomically, read with `weights_only=True`, and rebuilt from the config they store.

A checkpoint holds the weights, the model config, the optimiser state, the epoch, the history, the RNG states and
the run identity (`identity.py`), so a run can resume exactly, and only the run that made it can reuse it. `torch.load(weights_only=True)` never runs code from the file: a
checkpoint downloaded from the internet is data, not a program.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from pathlib import Path
from typing import Optional

import torch

from .model import SkipVAE, VAEConfig

FORMAT = "vae-skipnet/1"


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint of this architecture."""


def save_checkpoint(path, model: SkipVAE, optimizer=None, epoch: int = 0, history: Optional[dict] = None,
                    train_config=None, rng: Optional[dict] = None, extra: Optional[dict] = None,
                    identity: Optional[dict] = None) -> Path:
    """Write a checkpoint atomically: to a temporary file beside it, then os.replace, so a crash never leaves
    half a file where the last good checkpoint was. `train_config` is stored as asked (precision "auto"
    included); `identity` (identity.run_identity) holds the precision the run really used."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "model_config": model.config.to_dict(),
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "history": history or {},
        "train_config": dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else train_config,
        "rng": rng or {},
        "extra": extra or {},
        "identity": identity or {},
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path, device="cpu") -> dict:
    """The checkpoint's contents, validated; CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one first (notebook 05 writes runs/05_train/checkpoint.pt)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated, or not written by "
                              f"torch.save: {str(err).splitlines()[0][:160]}); re-train or point to another file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a VAE-SkipNet checkpoint: expected a dict with format {FORMAT!r} "
                              f"and keys model_config, model, ...; got {keys}")
    return ckpt


def load_checkpoint(path, device="cpu", expect: Optional[VAEConfig] = None):
    """(model, checkpoint dict): the model rebuilt from the stored config with its weights loaded.

    `expect`: raise CheckpointError unless the stored config equals this one.
    """
    ckpt = read_checkpoint(path, device)
    try:
        config = VAEConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} stores an invalid model config: {err}") from None
    if expect is not None and config != expect:
        diff = {k: (v, getattr(config, k)) for k, v in dataclasses.asdict(expect).items() if getattr(config, k) != v}
        raise CheckpointError(f"{path} was trained with a different architecture; (expected, found): {diff}")
    model = SkipVAE(config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the stored config ({str(err).splitlines()[0]}); "
                              f"the file was edited or written by another architecture") from None
    return model.to(device), ckpt
