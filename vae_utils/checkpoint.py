"""Checkpoints: written atomically, read with `weights_only=True` onto the CPU, rebuilt from the config they store.

Two kinds: resumable (`save_checkpoint`, about 48 MB: optimiser, RNG states, history) and weights only
(`export_weights`, about 8 MB in fp16). Reading onto the CPU lets a GPU run's file open anywhere.
"""
import os
import pickle
import zipfile
from pathlib import Path
from typing import Optional

import torch

from .model import SkipVAE, VAEConfig

FORMAT = "vae-skipnet/1"  # resumable
WEIGHTS_FORMAT = "vae-skipnet-weights/1"  # weights only


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint of this architecture."""


def _cpu_weights(model, dtype=None) -> dict:
    return {k: (v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach()).cpu().contiguous()
            for k, v in model.state_dict().items()}


def save_checkpoint(path, model: SkipVAE, **state) -> Path:
    """Write a resumable checkpoint atomically: weights, config and `state` (optimizer, epoch, history, rng, ...)."""
    return _write(path, {"format": FORMAT, "model_config": model.config.to_dict(), "model": _cpu_weights(model),
                         **state})


def export_weights(path, model: SkipVAE, summary: Optional[dict] = None, identity: Optional[dict] = None) -> Path:
    """Write a weights-only file atomically: the weights in fp16 (half of fp32's size; loading casts them back),
    the model config, the run identity and a summary (e.g. the metrics, images seen, the machine)."""
    return _write(path, {"format": WEIGHTS_FORMAT, "model_config": model.config.to_dict(),
                         "model": _cpu_weights(model, torch.float16), "dtype": "float16",
                         "identity": identity or {}, "summary": summary or {}})


def _write(path, state: dict) -> Path:
    """torch.save to a temporary file beside `path`, then os.replace: a crash never leaves half a file there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path) -> dict:
    """The file's contents on the CPU, validated (either kind; ckpt["format"] tells which); CheckpointError else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one first (notebook 05 writes runs/05_train/checkpoint.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated, or not written by "
                              f"torch.save: {str(err).splitlines()[0][:160]}); re-train or point to another file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, WEIGHTS_FORMAT):
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a VAE-SkipNet checkpoint: expected a dict with format {FORMAT!r} "
                              f"(resumable) or {WEIGHTS_FORMAT!r} (weights only) and keys model_config, model, ...; "
                              f"got {keys}")
    missing = [k for k in ("model_config", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: expected a {ckpt['format']} file holding model_config and "
                              f"model; the file was edited or truncated, re-train or re-export it")
    return ckpt


def load_checkpoint(path, device="cpu"):
    """(model, checkpoint dict): the model rebuilt from its stored config, its weights in fp32, on `device`."""
    ckpt = read_checkpoint(path)
    try:
        config = VAEConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} stores an invalid model config: {err}") from None
    model = SkipVAE(config)
    try:  # an fp16 or bf16 export is cast back to fp32, the dtype every computation here expects
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()})
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the stored config ({str(err).splitlines()[0]}); "
                              f"the file was edited or written by another architecture") from None
    return model.to(device), ckpt
