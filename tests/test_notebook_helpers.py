"""The helpers behind notebooks 01, 04 and 05: the goal table and its sentence, notebook 05's one-call parameter
check and artefact writing, and the three plotting functions those notebooks call."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vae_utils import params, report, runtime, viz  # noqa: E402
from vae_utils.checkpoint import load_checkpoint  # noqa: E402
from vae_utils.data import make_dataset, make_loaders  # noqa: E402
from vae_utils.model import SkipVAE  # noqa: E402
from vae_utils.train import train  # noqa: E402

QUICK = {"recon_accuracy": 0.41, "psnr": 19.5, "inception_score": 2.6, "frechet": 620.0, "z_reliance": 0.9,
         "probe": 0.7, "r_scale": 0.42, "r_x": 0.87, "r_y": None, "minutes": 3.0, "images_seen": 41600,
         "cpu": "a test CPU"}


@pytest.fixture(autouse=True)
def no_smoke(monkeypatch, tmp_path):
    monkeypatch.delenv(runtime.SMOKE_ENV, raising=False)
    monkeypatch.setattr("vae_utils.runtime.figures_dir", lambda: tmp_path)
    yield
    plt.close("all")


def test_goals_are_met_at_the_threshold_and_a_missing_figure_fails():
    met = report.goals_met(QUICK, "quick")
    assert met == {"recon_accuracy": False, "psnr": False, "inception_score": True, "frechet": False,
                   "z_reliance": True, "probe": True, "r_scale": False, "r_x": True, "r_y": False}
    assert report.goals_met({**QUICK, "frechet": 300}, "quick")["frechet"]  # "<= 300" includes 300
    assert not report.goals_met(QUICK, "pretrained")["probe"]  # 0.7 < 0.95
    with pytest.raises(ValueError, match="level must be one of"):
        report.goals_met(QUICK, "slow")


def test_the_goal_table_has_one_row_per_goal_and_the_training_facts():
    pre = {**QUICK, "recon_accuracy": 0.985, "minutes": 45.0, "images_seen": 960000, "cpu": "another CPU"}
    text = report.format_goal_table({"quick": QUICK, "pretrained": pre},
                                    real={"accuracy": 1.0, "inception_score": 3.99, "frechet": 5.1})
    lines = text.splitlines()
    assert lines[0].split() == ["quick", "pretrained", "real", "images", "quick", "goal", "pretrained", "goal"]
    assert len(lines) == 2 + len(report.GOALS) + 2 + 2  # head, rule, goals, time and images, two machines
    assert lines[2].split()[-7:] == ["0.410", "0.985", "1.000", "≥", "0.7", "≥", "0.97"]
    assert "n/a" in next(line for line in lines if line.startswith("best |r|, y"))
    assert lines[-4].split()[-2:] == ["3.0", "45.0"] and lines[-3].split()[-2:] == ["41,600", "960,000"]
    assert lines[-2:] == ["machine, quick: a test CPU", "machine, pretrained: another CPU"]


def test_the_goal_sentence_counts_what_the_numbers_say():
    text = report.goal_summary("The quick model", QUICK, "quick")
    assert text.startswith("The quick model reaches 4 of the 9 goals of the quick model (")
    assert "misses judge accuracy on reconstructions (0.410, goal ≥ 0.7)" in text
    assert "Fréchet distance of prior samples (620, goal ≤ 300)" in text and "(n/a, goal ≥ 0.5)" in text
    perfect = {k: (0.0 if k == "frechet" else 99.0) for k in report.GOALS}
    assert report.goal_summary("It", perfect, "pretrained") == "It reaches 9 of the 9 goals of the pretrained model: all of them."


def test_train_run_from_reads_the_notebooks_globals_and_validates_them():
    run = params.train_run_from({"epochs": 2, "n_train": 64, "out_dir": "runs/elsewhere", "unrelated": object()})
    assert run.train.epochs == 2 and run.train.minutes is None and run.data["n_train"] == 64
    assert run.figure("training_curves") is None  # an experiment: the committed figures stay
    assert params.train_run_from({}).figure("training_curves") == "training_curves"  # the tutorial's own run
    assert params.train_run_from({"dataset": "mnist"}).figure("x") is None
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 'abc'"):
        params.train_run_from({"epochs": "abc"})


def test_the_smoke_test_shrinks_the_run(monkeypatch):
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    run = params.train_run_from({})
    assert run.train.epochs == params.SMOKE_BUDGET["epochs"] and run.train.minutes is None
    assert (run.data["n_train"], run.data["n_test"]) == (params.SMOKE_BUDGET["n_train"], params.SMOKE_BUDGET["n_test"])
    assert "smoke" in run.out_dir.parts  # runtime.run_path: never the tutorial's own checkpoint


def test_save_writes_metrics_and_weights_with_the_training_facts(tmp_path):
    run = params.train_run_from({"n_train": 16, "n_test": 8, "epochs": 1, "batch_size": 8, "precision": "fp32",
                                 "out_dir": str(tmp_path / "run")})
    train_loader, test_loader = make_loaders(**run.data)
    model = SkipVAE(run.model)
    history = train(model, train_loader, test_loader, run.train, checkpoint=run.out_dir / "checkpoint.pt",
                    data=run.data)
    out = run.save(model, {"neg_elbo": 1.5}, history)
    assert out["images_seen"] == 16 and out["seconds"] > 0 and out["precision"] == "fp32" and out["cpu"]
    assert json.loads((run.out_dir / "metrics.json").read_text()) == out
    _, exported = load_checkpoint(run.out_dir / "weights.pt")
    assert exported["summary"]["images_seen"] == 16 and exported["summary"]["neg_elbo"] == 1.5


def test_factor_histograms_name_the_shapes_and_count_every_image():
    ds = make_dataset("shapes", "train", size=200)
    fig = viz.factor_histograms(ds, save="hist")
    assert len(fig.axes) == len(ds.factor_names)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ds.label_names
    for ax in fig.axes:
        assert sum(p.get_height() for p in ax.patches) == len(ds)


def test_grids_and_loss_curves():
    x = torch.rand(12, 1, 64, 64)
    assert len(viz.grids({"a": x, "b": x[:6]}, nrow=6).axes) == 2
    history = {"step": [{"step": s, "recon": 100.0 / s, "kl": float(s), "beta": min(1.0, s / 5)} for s in range(1, 11)]}
    fig = viz.loss_curves({"warm-up": history, "none": history})
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2, 2]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [float(s) for s in range(1, 11)]
