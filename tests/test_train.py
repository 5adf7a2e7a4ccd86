"""The training loop: it learns, it is deterministic, it resumes exactly, it stops on NaN; and a checkpoint is reused
or resumed only by the run that made it (same model, training settings, data and seed)."""
import json
import re

import pytest
import torch

from vae_utils import SkipVAE, VAEConfig, runtime
from vae_utils import train as train_mod
from vae_utils.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from vae_utils.data import make_loaders
from vae_utils.train import (TrainConfig, TrainingDiverged, evaluate, identity_diff, load_or_train, run_identity,
                             train, train_step)

FAST = dict(progress=False, log_every=1, device="cpu", precision="fp32")  # fp32: the same numerics on every CPU


def _loaders(n=48, batch=16, seed=0):
    return make_loaders(batch_size=batch, n_train=n, n_test=16, seed=seed)


def _model(**kw):
    torch.manual_seed(0)  # the initial weights come from the global RNG
    return SkipVAE(in_channels=1, **kw)


def _strip(history):
    """The history as JSON would store it, without the wall-clock seconds of each epoch, which differ between runs."""
    history = json.loads(json.dumps(history))
    for row in history["epoch"]:
        assert row.pop("seconds") >= 0
    return history


def test_overfitting_one_batch_drives_the_reconstruction_down():
    torch.manual_seed(0)
    x = make_loaders(n_train=16, n_test=16, batch_size=16)[0].dataset.images
    model = SkipVAE(in_channels=1, skips="none")
    cfg = TrainConfig(lr=2e-3, kl_warmup=0, beta=0.0, **FAST)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    first = train_step(model, opt, x, cfg, beta=0.0).distortion.item()
    for _ in range(40):
        last = train_step(model, opt, x, cfg, beta=0.0).distortion.item()
    assert last < 0.6 * first


@pytest.mark.slow
def test_same_seed_same_metrics():
    runs = []
    for _ in range(2):
        tr, te = _loaders()
        runs.append(train(_model(skip_dropout=0.5), tr, te, TrainConfig(epochs=2, **FAST)))
    assert _strip(runs[0]) == _strip(runs[1])


class Killed(Exception):
    """The process dying mid-run, as a killed kernel does: no handler runs, the last checkpoint stays."""


class DiesAfter:
    """A training loader that dies when asked for batch `n` + 1 (counted over all epochs)."""

    def __init__(self, loader, n):
        self.loader, self.n, self.seen = loader, n, 0

    def __iter__(self):
        for batch in self.loader:
            if self.seen == self.n:
                raise Killed
            self.seen += 1
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # dataset, batch_size, generator: the wrapped loader's
        return getattr(self.loader, name)


@pytest.mark.slow
def test_resume_equals_one_run(tmp_path):
    cfg = TrainConfig(epochs=2, **FAST)
    tr, te = _loaders()
    whole = _model()
    h_whole = train(whole, tr, te, cfg)

    tr, te = _loaders()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Killed):  # the same run, killed in its second epoch: the checkpoint of epoch 1 remains
        train(_model(), DiesAfter(tr, len(tr) + 1), te, cfg, checkpoint=ckpt)
    tr, te = _loaders()  # a fresh process would rebuild its loaders too
    resumed = SkipVAE(in_channels=1)  # weights come from the checkpoint
    h_resumed = train(resumed, tr, te, cfg, checkpoint=ckpt, resume=True)
    assert [r["step"] for r in h_resumed["step"]] == list(range(1, 7))
    assert _strip(h_resumed) == _strip(h_whole)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert _strip(json.loads(ckpt.with_suffix(".history.json").read_text())) == _strip(h_resumed)


def test_injected_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    tr, te = _loaders(n=32)
    ckpt = tmp_path / "run.pt"
    train(_model(), tr, te, TrainConfig(epochs=1, **FAST), checkpoint=ckpt)
    good = ckpt.read_bytes()
    tr.dataset.images[5] = float("nan")  # one poisoned image: its batch's loss becomes NaN
    with pytest.raises(TrainingDiverged, match=r"loss became nan.*last good checkpoint \(epoch 1\)"):
        train(_model(), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt, resume=True)
    assert ckpt.read_bytes() == good
    with pytest.raises(TrainingDiverged, match=r"run.pt was not overwritten"):  # a fresh run over an old file
        train(_model(), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt)
    assert ckpt.read_bytes() == good


