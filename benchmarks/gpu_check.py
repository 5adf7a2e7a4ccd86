"""The GPU check, one command for a maintainer with a GPU: training steps in fp32, bf16 and fp16 side by side, then
notebooks 05-07 on a short budget, all in one table.

    python benchmarks/gpu_check.py                           # on the GPU ("auto": CUDA, then MPS, then the CPU)
    python benchmarks/gpu_check.py --batch 256 --minutes 0.5 # params/gpu.yaml's T4 batch, a longer notebook budget
    python benchmarks/gpu_check.py --device cpu              # the same checks on the CPU: its own smoke test

Steps: `train.train_step` on `SkipVAE(config.MODEL)` with one fixed batch of shapes, exactly as `train()` runs it
(channels-last, the fused AdamW, a GradScaler for fp16). The precisions are timed in interleaved rounds (one round
times every precision once), so a change in the machine's load moves them all; the table gives the median round.
Each must end with a finite loss. bf16 is marked "emulated" where `runtime.native_bf16` is False (a T4, compute
capability 7.5, or a CPU without AVX512-BF16/AMX); fp16 needs CUDA and is skipped elsewhere.
Notebooks: papermill runs 05, 06 and 07 (kernel "python3") with `minutes` and `device`, where a notebook has such a
parameter, and their outputs under --out; 05's row shows the precision and machine its metrics.json recorded.
Notebooks without a `device` parameter pick "auto", so `--device cpu` hides the GPU from their kernels.
Exit status 1 if any check failed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: vae_utils and tools/

from vae_utils import config, data, runtime, train  # noqa: E402
from vae_utils.model import SkipVAE  # noqa: E402

NOTEBOOKS = ("05_train.ipynb", "06_latents.ipynb", "07_skip_connections.ipynb")
PRECISIONS = ("fp32", "bf16", "fp16")


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepRun:
    """One precision's model, optimiser and scaler, built as train() builds them, and its timed rounds."""

    def __init__(self, precision: str, device: torch.device, x: torch.Tensor):
        self.precision, self.device, self.seconds, self.losses = precision, device, [], []
        self.cfg = config.train_config(device=str(device), precision=precision, progress=False)
        torch.manual_seed(0)
        self.model, _ = train.prepare(SkipVAE(config.MODEL), self.cfg)
        self.opt = train.make_optimizer(self.model, self.cfg, device)
        used = runtime.resolve_precision(precision, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.needs_grad_scaler(used, device))  # as train() does
        self.x = train.to_device(x, device, self.cfg)

    def round(self, steps: int):
        """`steps` training steps with no host sync between them, then one; their losses are kept on the device."""
        _sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            parts = train.train_step(self.model, self.opt, self.x, self.cfg, beta=1.0, scaler=self.scaler, check=False)
            self.losses.append(parts.total.detach())
        _sync(self.device)
        self.seconds.append((time.perf_counter() - t) / steps)

    def row(self, batch: int) -> dict:
        losses = torch.stack(self.losses).float().cpu()
        finite = bool(torch.isfinite(losses).all())
        step = statistics.median(self.seconds)
        note = ("GradScaler" if self.scaler.is_enabled() else
                ("emulated" if self.precision == "bf16" and not runtime.native_bf16(self.device) else ""))
        return {"check": "train step", "precision": self.precision,
                "result": "ok" if finite else "FAILED: loss not finite",
                "images/s": _num(batch / step), "ms/step": _num(1000 * step), "loss": f"{losses[-1]:.1f}",
                "note": note, "failed": not finite}


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def time_steps(device: torch.device, batch: int, steps: int, rounds: int) -> list:
    x = data.make_dataset(config.DATASET, "train", config.IMAGE_SIZE, config.CHANNELS, size=batch).images
    rows, runs = [], []
    for precision in PRECISIONS:
        if precision == "fp16" and device.type != "cuda":
            rows.append({"check": "train step", "precision": "fp16", "result": "skipped",
                         "note": "fp16 needs CUDA (it trains with a GradScaler)", "failed": False})
            continue
        try:
            run = StepRun(precision, device, x)
            run.round(1)  # warm-up: kernel selection, the optimiser's state
            run.seconds, run.losses = [], []
            runs.append(run)
        except Exception as err:  # noqa: BLE001 - a precision that cannot run is a row of the table
            rows.append(_failed(precision, err))
    for _ in range(rounds):
        for run in list(runs):
            try:
                run.round(steps)
            except Exception as err:  # noqa: BLE001
                runs.remove(run)
                rows.append(_failed(run.precision, err))
    order = {p: i for i, p in enumerate(PRECISIONS)}
    return sorted(rows + [run.row(batch) for run in runs], key=lambda r: order[r["precision"]])


