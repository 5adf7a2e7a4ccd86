"""`make pretrained`: train the pretrained model with notebook 05 and params/pretrained.yaml, then ship it.

    python -m tools.pretrained            # train (about 45 minutes on a 2-core CPU), then export
    python -m tools.pretrained --export   # export an existing run in runs/pretrained/ only

The export (vae_utils.pretrained.export_pretrained) measures the judge's figures and writes the fp16 weights, the
figures and the training log into vae_utils/pretrained/, which git tracks and Colab installs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params" / "pretrained.yaml"


def main(argv=None) -> int:
    from tools.kernels import execute_notebook
    from vae_utils.pretrained import export_pretrained

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
