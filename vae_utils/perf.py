"""Performance helpers: the machine's matmul rate, FLOPs of a training step, a timing harness, peak memory.

The roofline here is the simplest one: a step cannot run faster than its FLOPs at the rate of a large matrix
multiply in the same precision. `benchmarks/throughput.py` reports every training mode as a fraction of it.
FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matmuls (forward and
backward), not element-wise work.
"""
from __future__ import annotations

import copy
import functools
import os
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


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
    from .train import train_step  # late import: train imports the model, perf should not need it at import

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


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is no such file); read once per process."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough: the others repeat it
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, or the platform's processor string."""
    import platform

    return _cpuinfo().get("model name") or platform.processor() or "unknown CPU"


def cpu_flags() -> set:
    """The CPU's feature flags from /proc/cpuinfo (e.g. "avx2", "avx512f", "avx512_bf16", "amx_bf16"); empty elsewhere."""
    return set(_cpuinfo().get("flags", "").split())


def _torch_check(owner, name: str):
    """torch's own check `owner.name()` (private and absent in older releases), or None where it is missing."""
    fn = getattr(owner, name, None)
    try:
        return bool(fn()) if fn is not None else None
    except RuntimeError:
        return None


@functools.lru_cache(maxsize=None)
def cpu_native_bf16() -> bool:
    """True where bf16 matmuls and convolutions run natively on this CPU: AVX512-BF16 or AMX in the hardware,
    and oneDNN not capped below them (ONEDNN_MAX_CPU_ISA=AVX2 turns them off, leaving bf16 emulated, about 50x
    slower than fp32 in a matmul)."""
    hardware = [_torch_check(torch.cpu, "_is_avx512_bf16_supported"), _torch_check(torch.cpu, "_is_amx_tile_supported")]
    if all(h is None for h in hardware):  # an older torch: read the flags
        hardware = [bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})]
    if not any(hardware):
        return False
    ops = getattr(torch.ops, "mkldnn", None)
    onednn = _torch_check(ops, "_is_mkldnn_bf16_supported") if ops is not None else None
    return onednn is not False  # None: no way to ask oneDNN, so trust the hardware


def cpu_summary() -> str:
    """One line on this CPU for timings that travel: model, cores, vector extensions, native bf16 or not."""
    flags = cpu_flags()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    isa = [name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AMX", "amx_tile")) if flag in flags]
    used = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()  # ATEN_CPU_CAPABILITY caps it
    bf16 = "native bf16" if cpu_native_bf16() else "no native bf16 (emulated)"
    return (f"{cpu_name()}, {cores} CPUs, {'/'.join(isa) or 'no AVX2'}"
            f"{f' (torch kernels: {used})' if used else ''}, {bf16}")
