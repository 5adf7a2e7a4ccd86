"""`python -m tools.readme`: regenerate the README's generated sections; `--check` only compares.

Generated sections sit between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers:
- `spec`: both step tables, from `spec.py`;
- `notebooks`: one row per notebooks/NN_*.ipynb, from each notebook's title and first paragraph;
- `params`: each parameterised notebook's papermill parameters, with defaults (a `None` that stands for the
  tutorial's default shows that default, from `tutorial_config.py`) and comments.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from vae_utils import spec

ROOT = Path(__file__).resolve().parents[1]


def notebook_rows(root: Path = ROOT) -> str:
    """A Markdown table of the notebooks: link, title, and what it teaches (the title cell's last paragraph)."""
    lines = ["| Notebook | Title | What it teaches |", "|---|---|---|"]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cell = json.loads(path.read_text())["cells"][0]
        text = "".join(cell["source"])
        title = re.sub(r"^#\s*", "", text.splitlines()[0]).strip()
        paras = [p.strip() for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith(("#", "[!["))]
        about = " ".join(paras[0].split()) if paras else ""
        lines.append(f"| [{path.stem}](notebooks/{path.name}) | {title} | {about} |")
    return "\n".join(lines) + "\n"


TUTORIAL_DEFAULT = "; None: the tutorial default"  # how a notebook marks a parameter that tutorial_config fills in


def _literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parameter_tables(root: Path = ROOT) -> str:
    """One table per parameterised notebook, read by papermill itself (`papermill --help-notebook`); a parameter
    whose default is None, "the tutorial default", shows the value it stands for, from `tutorial_config`."""
    import papermill as pm

    from vae_utils.tutorial_config import notebook_defaults

    out = ["A default marked *(tutorial)* comes from `vae_utils/tutorial_config.py`, the one place the tutorial's "
           "defaults are defined; in the notebook the parameter is `None`, which stands for it.", ""]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        params = pm.inspect_notebook(str(path))
        if not params:
            continue
        out += [f"**{path.name}**", "", "| Parameter | Default | Meaning |", "|---|---|---|"]
        for p in params.values():
            default, help = f"`{p['default']}`", p["help"]
            if p["default"] == "None" and help.endswith(TUTORIAL_DEFAULT):
                default = f"`{_literal(notebook_defaults(path.name[:2])[p['name']])}` *(tutorial)*"
                help = help[:-len(TUTORIAL_DEFAULT)]
            out.append(f"| `{p['name']}` | {default} | {help} |")
        out.append("")
    return "\n".join(out)


SECTIONS = {"spec": spec.readme_section, "notebooks": notebook_rows, "params": parameter_tables}


def render(text: str) -> str:
    """The README text with every generated section brought up to date."""
    for name, make in SECTIONS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{make()}{end}{tail}"
    return text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = ROOT / "README.md"
    old = path.read_text()
    new = render(old)
    if "--check" in argv:
        if new != old:
            print("README.md's generated sections are stale: run `python -m tools.readme`")
            return 1
        return 0
    path.write_text(new)
    print("README.md: generated sections rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
