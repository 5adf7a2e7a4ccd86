"""Papermill parameters: checked once, where they enter a notebook, with errors that name what was expected.

A parameter left at `None` takes the tutorial's default (`tutorial_config`): `tutorial_defaults` fills them in
for notebooks 01, 04 and 06; `train_run(**params)` turns notebook 05's knobs into (data kwargs, VAEConfig,
TrainConfig, output folder), and `skip_study_run` does the same for notebook 07. Each config dataclass
validates its own fields, so the rules live in one place.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from .checkpoint import export_weights, read_checkpoint
from .data import check_dataset_name, check_image_size
from .model import VAEConfig
from .runtime import figures_dir, get_device, is_tutorial_run, run_path, smoke_test
from .train import TrainConfig
from .tutorial_config import loader_kwargs, model_config, notebook_defaults, train_config


class _TutorialFigures:
    """`figure(name)` for a run with a `tutorial` flag."""

    tutorial: bool

    def figure(self, name: str) -> Optional[str]:
        """`name` for the tutorial's own run, None for an experiment: pass it as `save=` so that only the
        tutorial's run replaces the committed figures."""
        return name if self.tutorial else None


@dataclass
class TrainRun(_TutorialFigures):
    """Everything notebook 05 needs, validated."""

    data: dict  # keyword arguments for data.make_loaders
    model: VAEConfig
    train: TrainConfig
    out_dir: Path
    resume: bool = False  # continue from out_dir/checkpoint.pt when an earlier run stopped early
    tutorial: bool = False  # the tutorial's own run (shapes, the default out_dir): the one that writes figures/

    def save(self, model, metrics: dict, history: dict) -> dict:
        """Write metrics.json and weights.pt (fp16, with the run identity) beside out_dir's checkpoint; returns the
        metrics with the run's training facts added: minutes and seconds (validation included, a resumed run's
        earlier sessions too), images_seen, the precision really used, and the CPU."""
        from .perf import cpu_summary

        identity = read_checkpoint(self.out_dir / "checkpoint.pt")["identity"]
        last = history["epoch"][-1]
        metrics = {**metrics, "minutes": round(last["seconds"] / 60, 2), "seconds": last["seconds"],
                   "images_seen": last["images"], "precision": identity["train"]["precision"], "cpu": cpu_summary()}
        (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if self.tutorial:  # the quick model's figures, committed beside the figures for the README's goal table
            (figures_dir() / QUICK_MODEL).write_text(json.dumps(metrics, indent=1))
        export_weights(self.out_dir / "weights.pt", model, summary=metrics, identity=identity)
        return metrics


QUICK_MODEL = "quick_model.json"  # in figures/: the judge's figures of the tutorial's own run of notebook 05


def tutorial_defaults(notebook: str, **params):
    """The values of a notebook's parameters, in the order given, each None replaced by the tutorial's default;
    e.g. `n_train, seed = tutorial_defaults("07", n_train=n_train, seed=seed)`."""
    defaults = notebook_defaults(notebook)
    values = tuple(defaults[name] if value is None else value for name, value in params.items())
    return values[0] if len(values) == 1 else values


def _count(name, value):
    """An image count: a positive integer, or "all" (the whole split) as None."""
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, 'all' (the whole split) or None (the tutorial "
                         f"default), got {value!r}")
    return value


def _seed(value):
    """A seed: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"seed must be an integer >= 0, got {value!r}")


def train_run(dataset=None, image_size=None, channels=None, data_root="data", download=False, n_train=None,
              n_test=None, minutes=None, epochs=None, batch_size=None, lr=None, beta=None, kl_warmup=None,
              free_bits=None, likelihood=None, latent=None, skips=None, skip_source=None, skip_dropout=None,
              norm=None, init=None, seed=None, device="auto", precision=None, out_dir="runs/05_train",
              resume=False) -> TrainRun:
    """Validate notebook 05's parameters, None taking the tutorial's default; raises ValueError naming the
    parameter, the value and what is allowed. The run lasts `minutes` (the tutorial default), or `epochs` when
    only epochs is given."""
    if minutes is not None and epochs is not None:
        raise ValueError(f"give minutes (a time budget) or epochs (exactly reproducible), not both: got "
                         f"minutes={minutes!r}, epochs={epochs!r}")
    by_epochs = epochs is not None
    (dataset, image_size, channels, n_train, n_test, minutes, batch_size, lr, beta, kl_warmup, free_bits,
     likelihood, latent, skips, skip_source, skip_dropout, norm, init, seed, precision) = tutorial_defaults(
        "05", dataset=dataset, image_size=image_size, channels=channels, n_train=n_train, n_test=n_test,
        minutes=minutes, batch_size=batch_size, lr=lr, beta=beta, kl_warmup=kl_warmup,
        free_bits=free_bits, likelihood=likelihood, latent=latent, skips=skips, skip_source=skip_source,
        skip_dropout=skip_dropout, norm=norm, init=init, seed=seed, precision=precision)
    check_dataset_name(dataset)
    h, w = check_image_size(image_size)
    if channels not in (1, 3, "native"):
        raise ValueError(f"channels must be 1, 3, 'native' (the dataset's own) or None (the tutorial default), "
                         f"got {channels!r}")
    if not isinstance(data_root, str):
        raise ValueError(f"data_root must be a folder path, got {data_root!r}")
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False, got {download!r}")
    n_train, n_test = _count("n_train", n_train), _count("n_test", n_test)
    _seed(seed)
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {device!r}")
    get_device(device)  # raises for an unknown or absent device
    if not isinstance(resume, bool):
        raise ValueError(f"resume must be True or False, got {resume!r}")
    if not isinstance(out_dir, str) or not out_dir:
        raise ValueError(f"out_dir must be a folder path, got {out_dir!r}")
    train = train_config(minutes=None if by_epochs else minutes, **({"epochs": epochs} if by_epochs else {}),
                         batch_size=batch_size, lr=lr,
                         beta=beta, kl_warmup=kl_warmup, free_bits=free_bits, likelihood=likelihood, seed=seed,
                         device=device, precision=precision)
    channels = None if channels == "native" else channels  # make_loaders: None keeps the dataset's own
    natural = 1 if dataset in ("shapes", "shapes-small", "mnist", "fashion-mnist") else 3
    model = model_config(in_channels=channels or natural, image_size=(h, w), latent=latent, skips=skips,
                         skip_source=skip_source, skip_dropout=skip_dropout, norm=norm, init=init)
    data = dict(name=dataset, image_size=(h, w), channels=channels, root=data_root, download=download, seed=seed,
                batch_size=batch_size, n_train=n_train, n_test=n_test)
    tutorial = dataset == "shapes" and is_tutorial_run(out_dir)
    return TrainRun(data, model, train, run_path(out_dir), resume, tutorial)


SMOKE_BUDGET = dict(n_train=256, n_test=128, epochs=1)  # VAE_SMOKE_TEST=1 (make test): seconds, the same code path


def train_run_from(namespace: dict) -> TrainRun:
    """`train_run` on the parameters of notebook 05 found in `namespace` (the notebook's globals()), so that the
    notebook validates all of them in one call; under the smoke test the run shrinks to SMOKE_BUDGET."""
    names = inspect.signature(train_run).parameters
    run = train_run(**{name: namespace[name] for name in names if name in namespace})
    if smoke_test():
        run.data.update(n_train=SMOKE_BUDGET["n_train"], n_test=SMOKE_BUDGET["n_test"])
        run.train = replace(run.train, epochs=SMOKE_BUDGET["epochs"], minutes=None)
    return run


@dataclass
class SkipStudyRun(_TutorialFigures):
    """Everything notebook 07 needs, validated: the skip study's budget, its data and where its checkpoints go."""

    data: dict  # keyword arguments for data.make_loaders
    train: TrainConfig  # the budget and recipe each configuration is trained with
    n_samples: int  # prior samples for the sample-quality figures
    seed: int
    out_dir: Path  # one checkpoint per configuration
    tutorial: bool = False  # the tutorial's own run (the default out_dir): the one that writes figures/


SMOKE_STUDY = dict(n_train=128, n_test=64, n_samples=64, epochs=1)  # notebook 07 under VAE_SMOKE_TEST=1


def skip_study_run(minutes=None, n_test=None, n_samples=None, seed=None, out_dir="runs/07_skips") -> SkipStudyRun:
    """Validate notebook 07's parameters, None taking the tutorial's default; under the smoke test each
    configuration trains one epoch of SMOKE_STUDY's images instead of `minutes`."""
    minutes, n_test, n_samples, seed = tutorial_defaults("07", minutes=minutes, n_test=n_test, n_samples=n_samples,
                                                         seed=seed)
    n_test, n_samples = _count("n_test", n_test), _count("n_samples", n_samples)
    _seed(seed)
    out = checked_path("out_dir", out_dir)
    train = train_config(minutes=minutes, seed=seed, progress=False)  # TrainConfig checks minutes
    data = loader_kwargs(n_test=n_test, seed=seed)
    if smoke_test():
        train = train_config(epochs=SMOKE_STUDY["epochs"], seed=seed, progress=False)
        data.update(n_train=SMOKE_STUDY["n_train"], n_test=SMOKE_STUDY["n_test"])
        n_samples = SMOKE_STUDY["n_samples"]
    return SkipStudyRun(data, train, n_samples, seed, out, is_tutorial_run(out_dir))


def skip_study_run_from(namespace: dict) -> SkipStudyRun:
    """`skip_study_run` on the parameters of notebook 07 found in `namespace` (the notebook's globals())."""
    names = inspect.signature(skip_study_run).parameters
    return skip_study_run(**{name: namespace[name] for name in names if name in namespace})


def checked_path(name: str, value, must_exist: bool = False) -> Optional[Path]:
    """A path parameter relative to the repository root (runtime.run_path); must_exist checks it."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a file path, got {value!r}")
    p = run_path(value)
    if must_exist and not p.exists():
        raise ValueError(f"{name} {value!r} does not exist")
    return p
