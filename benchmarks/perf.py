"""Performance helpers of the benchmarks: the matmul rate, FLOPs of a training step, timing, peak memory.

The roofline here is the simplest one: a step cannot run faster than its FLOPs at the rate of a large matrix
multiply in the same precision. `benchmarks/throughput.py` reports every training mode as a fraction of it.
FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matmuls (forward and
backward), not element-wise work.
"""
from __future__ import annotations

import copy
import os
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vae_utils.train import train_step


def set_threads(n: int | None = None) -> int:
    """Use n intra-op threads (default: one per CPU this process may run on); returns the number set.

    On a CPU shared with other busy processes, fewer threads can be faster: every parallel op waits at a barrier
    for its slowest thread, and a thread that the scheduler has parked costs a whole time slice (milliseconds).
    """
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    return n


def timed(fn, repeats: int = 5, warmup: int = 1) -> list:
    """Wall-clock seconds of `repeats` calls of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def matmul_gflops(dtype=torch.float32, n: int = 1024, repeats: int = 5, device="cpu") -> float:
    """The median rate of an n x n by n x n matrix multiply, GFLOP/s (2 n^3 FLOPs each): the roofline's height."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)

    def mm():
        a @ b
        if a.device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / statistics.median(timed(mm, repeats, warmup=2)) / 1e9


def step_flops(step, batch_size: int) -> float:
    """FLOPs per image of one call of step() (forward, backward and all), counted by FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch_size


def train_step_flops(model, x, cfg) -> float:
    """FLOPs per image of one `train.train_step` on batch x, on a copy of the model (its weights are untouched)."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the optimiser does no counted FLOPs
    return step_flops(lambda: train_step(model, opt, x, cfg, beta=1.0), x.shape[0])


def reset_peak_memory() -> bool:
    """Reset this process's peak resident memory (Linux); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (reported in kB) in MB, or None where there is no such file."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM on Linux (resettable), else ru_maxrss."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if os.uname().sysname == "Darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def memory_mb() -> float:
    """Current resident memory of this process in MB (Linux; 0 elsewhere)."""
    rss = _proc_status_mb("VmRSS")
    return 0.0 if rss is None else rss


def set_inplace_activations(model, inplace: bool):
    """Switch every activation of `model` to in-place (the package's default) or out-of-place; returns it."""
    for m in model.modules():
        if isinstance(m, (torch.nn.LeakyReLU, torch.nn.ReLU)):
            m.inplace = inplace
    return model
