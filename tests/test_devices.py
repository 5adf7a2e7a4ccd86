"""Device placement without a GPU: a pretend GPU that fails where CUDA would, and the CUDA decisions made on a CPU.

A CPU-only machine has no second device to catch a batch left on the CPU, and the meta device accepts CPU inputs.
`PretendGPU` is a TorchFunctionMode that enforces CUDA's placement rule at every torch call instead. Tensors
"on the GPU" carry a tag (they really stay on the CPU) and report `device == cuda`, so `x.to(model.device)` works.
It raises `DeviceMismatch` where real CUDA raises:
- an op mixes a tagged tensor with an untagged tensor of one or more dimensions (untagged 0-dim tensors and Python
  numbers may mix, as CPU scalars may on CUDA); cross-device copies (`copy_`, `x[i] = y`) are allowed, as on CUDA;
- a tensor is drawn on the GPU with a CPU `torch.Generator`;
- a tagged tensor goes to NumPy (`.numpy()`, `np.asarray`, matplotlib).
Ops on tagged inputs give tagged outputs; `.to(<cuda>)`, `.to(device=<cuda>)`, `.to(<tagged tensor>)`, `.cuda()` and
factories with `device=<cuda>` tag; `.cpu()` and `.to("cpu")` untag (a copy, as on CUDA).
What it cannot see: code that picks a device without asking a tensor (`torch.Generator(device=...)`, `torch.load`'s
map_location), and CUDA's runtime calls, which the `pretend_gpu` fixture answers as a T4 would.
"""
import math
import warnings

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map_only

from vae_utils import SkipVAE, losses, metrics, report, runtime, sampling, train, viz, widgets
from vae_utils.checkpoint import read_checkpoint
from vae_utils.data import make_loaders

GPU = torch.device("cuda")
TAG = "_on_pretend_gpu"
FAST = dict(progress=False, log_every=1, device="cpu", precision="fp32")


class DeviceMismatch(RuntimeError):
    """What CUDA raises: tensors on two devices in one op, a CPU generator for a GPU draw, a GPU tensor to NumPy."""


def on_gpu(t) -> bool:
    return getattr(t, TAG, False)


def _mark(t):
    setattr(t, TAG, True)
    return t


def _is_gpu(device) -> bool:
    if isinstance(device, int) and not isinstance(device, bool):
        return True  # .to(0): cuda:0
    return isinstance(device, (str, torch.device)) and torch.device(device).type == GPU.type


def _is_device(a) -> bool:
    return isinstance(a, (str, torch.device)) or (isinstance(a, int) and not isinstance(a, bool))


def _where(t) -> str:
    return f"{'cuda' if on_gpu(t) else 'cpu'} {tuple(t.shape)}"


def _moved(out, src, gpu: bool):
    """`out` placed on the GPU (gpu=True) or the CPU; a copy whenever the placement changes, as a real move is."""
    if out is src and on_gpu(src) != gpu:
        out = src.clone()  # the mode is off inside __torch_function__: a plain, untagged copy
    return _mark(out) if gpu else out


