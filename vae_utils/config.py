"""The tutorial's defaults, defined once, and the notebooks' papermill runs, checked where they enter.

A notebook parameter left at None takes the default here. Under the smoke test every run shrinks to seconds on the
same code path; only a run given `figures_dir` (`make tutorial`) writes figures.
"""
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from .checkpoint import export_weights, load_checkpoint, read_checkpoint
from .data import DEFAULT_SIZES, GREY, check_dataset_name
from .model import VAEConfig
from .runtime import describe_machine, get_device, run_path, smoke_test
from .train import TrainConfig

# the data: the built-in shapes, grey, 64x64; notebook 05 trains on N_TRAIN images and validates on N_TEST
DATASET, IMAGE_SIZE, CHANNELS = "shapes", 64, 1
N_TRAIN, N_TEST = DEFAULT_SIZES["train"], DEFAULT_SIZES["test"]  # the built-in splits, sized in data.py

# the model: the spec's encoder and decoder without the skips, so that everything reaches the decoder through z
# and the model can sample (notebook 07 measures the alternatives); VAEConfig's defaults for the rest
MODEL = VAEConfig(in_channels=CHANNELS, image_size=IMAGE_SIZE, skips="none")

# the recipe: TrainConfig's defaults, each explained in train.py, on a time budget: a faster machine trains more
# steps in the same wait
TRAIN = TrainConfig(minutes=3.0)

# the notebooks that train small models of their own: the KL warm-up comparison (04) and the skip study (07)
BUDGETS = {"04": dict(n_train=3000, n_test=500, minutes=0.4, n_samples=0),
           "07": dict(n_train=N_TRAIN, n_test=500, minutes=0.25, n_samples=500)}
SMOKE = {"04": dict(n_train=128, n_test=64, n_samples=0), "05": dict(n_train=256, n_test=128),
         "07": dict(n_train=128, n_test=64, n_samples=64)}  # and one epoch each, instead of minutes

SKIP_STUDY = {  # notebook 07 and benchmarks/quality.py: name -> VAEConfig fields on top of the spec's skips
    "all skips (spec)": dict(skips="all"),
    "no skips": dict(skips="none"),
    "coarse skips": dict(skips="coarse"),
    "no full-res skip": dict(skips="no-input"),
    "skip dropout 0.5": dict(skips="all", skip_dropout=0.5),
    "skips from z": dict(skip_source="z"),
}


def model_config(**overrides) -> VAEConfig:
    """The tutorial's model config, with any field overridden (a new object)."""
    return replace(MODEL, **overrides)


def skip_study_config(**options) -> VAEConfig:
    """A configuration of the skip study: the tutorial's model with the spec's skips, then `options` on top."""
    return model_config(**{"skips": "all", "skip_source": "encoder", "skip_dropout": 0.0, **options})


def train_config(**overrides) -> TrainConfig:
    """The tutorial's training config, with any field overridden (a new object); `epochs` alone trains by epochs."""
    if "epochs" in overrides and "minutes" not in overrides:
        overrides["minutes"] = None
    return replace(TRAIN, **overrides)


def loader_kwargs(**overrides) -> dict:
    """Keyword arguments of data.make_loaders for the tutorial's data."""
    return {"name": DATASET, "image_size": IMAGE_SIZE, "channels": CHANNELS, "batch_size": TRAIN.batch_size,
            "seed": TRAIN.seed, "n_train": N_TRAIN, "n_test": N_TEST, **overrides}


MODEL_KEYS = ("latent", "skips", "skip_source", "skip_dropout", "norm", "init")
TRAIN_KEYS = ("minutes", "batch_size", "lr", "beta", "kl_warmup", "free_bits", "likelihood", "seed", "precision")


