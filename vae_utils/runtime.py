"""Where and how code runs: device, precision (with the bf16 probe), seeding, run paths, smoke switch, saving a figure.

bf16 is used only where it is native: AVX512-BF16 or AMX that oneDNN may use, or CUDA compute capability 8.0 and up
(`torch.cuda.is_bf16_supported()` also counts a T4's emulation, where bf16 convolutions crawl).
"""
import functools
import os
import platform
import random
import warnings
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "VAE_SMOKE_TEST"  # `make test` sets it to 1: every notebook runs on a reduced budget
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def smoke_test() -> bool:
    """True when notebooks should run their reduced CI budget (env VAE_SMOKE_TEST=1)."""
    return os.environ.get(SMOKE_ENV, "0").strip().lower() in ("1", "true", "yes")


def repo_root() -> Path:
    """The folder holding pyproject.toml above the working directory, or the working directory (e.g. Colab)."""
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "vae_utils").is_dir():
            return p
    return here


def run_path(value) -> Path:
    """A checkpoint or output path from a notebook parameter, taken from the repository root. Under the smoke test
    it moves below runs/smoke/ (runs/05_train -> runs/smoke/05_train), so CI never replaces a tutorial checkpoint."""
    p = Path(value)
    if p.is_absolute():
        return p
    if smoke_test():
        p = Path("runs", "smoke", *(p.parts[1:] if p.parts[:1] == ("runs",) else p.parts))
    return repo_root() / p


def save_figure(fig, name: str, folder) -> object:
    """Write `fig` to folder/name.png and return it; with folder None (any run but `make tutorial`), only return it."""
    if folder is not None:
        path = Path(folder) / (name if name.endswith(".png") else name + ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; any other name is passed to torch.device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is visible; use device='auto' or 'cpu'")
    return device


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is no such file)."""
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]  # one block of "key : value" lines per CPU
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def cpu_flags() -> set:
    """The CPU's feature flags (e.g. "avx2", "avx512_bf16", "amx_bf16"); empty where /proc/cpuinfo is missing."""
    return set(_cpuinfo().get("flags", "").split())


def _torch_check(owner, name: str):
    fn = getattr(owner, name, None)  # private checks, absent in some torch releases
    try:
        return bool(fn()) if fn is not None else None
    except RuntimeError:
        return None


@functools.lru_cache(maxsize=None)
def cpu_native_bf16() -> bool:
    """True where bf16 matmuls and convolutions run natively on this CPU: AVX512-BF16 or AMX in the hardware, and
    oneDNN not capped below them (ONEDNN_MAX_CPU_ISA=AVX2 leaves bf16 emulated, far slower than fp32)."""
    hardware = [_torch_check(torch.cpu, "_is_avx512_bf16_supported"), _torch_check(torch.cpu, "_is_amx_tile_supported")]
    if all(h is None for h in hardware):  # an older torch: read the flags
        hardware = [bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})]
    onednn = _torch_check(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported")  # None: cannot say
    return any(hardware) and onednn is not False


def native_bf16(device) -> bool:
    """True where bf16 runs natively on `device`: a CPU per cpu_native_bf16, a CUDA GPU with bf16 tensor cores
    (compute capability 8.0, an A100, or newer; a T4 is 7.5); MPS and the rest: False."""
    device = torch.device(device)
    if device.type == "cuda":
        return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)
    return cpu_native_bf16() if device.type == "cpu" else False


class EmulatedBF16Warning(UserWarning):
    """precision='bf16' where bf16 is emulated: training runs, but slower than in fp32."""


_warned_bf16 = False


def resolve_precision(precision: str, device) -> str:
    """The precision a run really uses: "auto" is "bf16" where native_bf16(device), else "fp32"; any other choice
    is kept. An explicit "bf16" where it is emulated warns once per process."""
    global _warned_bf16
    device = torch.device(device)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA GPU (it relies on a GradScaler); use 'bf16' or 'fp32'")
    if precision == "bf16" and device.type in ("cpu", "cuda") and not native_bf16(device) and not _warned_bf16:
        _warned_bf16 = True
        where = (f"this GPU (compute capability {'.'.join(map(str, torch.cuda.get_device_capability(device)))} < 8.0)"
                 if device.type == "cuda" else "this CPU (no AVX512-BF16 or AMX that oneDNN may use)")
        warnings.warn(f"bf16 is emulated on {where}, so training runs slower than in fp32 "
                      f"(benchmarks/throughput.py measures by how much): use precision='auto' or 'fp32'",
                      EmulatedBF16Warning, stacklevel=2)
    return precision


AUTOCAST_DTYPE = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # by resolved precision; None: no autocast


def needs_grad_scaler(precision: str, device) -> bool:
    """fp16 on CUDA scales the loss so that small gradients survive; bf16 has fp32's range and needs no scaler."""
    return precision == "fp16" and torch.device(device).type == "cuda"


def cpu_summary() -> str:
    """One line on this CPU, for timings that travel: model, cores, vector extensions, native bf16 or not."""
    flags = cpu_flags()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    isa = [name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AMX", "amx_tile")) if flag in flags]
    used = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()  # ATEN_CPU_CAPABILITY caps it
    name = _cpuinfo().get("model name") or platform.processor() or "unknown CPU"
    bf16 = "native bf16" if cpu_native_bf16() else "no native bf16 (emulated)"
    return f"{name}, {cores} CPUs, {'/'.join(isa) or 'no AVX2'}{f' (torch kernels: {used})' if used else ''}, {bf16}"


def describe_machine(device) -> str:
    """What a run trained on: the GPU's name and compute capability, or the CPU (cpu_summary)."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} (CUDA, compute capability {major}.{minor})"
    return "Apple GPU (MPS)" if device.type == "mps" else cpu_summary()