class PretendGPU(TorchFunctionMode):
    """Tagged tensors live on a pretend CUDA device; an op that mixes them with CPU tensors raises DeviceMismatch."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        owner = getattr(func, "__self__", None)  # a property's getter or setter: its descriptor
        if owner is torch.Tensor.device:
            return GPU if on_gpu(args[0]) else func(*args)
        if owner is torch.Tensor.is_cuda:
            return on_gpu(args[0])
        if owner is torch.Tensor.is_cpu:
            return not on_gpu(args[0])
        if owner is torch.Tensor.data and getattr(func, "__name__", "") == "__set__":  # Module.to: param.data = moved
            func(*args)
            if on_gpu(args[1]):
                _mark(args[0])
            elif on_gpu(args[0]):
                delattr(args[0], TAG)
            return None
        if func is torch.Tensor.get_device:
            return 0 if on_gpu(args[0]) else -1
        if func is torch.Tensor.cpu:
            return _moved(func(*args, **kwargs), args[0], False)
        if func is torch.Tensor.cuda:
            return _moved(args[0], args[0], True)
        if func is torch.Tensor.to:
            return self._to(func, args, kwargs)
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and on_gpu(args[0]):
            raise DeviceMismatch(f"can't convert a cuda tensor {tuple(args[0].shape)} to numpy; use Tensor.cpu() first")
        if func in (torch.Tensor.copy_, torch.Tensor.__setitem__, torch._has_compatible_shallow_copy_type):
            return func(*args, **kwargs)  # copies between devices are allowed
        if func is torch.Tensor.__getitem__:  # CPU index tensors may index a GPU tensor, not the other way round
            index = [t for t in tree_flatten(args[1:])[0] if isinstance(t, torch.Tensor)]
            if not on_gpu(args[0]) and any(on_gpu(t) for t in index):
                raise DeviceMismatch(f"indexing a cpu tensor with a cuda index tensor in {args[0].shape}[...]")
            out = func(*args, **kwargs)
            return _mark(out) if on_gpu(args[0]) and isinstance(out, torch.Tensor) else out
        made = kwargs.get("device") is not None and _is_gpu(kwargs["device"])
        if made:
            kwargs["device"] = "cpu"
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        gpu = made or any(on_gpu(t) for t in tensors)
        if gpu:
            cpu = [t for t in tensors if not on_gpu(t) and t.dim() > 0]
            if cpu:
                name = getattr(func, "__qualname__", getattr(func, "__name__", str(func)))
                raise DeviceMismatch(f"{name}: expected all tensors on one device, found cuda and cpu: "
                                     f"{', '.join(_where(t) for t in tensors)}")
            g = kwargs.get("generator")
            if isinstance(g, torch.Generator) and g.device.type == "cpu":
                raise DeviceMismatch(f"{getattr(func, '__name__', func)}: a CPU torch.Generator cannot draw on cuda")
        out = func(*args, **kwargs)
        if gpu:
            tree_map_only(torch.Tensor, _mark, out)
        return out

    @staticmethod
    def _to(func, args, kwargs):
        t, rest, target = args[0], list(args[1:]), None  # target None: a dtype or memory format only, placement kept
        for i, a in enumerate(rest):
            if isinstance(a, torch.Tensor):
                target = on_gpu(a)  # x.to(other): other's device (and dtype); other really is on the CPU
            elif _is_device(a):
                target, rest[i] = _is_gpu(a), "cpu"
        if kwargs.get("device") is not None:
            target, kwargs["device"] = _is_gpu(kwargs["device"]), "cpu"
        out = func(t, *rest, **kwargs)
        return _moved(out, t, on_gpu(t) if target is None else target)


def to_pretend_gpu(model):
    """The model's parameters and buffers tagged as living on the pretend GPU, in place; returns the model."""
    for t in (*model.parameters(), *model.buffers()):
        _mark(t)
    return model


