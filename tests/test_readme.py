"""The README stays true: its figures exist and come from notebooks, and its generated sections are current."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _notebook_sources():
    return "\n".join("".join(c["source"]) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
                     for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")


def test_every_figure_the_readme_shows_exists_and_a_notebook_writes_it():
    shown = re.findall(r"\]\((figures/[^)\s]+\.png)\)", README)
    assert {"figures/reconstructions.png", "figures/samples.png", "figures/traversal.png",
            "figures/embedding.png", "figures/architecture.png"} <= set(shown)
    sources = _notebook_sources()
    for path in shown:
        assert (ROOT / path).exists(), f"README shows {path}, which does not exist: run `make tutorial`"
        name = Path(path).stem
        if name == "jupyterlab":  # the browser test's screenshot
            continue
        assert re.search(rf"""save(?:_figure\(fig,)?\s*=?\s*(?:figure\()?["']{name}["']""", sources), \
            f"no notebook writes {path}"


def test_readme_shows_both_commands_first():
    first = README.split("## ", 2)
    assert "make tutorial" in first[1] + first[2][:600] and "make test" in first[1] + first[2][:600]


def test_smoke_runs_do_not_overwrite_the_committed_figures(monkeypatch):
    from vae_utils import runtime

    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    assert runtime.figures_dir() == runtime.repo_root() / "runs" / "smoke-figures"
    monkeypatch.setenv(runtime.SMOKE_ENV, "0")
    assert runtime.figures_dir() == runtime.repo_root() / "figures"


def test_smoke_runs_do_not_overwrite_the_tutorial_checkpoints(monkeypatch, tmp_path):
    from vae_utils import runtime
    from vae_utils.params import checked_path, train_run

    root = runtime.repo_root()
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    assert train_run().out_dir == root / "runs" / "smoke" / "05_train"
    assert checked_path("checkpoint", "runs/05_train/checkpoint.pt") == root / "runs/smoke/05_train/checkpoint.pt"
    assert runtime.run_path("elsewhere/x.pt") == root / "runs/smoke/elsewhere/x.pt"
    assert runtime.run_path(str(tmp_path / "x.pt")) == tmp_path / "x.pt"  # an explicit absolute path is kept
    monkeypatch.setenv(runtime.SMOKE_ENV, "0")
    assert train_run().out_dir == root / "runs" / "05_train"
    assert checked_path("checkpoint", "runs/05_train/checkpoint.pt") == root / "runs/05_train/checkpoint.pt"


def test_only_the_tutorial_run_is_the_tutorial_run():
    from vae_utils.runtime import is_tutorial_run

    assert is_tutorial_run("runs/05_train") and is_tutorial_run("runs/05_train/checkpoint.pt")
    assert not is_tutorial_run("runs/long") and not is_tutorial_run("runs/long/checkpoint.pt")
    assert not is_tutorial_run("runs/05_train/other.pt")
