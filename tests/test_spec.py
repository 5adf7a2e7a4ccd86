"""The spec tables as data: complete, consistent with the published tables, and docs/spec.md shows them."""
import re
from pathlib import Path

import pytest

from vae_utils import spec

ROOT = Path(__file__).resolve().parents[1]
SEED_README = ROOT.parent / "shared" / "seed" / "VAE-SkipNet-README.md"


def test_tables_have_every_step():
    assert [r.step for r in spec.ENCODER] == ["Input"] + [f"Step {i}" for i in range(1, 18)]
    assert [r.step for r in spec.DECODER] == [f"Step {i}" for i in range(1, 25)]


def test_stages_read_off_the_table():
    assert [f for f, _ in spec.encoder_stages()] == [16, 32, 64, 128, 256]
    assert [f for f, _ in spec.decoder_stages()] == [256, 128, 64, 32, 16, spec.OUTPUT]
    assert [spec.skip_level(s[1]) for _, s in spec.decoder_stages()] == [5, 4, 3, 2, 1, 0]


def test_every_pool_halves_and_every_upconv_doubles():
    divisors = [r.divisor for r in spec.ENCODER if r.kind in ("input", "pool")]
    assert divisors == [1, 2, 4, 8, 16, 32]
    ups = [r.divisor for r in spec.DECODER if r.kind == "upconv"]
    assert ups == [32, 16, 8, 4, 2, 1]


def test_shape_for_a_concrete_input():
    assert spec.ENCODER[0].shape(256, 128, 3) == (256, 128, 3)
    assert spec.ENCODER[-1].shape(256, 256, 3) == (4, 4, 256)  # NOTES.md: 4x4x256 for a 256x256 input
    assert spec.ENCODER[-2].shape(256, 256, 3) == spec.SCALAR
    assert spec.DECODER[-1].shape(64, 64, 1) == (64, 64, 1)


def _table_rows(text, section):
    """(step, operation, shape) rows of the Markdown table under `section`, in the spec's notation."""
    body = text.split(section, 1)[1].split("###", 1)[0].split("## Installation", 1)[0]
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (cells[0].startswith("Step ") or cells[0] == "Input"):
            op = re.sub(r"\$\s*3\s*\\times\s*3\s*\$", "3×3", cells[1])
            op = re.sub(r"\$\s*2\s*\\times\s*2\s*\$", "2×2", op)
            op = op.replace(r"$\mu$", "μ").replace(r"$\log(\sigma^2)$", "log(σ²)")
            rows.append((cells[0], op, cells[2].replace(" ", "")))
    return rows


@pytest.mark.skipif(not SEED_README.exists(), reason="shared/seed is not beside this checkout")
@pytest.mark.parametrize("part,section", [("encoder", "### Encoder Steps"), ("decoder", "### Decoder Steps")])
def test_tables_match_the_published_spec(part, section):
    """Independent reference: parse the seed README's table and compare every row."""
    ours = [(r.step, r.operation, r.symbolic().replace(" ", "")) for r in spec.TABLES[part]]
    assert ours == _table_rows(SEED_README.read_text(), section)


@pytest.mark.parametrize("part,section", [("encoder", "### Encoder steps"), ("decoder", "### Decoder steps")])
def test_the_spec_page_shows_every_row(part, section):
    """docs/spec.md's generated tables hold every row of spec.py, read back as a Markdown table."""
    ours = [(r.step, r.operation, r.symbolic().replace(" ", "")) for r in spec.TABLES[part]]
    assert _table_rows((ROOT / "docs" / "spec.md").read_text(), section) == ours, "run `python -m tools.readme`"


def test_check_size_names_the_fix():
    spec.check_size(128)
    with pytest.raises(ValueError, match=r"image height 100 is not a multiple of 64 .*; resize to 128"):
        spec.check_size(100, "image height")
    with pytest.raises(ValueError, match="resize to 64"):
        spec.check_size(0)