@pytest.fixture
def pretend_gpu(monkeypatch):
    """The PretendGPU mode class, with CUDA's runtime queries answered as on a T4 (compute capability 7.5)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    state = torch.get_rng_state()
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": state.clone())  # evaluate's fork_rng
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new_state, device="cuda": None)
    return PretendGPU


@pytest.fixture(scope="module")
def loaders():
    return make_loaders(batch_size=4, n_train=12, n_test=8, seed=0)


def _model(**kw):
    torch.manual_seed(0)
    return SkipVAE(in_channels=1, **kw).eval()


# --- the pretend GPU itself --------------------------------------------------------------------------------

def test_the_pretend_gpu_raises_where_cuda_would_and_only_there(pretend_gpu):
    model = to_pretend_gpu(_model())
    x = torch.rand(2, 1, 64, 64)
    with pretend_gpu():
        assert model.device == GPU and next(model.parameters()).is_cuda
        with pytest.raises(DeviceMismatch, match="conv2d.*cuda.*cpu"):
            model(x)
        with torch.no_grad():
            logits, mu, _ = model(x.to(model.device))  # the rule, as a reader writes it
        assert on_gpu(logits) and on_gpu(mu) and not on_gpu(x)  # .to() copied: x itself stays on the CPU
        assert on_gpu(mu * 2.0 + torch.tensor(1.0))  # a Python number and a CPU scalar tensor may mix
        with pytest.raises(DeviceMismatch):
            torch.cat([mu, torch.zeros_like(mu.cpu())])
        with pytest.raises(DeviceMismatch, match="numpy"):
            np.asarray(mu)
        assert not on_gpu(mu.cpu()) and np.asarray(mu.cpu()).shape == tuple(mu.shape)
        with pytest.raises(DeviceMismatch, match="Generator"):
            torch.randn(3, generator=torch.Generator(), device=model.device)
        assert on_gpu(torch.randn(3, device=model.device)) and on_gpu(torch.zeros(2).to(mu))
        assert not on_gpu(mu.to("cpu")) and not on_gpu(mu.to(torch.zeros(2)))
        assert on_gpu(mu.to(torch.float16)) and on_gpu(mu[0]) and on_gpu(mu[torch.tensor([0])])


def test_a_module_moves_onto_the_pretend_gpu_with_to(pretend_gpu):
    model = _model()
    with pretend_gpu():
        model.to(GPU)
        assert all(on_gpu(p) for p in model.parameters()) and model.device == GPU
        model.to("cpu")
        assert not any(on_gpu(p) for p in model.parameters()) and model.device.type == "cpu"


# --- notebook 07's cells, before and after ----------------------------------------------------------------

def old_07_z_swap(models, x, seed):
    """Notebook 07's z-swap cell as it was: x and the prior draw stay on the CPU."""
    g = torch.Generator().manual_seed(seed)
    rows, swapped = {"input": x}, {"input": x}
    for name, m in models.items():
        with torch.no_grad():
            mu, _, skips = m.encode(x)
            rows[name] = m.decode(mu, skips)
            swapped[name] = m.decode(torch.randn(mu.shape, generator=g), skips)
    return rows, swapped


def old_07_z_reliance(m, x, seed):
    """Notebook 07's hand-written z reliance as it was."""
    with torch.no_grad():
        mu, _, skips = m.encode(x)
        z = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
        normal, without_z = ((m.decode(code, skips) - x).pow(2).mean().item() for code in (mu, z))
    return max(0.0, 1 - normal / without_z)


def fixed_07_z_swap(models, x, seed):
    """The z-swap cell with the device rule: inputs to m.device, results back with .cpu()."""
    return _swap(models, x, seed, move_z=True)


def _swap(models, x, seed, move_z):
    """move_z=False: only the images moved, the prior draw still on the CPU."""
    g = torch.Generator().manual_seed(seed)
    rows, swapped = {"input": x}, {"input": x}
    for name, m in models.items():
        with torch.no_grad():
            mu, _, skips = m.encode(x.to(m.device))
            z = torch.randn(mu.shape, generator=g)  # drawn on the CPU: the same draw on every device
            rows[name] = m.decode(mu, skips).cpu()
            swapped[name] = m.decode(z.to(m.device) if move_z else z, skips).cpu()
    return rows, swapped


def fixed_07_z_reliance(m, x, seed):
    """Notebook 07's hand-written z reliance with the device rule."""
    x = x.to(m.device)
    with torch.no_grad():
        mu, _, skips = m.encode(x)
        z = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(m.device)
        normal, without_z = ((m.decode(code, skips) - x).pow(2).mean().item() for code in (mu, z))
    return max(0.0, 1 - normal / without_z)


