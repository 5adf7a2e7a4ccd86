"""`python -m tools.readme`: regenerate the generated sections of README.md and docs/*.md; `--check` only compares.

A generated section sits between `<!-- NAME:start -->` and `<!-- NAME:end -->`, in whichever of those files
holds it:
- `spec`: both step tables, from `vae_utils/spec.py`;
- `notebooks`: one row per notebooks/NN_*.ipynb, from each notebook's title and first paragraph;
- `params`: each parameterised notebook's visible papermill parameters, with defaults (a `None` that stands for
  the tutorial's default shows that default, from `vae_utils/config.py`) and comments.
- `models`: the judge's numbers of the quick model (figures/quick_model.json, written by `make tutorial`) and the
  pretrained model (vae_utils/pretrained/shapes_vae.json) against the goals (tools/goals.py), and the quick
  model's spread over seeds (benchmarks/results/quick_spread.json, from `benchmarks/quick_spread.py`);
- `skips`, `mlp`, `levers`: the committed output of `benchmarks/quality.py` (the skip study ships in the package,
  vae_utils/pretrained/skip_study.json; the others are benchmarks/results/*.json).
Every section must stand in some file; a marker with an unknown name or without its end is an error.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from vae_utils import spec
from vae_utils.config import notebook_defaults
from vae_utils.metrics import METRICS, judge_baseline
from vae_utils.pretrained import SKIP_STUDY

from . import badges
from .goals import format_goal_table, goal_summary

ROOT = Path(__file__).resolve().parents[1]
START = re.compile(r"<!-- (\w+):start -->")


def markdown_table(part: str) -> str:
    """The spec table for "encoder" or "decoder" as Markdown."""
    lines = ["| Step | Operation | Shape |", "|---|---|---|"]
    lines += [f"| {r.step} | {r.operation} | {r.symbolic()} |" for r in spec.TABLES[part]]
    return "\n".join(lines)


def spec_tables(root: Path = ROOT, up: str = "") -> str:
    """Both spec tables, generated from `spec.py`."""
    return ("### Encoder steps\n\n" + markdown_table("encoder") +
            "\n\n### Decoder steps\n\n" + markdown_table("decoder") + "\n")


def notebook_rows(root: Path = ROOT, up: str = "") -> str:
    """A Markdown table of the notebooks: title (linked), Colab badge, and what it teaches (the title cell's first
    paragraph). `up` leads from the file that shows it to the repository root ("../" from docs/)."""
    repo, branch = badges.setting(root)
    lines = ["| Notebook | Colab | What it teaches |", "|---|---|---|"]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cell = json.loads(path.read_text())["cells"][0]
        text = "".join(cell["source"])
        title = re.sub(r"^#\s*", "", text.splitlines()[0]).strip()
        paras = [p.strip() for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith(("#", "[!["))]
        about = " ".join(paras[0].split()) if paras else ""
        colab = badges.COLAB.format(repo=repo, branch=branch, name=path.name)
        lines.append(f"| [{title}]({up}notebooks/{path.name}) | [![Open In Colab]({badges.COLAB_BADGE})]({colab}) | {about} |")
    return "\n".join(lines) + "\n"


TUTORIAL_DEFAULT = "; None: the tutorial default"  # how a notebook marks a parameter that vae_utils.config fills in


def _literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parameter_tables(root: Path = ROOT, up: str = "") -> str:
    """One table per parameterised notebook, read by papermill itself (`papermill --help-notebook`); a parameter
    whose default is None, "the tutorial default", shows the value it stands for, from `vae_utils.config`."""
    import papermill as pm  # the notebooks extra; the other sections need only the package

    def tutorial_default(notebook: Path, name: str):
        defaults = notebook_defaults(notebook.name[:2])
        if name not in defaults:
            raise ValueError(f"{notebook.name}: parameter {name} is None ('the tutorial default'), but "
                             f"vae_utils.config defines no default for it; add it there or give it a value")
        return defaults[name]

    out = ["A default marked *(tutorial)* comes from `vae_utils/config.py`, the one place the tutorial's "
           "defaults are defined; in the notebook the parameter is `None`, which stands for it.", ""]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        params = pm.inspect_notebook(str(path))
        if not params:
            continue
        out += [f"**{path.name}**", "", "| Parameter | Default | Meaning |", "|---|---|---|"]
        for p in params.values():
            default, help = f"`{p['default']}`", p["help"]
            if p["default"] == "None" and help.endswith(TUTORIAL_DEFAULT):
                default = f"`{_literal(tutorial_default(path, p['name']))}` *(tutorial)*"
                help = help[:-len(TUTORIAL_DEFAULT)]
            out.append(f"| `{p['name']}` | {default} | {help} |")
        out.append("")
    return "\n".join(out)


def model_numbers(root: Path = ROOT, up: str = "") -> str:
    """The goal table of the quick and the pretrained model, and one sentence for each."""
    paths = {"quick model": root / "figures" / "quick_model.json",
             "pretrained model": root / "vae_utils" / "pretrained" / "shapes_vae.json"}
    rows = {name: json.loads(p.read_text()) for name, p in paths.items() if p.exists()}
    if not rows:
        return "Not measured yet: run `make tutorial` (and `make pretrained`).\n"
    table = format_goal_table(rows, real=judge_baseline())  # the shipped judge on real test images
    lines = ["```text", table, "```", ""]
    lines += [goal_summary(f"The {name}", m, name.split()[0]) + "\n" for name, m in rows.items()]
    spread = root / "benchmarks" / "results" / "quick_spread.json"
    if "quick model" in rows and spread.exists():
        lines.append(spread_sentence(json.loads(spread.read_text())) + "\n")
    return "\n".join(lines)


def spread_sentence(saved: dict) -> str:
    """How far the quick model moves between runs: the committed output of benchmarks/quick_spread.py."""
    numbers = "; ".join(f"{METRICS[k].label} {METRICS[k].fmt.format(m)} ± {METRICS[k].fmt.format(sd)}"
                        for k, (m, sd) in saved["summary"].items() if k in ("recon_accuracy", "psnr", "frechet"))
    met = sorted(r["goals_met"] for r in saved["runs"])
    goals = f"{met[0]}" if met[0] == met[-1] else f"{met[0]} to {met[-1]}"
    steps = sorted(r["steps"] for r in saved["runs"])
    return (f"One run is one draw: the quick model trains for a time budget, so its numbers move between runs. Over "
            f"seeds {saved['seeds']} (`python benchmarks/quick_spread.py` on {saved['cpu']}, {saved['threads']} "
            f"threads, {saved['minutes']:g} min each, {steps[0]:,} to {steps[-1]:,} steps), the mean ± sd is: "
            f"{numbers}. Each run met {goals} of the 9 goals.")


def study(table: str):
    """A section renderer for benchmarks/results/TABLE.json, the committed output of `quality.py TABLE`."""
    def render_study(root: Path = ROOT, up: str = "") -> str:
        path = (root / SKIP_STUDY.relative_to(SKIP_STUDY.parents[2]) if table == "skips" else
                root / "benchmarks" / "results" / f"{table}.json")
        if not path.exists():
            return f"Not measured yet: run `python benchmarks/quality.py {table}`.\n"
        saved = json.loads(path.read_text())
        reference = next(iter(saved["results"]))
        command = saved.get("command", f"python benchmarks/quality.py {table} --seconds {saved['seconds']:g}")
        budget = (f"{saved['steps']} steps per model" if saved.get("steps") else
                  f"{saved['seconds']:g} s of training per model (CPU time)")
        head = (f"Measured by `{command}` on {saved['cpu']}, {saved['threads']} thread; {budget}, seeds "
                f"{saved['seeds']}; each cell is the mean ± sd over the seeds. The judge on real test images: accuracy "
                f"{saved['real_baseline']['accuracy']:.3f}, IS {saved['real_baseline']['inception_score']:.2f}, "
                f"Fréchet {saved['real_baseline']['frechet']:.1f}.")
        wins = [f"- {name}: {len(better)} of 10 ({', '.join(better) or 'none'})"
                for name, better in saved["wins"].items()]
        return "\n".join([head, "", saved["table"], "",
                          f"Numbers where a row beats *{reference}* by more than both spreads together:", "",
                          *wins]) + "\n"
    return render_study


SECTIONS = {"spec": spec_tables, "notebooks": notebook_rows, "params": parameter_tables, "models": model_numbers,
            "skips": study("skips"), "mlp": study("mlp"), "levers": study("levers"),
            "recipe_steps": study("recipe_steps"), "recipe_time": study("recipe_time")}


def documents(root: Path = ROOT) -> list:
    """The files that may hold generated sections: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def sections_in(text: str) -> list:
    """The names of the generated sections in `text`, in order; ValueError for an unknown name or a missing end."""
    names = START.findall(text)
    for name in names:
        if name not in SECTIONS:
            raise ValueError(f"unknown generated section {name!r}; known: {sorted(SECTIONS)}")
        if text.count(f"<!-- {name}:end -->") != 1 or text.count(f"<!-- {name}:start -->") != 1:
            raise ValueError(f"section {name!r} needs exactly one <!-- {name}:start --> and one <!-- {name}:end -->")
    return names


