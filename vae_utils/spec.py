"""The two step tables of the VAE-SkipNet spec, as data.

Source: the step tables of `VAE-SkipNet-README.md`. The model's stages, `shape_report`, the notebooks, docs/spec.md
and the architecture figure all derive from them. Shapes are channels last, as in the spec: (H/d, W/d, channels).
"""
from dataclasses import dataclass
from typing import Optional, Union

C = "C"  # the input image's channel count
OUTPUT = "Output"  # the output channel count; equal to C, because Step 22 adds the input image
SCALAR = "Scalar"


@dataclass(frozen=True)
class Step:
    """One row of a spec table: the step, the operation, and the shape as (divisor, channels)."""

    step: str
    operation: str
    divisor: Optional[int]  # H and W are divided by this; None for the "Scalar" row
    channels: Union[int, str, None]

    def shape(self, height: int, width: int, channels: int) -> Union[tuple, str]:
        """The spec shape (H, W, C) for an input of this size, or "Scalar"."""
        if self.divisor is None:
            return SCALAR
        ch = channels if self.channels in (C, OUTPUT) else self.channels
        return (height // self.divisor, width // self.divisor, ch)

    def symbolic(self) -> str:
        """The shape as the spec writes it, e.g. "(H/2, W/2, 16)"."""
        if self.divisor is None:
            return SCALAR
        d = "" if self.divisor == 1 else f"/{self.divisor}"
        return f"(H{d}, W{d}, {self.channels})"

    @property
    def kind(self) -> str:
        """What the row does: input, conv, pool, stats, latent, upconv or skip."""
        op = self.operation
        for prefix, kind in (("Input", "input"), ("ConvTranspose", "upconv"), ("Conv", "conv"),
                             ("MaxPool", "pool"), ("Compute", "stats"), ("Latent", "latent"),
                             ("Add Skip", "skip")):
            if op.startswith(prefix):
                return kind
        raise ValueError(f"unknown operation {op!r}")


# fmt: off
ENCODER: tuple[Step, ...] = (
    Step("Input",   "Input Image",                       1,    C),
    Step("Step 1",  "Conv(16 filters, 3×3, LeakyReLU)",  1,    16),
    Step("Step 2",  "Conv(16 filters, 3×3, LeakyReLU)",  1,    16),
    Step("Step 3",  "MaxPool(2×2)",                      2,    16),
    Step("Step 4",  "Conv(32 filters, 3×3, LeakyReLU)",  2,    32),
    Step("Step 5",  "Conv(32 filters, 3×3, LeakyReLU)",  2,    32),
    Step("Step 6",  "MaxPool(2×2)",                      4,    32),
    Step("Step 7",  "Conv(64 filters, 3×3, LeakyReLU)",  4,    64),
    Step("Step 8",  "Conv(64 filters, 3×3, LeakyReLU)",  4,    64),
    Step("Step 9",  "MaxPool(2×2)",                      8,    64),
    Step("Step 10", "Conv(128 filters, 3×3, LeakyReLU)", 8,    128),
    Step("Step 11", "Conv(128 filters, 3×3, LeakyReLU)", 8,    128),
    Step("Step 12", "MaxPool(2×2)",                      16,   128),
    Step("Step 13", "Conv(256 filters, 3×3, LeakyReLU)", 16,   256),
    Step("Step 14", "Conv(256 filters, 3×3, LeakyReLU)", 16,   256),
    Step("Step 15", "MaxPool(2×2)",                      32,   256),
    Step("Step 16", "Compute μ and log(σ²)",             None, None),
    Step("Step 17", "Latent Space Parameterization",     64,   256),
)

DECODER: tuple[Step, ...] = (
    Step("Step 1",  "ConvTranspose(256 filters, 3×3)",   32, 256),
    Step("Step 2",  "Add Skip Connection",               32, 256),
    Step("Step 3",  "Conv(256 filters, 3×3, LeakyReLU)", 32, 256),
    Step("Step 4",  "Conv(256 filters, 3×3, LeakyReLU)", 32, 256),
    Step("Step 5",  "ConvTranspose(128 filters, 3×3)",   16, 128),
    Step("Step 6",  "Add Skip Connection",               16, 128),
    Step("Step 7",  "Conv(128 filters, 3×3, LeakyReLU)", 16, 128),
    Step("Step 8",  "Conv(128 filters, 3×3, LeakyReLU)", 16, 128),
    Step("Step 9",  "ConvTranspose(64 filters, 3×3)",    8,  64),
    Step("Step 10", "Add Skip Connection",               8,  64),
    Step("Step 11", "Conv(64 filters, 3×3, LeakyReLU)",  8,  64),
    Step("Step 12", "Conv(64 filters, 3×3, LeakyReLU)",  8,  64),
    Step("Step 13", "ConvTranspose(32 filters, 3×3)",    4,  32),
    Step("Step 14", "Add Skip Connection",               4,  32),
    Step("Step 15", "Conv(32 filters, 3×3, LeakyReLU)",  4,  32),
    Step("Step 16", "Conv(32 filters, 3×3, LeakyReLU)",  4,  32),
    Step("Step 17", "ConvTranspose(16 filters, 3×3)",    2,  16),
    Step("Step 18", "Add Skip Connection",               2,  16),
    Step("Step 19", "Conv(16 filters, 3×3, LeakyReLU)",  2,  16),
    Step("Step 20", "Conv(16 filters, 3×3, LeakyReLU)",  2,  16),
    Step("Step 21", "ConvTranspose(Output, 3×3)",        1,  OUTPUT),
    Step("Step 22", "Add Skip Connection",               1,  OUTPUT),
    Step("Step 23", "Conv(Output filters, 3×3)",         1,  OUTPUT),
    Step("Step 24", "Conv(Output filters, 3×3)",         1,  OUTPUT),
)
# fmt: on

TABLES = {"encoder": ENCODER, "decoder": DECODER}
DOWNSAMPLING = 64  # six halvings: five stage pools plus the latent pool (Step 17)


def check_size(n: int, name: str = "image size") -> None:
    """H and W must be positive multiples of 64: six 2x2 pools have to divide them evenly."""
    if not isinstance(n, int) or n < DOWNSAMPLING or n % DOWNSAMPLING:
        fix = max(DOWNSAMPLING, DOWNSAMPLING * round(n / DOWNSAMPLING)) if isinstance(n, (int, float)) else DOWNSAMPLING
        raise ValueError(f"{name} {n!r} is not a multiple of 64 (six 2x2 pools must divide it); resize to {fix}")


def check_image_size(image_size) -> tuple:
    """(H, W) from an int (square) or a pair, each a positive multiple of 64; otherwise a ValueError with the fix."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_size(h, "image height")
    check_size(w, "image width")
    return h, w


def encoder_stages() -> list[tuple[int, tuple[Step, Step, Step]]]:
    """The encoder as (filters, (conv, conv, pool)) stages, read off the table."""
    rows = [r for r in ENCODER if r.kind in ("conv", "pool")]
    stages = [tuple(rows[i:i + 3]) for i in range(0, len(rows), 3)]
    assert all([r.kind for r in s] == ["conv", "conv", "pool"] for s in stages), "table is not conv-conv-pool"
    return [(s[0].channels, s) for s in stages]


def decoder_stages() -> list[tuple[Union[int, str], tuple[Step, Step, Step, Step]]]:
    """The decoder as (filters, (upconv, skip, conv, conv)) stages, read off the table."""
    stages = [tuple(DECODER[i:i + 4]) for i in range(0, len(DECODER), 4)]
    assert all([r.kind for r in s] == ["upconv", "skip", "conv", "conv"] for s in stages), "table is not up-skip-conv-conv"
    return [(s[0].channels, s) for s in stages]


def skip_level(step: Step) -> int:
    """The skip level an "Add Skip Connection" row adds: k means the tensor at H/2**k (0 is the input image)."""
    return step.divisor.bit_length() - 1
