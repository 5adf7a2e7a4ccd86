"""Every notebook runs alone from the built wheel, as on Colab: copied into an empty folder, with only the wheel
importable (no repository tree above it, no editable install in the way), on the smoke budget.

The wheel is built once per session from a clean copy of the package (pyproject.toml, README.md, vae_utils/), so
no stale build/ folder can add a file that the repository no longer has, and installed with `pip --target` into a
folder that becomes the kernel's PYTHONPATH. A probe cell appended to each copy records where vae_utils came from.
"""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from tools.kernels import execute_notebook

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROBE = ("import importlib.util, json, vae_utils\n"
         "print('WHEEL-PROBE ' + json.dumps({'vae_utils': vae_utils.__file__,\n"
         "                                   'repository': importlib.util.find_spec('tools') is not None}))")


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory) -> Path:
    """A folder holding only the installed wheel (and pip's metadata), built from a clean copy of the package."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "vae_utils", src / "vae_utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(base / "dist")],
                   check=True, capture_output=True, cwd=base)
    (wheel,) = (base / "dist").glob("*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("vae_utils/pretrained/")}
    expected = {f"vae_utils/pretrained/{p.name}" for p in (ROOT / "vae_utils" / "pretrained").iterdir()
                if p.suffix in (".pt", ".json")}
    assert "vae_utils/pretrained/skip_study.json" in expected and expected <= shipped, expected - shipped
    site = base / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    return site


def _run_alone(notebook: Path, site: Path, tmp_path: Path, monkeypatch) -> dict:
    """Execute a copy of `notebook` with an appended probe cell, from an empty folder, with PYTHONPATH=site and the
    smoke budget; returns what the probe printed."""
    folder, out = tmp_path / "empty", tmp_path / "executed.ipynb"
    folder.mkdir()
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(nb, folder / notebook.name)
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernel inherits this environment
    monkeypatch.setenv("VAE_SMOKE_TEST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    execute_notebook(folder / notebook.name, out, cwd=str(folder), kernel_name="python3", progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs if o.output_type == "stream")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("WHEEL-PROBE ")]
    return json.loads(line[len("WHEEL-PROBE "):])


def test_a_notebook_run_alone_imports_the_wheel_not_the_repository(wheel_site, tmp_path, monkeypatch):
    tiny = tmp_path / "tiny.ipynb"
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\n"
        "from pathlib import Path\n"
        "from vae_utils import pretrained, runtime\n"
        "assert runtime.repo_root() == Path.cwd().resolve() and os.listdir('.') == ['tiny.ipynb']\n"
        "model, summary = pretrained.load_pretrained()\n"
        "print(sorted(pretrained.load_skip_study()))")]
    nbformat.write(nb, tiny)
    probe = _run_alone(tiny, wheel_site, tmp_path, monkeypatch)
    assert Path(probe["vae_utils"]).is_relative_to(wheel_site) and not probe["repository"], probe


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_runs_alone_from_the_wheel(notebook, wheel_site, tmp_path, monkeypatch):
    probe = _run_alone(notebook, wheel_site, tmp_path, monkeypatch)
    assert Path(probe["vae_utils"]).is_relative_to(wheel_site) and not probe["repository"], probe
