"""precision="auto" picks bf16 only where it is native; an explicit bf16 on a CPU that emulates it warns once, with
measured rates, and still runs. Both branches run on every CPU: the detection is monkeypatched."""
import re
import warnings

import pytest
import torch

from vae_utils import SkipVAE, perf, runtime
from vae_utils.runtime import EmulatedBF16Warning, resolve_precision
from vae_utils.train import TrainConfig, autocast, train_step

CPU = torch.device("cpu")


@pytest.fixture
def bf16_native(monkeypatch):
    """set(True/False): make this CPU look like one with or without native bf16; the warning may fire again."""
    monkeypatch.setattr(runtime, "_warned_bf16", False)
    return lambda native: monkeypatch.setattr(perf, "cpu_native_bf16", lambda: native)


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


def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
        assert resolve_precision("auto", torch.device("cuda")) == expected


def test_explicit_choices_are_kept(bf16_native):
    bf16_native(True)
    assert [resolve_precision(p, CPU) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]


def test_explicit_bf16_without_native_support_warns_once_with_measured_rates_and_runs(bf16_native, monkeypatch):
    bf16_native(False)
    rates = {torch.bfloat16: 1.04, torch.float32: 212.3}
    monkeypatch.setattr(perf, "matmul_gflops", lambda dtype, **kw: rates[dtype])
    with pytest.warns(EmulatedBF16Warning) as caught:
        for _ in range(3):
            assert resolve_precision("bf16", CPU) == "bf16"
        model = SkipVAE(in_channels=1)
        cfg = TrainConfig(precision="bf16", device="cpu", progress=False)
        parts = train_step(model, torch.optim.AdamW(model.parameters()), torch.rand(2, 1, 64, 64), cfg, beta=1.0)
    assert torch.isfinite(parts.total)  # still runs, in bf16
    assert len(caught) == 1  # once per process, however many steps ask
    assert str(caught[0].message) == (
        "bf16 matmul runs at 1.0 GFLOP/s against 212 for fp32 on this CPU (no AVX512-BF16/AMX that oneDNN may use): "
        "expect training to be slower; use precision='auto' or 'fp32'")


def test_the_warning_measures_real_rates(bf16_native):
    bf16_native(False)
    with pytest.warns(EmulatedBF16Warning, match=r"bf16 matmul runs at [\d.]+ GFLOP/s against \d+ for fp32"):
        resolve_precision("bf16", CPU)


def test_native_bf16_needs_the_hardware_and_onednn(monkeypatch):
    detect = perf.cpu_native_bf16.__wrapped__  # uncached
    mkldnn = torch.ops.mkldnn
    for avx512_bf16, amx, onednn, expected in ((True, False, True, True), (False, True, True, True),
                                               (True, False, False, False),  # ONEDNN_MAX_CPU_ISA=AVX2
                                               (False, False, True, False)):  # AVX-512 without BF16: emulated
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(mkldnn, "_is_mkldnn_bf16_supported", lambda v=onednn: v, raising=False)
        assert detect() is expected, (avx512_bf16, amx, onednn)


def test_native_bf16_falls_back_to_the_cpu_flags_in_an_older_torch(monkeypatch):
    detect = perf.cpu_native_bf16.__wrapped__
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(torch, "ops", object())  # no torch.ops.mkldnn to ask (deleting one op would reload it)
    for flags, expected in (({"avx2", "avx512f", "avx512_bf16"}, True), ({"avx2", "amx_bf16"}, True),
                            ({"avx2", "avx512f"}, False)):
        monkeypatch.setattr(perf, "cpu_flags", lambda f=flags: f)
        assert detect() is expected, flags


def test_cpu_summary_names_the_model_cores_vector_units_and_bf16(monkeypatch):
    monkeypatch.setattr(perf, "_cpuinfo", lambda: {"model name": "Some CPU 9000", "flags": "fpu avx2 avx512f"})
    monkeypatch.setattr(perf, "cpu_native_bf16", lambda: False)
    text = perf.cpu_summary()
    assert re.match(r"Some CPU 9000, \d+ CPUs, AVX2/AVX-512( \(torch kernels: \w+\))?, no native bf16", text), text
    monkeypatch.setattr(perf, "_cpuinfo", lambda: {"model name": "Other", "flags": "avx2 amx_tile"})
    monkeypatch.setattr(perf, "cpu_native_bf16", lambda: True)
    assert "AVX2/AMX" in perf.cpu_summary() and perf.cpu_summary().endswith(", native bf16")


def test_cpu_summary_of_this_machine_agrees_with_the_detection():
    text = perf.cpu_summary()
    assert text.startswith(perf.cpu_name())
    assert text.endswith(", native bf16") == perf.cpu_native_bf16()
