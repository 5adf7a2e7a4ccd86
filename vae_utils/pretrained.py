"""The pretrained model that notebooks 06 and 07 explore, shipped inside the package so that Colab has it too.

`make pretrained` trains it with notebook 05; `tools/pretrained.py` writes its weights, metrics and history here.
"""
import json
from pathlib import Path

from .checkpoint import load_checkpoint

DIR = Path(__file__).parent / "pretrained"
WEIGHTS = DIR / "shapes_vae.pt"
SUMMARY = DIR / "shapes_vae.json"
HISTORY = DIR / "shapes_vae_history.json"
SKIP_STUDY = DIR / "skip_study.json"  # notebook 07's configurations on three seeds (benchmarks/quality.py skips)


def load_pretrained(device="cpu"):
    """(model, summary): the shipped model in eval mode on `device`, and its metrics and training facts."""
    if not WEIGHTS.exists():
        raise FileNotFoundError(f"no pretrained model at {WEIGHTS}; `make pretrained` trains and exports one")
    model, _ = load_checkpoint(WEIGHTS, device)
    return model.eval(), json.loads(SUMMARY.read_text())


def load_history() -> dict:
    """The pretrained run's training history, as train() returned it: {"step": [...], "epoch": [...]}."""
    return json.loads(HISTORY.read_text())


def load_skip_study() -> dict:
    """The skip study on three seeds, as benchmarks/quality.py wrote it: machine, seconds, seeds, results, table."""
    return json.loads(SKIP_STUDY.read_text())
