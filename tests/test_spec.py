"""The spec tables as data: complete, consistent with the published tables, and docs/spec.md shows them.

The published tables are vendored in tests/fixtures/spec_tables.md (copied verbatim from the specification), so the
comparison runs in every clone; one test checks the copy against the specification when it sits beside the checkout.
"""
import re
from pathlib import Path

import pytest

from vae_utils import spec

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "spec_tables.md"
SEED_README = ROOT.parent / "shared" / "seed" / "VAE-SkipNet-README.md"
SECTIONS = {"encoder": "### Encoder Steps", "decoder": "### Decoder Steps"}


def _section(text, heading):
    """The lines from `heading` to the next heading of any level, trailing blank lines dropped."""
    lines = text.split(heading, 1)[1].splitlines()
    body = []
    for line in lines[1:]:
        if line.startswith("#"):
            break
        body.append(line.rstrip())
    while body and not body[-1]:
        body.pop()
    return [heading, *body]


def _table_rows(lines):
    """(step, operation, shape) rows of a Markdown table, in spec.py's notation (3×3, μ, no spaces in shapes)."""
    rows = []
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (cells[0].startswith("Step ") or cells[0] == "Input"):
            op = re.sub(r"\$\s*3\s*\\times\s*3\s*\$", "3×3", cells[1])
            op = re.sub(r"\$\s*2\s*\\times\s*2\s*\$", "2×2", op)
            op = op.replace(r"$\mu$", "μ").replace(r"$\log(\sigma^2)$", "log(σ²)")
            rows.append((cells[0], op, cells[2].replace(" ", "")))
    return rows


def _ours(part):
    return [(r.step, r.operation, r.symbolic().replace(" ", "")) for r in spec.TABLES[part]]


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_tables_match_the_published_spec(part):
    """Independent reference: every row of the published table (vendored), parsed and compared."""
    published = _table_rows(_section(FIXTURE.read_text(), SECTIONS[part]))
    assert len(published) == (18 if part == "encoder" else 24)  # the parser saw every row
    assert _ours(part) == published


@pytest.mark.skipif(not SEED_README.exists(), reason="shared/seed is not beside this checkout")
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_the_vendored_tables_are_the_specifications_own(part):
    assert _section(FIXTURE.read_text(), SECTIONS[part]) == _section(SEED_README.read_text(), SECTIONS[part])


def test_the_parser_would_catch_a_changed_row():
    text = FIXTURE.read_text().replace("| Step 9  | MaxPool($2 \\times 2$)                       | (H/8, W/8, 64)",
                                       "| Step 9  | MaxPool($2 \\times 2$)                       | (H/4, W/4, 64)")
    assert text != FIXTURE.read_text()
    assert _ours("encoder") != _table_rows(_section(text, SECTIONS["encoder"]))


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


@pytest.mark.parametrize("part,section", [("encoder", "### Encoder steps"), ("decoder", "### Decoder steps")])
def test_the_spec_page_shows_every_row(part, section):
    """docs/spec.md's generated tables hold every row of spec.py, read back as a Markdown table."""
    assert _table_rows(_section((ROOT / "docs" / "spec.md").read_text(), section)) == _ours(part), \
        "run `python -m tools.readme`"


def test_check_size_names_the_fix():
    spec.check_size(128)
    with pytest.raises(ValueError, match=r"image height 100 is not a multiple of 64 .*; resize to 128"):
        spec.check_size(100, "image height")
    with pytest.raises(ValueError, match="resize to 64"):
        spec.check_size(0)
