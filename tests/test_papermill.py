"""Notebooks 05 and 07 driven by papermill, as a researcher would: tiny parameters give every artefact; bad ones
stop it."""
import json
import re

import papermill as pm
import pytest
import torch

from tools.kernels import execute_notebook
from vae_utils import config
from vae_utils.checkpoint import load_checkpoint, read_checkpoint
from vae_utils.config import study_run, train_run

ROOT = pytest.importorskip("pathlib").Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks" / "05_train.ipynb"


@pytest.fixture(autouse=True)
def crash_reports(monkeypatch):
    """A kernel that crashes in C code prints its stack to the captured stderr instead of dying silently."""
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")


@pytest.mark.slow
def test_05_with_tiny_parameters_writes_its_artefacts(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_SMOKE_TEST", raising=False)  # the parameters alone make it small
    out = tmp_path / "run"
    execute_notebook(str(NB), str(tmp_path / "out.ipynb"), cwd=str(NB.parent), kernel_name="python3",
                        progress_bar=False,
                        parameters=dict(n_train=64, n_test=32, epochs=1, batch_size=32, out_dir=str(out)))
    model, ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["train_config"]["batch_size"] == 32
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["neg_elbo"] == pytest.approx(metrics["distortion"] + metrics["rate"], rel=1e-4)
    assert metrics["images_seen"] == 64 and metrics["seconds"] > 0  # 2 steps of 32: the training rate's parts
    assert {"recon_accuracy", "psnr", "inception_score", "frechet", "probe", "r_x", "minutes", "machine"} <= metrics.keys()
    assert metrics["precision"] == ckpt["identity"]["train"]["precision"] in ("fp32", "bf16")
    weights, exported = load_checkpoint(out / "weights.pt")  # the weights-only export beside the checkpoint
    assert exported["summary"]["images_seen"] == 64 and exported["identity"] == ckpt["identity"]
    assert (out / "weights.pt").stat().st_size < (out / "checkpoint.pt").stat().st_size / 5
    history = json.loads((out / "checkpoint.history.json").read_text())
    assert len(history["epoch"]) == 1 and history["step"][0]["step"] == 1
    assert model(torch.rand(1, 1, 64, 64))[0].shape == (1, 1, 64, 64)

    # the same run asked for one more epoch with resume=True continues the checkpoint instead of starting over
    execute_notebook(str(NB), str(tmp_path / "resumed.ipynb"), cwd=str(NB.parent), kernel_name="python3",
                        progress_bar=False, parameters=dict(n_train=64, n_test=32, epochs=2, batch_size=32,
                                                            out_dir=str(out), resume=True))
    assert "resuming checkpoint.pt after epoch 1 of 2" in (tmp_path / "resumed.ipynb").read_text()
    resumed = json.loads((out / "checkpoint.history.json").read_text())
    assert [e["epoch"] for e in resumed["epoch"]] == [1, 2]
    assert resumed["epoch"][0] == history["epoch"][0]  # epoch 1 kept, not retrained
    assert resumed["epoch"][1]["step"] == 4  # 2 steps per epoch, counted on from the checkpoint

    # resuming under another seed is another run: it stops, naming what differs, and leaves the checkpoint alone
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(pm.PapermillExecutionError, match=r"CheckpointError.*cannot resume.*train\.seed: 0 -> 1"):
        execute_notebook(str(NB), str(tmp_path / "reseeded.ipynb"), cwd=str(NB.parent), kernel_name="python3",
                            progress_bar=False, parameters=dict(n_train=64, n_test=32, epochs=3, batch_size=32,
                                                                out_dir=str(out), resume=True, seed=1))
    assert (out / "checkpoint.pt").read_bytes() == before


def test_a_bad_parameter_stops_05_with_its_message(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="epochs must be a positive integer, got 'abc'"):
        execute_notebook(str(NB), str(tmp_path / "out.ipynb"), cwd=str(NB.parent), kernel_name="python3",
                            progress_bar=False, parameters=dict(epochs="abc"))


@pytest.mark.parametrize("params,match", [
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (dict(image_size=100), "not a multiple of 64"),
    (dict(channels=2), r"channels must be one of \[1, 3, 'native'\], got 2"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(skips="diagonal"), "skips must be one of"),
    (dict(device="tpu"), "device must be"),
    (dict(download="yes"), r"download must be one of \[True, False\]"),
    (dict(resume="yes"), r"resume must be one of \[True, False\]"),
    (dict(n_train=0), "n_train must be a positive integer or 'all'"),
    (dict(minutes=2, epochs=1), "give minutes .* or epochs .*, not both"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(sped=1), r"unknown parameter\(s\) \['sped'\]"),
    (dict(lr="fast"), "lr must be a positive number"),
])
def test_every_parameter_is_validated_up_front(params, match):
    with pytest.raises(ValueError, match=match):
        train_run(**params)


@pytest.mark.slow
def test_07_rerun_under_another_seed_retrains_instead_of_reusing(tmp_path, monkeypatch):
    """Re-running 07 into the same out_dir reloads its models only when nothing that shaped them has changed."""
    monkeypatch.setenv("VAE_SMOKE_TEST", "1")  # the smoke budget, and figures under runs/: never the committed ones
    nb07, out = ROOT / "notebooks" / "07_skip_connections.ipynb", tmp_path / "skips"
    figures = {p: p.read_bytes() for p in (ROOT / "figures").glob("skips_*.png")}

    def run(name, **params):
        execute_notebook(str(nb07), str(tmp_path / name), cwd=str(nb07.parent), kernel_name="python3",
                            progress_bar=False, parameters=dict(out_dir=str(out), **params))
        text = (tmp_path / name).read_text()
        kept = ("identity", "history")  # not the weights: six 46 MB checkpoints need not stay in memory
        return text, {p.name: {k: read_checkpoint(p)[k] for k in kept} for p in sorted(out.glob("*.pt"))}

    first, ckpts = run("first.ipynb", seed=0)
    assert len(ckpts) == 6 and all(c["identity"]["train"]["seed"] == 0 for c in ckpts.values())
    again, _ = run("again.ipynb", seed=0)
    assert len(re.findall(r"loaded [\w-]+\.pt: trained \d+ steps \(1 epochs\)", again)) == 6  # the same run: reused
    assert "other settings" not in again
    second, ckpts2 = run("second.ipynb", seed=1)
    assert second.count("was trained with other settings (train.seed: 0 -> 1; data.seed: 0 -> 1): "
                        "training from scratch") == 6
    assert not re.search(r"loaded [\w-]+\.pt: trained", second)
    assert all(c["identity"]["data"]["seed"] == 1 for c in ckpts2.values())
    for name in ckpts:  # new models, not the old ones reported again
        assert ckpts2[name]["history"]["epoch"][-1] != ckpts[name]["history"]["epoch"][-1]
    assert figures == {p: p.read_bytes() for p in (ROOT / "figures").glob("skips_*.png")}


@pytest.mark.parametrize("params,match", [
    (dict(minutes=-1), "minutes must be"),
    (dict(n_test=0), "n_test must be a positive integer"),
    (dict(n_samples="many"), "n_samples must be an integer >= 0"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(out_dir=""), "out_dir must be a folder path"),
])
def test_every_07_parameter_is_validated_up_front(params, match):
    with pytest.raises(ValueError, match=match):
        study_run("07", **params)


def test_the_07_run_takes_the_tutorial_defaults_and_shrinks_for_the_smoke_test(monkeypatch):
    monkeypatch.delenv("VAE_SMOKE_TEST", raising=False)
    run, budget = study_run("07", out_dir="runs/07_skips"), config.BUDGETS["07"]
    assert (run.train.minutes, run.data["n_test"], run.n_samples) == (budget["minutes"], budget["n_test"],
                                                                      budget["n_samples"])
    assert run.data["n_train"] == config.N_TRAIN and run.figures_dir is None  # only make tutorial passes one
    monkeypatch.setenv("VAE_SMOKE_TEST", "1")
    smoke = study_run("07", out_dir="runs/07_skips")
    assert (smoke.train.epochs, smoke.train.minutes) == (1, None)
    assert (smoke.data["n_train"], smoke.data["n_test"], smoke.n_samples) == (128, 64, 64)
    assert "smoke" in smoke.out_dir.parts  # never the tutorial's checkpoints
