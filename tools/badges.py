"""`python -m tools.badges`: write every Colab/Binder badge and Colab install line from one setting.

The setting is `[tool.vae_utils] github = "OWNER/REPO"` and `branch` in pyproject.toml. It rewrites each
notebook's Colab badge (first markdown cell) and the install URL in its Colab set-up cell, and the README's
Colab and Binder badges. `--check` changes nothing and exits 1, listing what is stale.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

COLAB = "https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{name}"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"  # the image of every Colab badge
BINDER = "https://mybinder.org/v2/gh/{repo}/{branch}?labpath=notebooks"
INSTALL = "git+https://github.com/{repo}@{branch}"
COLAB_RE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/notebooks/([^)\s]+\.ipynb)")
BINDER_RE = re.compile(r"https://mybinder\.org/v2/gh/[^/\s)]+/[^/\s)]+/[^?\s)]+\?labpath=notebooks")
INSTALL_RE = re.compile(r"git\+https://github\.com/[^/\s\"']+/[^@\s\"']+@[^\s\"']+")


def setting(root: Path) -> tuple:
    """(OWNER/REPO, branch) from pyproject.toml's [tool.vae_utils]."""
    text = (root / "pyproject.toml").read_text()
    section = text.split("[tool.vae_utils]", 1)[1].split("\n[", 1)[0]
    repo = re.search(r'^github\s*=\s*"([^"]+)"', section, re.M).group(1)
    branch = re.search(r'^branch\s*=\s*"([^"]+)"', section, re.M).group(1)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ValueError(f"[tool.vae_utils] github must look like OWNER/REPO, got {repo!r}")
    return repo, branch


def _rewrite(text: str, repo: str, branch: str) -> str:
    text = COLAB_RE.sub(lambda m: COLAB.format(repo=repo, branch=branch, name=m.group(1)), text)
    text = BINDER_RE.sub(BINDER.format(repo=repo, branch=branch), text)
    return INSTALL_RE.sub(INSTALL.format(repo=repo, branch=branch), text)


def sync(root: Path, check: bool = False) -> list:
    """Rewrite (or, with check, only list) every badge and install line that does not match the setting."""
    repo, branch = setting(root)
    stale = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            new = _rewrite(cell.source, repo, branch)
            if cell.cell_type == "markdown" and "colab-badge.svg" in cell.source:
                want = COLAB.format(repo=repo, branch=branch, name=path.name)
                if want not in new:  # a badge pointing at another notebook's name
                    new = COLAB_RE.sub(want, new)
            if new != cell.source:
                cell.source, changed = new, True
        if changed:
            stale.append(str(path.relative_to(root)))
            if not check:
                nbformat.write(nb, path)
    readme = root / "README.md"
    text = readme.read_text()
    new = _rewrite(text, repo, branch)
    if new != text:
        stale.append("README.md")
        if not check:
            readme.write_text(new)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any badge is stale")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args(argv)
    stale = sync(Path(args.root), check=args.check)
    for s in stale:
        print(("stale: " if args.check else "rewrote: ") + s)
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