def test_the_old_notebook_07_cells_fail_on_a_gpu_and_the_fixed_ones_pass(pretend_gpu):
    models = {"all skips": to_pretend_gpu(_model(skips="all")), "no skips": to_pretend_gpu(_model(skips="none"))}
    x = torch.rand(4, 1, 64, 64)
    with pretend_gpu():
        with pytest.raises(DeviceMismatch, match="conv2d") as old:
            old_07_z_swap(models, x, seed=0)
        with pytest.raises(DeviceMismatch, match="conv_transpose2d") as half:  # moving x alone is not enough
            _swap(models, x, seed=0, move_z=False)
        with pytest.raises(DeviceMismatch):
            old_07_z_reliance(models["all skips"], x, seed=0)
        rows, swapped = fixed_07_z_swap(models, x, seed=0)
        assert not any(on_gpu(t) for t in (*rows.values(), *swapped.values()))
        fig = viz.labelled_rows(swapped, "z swapped")
        ours = fixed_07_z_reliance(models["all skips"], x, seed=0)
        theirs = metrics.latent_reliance(models["all skips"], [(x, None)], seed=0)["z_reliance"]
    assert fig is not None and math.isclose(ours, theirs, rel_tol=1e-4, abs_tol=1e-6)
    print(f"notebook 07's old z-swap cell on a GPU: {old.value}\nwith x moved but not the prior draw: {half.value}")


# --- every package function that feeds a model ------------------------------------------------------------

def test_evaluation_functions_move_inputs_to_the_model_and_return_cpu_results(pretend_gpu, loaders):
    train_loader, test_loader = loaders
    images = test_loader.dataset.images
    model = to_pretend_gpu(_model(skips="none"))  # skips="none" can sample, so evaluate_all's prior-sample branch runs
    cfg = train.TrainConfig(progress=False)  # precision "auto": fp32 on a T4
    judge = metrics.load_judge()
    with pretend_gpu():
        val = train.evaluate(model, test_loader, cfg)
        rel = metrics.latent_reliance(model, test_loader)
        means = sampling.encode_means(model, images)
        bound = losses.importance_weighted_bound(model, images[:2], k=3)
        gmm = sampling.LatentGMM(n_components=1).fit(means + torch.randn(means.shape))  # spread: channels vary
        samples = sampling.gmm_samples(model, gmm, 4)
        prior = model.sample(2, torch.Generator().manual_seed(0))
        everything = metrics.evaluate_all(model, test_loader, judge, cfg, n_samples=8, train_set=train_loader.dataset)
    assert math.isfinite(val["neg_elbo"]) and len(val["rate_per_channel"]) == 256
    assert 0 <= rel["z_reliance"] <= 1 and everything["frechet"] is not None
    assert not any(on_gpu(t) for t in (means, bound, samples)) and on_gpu(prior)  # sample: the model's own device
    assert bound.shape == (2,) and torch.isfinite(bound).all() and everything["probe"] is not None


def test_figures_widgets_and_the_shape_report_feed_the_model_on_its_device(pretend_gpu, loaders):
    images = loaders[1].dataset.images
    model = to_pretend_gpu(_model(skips="all"))
    with pretend_gpu():
        figures = [viz.reconstructions(model, images[:3]), viz.interpolation(model, images[0], images[1], steps=3),
                   viz.traversal(model, images[0], channels=[0, 1], steps=3)]
        rows = report.shape_report(model)
        explorer = widgets.LatentExplorer(model, images[:2], channels=[0, 1])
        explorer.sliders[0].value = 1.5  # redraws through decoded()
        decoded = explorer.decoded()
    assert all(f is not None for f in figures) and not rows.unexpected
    assert not on_gpu(decoded) and decoded.shape == (1, 64, 64)


# --- resume after the model moved, and the CUDA decisions on a CPU ------------------------------------------

