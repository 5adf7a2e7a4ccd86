"""vae_utils.config: the tutorial's defaults and the notebooks' papermill runs. A parameter left at None takes the
tutorial default, an override changes only its own field, `epochs` alone trains by epochs, a bad value is refused
before any work with a message that names the parameter, the smoke test shrinks every run, and a finished run's
results are written and read back."""
import json
from dataclasses import replace

import pytest
import torch

from vae_utils import config, runtime
from vae_utils.checkpoint import load_checkpoint
from vae_utils.config import (BUDGETS, MODEL, SMOKE, TRAIN, loader_kwargs, load_run, model_config,
                              notebook_defaults, skip_study_config, study_run, study_run_from, train_config,
                              train_run, train_run_from)
from vae_utils.data import make_loaders
from vae_utils.model import SkipVAE
from vae_utils.train import train


@pytest.fixture(autouse=True)
def no_smoke(monkeypatch):
    monkeypatch.delenv(runtime.SMOKE_ENV, raising=False)


def test_notebook_05_without_parameters_is_the_tutorial_config():
    run = train_run()
    assert run.model == MODEL and run.train == TRAIN and run.resume is False and run.figures_dir is None
    data = dict(run.data)
    assert (data.pop("root"), data.pop("download")) == ("data", False)  # where the data lives, not which data
    assert data == {**loader_kwargs(), "image_size": (64, 64)}
    assert run.out_dir == runtime.run_path("runs/05_train")


def test_none_takes_the_default():
    nones = {name: None for name in notebook_defaults("05")}
    assert train_run(**nones) == train_run()
    assert train_run_from(nones) == train_run()


def test_an_override_changes_only_its_own_field():
    base = train_run()
    run = train_run(skip_source="z", lr=2e-3, n_train=64)
    assert run.model == replace(base.model, skip_source="z")
    assert run.train == replace(base.train, lr=2e-3)
    assert run.data == {**base.data, "n_train": 64}
    assert train_run(seed=3).data["seed"] == 3 and train_run(seed=3).train.seed == 3  # one seed for both
    assert model_config(norm="group") == replace(MODEL, norm="group") and model_config() is not MODEL


def test_epochs_alone_trains_by_epochs():
    run = train_run(epochs=5)
    assert run.train.epochs == 5 and run.train.minutes is None
    assert train_run(minutes=0.5).train.minutes == 0.5
    assert train_config(epochs=1).minutes is None and train_config(epochs=1).epochs == 1
    assert train_config(epochs=1, minutes=0.5).minutes == 0.5  # both given to the config: as given
    assert train_config(lr=2e-3).minutes == TRAIN.minutes  # neither: the tutorial's time budget
    with pytest.raises(ValueError, match=r"give minutes .* or epochs .*, not both: got minutes=1.0, epochs=2"):
        train_run(minutes=1.0, epochs=2)


def test_all_and_native_are_spelled_out_because_none_means_the_default():
    run = train_run(n_train="all", n_test="all", channels="native", dataset="cifar10")
    assert run.data["n_train"] is None and run.data["n_test"] is None  # make_loaders: the whole split
    assert run.data["channels"] is None and run.model.in_channels == 3  # the dataset's own
    assert train_run(channels=3).model.in_channels == 3
    assert train_run(image_size=(128, 64)).model.image_size == (128, 64)


@pytest.mark.parametrize("name,value,match", [
    ("n_train", "most", r"n_train must be a positive integer or 'all' \(the whole split\), got 'most'"),
    ("n_test", 0, r"n_test must be a positive integer or 'all'"),
    ("channels", 2, r"channels must be one of \[1, 3, 'native'\], got 2"),
    ("dataset", "imagenet", r"unknown dataset 'imagenet'; valid names: shapes"),
    ("image_size", 100, r"image height 100 is not a multiple of 64"),
    ("resume", "yes", r"resume must be one of \[True, False\], got 'yes'"),
    ("download", "no", r"download must be one of \[True, False\]"),
    ("epochs", "abc", r"epochs must be a positive integer, got 'abc'"),
    ("minutes", -1, r"minutes must be a positive number or None"),
    ("lr", -1.0, r"lr must be a positive number"),
    ("seed", -1, r"seed must be an integer >= 0"),
    ("precision", "fp8", r"precision must be one of"),
    ("skips", "some", r"skips must be one of"),
    ("skip_dropout", 1.5, r"skip_dropout must lie in \[0, 1\)"),
    ("device", "tpu", r"device must be 'auto', 'cpu', 'cuda' or 'mps', got 'tpu'"),
    ("data_root", 3, r"data_root must be a folder path, got 3"),
    ("out_dir", 3, r"out_dir must be a folder path, got 3"),
    ("figures_dir", "", r"figures_dir must be a folder path"),
    ("epoch", 3, r"unknown parameter\(s\) \['epoch'\]; notebook 05 takes \[.*'epochs'"),
])
def test_a_bad_value_names_the_parameter(name, value, match):
    with pytest.raises(ValueError, match=match):
        train_run(**{name: value})


def test_train_run_from_reads_the_notebooks_globals_even_injected_ones():
    """papermill may inject a parameter that the visible parameters cell does not list (here kl_warmup)."""
    namespace = {"epochs": 2, "n_train": 64, "kl_warmup": 0.3, "figures_dir": "figs", "unrelated": object(),
                 "torch": torch}
    run = train_run_from(namespace)
    assert run.train.epochs == 2 and run.train.minutes is None and run.train.kl_warmup == 0.3
    assert run.data["n_train"] == 64 and str(run.figures_dir) == "figs"
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 'abc'"):
        train_run_from({"epochs": "abc"})