def _failed(precision: str, err: Exception) -> dict:
    message = (str(err).strip().splitlines() or [type(err).__name__])[0][:100]
    return {"check": "train step", "precision": precision, "result": f"FAILED: {message}", "failed": True}


def run_notebooks(paths: list, device: str, minutes: float, out: Path) -> list:
    import papermill as pm  # late: the notebooks extra

    from tools.kernels import execute_notebook

    rows, hidden = [], device == "cpu" and torch.cuda.is_available()
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the kernels' device="auto" then finds no GPU
    try:
        for path in paths:
            path = Path(path)
            wanted = {"minutes": minutes, "device": device, "out_dir": str((out / path.stem).resolve())}
            declared = pm.inspect_notebook(str(path))
            params = {k: v for k, v in wanted.items() if k in declared}
            row = {"check": f"notebook {path.stem}", "precision": "", "note": ""}
            t = time.perf_counter()
            try:
                execute_notebook(path, out / path.name, parameters=params, kernel_name="python3",
                                 cwd=str(path.parent), progress_bar=False)
                row.update(result="ok", failed=False)
            except Exception as err:  # noqa: BLE001 - papermill's error names the cell; the table keeps going
                row.update(result="FAILED: " + str(err).strip().splitlines()[-1][:100], failed=True)
            row["seconds"] = f"{time.perf_counter() - t:.0f}"
            metrics = out / path.stem / "metrics.json"
            if metrics.exists():
                m = json.loads(metrics.read_text())
                row.update(precision=m.get("precision", ""), note=m.get("machine", ""))
                if m.get("neg_elbo") is not None:
                    row["loss"] = f"{m['neg_elbo']:.1f}"
                    if not math.isfinite(m["neg_elbo"]):
                        row.update(result="FAILED: -ELBO not finite", failed=True)
            rows.append(row)
    finally:
        if hidden:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
    return rows


COLUMNS = ("check", "precision", "result", "images/s", "ms/step", "seconds", "loss", "note")


def table(rows: list) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip(), "  ".join("-" * widths[c] for c in COLUMNS)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="auto", help="'auto' (CUDA, then MPS, then CPU), 'cuda', 'cpu', ...")
    p.add_argument("--batch", type=int, default=config.TRAIN.batch_size,
                   help="images per timed step (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="steps per timed round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds; the table shows the median (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=0.2, help="notebook training budget (default: %(default)s)")
    p.add_argument("--skip-notebooks", action="store_true", help="time the steps only")
    p.add_argument("--notebooks", nargs="+", default=[str(ROOT / "notebooks" / n) for n in NOTEBOOKS],
                   help="notebooks to run (default: 05, 06 and 07)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check", help="executed notebooks and their runs")
    args = p.parse_args(argv)

    device = runtime.get_device(args.device)
    print(f"gpu_check on {device.type}: {runtime.describe_machine(device)}; torch {torch.__version__}; "
          f"batch {args.batch}, {args.rounds} rounds of {args.steps} steps per precision", flush=True)
    rows = time_steps(device, args.batch, args.steps, args.rounds)
    if args.skip_notebooks:
        rows.append({"check": "notebooks", "result": "skipped", "note": "--skip-notebooks", "failed": False})
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        rows += run_notebooks(args.notebooks, str(device), args.minutes, args.out)
    print(table(rows))
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
