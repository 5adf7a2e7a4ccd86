"""Strip volatile metadata from notebooks, keeping outputs and execution counts.

Removed: papermill run metadata, per-cell execution timings, widget state blobs.
Kept: outputs (so notebooks render on GitHub) and execution counts (nbval fails a cell with outputs but no count).
`python -m tools.nbclean notebooks/*.ipynb` cleans in place; `--check` only reports.
"""
from __future__ import annotations

import argparse
import sys

import nbformat

VOLATILE_NB_KEYS = ("papermill", "widgets", "jupytext")
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")


def volatile(nb) -> list:
    """Where a notebook carries volatile metadata or stored errors, as readable strings."""
    found = [f"metadata.{k}" for k in VOLATILE_NB_KEYS if k in nb.metadata]
    for i, cell in enumerate(nb.cells):
        found += [f"cell {i} metadata.{k}" for k in VOLATILE_CELL_KEYS if k in cell.metadata]
        found += [f"cell {i} error output" for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    return found


def clean(nb):
    """Remove volatile metadata in place and return the notebook."""
    for k in VOLATILE_NB_KEYS:
        nb.metadata.pop(k, None)
    for cell in nb.cells:
        for k in VOLATILE_CELL_KEYS:
            cell.metadata.pop(k, None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="strip volatile notebook metadata")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--check", action="store_true", help="report, change nothing, exit 1 if anything is found")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.paths:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            for item in volatile(nb):
                print(f"{path}: {item}")
                bad = 1
        else:
            nbformat.write(clean(nb), path)
    return bad


if __name__ == "__main__":
    sys.exit(main())