def test_the_smoke_test_shrinks_every_run(monkeypatch):
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    run = train_run_from({})
    assert run.train.epochs == 1 and run.train.minutes is None
    assert (run.data["n_train"], run.data["n_test"]) == (SMOKE["05"]["n_train"], SMOKE["05"]["n_test"])
    assert "smoke" in run.out_dir.parts  # runtime.run_path: never the tutorial's own checkpoint
    for nb in ("04", "07"):
        study = study_run(nb, out_dir="runs/x")
        assert study.train.epochs == 1 and study.train.minutes is None and "smoke" in study.out_dir.parts
        assert (study.data["n_train"], study.data["n_test"], study.n_samples) == \
            (SMOKE[nb]["n_train"], SMOKE[nb]["n_test"], SMOKE[nb]["n_samples"])


def test_a_study_run_takes_its_notebooks_budget_and_any_override():
    for nb in ("04", "07"):
        run = study_run(nb)
        assert run.train.minutes == BUDGETS[nb]["minutes"] and run.n_samples == BUDGETS[nb]["n_samples"]
        assert (run.data["n_train"], run.data["n_test"]) == (BUDGETS[nb]["n_train"], BUDGETS[nb]["n_test"])
        assert run.out_dir is None and run.figures_dir is None and run.seed == TRAIN.seed
    run = study_run("07", minutes=0.1, n_test=7, seed=2, out_dir="runs/07_skips", figures_dir="figs")
    assert run.train.minutes == 0.1 and run.data["n_test"] == 7 and run.data["n_train"] == BUDGETS["07"]["n_train"]
    assert run.seed == run.train.seed == run.data["seed"] == 2
    assert run.out_dir == runtime.run_path("runs/07_skips") and str(run.figures_dir) == "figs"
    assert study_run_from("07", {"minutes": 0.1, "n_test": 7, "seed": 2, "other": 1}) == \
        study_run("07", minutes=0.1, n_test=7, seed=2)


@pytest.mark.parametrize("args,match", [
    (dict(notebook="05"), r"notebook must be one of \['04', '07'\] .*, got '05'"),
    (dict(notebook="09"), r"notebook must be one of \['04', '07'\] .*, got '09'"),
    (dict(notebook="07", n_samples=-1), r"n_samples must be an integer >= 0, got -1"),
    (dict(notebook="07", minutes=0), r"minutes must be a positive number"),
    (dict(notebook="04", n_train="most"), r"n_train must be a positive integer or 'all'"),
    (dict(notebook="04", out_dir=5), r"out_dir must be a folder path"),
])
def test_a_bad_study_parameter_names_itself(args, match):
    with pytest.raises(ValueError, match=match):
        study_run(**args)


def test_the_skip_study_starts_from_the_specs_skips():
    assert skip_study_config().skip_source == "encoder" and skip_study_config().skips == "all"
    assert skip_study_config(skip_source="z") == model_config(skips="all", skip_source="z")
    assert skip_study_config(skips="none") == MODEL  # the tutorial's model is the study's "no skips" row


def test_save_writes_metrics_and_weights_with_the_training_facts_and_load_run_reads_them(tmp_path):
    out = tmp_path / "run"
    run = train_run(n_train=16, n_test=8, epochs=1, batch_size=8, precision="fp32", device="cpu", out_dir=str(out))
    assert load_run(out) is None  # nothing trained yet
    train_loader, test_loader = make_loaders(**run.data)
    model = SkipVAE(run.model)
    history = train(model, train_loader, test_loader, replace(run.train, progress=False),
                    checkpoint=run.out_dir / "checkpoint.pt", data=run.data)
    saved = run.save(model, {"neg_elbo": 1.5}, history)
    assert saved["images_seen"] == 16 and saved["steps"] == 2 and saved["seconds"] > 0
    assert saved["precision"] == "fp32" and saved["machine"] == runtime.describe_machine("cpu")
    assert json.loads((out / "metrics.json").read_text()) == saved
    _, exported = load_checkpoint(out / "weights.pt")
    assert exported["summary"] == saved and exported["identity"]["data"]["n_train"] == 16
    loaded, metrics = load_run(out)
    x = torch.rand(1, 1, 64, 64)
    assert metrics == saved and not loaded.training
    torch.testing.assert_close(loaded.reconstruct(x), model.eval().reconstruct(x), atol=2e-2, rtol=0)  # fp16 file
    assert not list(tmp_path.glob("**/quick_model.json"))  # no figures_dir: nothing for the README


def test_only_a_run_given_figures_dir_writes_the_readmes_numbers(tmp_path):
    figures = tmp_path / "figures"
    run = train_run(n_train=16, n_test=8, epochs=1, batch_size=8, precision="fp32", device="cpu",
                    out_dir=str(tmp_path / "run"), figures_dir=str(figures))
    train_loader, test_loader = make_loaders(**run.data)
    model = SkipVAE(run.model)
    history = train(model, train_loader, test_loader, replace(run.train, progress=False),
                    checkpoint=run.out_dir / "checkpoint.pt", data=run.data)
    saved = run.save(model, {"neg_elbo": 1.5}, history)
    assert json.loads((figures / "quick_model.json").read_text()) == saved


def test_notebook_defaults_of_every_notebook_are_the_configs_values():
    assert notebook_defaults("05")["n_train"] == config.N_TRAIN and notebook_defaults("06") == {"seed": TRAIN.seed}
    assert notebook_defaults("04")["minutes"] == BUDGETS["04"]["minutes"]
    with pytest.raises(ValueError, match=r"notebook must be one of \['01', '04', '05', '06', '07'\], got '09'"):
        notebook_defaults("09")
