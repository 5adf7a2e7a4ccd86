"""A checkpoint is reused or resumed only by the run that made it: same model, training settings, data and seed."""
import re

import pytest
import torch

from vae_utils import SkipVAE, VAEConfig, perf, runtime
from vae_utils.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from vae_utils.data import make_loaders
from vae_utils.identity import describe_data, identity_diff, run_identity
from vae_utils.train import TrainConfig, load_or_train, train

MODEL = VAEConfig(in_channels=1, skips="none")
FAST = dict(epochs=1, progress=False, device="cpu", precision="fp32", batch_size=8)


def _loaders(n=16, seed=0):
    return make_loaders(n_train=n, n_test=8, batch_size=8, seed=seed)


def _identity(cfg=None, n=16, seed=0, model=MODEL):
    return run_identity(model, cfg or TrainConfig(**FAST), describe_data(_loaders(n, seed)[0]))


def test_the_data_description_comes_from_the_loader_and_the_callers_settings():
    loader = _loaders(n=16, seed=3)[0]
    assert describe_data(loader) == {"name": "shapes", "n_train": 16, "image_shape": [1, 64, 64], "seed": 3}
    settings = dict(name="folder:/pics", image_size=64, channels=None, root="data", download=False, n_test=8,
                    batch_size=8, n_train=None, seed=3, jitter=0.1)
    assert describe_data(loader, settings) == {"name": "folder:/pics", "n_train": 16, "image_shape": [1, 64, 64],
                                               "seed": 3, "jitter": 0.1}  # where it lives and how it is cut: not


def test_only_what_shapes_the_weights_is_part_of_the_identity():
    base = _identity()
    same = _identity(TrainConfig(**{**FAST, "epochs": 9, "progress": True, "log_every": 1, "device": "auto"}))
    assert identity_diff(base, same) == []  # how long and how visibly: not identity
    assert identity_diff(base, _identity(TrainConfig(**{**FAST, "lr": 2e-3}))) == ["train.lr: 0.001 -> 0.002"]
    assert identity_diff(base, _identity(TrainConfig(**{**FAST, "kl_warmup": 0.0}))) == \
        ["train.kl_warmup: 0.1 -> 0.0"]
    assert identity_diff(base, _identity(n=8)) == ["data.n_train: 16 -> 8"]
    assert identity_diff(base, _identity(TrainConfig(**{**FAST, "seed": 1}), seed=1)) == \
        ["train.seed: 0 -> 1", "data.seed: 0 -> 1"]
    assert identity_diff(base, _identity(model=VAEConfig(in_channels=1, skips="coarse"))) == \
        ["model.skips: 'none' -> 'coarse'"]


def test_a_checkpoint_without_an_identity_differs():
    assert identity_diff(None, _identity()) == identity_diff({}, _identity()) != []
    assert "none stored" in identity_diff(None, _identity())[0]


def test_the_identity_holds_the_precision_really_used(monkeypatch):
    monkeypatch.setattr(perf, "cpu_native_bf16", lambda: False)
    assert _identity(TrainConfig(**{**FAST, "precision": "auto"}))["train"]["precision"] == "fp32"
    monkeypatch.setattr(perf, "cpu_native_bf16", lambda: True)
    assert _identity(TrainConfig(**{**FAST, "precision": "auto"}))["train"]["precision"] == "bf16"


def test_a_checkpoint_stores_its_identity_and_both_precisions(tmp_path, monkeypatch):
    monkeypatch.setattr(perf, "cpu_native_bf16", lambda: False)
    tr, te = _loaders()
    cfg = TrainConfig(**{**FAST, "precision": "auto"})
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
    tr, te = _loaders()
    train(SkipVAE(MODEL), tr, te, TrainConfig(**FAST), checkpoint=path)
    return path


def test_resume_refuses_other_settings_and_names_each_difference(trained):
    tr, te = _loaders(seed=1)
    with pytest.raises(CheckpointError, match=r"cannot resume .*m\.pt.*train\.seed: 0 -> 1; data\.seed: 0 -> 1.*"
                                              r"resume=False"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**{**FAST, "seed": 1, "epochs": 2}), checkpoint=trained,
              resume=True)
    tr, te = _loaders(n=8)
    with pytest.raises(CheckpointError, match=r"data\.n_train: 16 -> 8"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**{**FAST, "epochs": 2}), checkpoint=trained, resume=True)


def test_resume_continues_the_same_run_for_more_epochs(trained, capsys):
    tr, te = _loaders()
    history = train(SkipVAE(MODEL), tr, te, TrainConfig(**{**FAST, "epochs": 2}), checkpoint=trained, resume=True)
    assert "resuming m.pt after epoch 1 of 2" in capsys.readouterr().out
    assert [e["epoch"] for e in history["epoch"]] == [1, 2]


def test_resume_refuses_a_checkpoint_without_an_identity(tmp_path):
    path = save_checkpoint(tmp_path / "old.pt", SkipVAE(MODEL), torch.optim.AdamW(SkipVAE(MODEL).parameters()), 1)
    tr, te = _loaders()
    with pytest.raises(CheckpointError, match="none stored"):
        train(SkipVAE(MODEL), tr, te, TrainConfig(**FAST), checkpoint=path, resume=True)


def test_load_or_train_reuses_only_the_same_run(trained, capsys):
    tr, te = _loaders()
    load_or_train(trained, MODEL, TrainConfig(**FAST), tr, te)
    assert re.search(r"loaded m\.pt: trained \d+ steps \(1 epochs\)", capsys.readouterr().out)
    before = read_checkpoint(trained)["model"]

    load_or_train(trained, MODEL, TrainConfig(**{**FAST, "lr": 2e-3}), tr, te)
    out = capsys.readouterr().out
    assert "m.pt was trained with other settings (train.lr: 0.001 -> 0.002): training from scratch" in out
    ckpt = read_checkpoint(trained)
    assert ckpt["identity"]["train"]["lr"] == 2e-3 and ckpt["epoch"] == 1
    assert any(not torch.equal(before[k], ckpt["model"][k]) for k in before)  # new weights, not the old model's


def test_load_or_train_trains_on_a_matching_unfinished_run(trained, capsys):
    tr, te = _loaders()
    _, history = load_or_train(trained, MODEL, TrainConfig(**{**FAST, "epochs": 2}), tr, te)
    assert "m.pt holds a shorter run of these settings: training on" in capsys.readouterr().out
    assert [e["epoch"] for e in history["epoch"]] == [1, 2]


def test_load_or_train_keeps_the_old_file_until_the_new_run_has_an_epoch(trained, monkeypatch):
    import vae_utils.train as train_mod

    good = trained.read_bytes()

    def crash(*args, **kwargs):  # the new run dies in its first epoch
        raise RuntimeError("out of memory")
    monkeypatch.setattr(train_mod, "train_step", crash)
    tr, te = _loaders(n=8)
    with pytest.raises(RuntimeError, match="out of memory"):
        load_or_train(trained, MODEL, TrainConfig(**FAST), tr, te)
    assert trained.read_bytes() == good
