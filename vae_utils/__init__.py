"""vae_utils: the code the VAE-SkipNet notebooks share. docs/package.md says what each file holds."""
from .model import SkipVAE, VAEConfig
from .report import shape_report

__all__ = ["SkipVAE", "VAEConfig", "shape_report"]
