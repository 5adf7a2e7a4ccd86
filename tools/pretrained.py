"""`make pretrained`: train the pretrained model with notebook 05 and params/pretrained.yaml, then ship it.

    python -m tools.pretrained            # train (about 50 minutes on a 2-core CPU), then export
    python -m tools.pretrained --export   # export an existing run in runs/pretrained/ only

The export measures the judge's numbers (`judge_numbers`) and writes the fp16 weights, the numbers and the training
history into vae_utils/pretrained/, which git tracks and the wheel ships.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from vae_utils.checkpoint import load_checkpoint
from vae_utils.config import loader_kwargs
from vae_utils.data import make_loaders
from vae_utils.metrics import evaluate_all, load_judge
from vae_utils.pretrained import DIR, HISTORY, SUMMARY, WEIGHTS

from .kernels import execute_notebook

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params" / "pretrained.yaml"


def judge_numbers(model, seed: int = 0) -> dict:
    """metrics.evaluate_all of a shapes model on the 2,000 test images, the probe fitted on 5,000 training images,
    prior and GMM samples both scored."""
    train_loader, test_loader = make_loaders(**loader_kwargs(n_train=5000, seed=seed))
    return evaluate_all(model, test_loader, load_judge(), seed=seed, train_set=train_loader.dataset, gmm=True)


def export_pretrained(run_dir, dest: Path = DIR) -> dict:
    """Copy a finished notebook-05 run (weights.pt, metrics.json, history) into the package, with the judge's
    numbers measured now; returns the summary written."""
    run_dir, dest = Path(run_dir), Path(dest)
    model, ckpt = load_checkpoint(run_dir / "weights.pt")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = {**judge_numbers(model.eval()), **{k: metrics[k] for k in ("minutes", "images_seen", "precision")},
               "machine": metrics.get("machine"), "command": "make pretrained", "identity": ckpt.get("identity")}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / WEIGHTS.name).write_bytes((run_dir / "weights.pt").read_bytes())
    (dest / SUMMARY.name).write_text(json.dumps(summary, indent=1))
    (dest / HISTORY.name).write_text((run_dir / "checkpoint.history.json").read_text())
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", action="store_true", help="skip training: export runs/pretrained as it is")
    args = parser.parse_args(argv)
    params = yaml.safe_load(PARAMS.read_text())
    run_dir = ROOT / params["out_dir"]
    if not args.export:
        t0 = time.perf_counter()
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"training with {PARAMS.relative_to(ROOT)}: {params}", flush=True)
        execute_notebook(ROOT / "notebooks" / "05_train.ipynb", run_dir / "05_train.ipynb", parameters=params,
                         cwd=str(ROOT / "notebooks"), kernel_name="python3", progress_bar=False, log_output=True)
        print(f"trained in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    summary = export_pretrained(run_dir)
    print(json.dumps({k: v for k, v in summary.items() if k != "identity"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
