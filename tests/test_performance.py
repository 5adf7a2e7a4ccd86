"""The fast paths compute the same thing: channels-last against NCHW, fused AdamW against the per-tensor loop,
bf16 autocast against fp32 (loosely), in-place activations against out-of-place; and the benchmarks' perf helpers
(benchmarks/perf.py) count FLOPs and memory correctly. No timings."""
import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from vae_utils import SkipVAE
from vae_utils.train import TrainConfig, make_optimizer, prepare, to_device, train_step

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf.py"
_spec = importlib.util.spec_from_file_location("benchmarks_perf", PERF)
perf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(perf)

CPU = dict(device="cpu", progress=False, precision="fp32")  # fp32 unless a test asks: the same numerics on every CPU


def _model_and_batch(c=1, b=4):
    torch.manual_seed(0)
    model = SkipVAE(in_channels=c)
    x = torch.rand(b, c, 64, 64)
    return model, x


@pytest.mark.parametrize("c", [1, 3])
def test_channels_last_forward_matches_nchw_for_the_same_weights(c):
    base, x = _model_and_batch(c)
    outs = {}
    for cl in (False, True):
        cfg = TrainConfig(channels_last=cl, **CPU)
        model, device = prepare(copy.deepcopy(base), cfg)
        xd = to_device(x, device, cfg)
        assert xd.is_contiguous(memory_format=torch.channels_last) == (cl or c == 1)
        torch.manual_seed(1)  # the same posterior noise
        outs[cl] = model(xd)
    for a, b in zip(outs[False], outs[True]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    assert outs[True][0].is_contiguous(memory_format=torch.channels_last)  # the fast path really ran NHWC


def test_channels_last_training_step_matches_nchw():
    """Same loss and same gradients in both layouts. (Not the weights after the step: Adam's first step moves each
    weight by about lr * sign(g), so a gradient within rounding of 0 can flip an update by 2 * lr.)"""
    base, x = _model_and_batch(3)
    grads, losses = {}, {}
    for cl in (False, True):
        cfg = TrainConfig(channels_last=cl, **CPU)
        model, device = prepare(copy.deepcopy(base), cfg)
        opt = make_optimizer(model, cfg, device)
        torch.manual_seed(1)
        losses[cl] = train_step(model, opt, to_device(x, device, cfg), cfg, beta=1.0).total.item()
        grads[cl] = [p.grad.detach().contiguous() for p in model.parameters()]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    for a, b in zip(grads[False], grads[True]):  # fp32 rounding through 30 layers: < 1% here; a layout bug: ~100%
        assert ((b - a).norm() / a.norm()).item() < 0.02


def test_fused_adamw_matches_the_reference_loop():
    base, x = _model_and_batch()
    cfg = TrainConfig(**CPU)
    results = []
    for make in (lambda m: make_optimizer(m, cfg, torch.device("cpu")),
                 lambda m: torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                             foreach=False)):
        model = copy.deepcopy(base)
        opt = make(model)
        for seed in (1, 2):
            torch.manual_seed(seed)
            train_step(model, opt, x, cfg, beta=1.0)
        results.append([p.detach().clone() for p in model.parameters()])
    # not element by element: after the first step, rounding moves a gradient near 0 by as much as the gradient
    # itself, and Adam's normalised update of that one weight by up to lr (1e-5 failed on one element under AVX2).
    # A wrong update is wrong everywhere: compare the whole update, whose rounding error is under 1e-4 of it.
    start = [p.detach() for p in base.parameters()]
    for a, b, p0 in zip(*results, start):
        assert (a - b).norm() <= 1e-3 * (a - p0).norm()


def test_bf16_step_runs_in_bf16_and_stays_close_to_fp32():
    base, x = _model_and_batch()
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(**{**CPU, "precision": precision})
        model, device = prepare(copy.deepcopy(base), cfg)
        opt = make_optimizer(model, cfg, device)
        before = [p.detach().clone() for p in model.parameters()]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, _, _ = model(to_device(x, device, cfg))
        assert logits.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        torch.manual_seed(1)
        parts = train_step(model, opt, to_device(x, device, cfg), cfg, beta=1.0)
        assert torch.isfinite(parts.total) and parts.total.dtype == torch.float32  # the loss is summed in fp32
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
        assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
        losses[precision] = parts.total.item()
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)


def test_flop_counter_matches_the_closed_form_for_a_convolution():
    conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    x = torch.rand(2, 16, 8, 8, requires_grad=True)
    macs = 2 * 32 * 8 * 8 * 16 * 3 * 3  # per batch: output elements x (C_in k k) multiply-adds
    assert perf.step_flops(lambda: conv(x), batch_size=2) == pytest.approx(2 * macs / 2)
    # forward + input gradient + weight gradient: three convolutions of the same size
    assert perf.step_flops(lambda: conv(x).sum().backward(), batch_size=2) == pytest.approx(3 * 2 * macs / 2)


def test_train_step_flops_leave_the_model_untouched_and_scale_with_pixels():
    model, x = _model_and_batch()
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(channels_last=False, **CPU)
    f64 = perf.train_step_flops(model, x, cfg)
    f128 = perf.train_step_flops(model, torch.rand(2, 1, 128, 128), cfg)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert f128 == pytest.approx(4 * f64, rel=1e-3)  # fully convolutional: FLOPs per image grow with H x W


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_memory_sees_a_large_allocation_after_a_reset():
    import mmap

    import numpy as np

    assert perf.reset_peak_memory()
    start = perf.peak_memory_mb()
    # a fresh anonymous mapping with one write per page: 200 MB that cannot already be resident. (A 200 MB tensor
    # can be: malloc may hand back heap that earlier tests freed but that stayed resident, and then the peak stays
    # put; that failed once in a full `make test`.)
    block = mmap.mmap(-1, 200 * 2**20)
    pages = np.frombuffer(block, dtype=np.uint8)
    pages[::mmap.PAGESIZE] = 1
    grown = perf.peak_memory_mb() - start
    del pages
    block.close()
    assert 150 < grown < 400


def test_set_threads_validates_and_applies():
    old = torch.get_num_threads()
    try:
        assert perf.set_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="positive integer"):
            perf.set_threads(0)
    finally:
        torch.set_num_threads(old)


def test_in_place_activations_give_the_same_gradients():
    """The in-place LeakyReLU (a speed choice) computes exactly what the out-of-place one does."""
    base, x = _model_and_batch(3)
    reference = perf.set_inplace_activations(copy.deepcopy(base), False)
    assert any(getattr(m, "inplace", False) for m in base.modules())  # the package's default
    assert not any(getattr(m, "inplace", False) for m in reference.modules())
    grads = []
    for model in (base, reference):
        torch.manual_seed(1)
        logits, mu, logvar = model(x)
        (logits.square().mean() + mu.square().mean()).backward()
        grads.append([p.grad for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
