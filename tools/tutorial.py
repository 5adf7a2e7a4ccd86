"""`python -m tools.tutorial`: execute every numbered notebook in order with papermill, with timings.

Executed copies go to runs/tutorial/ (git ignores runs/). Every notebook that draws figures has a papermill
parameter `figures_dir`; this runner sets it to figures/, and no other run writes there. Each notebook is registered
by its name: notebooks/NN_topic.ipynb runs in NN order. The times end with what makes them comparable across
machines: the CPU (runtime.cpu_summary) and notebook 05's training rate.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import torch

from vae_utils.runtime import cpu_summary, repo_root, run_path

from .kernels import execute_notebook
from .nbclean import clean


def notebooks(root: Path) -> list:
    """The tutorial's notebooks, in order: notebooks/NN_*.ipynb."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def training_rate() -> str | None:
    """Notebook 05's training rate from the metrics.json of its tutorial run, or None where there is none."""
    path = run_path("runs/05_train") / "metrics.json"
    try:
        m = json.loads(path.read_text())
        return (f"{m['images_seen'] / m['seconds']:.0f} images/s in {m['precision']} ({m['images_seen']:,} images "
                f"in {m['seconds']:.0f} s of training, validation not counted; {path.parent.name}/metrics.json)")
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only notebooks whose name contains one of these")
    parser.add_argument("--out", default="runs/tutorial", help="folder for the executed copies")
    parser.add_argument("--in-place", action="store_true",
                        help="overwrite the notebooks themselves, then strip volatile metadata (`make notebooks`)")
    args = parser.parse_args(argv)
    root = repo_root()
    out = root / args.out
    out.mkdir(parents=True, exist_ok=True)
    todo = [p for p in notebooks(root) if not args.names or any(n in p.name for n in args.names)]
    total, times = time.perf_counter(), []
    for nb in todo:
        t0 = time.perf_counter()
        print(f"running {nb.relative_to(root)} ...", flush=True)
        target = nb if args.in_place else out / nb.name
        params = {"figures_dir": str(root / "figures")} if "figures_dir" in pm.inspect_notebook(str(nb)) else {}
        execute_notebook(nb, target, parameters=params, cwd=str(nb.parent), kernel_name="python3",
                         progress_bar=False, log_output=False)
        if args.in_place:  # the committed notebook keeps no injected figures_dir: only this runner writes figures/
            done = nbformat.read(str(target), as_version=4)
            done.cells = [c for c in done.cells if "injected-parameters" not in c.metadata.get("tags", [])]
            nbformat.write(clean(done), str(target))
        times.append((nb.name, time.perf_counter() - t0))
        print(f"  {nb.name}: {times[-1][1]:.0f} s", flush=True)
    print("\nnotebook times:")
    for name, s in times:
        print(f"  {name:<32} {s:7.1f} s")
    print(f"  {'total':<32} {time.perf_counter() - total:7.1f} s")
    print(f"machine: {cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    rate = training_rate() if any(nb.name.startswith("05") for nb in todo) else None
    if rate:
        print(f"training (notebook 05): {rate}")
    where = "notebooks" if args.in_place else (out.relative_to(root) if out.is_relative_to(root) else out)
    print(f"executed copies in {where}/, figures in figures/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
