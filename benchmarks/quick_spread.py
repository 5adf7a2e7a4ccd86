"""How much the quick model moves from run to run: notebook 05's defaults, trained once per seed.

    python benchmarks/quick_spread.py                 # seeds 0, 1 and 2: about 11 minutes on a 2-core CPU
    python benchmarks/quick_spread.py --minutes 0.1 --seeds 0 --n-train 512 --out /tmp/spread.json  # a quick look

Notebook 05 trains for a time budget (3 minutes by default), so the steps it takes depend on the machine and its
load, and its figures differ between runs even under the same seed. This script trains the 05 defaults with the
functions the notebook calls (`config.train_run`, `train`, `metrics.evaluate_all`), one seed after another on all
threads, as a learner's run would, and writes every run's judge figures, the steps it took, and the mean ± sd over
the runs to benchmarks/results/quick_spread.json. The README's goal table quotes that spread under its single run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import sys

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tools/

from tools.goals import GOALS, goals_met  # noqa: E402
from vae_utils import SkipVAE, config, data, metrics  # noqa: E402
from vae_utils.runtime import cpu_summary, seed_everything  # noqa: E402
from vae_utils.train import train  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "quick_spread.json"


def run_seed(seed: int, out_dir: Path, **overrides) -> tuple:
    """Notebook 05 with its defaults and `seed` (and any of its parameters given, e.g. minutes): (the judge figures
    and the steps taken, the minutes of training the run was given; None when it ran epochs under the smoke test)."""
    run = config.train_run(seed=seed, out_dir=str(out_dir), **overrides)
    seed_everything(seed)
    model = SkipVAE(run.model)
    train_loader, test_loader = data.make_loaders(**run.data)
    history = train(model, train_loader, test_loader, replace(run.train, progress=False),
                    checkpoint=run.out_dir / "checkpoint.pt", data=run.data)
    figures = metrics.evaluate_all(model, test_loader, metrics.load_judge(train_loader.dataset),
                                   train_set=train_loader.dataset)
    last = history["epoch"][-1]
    return {"seed": seed, "steps": last["step"], "images_seen": last["images"], "seconds": last["seconds"],
            "goals_met": sum(goals_met(figures, "quick").values()),
            **{k: figures[k] for k in GOALS if figures.get(k) is not None}}, run.train.minutes


def summarise(runs: list) -> dict:
    """{figure: [mean, sd]} over the runs (sd 0 for a single run)."""
    keys = [k for k in runs[0] if k != "seed"]
    return {k: [statistics.mean(r[k] for r in runs), statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0]
            for k in keys}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--minutes", type=float, default=None, help="training time per run; default: notebook 05's")
    p.add_argument("--n-train", type=int, default=None, help="training images; default: notebook 05's")
    p.add_argument("--n-test", type=int, default=None, help="test images; default: notebook 05's")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            result, minutes = run_seed(seed, Path(tmp) / f"seed{seed}", minutes=args.minutes, n_train=args.n_train,
                                       n_test=args.n_test)
            runs.append(result)
            r = runs[-1]
            print(f"seed {seed}: {r['steps']} steps, judge accuracy {r['recon_accuracy']:.3f}, Fréchet "
                  f"{r['frechet']:.0f}, {r['goals_met']} of 9 goals", flush=True)
    saved = {"cpu": cpu_summary(), "threads": torch.get_num_threads(), "minutes": minutes, "seeds": args.seeds,
             "runs": runs, "summary": summarise(runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(saved, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
