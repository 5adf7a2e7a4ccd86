"""Notebooks fit for Colab, git and nbval: the standard opening, badges from one setting, no volatile metadata."""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import badges
from tools.nbclean import volatile

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

def _read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_standard_opening_and_closing(path):
    nb = _read(path)
    title, colab = nb.cells[0], nb.cells[1]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {path.name[:2]} · ")
    repo, branch = badges.setting(ROOT)
    assert f"(https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{path.name})" in title.source
    assert colab.cell_type == "code" and f"git+https://github.com/{repo}@{branch}" in colab.source
    assert any(c.cell_type == "markdown" and re.search(r"^## Summary$", c.source, re.M) for c in nb.cells)
    assert nb.metadata.kernelspec.name == "python3"


def test_the_colab_cell_does_nothing_outside_colab(monkeypatch):
    assert "google.colab" not in sys.modules
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    for path in NOTEBOOKS:
        exec(compile(_read(path).cells[1].source, str(path), "exec"), {})
    assert calls == []


def test_the_colab_cell_installs_without_pinning_torch_when_in_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a[0]))
    monkeypatch.setitem(sys.modules, "google.colab", object())
    exec(compile(_read(NOTEBOOKS[0]).cells[1].source, "colab", "exec"), {})
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "pip", "install"] and "-e" not in cmd  # an editable .pth is read only at kernel start
    assert not any(a.startswith("torch") for a in cmd)  # Colab's preinstalled torch is kept
    (package,) = [a for a in cmd if "git+https://" in a]
    assert package.startswith("vae-skipnet @ ")  # no extras: jupyterlab or papermill would upgrade Colab's own stack


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_with_outputs_counts_and_no_volatile_metadata(path):
    nb = _read(path)
    assert volatile(nb) == []  # no papermill metadata, timings, widget state or stored errors
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(c.outputs for c in code), "commit notebooks with their outputs (make notebooks)"
    for c in code:
        if c.outputs:
            assert c.execution_count is not None, "nbval fails a cell that has outputs but no count"


def test_contract_cells_are_checked_exactly():
    """The shape tables are contracts: nbval compares their output exactly (the cell tag, invisible to a reader)."""
    for name in ("02_encoder.ipynb", "03_decoder.ipynb"):
        cells = _read(ROOT / "notebooks" / name).cells
        tagged = [c for c in cells if "nbval-check-output" in c.metadata.get("tags", [])]
        assert any("shape_report" in c.source for c in tagged), name


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_no_project_history_or_test_plumbing_in_what_a_reader_sees(path):
    text = ("\n".join(c.source for c in _read(path).cells) if path.suffix == ".ipynb" else path.read_text())
    assert not re.search(r"\b[Ii]ssue \d+|NBVAL_|VAE_SMOKE_TEST|smoke_test\(", text) or path.name == "testing.md"


def _code(name):
    return "\n".join(c.source for c in _read(ROOT / "notebooks" / name).cells if c.cell_type == "code")


def test_03_writes_the_whole_model_and_checks_it_against_the_package():
    tree = ast.parse(_code(next(p.name for p in NOTEBOOKS if p.name.startswith("03"))))
    vae = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "VAE"]
    assert vae and any(isinstance(f, ast.FunctionDef) and f.name == "forward" for f in vae[0].body)
    checks = [ast.unparse(c) for c in ast.walk(tree) if isinstance(c, ast.Call)
              and ast.unparse(c.func) == "torch.testing.assert_close"]
    assert checks, "03 checks its VAE against SkipVAE"


def test_05_writes_a_training_loop_and_checks_it_against_train():
    code = _code(next(p.name for p in NOTEBOOKS if p.name.startswith("05")))
    tree = ast.parse(code)
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For)]
    assert loops, "05 writes its own training loop"
    calls = [ast.unparse(c.func) for c in ast.walk(tree) if isinstance(c, ast.Call)]
    assert any(c == "train" or c.endswith(".train") for c in calls) and "torch.testing.assert_close" in calls


@pytest.mark.parametrize("name,stage,part", [("02_encoder.ipynb", "EncoderStage", "encoder"),
                                             ("03_decoder.ipynb", "DecoderStage", "decoder")])
def test_stages_are_written_in_the_notebook_and_checked_against_the_package(name, stage, part):
    """02 and 03 define their stage class, load its weights into SkipVAE, and assert that the outputs agree."""
    code = "\n".join(c.source for c in _read(ROOT / "notebooks" / name).cells if c.cell_type == "code")
    tree = ast.parse(code)
    assert stage in {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    assert stage not in {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    loads = [ast.unparse(c.func) for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == "load_state_dict"]
    assert any(f".{part}." in f for f in loads), loads  # e.g. model.encoder.stages.load_state_dict
    checks = [ast.unparse(c) for c in calls if ast.unparse(c.func) in ("torch.testing.assert_close", "torch.equal")]
    assert any(f".{part}(" in c for c in checks), checks  # the package's encoder or decoder against our outputs


def test_badges_check_passes():
    assert badges.sync(ROOT, check=True) == []


def test_changing_the_setting_rewrites_every_badge(tmp_path):
    for name in ("notebooks", "README.md", "pyproject.toml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'github = "{badges.setting(ROOT)[0]}"', 'github = "someone/fork"'))
    assert len(badges.sync(tmp_path, check=True)) == len(NOTEBOOKS) + 1  # stale everywhere
    badges.sync(tmp_path)
    assert badges.sync(tmp_path, check=True) == []
    readme = (tmp_path / "README.md").read_text()
    assert "mybinder.org/v2/gh/someone/fork/main?labpath=notebooks" in readme
    for p in sorted((tmp_path / "notebooks").glob("*.ipynb")):
        nb = _read(p)
        assert f"colab.research.google.com/github/someone/fork/blob/main/notebooks/{p.name}" in nb.cells[0].source
        assert "git+https://github.com/someone/fork@main" in nb.cells[1].source
        assert nb.cells[-1].source == _read(ROOT / "notebooks" / p.name).cells[-1].source  # nothing else touched


def test_papermill_parameters_are_documented_in_the_docs():
    import papermill as pm

    docs = (ROOT / "docs" / "parameters.md").read_text()
    for path in NOTEBOOKS:
        names = set(pm.inspect_notebook(str(path)))
        block = docs.split(f"**{path.name}**", 1)[1].split("**", 1)[0] if names else ""
        assert set(re.findall(r"^\| `(\w+)` \|", block, re.M)) == names, path.name
