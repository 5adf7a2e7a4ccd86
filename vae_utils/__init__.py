"""vae_utils: the code the VAE-SkipNet notebooks share. See the README for what each file holds."""
import os

# OpenMP threads that wait by sleeping, not spinning: on a CPU shared with other busy processes this makes a
# training step 2-4x faster (benchmarks/throughput.py); it only takes effect if set before torch is imported,
# and it is inherited by every notebook kernel started from here. Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .model import SkipVAE, VAEConfig  # noqa: E402
from .report import shape_report

__all__ = ["SkipVAE", "VAEConfig", "shape_report"]
