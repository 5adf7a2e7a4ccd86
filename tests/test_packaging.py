"""The install files agree with each other: Binder gets CPU builds of torch and everything else pyproject.toml asks
for, and `make` installs only when pyproject.toml changes."""
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
CONDA_NAMES = {"torch": "pytorch", "torchvision": "torchvision"}  # pip's name -> conda-forge's


def _pyproject_requirements() -> dict:
    """{name: requirement} of the package's dependencies and its notebooks extra, as Binder installs them."""
    project = PYPROJECT["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in reqs}


def _conda_specs() -> dict:
    """{name: {"version": ..., "build": ...}} of the conda section's bracketed match specs."""
    specs = {}
    for dep in ENVIRONMENT["dependencies"]:
        m = isinstance(dep, str) and re.fullmatch(r"([\w.-]+)\[(.*)\]", dep)
        if m:
            specs[m.group(1)] = dict(re.findall(r"(\w+)='([^']*)'", m.group(2)))
    return specs


def _pip_lines() -> list:
    (pip,) = [d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pip


def test_binder_gets_cpu_builds_of_torch_and_torchvision_in_pyproject_s_ranges():
    conda, reqs = _conda_specs(), _pyproject_requirements()
    for pip_name, conda_name in CONDA_NAMES.items():
        spec = conda.get(conda_name)
        assert spec is not None, f"environment.yml must ask conda-forge for {conda_name} (its CPU build)"
        assert spec.get("build", "").startswith("cpu"), f"{conda_name}: build='cpu*' keeps CUDA out of Binder"
        assert pip_name + spec["version"] == reqs[pip_name], f"{conda_name} {spec['version']} vs {reqs[pip_name]}"
    pip_names = {re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower() for line in _pip_lines() if line[0] != "-"}
    assert not pip_names & set(CONDA_NAMES), "torch from pip would be PyPI's CUDA build: keep it in the conda section"


def test_environment_yml_agrees_with_pyproject_on_every_other_dependency():
    lines = _pip_lines()
    assert "-e .[notebooks]" in lines, "Binder does not install pyproject.toml by itself: keep `-e .` in pip's section"
    expected = {r for name, r in _pyproject_requirements().items() if name not in CONDA_NAMES}
    assert set(lines) - {"-e .[notebooks]"} == expected


def test_torch_is_a_range_so_that_colab_keeps_its_own_build():
    for spec in PYPROJECT["project"]["dependencies"]:
        if re.match(r"torch(vision)?\b", spec):
            assert "==" not in spec and "<" not in spec, f"{spec}: Colab brings its own build; use a lower bound only"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_installs_once_and_again_only_when_pyproject_changes(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)

    def up_to_date() -> bool:  # make -q: exit 0 when `setup` has nothing to do, without running anything
        return subprocess.run(["make", "-q", "setup"], cwd=tmp_path, capture_output=True).returncode == 0

    assert not up_to_date()
    dry = subprocess.run(["make", "-n", "setup"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "pip install" in dry
    (stamp,) = re.findall(r"^touch (\S+)$", dry, re.M)  # what a finished install leaves behind
    (tmp_path / stamp).parent.mkdir(parents=True)
    (tmp_path / stamp).touch()
    assert up_to_date()
    with open(tmp_path / "pyproject.toml", "a") as f:
        f.write("\n# a changed dependency\n")
    assert not up_to_date()
