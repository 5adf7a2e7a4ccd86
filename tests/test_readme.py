"""The README and docs/ stay true: the README is a front door, every page it links exists, every figure shown exists
and comes from a notebook, and every generated section is current (`python -m tools.readme --check`)."""
import json
import re
import shutil
from pathlib import Path

import pytest

from tools import readme

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {p: p.read_text() for p in readme.documents(ROOT)}  # README.md and docs/*.md


def _notebook_sources():
    return "\n".join("".join(c["source"]) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
                     for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")


def _saved_figures(code: str) -> set:
    """The names that `save_figure(fig, "name", figures_dir)` calls in this code write."""
    import ast

    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    return {c.args[1].value for c in calls if ast.unparse(c.func).endswith("save_figure") and len(c.args) > 1
            and isinstance(c.args[1], ast.Constant)}


def _links(text):
    """Relative link targets of a Markdown text, without anchors: figures, pages, notebooks, code."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 150, "move detail into docs/"
    heads = re.findall(r"^## (.+)$", README, re.M)
    assert heads[:2] == ["What you will learn", "Two commands"], heads
    assert "make tutorial" in README and "make test" in README
    assert README.index("make tutorial") < README.index("<!-- notebooks:start -->")
    assert "What the trained models achieve" in heads


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in _links(README)}
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


@pytest.mark.parametrize("page", [*PAGES, ROOT / "CONTRIBUTING.md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page):
    for target in _links(page.read_text()):
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


def test_the_package_page_says_what_each_file_holds():
    table = (ROOT / "docs" / "package.md").read_text()
    for folder in ("vae_utils", "tools"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name != "__init__.py":
                assert f"| `{path.name}` |" in table, f"docs/package.md does not say what {folder}/{path.name} holds"


def test_every_figure_shown_exists_and_a_notebook_writes_it():
    shown = {(page.parent / t).resolve() for page, text in PAGES.items() for t in _links(text) if t.endswith(".png")}
    assert {(ROOT / "figures" / f"{name}.png").resolve() for name in ("skips_z_swapped", "architecture")} <= shown
    sources = _notebook_sources()
    for path in shown:
        assert path.exists(), f"{path} is shown but does not exist: run `make tutorial`"
        name = path.stem
        if name == "jupyterlab":  # the browser test's screenshot
            continue
        assert name in _saved_figures(sources), f"no notebook writes {path.name}"


def test_notebooks_write_figures_only_where_they_are_told():
    """One mechanism decides whether a run writes figures/: the notebook parameter `figures_dir`, which only
    `make tutorial` and `make notebooks` set; every save in a notebook goes through it."""
    import ast

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
        saves = [c for c in calls if ast.unparse(c.func).endswith("save_figure")]
        assert all(len(c.args) == 3 and ast.unparse(c.args[2]).endswith("figures_dir") for c in saves), path.name
        assert not [c for c in calls if ast.unparse(c.func).endswith("savefig")], path.name
        params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        if saves:
            assert params and re.search(r"^figures_dir = None\b", "".join(params[0]["source"]), re.M), path.name


def test_every_parameter_of_notebook_05_is_documented():
    from vae_utils.config import TRAIN_RUN_EXTRAS, notebook_defaults

    docs = (ROOT / "docs" / "parameters.md").read_text()
    for name in {**notebook_defaults("05"), **TRAIN_RUN_EXTRAS}:
        assert f"`{name}`" in docs, f"docs/parameters.md does not document notebook 05's parameter {name}"


def test_every_generated_section_is_current():
    assert readme.sync(ROOT, check=True) == [], "run `python -m tools.readme`"


def test_each_section_has_its_home():
    homes = {name: [p.relative_to(ROOT).as_posix() for p, text in PAGES.items() if name in readme.sections_in(text)]
             for name in readme.SECTIONS}
    assert homes == {"notebooks": ["README.md"], "spec": ["docs/spec.md"], "params": ["docs/parameters.md"],
                     "models": ["README.md"], "skips": ["docs/skip-study.md"], "mlp": ["docs/skip-study.md"],
                     "levers": ["docs/design.md"], "recipe_steps": ["docs/design.md"], "recipe_time": ["docs/design.md"]}


def test_the_notebook_list_links_each_notebook_and_its_colab_badge():
    block = README.split("<!-- notebooks:start -->")[1].split("<!-- notebooks:end -->")[0]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"](notebooks/{path.name})" in block
        assert re.search(rf"colab\.research\.google\.com/github/[^)]+/notebooks/{path.name}\)", block), path.name


@pytest.fixture
def copy(tmp_path):
    """A copy of what the generator reads and writes: README.md, docs/, notebooks/, pyproject.toml, and the
    measured figures (figures/quick_model.json, the pretrained model's, benchmarks/results/)."""
    for name in ("README.md", "docs", "notebooks", "pyproject.toml", "figures/quick_model.json",
                 "vae_utils/pretrained/shapes_vae.json", "vae_utils/pretrained/skip_study.json", "benchmarks/results"):
        if not (ROOT / name).exists():
            continue
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def test_check_finds_a_stale_section_in_docs_and_a_rewrite_mends_it(copy, capsys):
    page = copy / "docs" / "spec.md"
    page.write_text(page.read_text().replace("| Step 3 | MaxPool(2×2) |", "| Step 3 | MaxPool(3×3) |"))
    assert readme.main(["--check", "--root", str(copy)]) == 1
    assert "docs/spec.md" in capsys.readouterr().out
    assert readme.main(["--root", str(copy)]) == 0
    assert readme.main(["--check", "--root", str(copy)]) == 0
    assert page.read_text() == (ROOT / "docs" / "spec.md").read_text()


def test_links_in_a_generated_section_lead_from_the_page_that_shows_it(copy):
    page = copy / "docs" / "notebooks.md"
    page.write_text("<!-- notebooks:start -->\n<!-- notebooks:end -->\n")
    readme.sync(copy)
    assert "](../notebooks/01_vae_and_data.ipynb)" in page.read_text()


@pytest.mark.parametrize("text,match", [
    ("<!-- tables:start -->\n<!-- tables:end -->\n", "unknown generated section 'tables'"),
    ("<!-- spec:start -->\nno end\n", "exactly one <!-- spec:start --> and one <!-- spec:end -->"),
])
def test_a_bad_marker_is_an_error(copy, text, match, capsys):
    (copy / "docs" / "extra.md").write_text(text)
    with pytest.raises(ValueError, match=match):
        readme.sync(copy, check=True)
    assert readme.main(["--check", "--root", str(copy)]) == 2  # the command says why, without a traceback
    assert re.search(match, capsys.readouterr().err)


def test_a_section_in_no_file_is_an_error(copy):
    page = copy / "docs" / "parameters.md"
    page.write_text(re.sub(r"<!-- params:start -->.*<!-- params:end -->", "", page.read_text(), flags=re.S))
    with pytest.raises(ValueError, match=r"\['params'\] stand in none"):
        readme.sync(copy, check=True)


def test_smoke_runs_do_not_overwrite_the_tutorial_checkpoints(monkeypatch, tmp_path):
    from vae_utils import runtime
    from vae_utils.config import train_run

    root = runtime.repo_root()
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    assert train_run().out_dir == root / "runs" / "smoke" / "05_train"
    assert runtime.run_path("elsewhere/x.pt") == root / "runs/smoke/elsewhere/x.pt"
    assert runtime.run_path(str(tmp_path / "x.pt")) == tmp_path / "x.pt"  # an explicit absolute path is kept
    monkeypatch.setenv(runtime.SMOKE_ENV, "0")
    assert train_run().out_dir == root / "runs" / "05_train"


def test_the_models_section_shows_both_models_against_their_goals(copy):
    pretrained = json.loads((ROOT / "vae_utils" / "pretrained" / "shapes_vae.json").read_text())
    quick = {**pretrained, "recon_accuracy": 0.5, "frechet": 400.0, "minutes": 3.0, "images_seen": 12_345}
    (copy / "figures").mkdir(exist_ok=True)
    (copy / "figures" / "quick_model.json").write_text(json.dumps(quick))
    text = readme.model_numbers(copy)
    head = text.splitlines()[1]
    assert head.split() == ["quick", "model", "pretrained", "model", "real", "images", "quick", "goal", "pretrained",
                            "goal"]
    assert re.search(r"^judge accuracy on reconstructions +0\.500 +1\.000 +1\.000 +≥ 0\.7 +≥ 0\.97$", text, re.M)
    assert re.search(r"^images seen +12,345 +640,000", text, re.M)
    assert "The quick model reaches 7 of the 9 goals of the quick model" in text
    assert "misses judge accuracy on reconstructions (0.500, goal ≥ 0.7); Fréchet distance of prior samples (400" in text
    (copy / "figures" / "quick_model.json").unlink()
    assert "quick model" not in readme.model_numbers(copy).splitlines()[1]  # only what was measured is shown


def test_the_models_section_gives_the_quick_models_spread_over_seeds(copy):
    results = copy / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    runs = [{"seed": s, "steps": 1000 + 10 * s, "goals_met": met, "recon_accuracy": acc, "psnr": 18.0, "frechet": fd}
            for s, (met, acc, fd) in enumerate([(5, 0.4, 500.0), (6, 0.6, 400.0)])]
    saved = {"cpu": "Some CPU", "threads": 2, "minutes": 3.0, "seeds": [0, 1], "runs": runs,
             "summary": {"recon_accuracy": [0.5, 0.1414], "psnr": [18.0, 0.0], "frechet": [450.0, 70.71],
                         "steps": [1005.0, 7.07]}}
    (results / "quick_spread.json").write_text(json.dumps(saved))
    text = readme.model_numbers(copy)
    assert ("Over seeds [0, 1] (`python benchmarks/quick_spread.py` on Some CPU, 2 threads, 3 min each, 1,000 to "
            "1,010 steps), the mean ± sd is: judge accuracy on reconstructions 0.500 ± 0.141; PSNR (dB) 18.0 ± 0.0; "
            "Fréchet distance of prior samples 450 ± 71. Each run met 5 to 6 of the 9 goals.") in text
    (results / "quick_spread.json").unlink()
    assert "One run is one draw" not in readme.model_numbers(copy)


def test_a_study_section_is_the_committed_benchmark_output(copy):
    results = copy / "vae_utils" / "pretrained"  # the skip study ships in the package
    results.mkdir(parents=True, exist_ok=True)
    saved = {"cpu": "Some CPU", "threads": 1, "seconds": 60.0, "seeds": [0, 1, 2],
             "real_baseline": {"accuracy": 1.0, "inception_score": 3.99, "frechet": 5.1},
             "results": {"a": {}, "b": {}}, "table": "| configuration | steps |\n|---|---|", "wins": {"b": ["psnr"]}}
    (results / "skip_study.json").write_text(json.dumps(saved))
    text = readme.study("skips")(copy)
    assert text.startswith("Measured by `python benchmarks/quality.py skips --seconds 60` on Some CPU, 1 thread")
    assert saved["table"] in text and "- b: 1 of 10 (psnr)" in text and "beats *a* by more than" in text
    (results / "skip_study.json").unlink()
    assert "Not measured yet" in readme.study("skips")(copy)
