"""The install files agree with each other, and the set-up is what the README says."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment_pip_lines():
    text = (ROOT / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    return [m.group(1).strip() for m in re.finditer(r"^\s+-\s+(.+)$", pip_block, re.M)]


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = PYPROJECT["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["notebooks"])
    lines = _environment_pip_lines()
    assert "-e .[notebooks]" in lines, "Binder does not install pyproject.toml by itself: keep `-e .` in the pip section"
    assert set(lines) - {"-e .[notebooks]"} == expected


def test_environment_yml_pins_python_311():
    assert re.search(r"^\s+- python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.M)


def test_package_is_named_explicitly_and_torch_is_never_pinned():
    assert PYPROJECT["tool"]["setuptools"]["packages"] == ["vae_utils"]
    deps = PYPROJECT["project"]["dependencies"]
    for name in ("torch", "torchvision"):
        (spec,) = [d for d in deps if re.match(rf"{name}\b(?!vision)", d)]
        assert "==" not in spec and "<" not in spec, f"{spec}: Colab brings its own {name}; use a lower bound only"


def test_ipywidgets_7_is_allowed():
    (spec,) = [d for d in PYPROJECT["project"]["optional-dependencies"]["notebooks"] if d.startswith("ipywidgets")]
    assert spec == "ipywidgets>=7.6"


def test_makefile_skips_the_install_when_pyproject_is_unchanged():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^STAMP := .*pyproject\.toml", makefile, re.M)
    assert re.search(r"^\$\(STAMP\): pyproject\.toml", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