def test_evaluate_reports_rate_and_distortion_and_leaves_the_rng_alone():
    tr, te = _loaders()
    cfg = TrainConfig(**FAST)
    model = SkipVAE(in_channels=1)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = evaluate(model, te, cfg)
    assert torch.equal(torch.get_rng_state(), before)
    assert set(a) == {"neg_elbo", "distortion", "rate", "rate_per_channel"}
    assert len(a["rate_per_channel"]) == 256 and sum(a["rate_per_channel"]) == pytest.approx(a["rate"], rel=1e-4)
    assert abs(a["neg_elbo"] - (a["distortion"] + a["rate"])) < 1e-3 * a["neg_elbo"]
    assert evaluate(model, te, cfg) == a  # its own seed: the same noise every time


def test_bf16_and_channels_last_paths_run():
    x = torch.rand(4, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    model = SkipVAE(in_channels=1).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters())
    parts = train_step(model, opt, x, TrainConfig(**{**FAST, "precision": "bf16"}), beta=1.0)
    assert torch.isfinite(parts.total)


def test_channels_last_agrees_with_the_default_layout():
    torch.manual_seed(0)
    model, x = SkipVAE(in_channels=3).eval(), torch.rand(2, 3, 128, 64)
    with torch.no_grad():
        mu_ref = model.encode(x)[0]
        ref = model.decode(mu_ref, model.encode(x)[2])
        cl = model.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        mu_cl, _, skips = cl.encode(xc)
        out = cl.decode(mu_cl, skips)
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(mu_cl, mu_ref, atol=1e-5)


@pytest.mark.parametrize("field,value,match", [
    ("epochs", "abc", r"epochs must be a positive integer, got 'abc'"),
    ("epochs", 0, r"epochs must be a positive integer, got 0"),
    ("lr", -1.0, r"lr must be a positive number"),
    ("beta", float("nan"), r"beta must be a number >= 0"),
    ("precision", "fp8", r"precision must be one of \['auto', 'fp32', 'bf16', 'fp16'\]"),
    ("likelihood", "laplace", r"likelihood must be one of"),
])
def test_bad_train_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_fp16_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is valid here")
    tr, te = _loaders(n=16)
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        train(SkipVAE(in_channels=1), tr, te, TrainConfig(**{**FAST, "precision": "fp16"}))


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    class Interrupting:
        """A loader whose third batch of the second epoch is a Ctrl-C."""

        def __init__(self, loader):
            self.loader, self.epoch = loader, 0
            self.generator, self.dataset = loader.generator, loader.dataset

        def __len__(self):
            return len(self.loader)

        def __iter__(self):
            self.epoch += 1
            for i, batch in enumerate(self.loader):
                if self.epoch == 2 and i == 2:
                    raise KeyboardInterrupt
                yield batch

    tr, te = _loaders()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_model(), Interrupting(tr), te, TrainConfig(epochs=3, **FAST), checkpoint=ckpt)
    assert read_checkpoint(ckpt)["epoch"] == 1  # epoch 2 was interrupted: it restarts on resume
    history = train(SkipVAE(in_channels=1), tr, te, TrainConfig(epochs=3, **FAST), checkpoint=ckpt, resume=True)
    assert [e["epoch"] for e in history["epoch"]] == [1, 2, 3]


def test_the_history_names_distortion_and_rate(tmp_path):
    tr, te = _loaders(n=32)
    history = train(_model(), tr, te, TrainConfig(epochs=1, batch_size=16, **FAST), checkpoint=tmp_path / "run.pt")
    assert set(history["step"][0]) == {"step", "epoch", "loss", "distortion", "rate", "beta", "lr"}
    row = history["epoch"][-1]
    assert {"val_neg_elbo", "val_distortion", "val_rate", "val_rate_per_channel"} <= set(row)
    assert row["images"] == row["step"] * 16 and row["step"] == 2
    assert json.loads((tmp_path / "run.history.json").read_text()) == json.loads(json.dumps(history))


class FakeScaler:
    """A GradScaler stand-in on the CPU (the real one needs CUDA): scales by `scale`, records what it is given."""

    made = []

    def __init__(self, *args, **kwargs):
        self.scale_value, self.updates, self.loaded = 8.0, 0, None
        FakeScaler.made.append(self)

    def scale(self, loss):
        return loss * self.scale_value

    def unscale_(self, optimizer):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(self.scale_value)

    def step(self, optimizer):
        optimizer.step()

    def update(self):
        self.updates += 1

    def is_enabled(self):
        return True

    def state_dict(self):
        return {"scale": self.scale_value, "updates": self.updates}

    def load_state_dict(self, state):
        self.loaded = dict(state)
        self.scale_value, self.updates = state["scale"], state["updates"]