def test_a_checkpoint_resumes_onto_a_model_on_another_device(tmp_path, pretend_gpu, loaders):
    train_loader, test_loader = loaders
    path = tmp_path / "run.pt"
    model = _model(skips="none")
    train.train(model, train_loader, test_loader, train.TrainConfig(epochs=1, **FAST), checkpoint=path)
    ckpt = read_checkpoint(path)
    rng = ckpt["rng"]["torch"]
    assert rng.device.type == "cpu" and rng.dtype == torch.uint8
    torch.set_rng_state(rng)  # what resuming does; a state read onto another device raises a TypeError here
    first = torch.rand(3)
    torch.set_rng_state(rng)
    assert torch.equal(first, torch.rand(3))
    with pytest.raises(TypeError, match="ByteTensor"):  # the old reading: map_location=<the model's device>
        torch.set_rng_state(torch.load(path, map_location="meta", weights_only=True)["rng"]["torch"])

    fresh = to_pretend_gpu(_model(skips="none"))  # a model on the GPU takes the CPU-read optimiser state
    with pretend_gpu():
        opt = train.make_optimizer(fresh, train.TrainConfig(**FAST), fresh.device)
        opt.load_state_dict(ckpt["optimizer"])
        fresh.load_state_dict(ckpt["model"])
    moments = [s[k] for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq")]
    assert len(moments) == 2 * len(list(fresh.parameters())) and all(on_gpu(m) for m in moments)

    # the caller's model was moved in place by train(); resuming it, or a fresh one, continues the same run
    one_epoch, longer, results = path.read_bytes(), train.TrainConfig(epochs=2, **FAST), []
    for resumed in (model, _model(skips="none")):
        path.write_bytes(one_epoch)
        history = train.train(resumed, train_loader, test_loader, longer, checkpoint=path, resume=True)
        assert [r["epoch"] for r in history["epoch"]] == [1, 2]
        results.append(history["epoch"][-1]["val_neg_elbo"])
    assert results[0] == results[1]


def test_the_grad_scaler_state_is_saved_and_restored(tmp_path, monkeypatch, loaders):
    """fp16's GradScaler, wired as on CUDA but run on the CPU: a resumed run continues its scale and growth count."""
    made, real = [], torch.amp.GradScaler

    def scaler(device="cuda", init_scale=2.0**16, **kw):  # the CPU's GradScaler; the first run starts at 2**10
        made.append(real("cpu", init_scale=2.0**10 if not made else init_scale, **kw))
        return made[-1]

    monkeypatch.setattr(train, "needs_grad_scaler", lambda precision, device: True)
    monkeypatch.setattr(torch.amp, "GradScaler", scaler)
    train_loader, test_loader = loaders
    path = tmp_path / "fp16.pt"
    train.train(_model(skips="none"), train_loader, test_loader, train.TrainConfig(epochs=1, **FAST), checkpoint=path)
    saved = read_checkpoint(path)["scaler"]
    steps = len(train_loader)
    assert saved["scale"] == 2.0**10 and saved["_growth_tracker"] == steps
    train.train(_model(skips="none"), train_loader, test_loader, train.TrainConfig(epochs=2, **FAST), checkpoint=path,
                resume=True)
    assert made[1].get_scale() == 2.0**10 and made[1]._get_growth_tracker() == 2 * steps  # not 2**16 and 0 again


@pytest.mark.parametrize("capability, auto", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_on_a_gpu_follows_its_compute_capability(monkeypatch, capability, auto):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # counts emulation: must not decide
    assert runtime.resolve_precision("auto", GPU) == auto
    assert runtime.native_bf16(GPU) == (auto == "bf16")
    assert runtime.resolve_precision("fp16", GPU) == "fp16" and runtime.needs_grad_scaler("fp16", GPU)
    assert not runtime.needs_grad_scaler("bf16", GPU) and runtime.AUTOCAST_DTYPE["fp16"] == torch.float16


def test_explicit_bf16_on_a_t4_warns_and_fp16_needs_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(runtime, "_warned_bf16", False)
    with pytest.warns(runtime.EmulatedBF16Warning, match="compute capability 7.5 < 8.0"):
        assert runtime.resolve_precision("bf16", GPU) == "bf16"
    with pytest.raises(ValueError, match="CUDA"):
        runtime.resolve_precision("fp16", torch.device("cpu"))
    assert not runtime.needs_grad_scaler("fp16", torch.device("cpu"))


def test_a_gpu_run_names_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert runtime.describe_machine(GPU) == "Tesla T4 (CUDA, compute capability 7.5)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime.describe_machine("cpu") == runtime.cpu_summary()
