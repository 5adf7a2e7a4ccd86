"""The latent explorer: sliders on latent channels redraw the decoded image (ipywidgets 7 and 8, so Colab too).

Without a front end (nbval, papermill, a script), `show_explorer` also shows a static traversal of the same channels.
"""
import io
from typing import Sequence

import ipywidgets as w
import torch
import torch.nn.functional as F
from IPython.display import display
from torchvision.utils import save_image

from . import viz


def _png(image: torch.Tensor, scale: int = 4) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes, enlarged with nearest-neighbour so pixels stay crisp."""
    buf = io.BytesIO()
    save_image(F.interpolate(image[None].detach().float().cpu(), scale_factor=scale, mode="nearest"), buf, format="png")
    return buf.getvalue()


class LatentExplorer:
    """Sliders on the top latent channels drive the decoded image; `.widget` is the ipywidgets box to display."""

    def __init__(self, model, images: torch.Tensor, channels: Sequence[int], labels: Sequence[str] = (),
                 span: float = 3.0):
        self.model, self.images, self.channels = model.eval(), images, list(channels)
        options = [(f"test image {i}" + (f" ({labels[i]})" if len(labels) > i else ""), i) for i in range(len(images))]
        self.picker = w.Dropdown(options=options, value=0, description="start from")
        self.sliders = [w.FloatSlider(value=0.0, min=-span, max=span, step=0.1, description=f"z[{c}]",
                                      continuous_update=False, readout_format=".1f").add_class("vae-explorer-slider")
                        for c in self.channels]  # add_class returns the widget
        self.reset_button = w.Button(description="reset", tooltip="back to the image's posterior mean")
        self.image = w.Image(format="png", width=256, height=256).add_class("vae-explorer-image")
        self.original = w.Image(format="png", width=256, height=256)
        self.picker.observe(lambda change: self.reset(), names="value")
        for s in self.sliders:
            s.observe(lambda change: self.redraw(), names="value")
        self.reset_button.on_click(lambda button: self.reset())
        self.widget = w.HBox([
            w.VBox([w.HTML("<b>input</b>"), self.original, w.HTML("<b>decoded</b>"), self.image]),
            w.VBox([self.picker, *self.sliders, self.reset_button]),
        ]).add_class("vae-explorer")
        self.reset()

    @torch.no_grad()
    def reset(self):
        """Encode the picked image and set every slider to its posterior mean."""
        x = self.images[self.picker.value][None].to(next(self.model.parameters()).device)
        self.mu, _, self.skips = self.model.encode(x)
        self.original.value = _png(x[0])
        self._quiet = True
        for s, c in zip(self.sliders, self.channels):
            s.value = float(self.mu[0, c].mean().clamp(s.min, s.max))
        self._quiet = False
        self.redraw()

    @torch.no_grad()
    def decoded(self) -> torch.Tensor:
        """The image (C, H, W) on the CPU: the posterior mean with each slider's channel set to its value, decoded."""
        z = self.mu.clone()
        for s, c in zip(self.sliders, self.channels):
            z[:, c] = s.value
        return self.model.decode(z, self.skips)[0].cpu()

    def redraw(self):
        if not getattr(self, "_quiet", False):
            self.image.value = _png(self.decoded())


def show_explorer(model, images: torch.Tensor, channels: Sequence[int], labels: Sequence[str] = ()):
    """Display the explorer, and a static traversal of its channels for readers without a live kernel; return it."""
    explorer = LatentExplorer(model, images, channels, labels)
    display(explorer.widget)
    viz.traversal(model, images[0], channels)
    return explorer
