"""`python -m vae_utils.tutorial`: execute every numbered notebook in order with papermill, with timings.

Executed copies go to runs/tutorial/ (git ignores runs/); the notebooks write their figures to figures/.
Each notebook is registered simply by its name: notebooks/NN_topic.ipynb runs in NN order.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

from .kernels import execute_notebook
from .nbclean import clean
from .runtime import repo_root


def notebooks(root: Path) -> list:
    """The tutorial's notebooks, in order: notebooks/NN_*.ipynb."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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
        execute_notebook(nb, target, cwd=str(nb.parent), kernel_name="python3", progress_bar=False, log_output=False)
        if args.in_place:
            nbformat.write(clean(nbformat.read(str(target), as_version=4)), str(target))
        times.append((nb.name, time.perf_counter() - t0))
        print(f"  {nb.name}: {times[-1][1]:.0f} s", flush=True)
    print("\nnotebook times:")
    for name, s in times:
        print(f"  {name:<32} {s:7.1f} s")
    print(f"  {'total':<32} {time.perf_counter() - total:7.1f} s")
    print(f"executed copies in {'notebooks/' if args.in_place else str(out.relative_to(root)) + '/'}, figures in figures/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