def test_a_resumed_run_restores_the_grad_scaler(tmp_path, monkeypatch):
    """fp16 on CUDA scales the loss; its scaler's state is saved, and a resume continues from it."""
    monkeypatch.setattr(train_mod, "needs_grad_scaler", lambda precision, device: True)
    monkeypatch.setattr(torch.amp, "GradScaler", FakeScaler)
    FakeScaler.made.clear()
    tr, te = _loaders(n=32)
    ckpt = tmp_path / "run.pt"
    train(_model(), tr, te, TrainConfig(epochs=1, **FAST), checkpoint=ckpt)
    assert read_checkpoint(ckpt)["scaler"] == {"scale": 8.0, "updates": 2}  # two steps of 16
    train(SkipVAE(in_channels=1), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt, resume=True)
    assert FakeScaler.made[-1].loaded == {"scale": 8.0, "updates": 2}
    assert read_checkpoint(ckpt)["scaler"]["updates"] == 4  # went on counting from the restored state


def test_without_a_scaler_none_is_stored_and_none_restored(tmp_path):
    tr, te = _loaders(n=32)
    ckpt = tmp_path / "run.pt"
    train(_model(), tr, te, TrainConfig(epochs=1, **FAST), checkpoint=ckpt)
    assert read_checkpoint(ckpt)["scaler"] is None
    history = train(SkipVAE(in_channels=1), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt, resume=True)
    assert [e["epoch"] for e in history["epoch"]] == [1, 2]


def test_train_prepares_the_callers_model_in_place():
    """The model the caller holds is the one trained: on the config's device, in its memory format."""
    tr, te = _loaders(n=16)
    model = _model()
    before = model.encoder.stages[1].conv1[0].weight.detach().clone()
    assert not before.is_contiguous(memory_format=torch.channels_last)
    train(model, tr, te, TrainConfig(epochs=1, channels_last=True, **FAST))
    weight = model.encoder.stages[1].conv1[0].weight
    assert model.device == runtime.get_device("cpu") and weight.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(weight, before)


# --- what shaped a checkpoint's weights: the run identity -----------------------------------------------------

MODEL = VAEConfig(in_channels=1, skips="none")
QUICK = dict(epochs=1, progress=False, device="cpu", precision="fp32", batch_size=8)


def _small_loaders(n=16, seed=0):
    return make_loaders(n_train=n, n_test=8, batch_size=8, seed=seed)


def _identity(cfg=None, n=16, seed=0, model=MODEL, data=None):
    return run_identity(model, cfg or TrainConfig(**QUICK), _small_loaders(n, seed)[0], data)


def test_the_data_identity_comes_from_the_loader_and_the_callers_settings():
    assert _identity(seed=3)["data"] == {"name": "shapes", "n_train": 16, "image_shape": [1, 64, 64], "seed": 3}
    settings = dict(name="folder:/pics", image_size=64, channels=None, root="data", download=False, n_test=8,
                    batch_size=8, n_train=None, seed=3, jitter=0.1)
    assert _identity(seed=3, data=settings)["data"] == {"name": "folder:/pics", "n_train": 16,
                                                        "image_shape": [1, 64, 64], "seed": 3, "jitter": 0.1}


def test_only_what_shapes_the_weights_is_part_of_the_identity():
    base = _identity()
    same = _identity(TrainConfig(**{**QUICK, "epochs": 9, "progress": True, "log_every": 1, "device": "auto"}))
    assert identity_diff(base, same) == []  # how long and how visibly: not identity
    assert identity_diff(base, _identity(TrainConfig(**{**QUICK, "minutes": 2.0}))) == []
    assert identity_diff(base, _identity(TrainConfig(**{**QUICK, "lr": 2e-3}))) == ["train.lr: 0.001 -> 0.002"]
    assert identity_diff(base, _identity(TrainConfig(**{**QUICK, "kl_warmup": 0.0}))) == \
        ["train.kl_warmup: 0.1 -> 0.0"]
    assert identity_diff(base, _identity(n=8)) == ["data.n_train: 16 -> 8"]
    assert identity_diff(base, _identity(TrainConfig(**{**QUICK, "seed": 1}), seed=1)) == \
        ["train.seed: 0 -> 1", "data.seed: 0 -> 1"]
    assert identity_diff(base, _identity(model=VAEConfig(in_channels=1, skips="coarse"))) == \
        ["model.skips: 'none' -> 'coarse'"]


def test_a_checkpoint_without_an_identity_differs():
    assert identity_diff(None, _identity()) == identity_diff({}, _identity()) != []
    assert "none stored" in identity_diff(None, _identity())[0]


def test_the_identity_holds_the_precision_really_used(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: False)
    assert _identity(TrainConfig(**{**QUICK, "precision": "auto"}))["train"]["precision"] == "fp32"
    monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: True)
    assert _identity(TrainConfig(**{**QUICK, "precision": "auto"}))["train"]["precision"] == "bf16"


