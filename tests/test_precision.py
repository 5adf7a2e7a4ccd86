"""precision="auto" picks bf16 only where it is native (a CPU with AVX512-BF16 or AMX that oneDNN may use, a CUDA GPU
of compute capability 8.0 or newer); an explicit bf16 where it is emulated warns once, and still
runs; fp16 on CUDA needs a GradScaler. Every branch runs on every machine: the detection is monkeypatched."""
import re
import warnings

import pytest
import torch

from vae_utils import SkipVAE, runtime
from vae_utils.runtime import (AUTOCAST_DTYPE, EmulatedBF16Warning, describe_machine, native_bf16, needs_grad_scaler,
                               resolve_precision)
from vae_utils.train import TrainConfig, autocast, train_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def bf16_native(monkeypatch):
    """set(True/False): make this CPU look like one with or without native bf16; the warning may fire again."""
    monkeypatch.setattr(runtime, "_warned_bf16", False)
    return lambda native: monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: native)


@pytest.fixture
def gpu(monkeypatch):
    """set(capability, name): make torch.cuda describe a GPU; the warning may fire again."""
    monkeypatch.setattr(runtime, "_warned_bf16", False)

    def fake(capability, name="Tesla T4"):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: name)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # counts emulation: not asked
    return fake


def test_auto_is_the_default_and_picks_fp32_without_native_bf16(bf16_native):
    bf16_native(False)
    assert TrainConfig().precision == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns: it never picks the slow path
        assert resolve_precision("auto", CPU) == "fp32"
        with autocast(TrainConfig(), CPU):
            assert SkipVAE(in_channels=1)(torch.rand(1, 1, 64, 64))[0].dtype == torch.float32


def test_auto_picks_bf16_with_native_bf16(bf16_native):
    bf16_native(True)
    assert resolve_precision("auto", CPU) == "bf16"
    with autocast(TrainConfig(), CPU):
        assert SkipVAE(in_channels=1)(torch.rand(1, 1, 64, 64))[0].dtype == torch.bfloat16


@pytest.mark.parametrize("capability,native", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((8, 6), True),
                                               ((9, 0), True), ((12, 0), True)])
def test_cuda_bf16_is_native_from_compute_capability_8(gpu, capability, native):
    gpu(capability)
    assert native_bf16(CUDA) is native


def test_auto_on_a_t4_picks_fp32_and_on_an_a100_bf16(gpu):
    gpu((7, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", CUDA) == "fp32"  # is_bf16_supported() says True here: emulated
    gpu((8, 0), "NVIDIA A100")
    assert resolve_precision("auto", CUDA) == "bf16"


def test_explicit_bf16_on_an_old_gpu_warns_with_its_capability(gpu):
    gpu((7, 5))
    with pytest.warns(EmulatedBF16Warning, match=r"compute capability 7\.5 < 8\.0.*precision='auto' or 'fp32'"):
        assert resolve_precision("bf16", CUDA) == "bf16"


def test_explicit_choices_are_kept(bf16_native, gpu):
    bf16_native(True)
    assert [resolve_precision(p, CPU) for p in ("fp32", "bf16")] == ["fp32", "bf16"]
    gpu((8, 0))
    assert [resolve_precision(p, CUDA) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]


def test_fp16_needs_cuda_and_unknown_precisions_name_the_choices():
    with pytest.raises(ValueError, match=r"fp16.*needs a CUDA GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'fp32', 'bf16', 'fp16'\], got 'fp8'"):
        TrainConfig(precision="fp8")  # where a precision enters


def test_only_fp16_on_cuda_needs_a_grad_scaler():
    assert needs_grad_scaler("fp16", CUDA) and needs_grad_scaler("fp16", "cuda:1")
    assert not any(needs_grad_scaler(p, CUDA) for p in ("fp32", "bf16"))
    assert not any(needs_grad_scaler(p, d) for p in ("fp32", "bf16", "fp16") for d in ("cpu", "mps"))


def test_autocast_dtype_of_each_precision():
    assert [AUTOCAST_DTYPE[p] for p in ("fp32", "bf16", "fp16")] == [None, torch.bfloat16, torch.float16]
    with pytest.raises(KeyError):
        AUTOCAST_DTYPE["auto"]  # resolved first: "auto" is not a dtype


def test_explicit_bf16_without_native_support_warns_once_and_runs(bf16_native):
    bf16_native(False)
    with pytest.warns(EmulatedBF16Warning) as caught:
        for _ in range(3):
            assert resolve_precision("bf16", CPU) == "bf16"
        model = SkipVAE(in_channels=1)
        cfg = TrainConfig(precision="bf16", device="cpu", progress=False)
        parts = train_step(model, torch.optim.AdamW(model.parameters()), torch.rand(2, 1, 64, 64), cfg, beta=1.0)
    assert torch.isfinite(parts.total)  # still runs, in bf16
    assert len(caught) == 1  # once per process, however many steps ask
    message = str(caught[0].message)
    assert "emulated on this CPU" in message and "precision='auto' or 'fp32'" in message  # the cause and the fix


def test_native_bf16_needs_the_hardware_and_onednn(monkeypatch):
    detect = runtime.cpu_native_bf16.__wrapped__  # uncached
    mkldnn = torch.ops.mkldnn
    for avx512_bf16, amx, onednn, expected in ((True, False, True, True), (False, True, True, True),
                                               (True, False, False, False),  # ONEDNN_MAX_CPU_ISA=AVX2
                                               (False, False, True, False)):  # AVX-512 without BF16: emulated
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(mkldnn, "_is_mkldnn_bf16_supported", lambda v=onednn: v, raising=False)
        assert detect() is expected, (avx512_bf16, amx, onednn)


def test_native_bf16_falls_back_to_the_cpu_flags_in_an_older_torch(monkeypatch):
    detect = runtime.cpu_native_bf16.__wrapped__
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(torch, "ops", object())  # no torch.ops.mkldnn to ask (deleting one op would reload it)
    for flags, expected in (({"avx2", "avx512f", "avx512_bf16"}, True), ({"avx2", "amx_bf16"}, True),
                            ({"avx2", "avx512f"}, False)):
        monkeypatch.setattr(runtime, "cpu_flags", lambda f=flags: f)
        assert detect() is expected, flags


def test_cpu_summary_names_the_model_cores_vector_units_and_bf16(monkeypatch):
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {"model name": "Some CPU 9000", "flags": "fpu avx2 avx512f"})
    monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: False)
    text = runtime.cpu_summary()
    assert re.match(r"Some CPU 9000, \d+ CPUs, AVX2/AVX-512( \(torch kernels: \w+\))?, no native bf16", text), text
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {"model name": "Other", "flags": "avx2 amx_tile"})
    monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: True)
    assert "AVX2/AMX" in runtime.cpu_summary() and runtime.cpu_summary().endswith(", native bf16")


def test_cpu_summary_of_this_machine_agrees_with_the_detection():
    assert runtime.cpu_summary().endswith(", native bf16") == runtime.cpu_native_bf16()


def test_describe_machine_names_the_gpu_or_the_cpu(gpu, monkeypatch):
    gpu((7, 5), "Tesla T4")
    text = describe_machine(CUDA)
    assert "Tesla T4" in text and "7.5" in text
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {"model name": "Some CPU 9000", "flags": "avx2"})
    assert describe_machine("cpu") == runtime.cpu_summary() and describe_machine("cpu").startswith("Some CPU 9000")
    assert "Tesla" not in describe_machine("cpu")
