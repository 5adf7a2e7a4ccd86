"""The pretrained model that notebooks 06 and 07 explore, shipped inside the package so that Colab has it too.

`make pretrained` trains it with notebook 05 and `params/pretrained.yaml`, then `export_pretrained` writes three
files here: the weights in fp16 (about 8 MB, `torch.load(weights_only=True)` reads them), its judge figures with
the training time, the images seen and the CPU (`shapes_vae.json`), and its training log (`shapes_vae_history.json`).
A test re-measures the figures from the shipped weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .checkpoint import load_checkpoint

DIR = Path(__file__).parent / "pretrained"
WEIGHTS = DIR / "shapes_vae.pt"
SUMMARY = DIR / "shapes_vae.json"
HISTORY = DIR / "shapes_vae_history.json"
COMMAND = "make pretrained"  # notebook 05 with params/pretrained.yaml, then export_pretrained


def load_pretrained(device="cpu"):
    """(model, summary): the shipped model in eval mode, and its stored judge figures and training facts."""
    if not WEIGHTS.exists():
        raise FileNotFoundError(f"no pretrained model at {WEIGHTS}; `{COMMAND}` trains and exports one")
    model, _ = load_checkpoint(WEIGHTS, device)
    return model.eval(), json.loads(SUMMARY.read_text())


def judge_figures(model, seed: int = 0) -> dict:
    """The judge's figures for a model of the built-in shapes, on the 2,000 test images, with the linear probe
    fitted on training images; prior and GMM samples are both scored (metrics.evaluate_all)."""
    from .data import make_loaders
    from .metrics import evaluate_all, load_judge
    from .tutorial_config import loader_kwargs

    train_loader, test_loader = make_loaders(**loader_kwargs(n_train=5000, seed=seed))
    return evaluate_all(model, test_loader, load_judge(), seed=seed, train_set=train_loader.dataset, gmm=True)


def export_pretrained(run_dir, dest: Path = DIR) -> dict:
    """Copy a finished notebook-05 run (its weights.pt, metrics.json and history) into the package as the
    pretrained model, with its judge figures measured now; returns the summary written."""
    run_dir, dest = Path(run_dir), Path(dest)
    model, ckpt = load_checkpoint(run_dir / "weights.pt")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = {**judge_figures(model.eval()), "minutes": metrics["minutes"], "images_seen": metrics["images_seen"],
               "precision": metrics["precision"], "cpu": ckpt["summary"].get("cpu"), "command": COMMAND,
               "identity": ckpt.get("identity")}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / WEIGHTS.name).write_bytes((run_dir / "weights.pt").read_bytes())
    (dest / SUMMARY.name).write_text(json.dumps(summary, indent=1))
    history = json.loads((run_dir / "checkpoint.history.json").read_text())
    (dest / HISTORY.name).write_text(json.dumps(history))
    return summary


@dataclass
class Trained:
    """A trained model for notebook 06, with a label, one line on how it was trained, and its judge figures."""

    model: torch.nn.Module
    label: str
    about: str
    source: str  # "pretrained" or the checkpoint path
    stored: Optional[dict] = None  # judge figures measured when it was saved, if any

    def figures(self) -> dict:
        """The judge's figures: as stored with the model when they were measured, else measured now (~30 s)."""
        if self.stored is None or "recon_accuracy" not in self.stored:
            self.stored = judge_figures(self.model)
        return self.stored


def describe(summary: dict, name: str) -> str:
    """One line on a trained model: what it is, how long it trained, on how many images, on which CPU."""
    minutes, images = summary.get("minutes"), summary.get("images_seen")
    trained = (f"trained {minutes:.1f} min on {images:,} images" if minutes is not None and images else
               "training time not recorded")
    return f"{name}: {trained}" + (f" ({summary['cpu']})" if summary.get("cpu") else "")


def load_for_notebook(checkpoint: str = "pretrained", compare: str = ""):
    """(main, other) for notebook 06: the model to explore ("pretrained" or a checkpoint path) and a second one to
    show beside it, as Trained; other is None, with a line in `main.about` saying why, when `compare` is "" or
    its file is missing."""
    from .params import checked_path

    if checkpoint == "pretrained":
        model, summary = load_pretrained()
        main = Trained(model, "pretrained", describe(summary, f"the pretrained model ({WEIGHTS.name})"),
                       "pretrained", summary)
    else:
        main = _trained(checked_path("checkpoint", checkpoint, must_exist=True), checkpoint)
    if not compare:
        return main, None
    path = checked_path("compare", compare)
    if not path.exists():
        main.about += f"\nno model at {compare} to show beside it: run notebook 05 first to see your own model here"
        return main, None
    return main, _trained(path, compare)


def _trained(path: Path, name: str) -> Trained:
    """A notebook-05 checkpoint as Trained, with the metrics.json written beside it."""
    model, ckpt = load_checkpoint(path)
    metrics = path.parent / "metrics.json"
    summary = json.loads(metrics.read_text()) if metrics.exists() else ckpt.get("summary", {})
    label = "your model (05)" if path.name == "checkpoint.pt" else path.stem
    return Trained(model.eval(), label, describe(summary, name), name, summary)


def figure_names(checkpoint: str):
    """name -> name, or -> None: only the tutorial's own models (the pretrained one, or notebook 05's default
    checkpoint) write figures/, so an experiment never replaces the committed figures."""
    from .runtime import figure_names as names, is_tutorial_run

    return names(checkpoint == "pretrained" or is_tutorial_run(checkpoint))