def render(text: str, root: Path = ROOT, up: str = "") -> str:
    """`text` with every generated section it holds brought up to date; `up` leads from its file to the root."""
    for name in sections_in(text):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{SECTIONS[name](root, up)}{end}{tail}"
    return text


def sync(root: Path = ROOT, check: bool = False) -> list:
    """Bring every document's generated sections up to date (with check, change nothing); returns the stale
    files, relative to root. ValueError when a section stands in no file."""
    stale, seen = [], set()
    for path in documents(root):
        old = path.read_text()
        seen.update(sections_in(old))
        new = render(old, root, "../" * len(path.parent.relative_to(root).parts))
        if new != old:
            stale.append(str(path.relative_to(root)))
            if not check:
                path.write_text(new)
    missing = sorted(set(SECTIONS) - seen)
    if missing:
        raise ValueError(f"generated section(s) {missing} stand in none of README.md and docs/*.md")
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any section is stale")
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args(argv)
    try:
        stale = sync(Path(args.root), check=args.check)
    except ValueError as err:  # a bad marker, or a parameter the generator cannot document
        print(f"tools.readme: {err}", file=sys.stderr)
        return 2
    for name in stale:
        print(f"{name}: generated sections " + ("are stale: run `python -m tools.readme`" if args.check else "rewritten"))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