def test_a_checkpoint_stores_its_identity_and_both_precisions(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_native_bf16", lambda: False)
    tr, te = _small_loaders()
    cfg = TrainConfig(**{**QUICK, "precision": "auto"})
    train(SkipVAE(MODEL), tr, te, cfg, checkpoint=tmp_path / "m.pt", data=dict(root="data", jitter=0.1))
    ckpt = read_checkpoint(tmp_path / "m.pt")
    assert ckpt["train_config"]["precision"] == "auto"  # as asked
    assert ckpt["identity"]["train"]["precision"] == "fp32"  # as resolved on this CPU
    assert ckpt["identity"]["data"] == {"name": "shapes", "n_train": 16, "image_shape": [1, 64, 64], "seed": 0,
                                        "jitter": 0.1}
    assert ckpt["identity"]["model"] == MODEL.to_dict()


@pytest.fixture
def trained(tmp_path):
    """A 1-epoch checkpoint of MODEL on 16 images, seed 0."""
    path = tmp_path / "m.pt"
    tr, te = _small_loaders()
    train(SkipVAE(MODEL), tr, te, TrainConfig(**QUICK), checkpoint=path)
    return path


def test_resume_refuses_other_settings_and_names_each_difference(trained):
    tr, te = _small_loaders(seed=1)
    with pytest.raises(CheckpointError, match=r"cannot resume .*m\.pt.*train\.seed: 0 -> 1; data\.seed: 0 -> 1.*"
                                              r"resume=False"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**{**QUICK, "seed": 1, "epochs": 2}), checkpoint=trained,
              resume=True)
    tr, te = _small_loaders(n=8)
    with pytest.raises(CheckpointError, match=r"data\.n_train: 16 -> 8"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**{**QUICK, "epochs": 2}), checkpoint=trained, resume=True)


def test_resume_continues_the_same_run_for_more_epochs(trained, capsys):
    tr, te = _small_loaders()
    history = train(SkipVAE(MODEL), tr, te, TrainConfig(**{**QUICK, "epochs": 2}), checkpoint=trained, resume=True)
    assert "resuming m.pt after epoch 1 of 2" in capsys.readouterr().out
    assert [e["epoch"] for e in history["epoch"]] == [1, 2]


def test_resume_refuses_a_checkpoint_without_an_identity(tmp_path):
    model = SkipVAE(MODEL)
    path = save_checkpoint(tmp_path / "old.pt", model, optimizer=torch.optim.AdamW(model.parameters()).state_dict(),
                           epoch=1)
    tr, te = _small_loaders()
    with pytest.raises(CheckpointError, match="none stored"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**QUICK), checkpoint=path, resume=True)


def test_load_or_train_reuses_only_the_same_run(trained, capsys):
    tr, te = _small_loaders()
    model, history = load_or_train(trained, MODEL, TrainConfig(**QUICK), tr, te)
    assert re.search(r"loaded m\.pt: trained \d+ steps \(1 epochs\)", capsys.readouterr().out)
    assert model.device.type == "cpu" and history["epoch"][-1]["epoch"] == 1  # on the config's device
    before = read_checkpoint(trained)["model"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the stored weights

    load_or_train(trained, MODEL, TrainConfig(**{**QUICK, "lr": 2e-3}), tr, te)
    out = capsys.readouterr().out
    assert "m.pt was trained with other settings (train.lr: 0.001 -> 0.002): training from scratch" in out
    ckpt = read_checkpoint(trained)
    assert ckpt["identity"]["train"]["lr"] == 2e-3 and ckpt["epoch"] == 1
    assert any(not torch.equal(before[k], ckpt["model"][k]) for k in before)  # new weights, not the old model's


def test_load_or_train_trains_on_a_matching_unfinished_run(trained, capsys):
    tr, te = _small_loaders()
    model, history = load_or_train(trained, MODEL, TrainConfig(**{**QUICK, "epochs": 2}), tr, te)
    assert "m.pt holds a shorter run of these settings: training on" in capsys.readouterr().out
    assert [e["epoch"] for e in history["epoch"]] == [1, 2] and model.device.type == "cpu"


def test_load_or_train_keeps_the_old_file_until_the_new_run_has_an_epoch(trained, monkeypatch):
    good = trained.read_bytes()

    def crash(*args, **kwargs):  # the new run dies in its first epoch
        raise RuntimeError("out of memory")
    monkeypatch.setattr(train_mod, "train_step", crash)
    tr, te = _small_loaders(n=8)
    with pytest.raises(RuntimeError, match="out of memory"):
        load_or_train(trained, MODEL, TrainConfig(**QUICK), tr, te)
    assert trained.read_bytes() == good
