"""`make tutorial` (tools.tutorial) reports timings that travel: per notebook, the CPU, and the training rate."""
import json

from tools import tutorial
from vae_utils import perf, runtime


def test_the_runner_prints_times_the_cpu_and_notebook_05s_training_rate(tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    for name in ("01_data.ipynb", "05_train.ipynb"):
        (root / "notebooks" / name).write_text("{}")
    monkeypatch.delenv(runtime.SMOKE_ENV, raising=False)
    monkeypatch.setattr(runtime, "repo_root", lambda: root)
    monkeypatch.setattr(tutorial, "repo_root", lambda: root)

    def execute(nb, target, **kwargs):  # what notebook 05 writes, without a kernel
        if nb.name.startswith("05"):
            run = root / "runs" / "05_train"
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps({"images_seen": 24000, "seconds": 120.0, "precision": "bf16"}))
    monkeypatch.setattr(tutorial, "execute_notebook", execute)

    assert tutorial.main(["--out", str(tmp_path / "elsewhere")]) == 0  # a folder outside the repository is fine
    out = capsys.readouterr().out
    assert "  01_data.ipynb " in out and "  05_train.ipynb " in out and "  total " in out
    assert f"machine: {perf.cpu_summary()}; torch " in out
    assert "training (notebook 05): 200 images/s in bf16 (24,000 images in 120 s, validation included" in out
    assert f"executed copies in {tmp_path / 'elsewhere'}/" in out


def test_no_training_rate_without_notebook_05(tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_data.ipynb").write_text("{}")
    monkeypatch.setattr(runtime, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(tutorial, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(tutorial, "execute_notebook", lambda *a, **k: None)
    tutorial.main([])
    out = capsys.readouterr().out
    assert "machine: " in out and "training (notebook 05)" not in out
