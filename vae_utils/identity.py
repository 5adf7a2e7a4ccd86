"""A run's identity: everything that shaped a checkpoint's weights, so that no run reuses the wrong model.

Every checkpoint stores `run_identity(...)`: the model config, the training config (less the fields that only say
how long or how visibly to train), the precision actually used, and the training data (name, size, image shape,
seed, any other data setting). `train.load_or_train` reuses a checkpoint only when its identity equals the new
run's, and `train.train(resume=True)` refuses one whose identity differs; `identity_diff` says what differs.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Optional

from .runtime import get_device, resolve_precision

# TrainConfig fields that say how long or how visibly a run trains, not what it trains; `minutes`: a time budget
NOT_IDENTITY = ("epochs", "minutes", "progress", "log_every", "device")
# make_loaders keywords that say where the data lives or how it is validated, not which images train the model;
# image_size and channels are recorded as the images' real shape instead
DATA_NOT_IDENTITY = ("root", "download", "n_test", "batch_size", "image_size", "channels")


def _plain(value):
    """JSON types only (tuples become lists), so that a stored identity compares equal to a fresh one."""
    return json.loads(json.dumps(value, default=str))


def describe_data(loader, settings: Optional[dict] = None) -> dict:
    """The training data as an identity records it: read from the loader (the dataset's name, size and image shape,
    the shuffling seed), plus any other `settings` from the caller (make_loaders keywords, e.g. a folder's path)."""
    ds = loader.dataset
    generator = getattr(loader, "generator", None)
    out = {k: v for k, v in (settings or {}).items() if k not in DATA_NOT_IDENTITY}
    out.setdefault("name", getattr(ds, "name", type(ds).__name__))
    out["n_train"] = len(ds)
    out["image_shape"] = list(ds.images.shape[1:]) if hasattr(ds, "images") else None  # (C, H, W)
    if generator is not None:  # the loader's seed: the shuffling order, and for shapes the images themselves
        out["seed"] = generator.initial_seed()
    return _plain(out)


def run_identity(model_config, train_config, data: dict) -> dict:
    """{"model", "train", "data"}: what shaped the weights. The precision is the one the run really uses
    ("auto" resolved on the config's device), since bf16 and fp32 train different weights."""
    model = model_config.to_dict() if hasattr(model_config, "to_dict") else dataclasses.asdict(model_config)
    train = {k: v for k, v in dataclasses.asdict(train_config).items() if k not in NOT_IDENTITY}
    train["precision"] = resolve_precision(train_config.precision, get_device(train_config.device))
    return _plain({"model": model, "train": train, "data": data})


def identity_diff(stored, new: dict) -> list:
    """["section.field: old -> new", ...] for every field where a stored identity differs from `new`; [] when they
    match. A checkpoint that stores no identity (save_checkpoint without one) differs in everything."""
    if not isinstance(stored, dict) or not stored:
        return ["identity: none stored -> this run's"]
    show = lambda d, k: repr(d[k]) if k in d else "(absent)"  # noqa: E731
    rows = []
    for section, fields in new.items():
        old = stored.get(section) or {}
        rows += [f"{section}.{k}: {show(old, k)} -> {show(fields, k)}" for k in sorted(set(old) | set(fields))
                 if k not in old or k not in fields or old[k] != fields[k]]
    return rows
