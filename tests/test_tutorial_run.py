"""`make tutorial` (tools.tutorial): it runs every numbered notebook in order, gives `figures_dir` only to the
notebooks that take it, keeps committed notebooks free of injected parameters, and reports timings that travel:
per notebook, the machine, and the training rate."""
import json

import nbformat
import pytest

from tools import tutorial
from vae_utils import runtime


def _notebook(path, figures=False):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    source = "figures_dir = None  # where figures go" if figures else "seed = None"
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(1)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository with notebooks 01 (no figures) and 05 (figures); notebooks run by a fake executor."""
    root = tmp_path / "repo"
    _notebook(root / "notebooks" / "01_data.ipynb")
    _notebook(root / "notebooks" / "05_train.ipynb", figures=True)
    (root / "notebooks" / "scratch.ipynb").write_text("{}")  # not a numbered notebook: never run
    monkeypatch.delenv(runtime.SMOKE_ENV, raising=False)
    monkeypatch.setattr(runtime, "repo_root", lambda: root)
    monkeypatch.setattr(tutorial, "repo_root", lambda: root)
    calls = []

    def execute(nb, target, parameters=None, **kwargs):  # what notebook 05 writes, without a kernel
        calls.append((nb.name, parameters))
        done = nbformat.read(str(nb), as_version=4)
        if parameters:
            done.cells.insert(1, nbformat.v4.new_code_cell(f"figures_dir = {parameters['figures_dir']!r}",
                                                           metadata={"tags": ["injected-parameters"]}))
        nbformat.write(done, str(target))
        if nb.name.startswith("05"):
            run = root / "runs" / "05_train"
            run.mkdir(parents=True, exist_ok=True)
            (run / "metrics.json").write_text(json.dumps({"images_seen": 24000, "seconds": 120.0,
                                                          "precision": "bf16"}))
    monkeypatch.setattr(tutorial, "execute_notebook", execute)
    return root, calls


def test_the_runner_prints_times_the_machine_and_notebook_05s_training_rate(repo, tmp_path, capsys):
    root, calls = repo
    assert tutorial.main(["--out", str(tmp_path / "elsewhere")]) == 0  # a folder outside the repository is fine
    out = capsys.readouterr().out
    assert [name for name, _ in calls] == ["01_data.ipynb", "05_train.ipynb"]  # in order, numbered ones only
    assert "  01_data.ipynb " in out and "  05_train.ipynb " in out and "  total " in out
    assert f"machine: {runtime.cpu_summary()}; torch " in out
    assert "training (notebook 05): 200 images/s in bf16 (24,000 images in 120 s of training, validation not counted" in out
    assert f"executed copies in {tmp_path / 'elsewhere'}/" in out
    assert (tmp_path / "elsewhere" / "05_train.ipynb").exists()


def test_only_notebooks_with_a_figures_dir_parameter_get_the_figures_folder(repo):
    root, calls = repo
    tutorial.main([])
    assert dict(calls) == {"01_data.ipynb": {}, "05_train.ipynb": {"figures_dir": str(root / "figures")}}


def test_in_place_runs_keep_no_injected_parameters(repo):
    root, _ = repo
    tutorial.main(["--in-place", "05"])
    cells = nbformat.read(str(root / "notebooks" / "05_train.ipynb"), as_version=4).cells
    assert [c.source for c in cells] == ["figures_dir = None  # where figures go", "print(1)"]


def test_no_training_rate_without_notebook_05(repo, capsys):
    tutorial.main(["01"])
    out = capsys.readouterr().out
    assert "machine: " in out and "training (notebook 05)" not in out
