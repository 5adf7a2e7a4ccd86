"""The latent explorer: moving a slider changes the decoded image; reset restores it."""
import torch

from vae_utils import SkipVAE
from vae_utils.widgets import LatentExplorer


def test_slider_changes_the_decoded_image():
    torch.manual_seed(0)
    explorer = LatentExplorer(SkipVAE(in_channels=1, skip_source="z"), torch.rand(3, 1, 64, 64), channels=[0, 5])
    before = bytes(explorer.image.value)
    assert before.startswith(b"\x89PNG")
    assert [s.continuous_update for s in explorer.sliders] == [False, False]
    explorer.sliders[1].value = explorer.sliders[1].max  # as a user dragging it to +3 sigma
    assert bytes(explorer.image.value) != before
    explorer.reset_button.click()
    assert bytes(explorer.image.value) == before


def test_dropdown_picks_another_image():
    torch.manual_seed(0)
    explorer = LatentExplorer(SkipVAE(in_channels=1, skip_source="z"), torch.rand(3, 1, 64, 64), channels=[0])
    first = bytes(explorer.original.value)
    explorer.picker.value = 2
    assert bytes(explorer.original.value) != first
    assert "vae-explorer-image" in explorer.image._dom_classes
    assert all("vae-explorer-slider" in s._dom_classes for s in explorer.sliders)


def test_show_explorer_also_draws_a_static_traversal_of_the_same_channels(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae_utils.widgets import show_explorer

    plt.close("all")
    torch.manual_seed(0)
    explorer = show_explorer(SkipVAE(in_channels=1, skip_source="z"), torch.rand(2, 1, 64, 64), channels=[4, 9])
    assert [s.description for s in explorer.sliders] == ["z[4]", "z[9]"]
    (number,) = plt.get_fignums()  # for readers without a live kernel
    rows = [t.get_text() for t in plt.figure(number).axes[0].get_yticklabels()]
    assert rows == ["z[4]", "z[9]"]
    plt.close("all")