def notebook_defaults(notebook: str) -> dict:
    """{parameter: value} that a `None` parameter of notebook "01", "04", "05", "06" or "07" stands for."""
    data = dict(dataset=DATASET, image_size=IMAGE_SIZE, channels=CHANNELS)
    table = {"01": data, "06": dict(seed=TRAIN.seed),
             "04": {**BUDGETS["04"], "seed": TRAIN.seed}, "07": {**BUDGETS["07"], "seed": TRAIN.seed},
             "05": {**data, "n_train": N_TRAIN, "n_test": N_TEST, **{k: getattr(MODEL, k) for k in MODEL_KEYS},
                    **{k: getattr(TRAIN, k) for k in TRAIN_KEYS}}}
    if notebook not in table:
        raise ValueError(f"notebook must be one of {sorted(table)}, got {notebook!r}")
    return table[notebook]


def _count(name, value):
    """An image count: a positive integer, or "all" (the whole split) as None."""
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or 'all' (the whole split), got {value!r}")
    return value


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _path(name, value) -> Optional[Path]:
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value):
        raise ValueError(f"{name} must be a folder path, got {value!r}")
    return Path(value)


@dataclass
class TrainRun:
    """Everything notebook 05 needs, validated."""

    data: dict  # keyword arguments of data.make_loaders
    model: VAEConfig
    train: TrainConfig
    out_dir: Path  # checkpoint.pt, its history, metrics.json and weights.pt
    resume: bool = False  # continue from out_dir/checkpoint.pt when an earlier run stopped early
    figures_dir: Optional[Path] = None  # where figures go; None: they are only shown

    def save(self, model, metrics: dict, history: dict) -> dict:
        """Write metrics.json and weights.pt (fp16, with the run identity) beside the checkpoint; returns the
        metrics with the run's facts added: minutes and images of training, the precision used, the machine."""
        identity = read_checkpoint(self.out_dir / "checkpoint.pt")["identity"]
        last = history["epoch"][-1]
        metrics = {**metrics, "minutes": round(last["seconds"] / 60, 2), "seconds": last["seconds"],
                   "steps": last["step"], "images_seen": last["images"], "precision": identity["train"]["precision"],
                   "machine": describe_machine(get_device(self.train.device))}
        (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if self.figures_dir is not None and self.data["name"] == DATASET:  # the numbers behind the README's table
            self.figures_dir.mkdir(parents=True, exist_ok=True)
            (self.figures_dir / "quick_model.json").write_text(json.dumps(metrics, indent=1))
        export_weights(self.out_dir / "weights.pt", model, summary=metrics, identity=identity)
        return metrics


TRAIN_RUN_EXTRAS = dict(data_root="data", download=False, epochs=None, device="auto", out_dir="runs/05_train",
                        resume=False, figures_dir=None)  # notebook 05's parameters that are not tutorial defaults
TRAIN_RUN_PARAMS = {**notebook_defaults("05"), **TRAIN_RUN_EXTRAS}  # all of notebook 05's parameters


def train_run(**params) -> TrainRun:
    """Validate notebook 05's parameters (None: the tutorial default) before any work starts; a ValueError names
    the parameter, its value and what is allowed. The run lasts `minutes`, or `epochs` when epochs is given."""
    unknown = sorted(set(params) - set(TRAIN_RUN_PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; notebook 05 takes {sorted(TRAIN_RUN_PARAMS)}")
    if params.get("minutes") is not None and params.get("epochs") is not None:
        raise ValueError(f"give minutes (a time budget) or epochs (exactly reproducible), not both: got "
                         f"minutes={params['minutes']!r}, epochs={params['epochs']!r}")
    p = {**TRAIN_RUN_PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_dataset_name(p["dataset"])
    channels = _choice("channels", p["channels"], (1, 3, "native"))
    channels = None if channels == "native" else channels  # make_loaders: None keeps the dataset's own
    _choice("download", p["download"], (True, False))
    _choice("resume", p["resume"], (True, False))
    _path("data_root", p["data_root"])
    get_device(p["device"])  # raises for an unknown or absent device
    budget = {"epochs": p["epochs"]} if p["epochs"] is not None else {"minutes": p["minutes"]}
    train = train_config(**{k: p[k] for k in TRAIN_KEYS if k != "minutes"}, **budget, device=p["device"])
    model = model_config(in_channels=channels or (1 if p["dataset"] in GREY else 3), image_size=p["image_size"],
                         **{k: p[k] for k in MODEL_KEYS})  # VAEConfig checks image_size
    data = dict(name=p["dataset"], image_size=model.image_size, channels=channels, root=p["data_root"],
                download=p["download"], seed=p["seed"], batch_size=p["batch_size"],
                n_train=_count("n_train", p["n_train"]), n_test=_count("n_test", p["n_test"]))
    if smoke_test():
        data.update(SMOKE["05"])
        train = replace(train, epochs=1, minutes=None)
    return TrainRun(data, model, train, run_path(_path("out_dir", p["out_dir"])), p["resume"],
                    _path("figures_dir", p["figures_dir"]))


def train_run_from(namespace: dict) -> TrainRun:
    """`train_run` on notebook 05's parameters in `namespace`: its globals(), with any that papermill injected."""
    return train_run(**{name: namespace[name] for name in TRAIN_RUN_PARAMS if name in namespace})


@dataclass
class StudyRun:
    """A notebook that trains small models of its own (04, 07): their data and budget, and where results go."""

    data: dict  # keyword arguments of data.make_loaders
    train: TrainConfig  # the budget and recipe each model trains with
    n_samples: int  # prior samples for the sample-quality numbers
    seed: int
    out_dir: Optional[Path]  # one checkpoint per model, or None
    figures_dir: Optional[Path] = None


def study_run(notebook: str, minutes=None, n_train=None, n_test=None, n_samples=None, seed=None, out_dir=None,
              figures_dir=None) -> StudyRun:
    """Validate the parameters of notebook "04" or "07" (None: the tutorial default); under the smoke test each
    model trains one epoch of a few images instead of `minutes`."""
    if notebook not in BUDGETS:
        raise ValueError(f"notebook must be one of {sorted(BUDGETS)} (those that train models of their own), "
                         f"got {notebook!r}")
    given = dict(minutes=minutes, n_train=n_train, n_test=n_test, n_samples=n_samples, seed=seed)
    p = {**notebook_defaults(notebook), **{k: v for k, v in given.items() if v is not None}}
    n_samples = p["n_samples"]
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
        raise ValueError(f"n_samples must be an integer >= 0, got {n_samples!r}")
    train = train_config(minutes=p["minutes"], seed=p["seed"], log_every=1, progress=False)  # TrainConfig checks them
    data = loader_kwargs(n_train=_count("n_train", p["n_train"]), n_test=_count("n_test", p["n_test"]), seed=p["seed"])
    if smoke_test():
        train = replace(train, epochs=1, minutes=None)
        data.update({k: v for k, v in SMOKE[notebook].items() if k != "n_samples"})
        n_samples = SMOKE[notebook]["n_samples"]
    out = run_path(_path("out_dir", out_dir)) if out_dir is not None else None
    return StudyRun(data, train, n_samples, p["seed"], out, _path("figures_dir", figures_dir))


def study_run_from(notebook: str, namespace: dict) -> StudyRun:
    """`study_run` on the parameters of notebook "04" or "07" found in `namespace` (its globals())."""
    names = ("minutes", "n_train", "n_test", "n_samples", "seed", "out_dir", "figures_dir")
    return study_run(notebook, **{name: namespace[name] for name in names if name in namespace})


def load_run(out_dir, device="cpu"):
    """(model, metrics) of a finished notebook-05 run, from out_dir/weights.pt; None when there is none yet."""
    path = run_path(out_dir) / "weights.pt"
    if not path.exists():
        return None
    model, ckpt = load_checkpoint(path, device)
    return model.eval(), ckpt.get("summary", {})
