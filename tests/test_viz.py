"""Every picture function runs on a small model and returns a figure of the expected layout; runtime.save_figure
writes it only when given a folder."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from vae_utils import SkipVAE, spec, viz  # noqa: E402
from vae_utils.data import make_dataset  # noqa: E402
from vae_utils.runtime import save_figure  # noqa: E402
from vae_utils.sampling import encode_means  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ds = make_dataset(size=40)
    return SkipVAE(in_channels=1, skip_source="z").eval(), ds


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _n_images(fig):
    return sum(len(ax.get_images()) for ax in fig.axes)


def _cells(fig):
    """The numbers written in a heatmap's cells, as an array indexed like the heatmap."""
    ax = fig.axes[0]
    texts = [(t.get_position(), float(t.get_text())) for t in ax.texts]
    rows, cols = 1 + max(int(y) for (x, y), _ in texts), 1 + max(int(x) for (x, y), _ in texts)
    out = np.full((rows, cols), np.nan)
    for (x, y), v in texts:
        out[int(y), int(x)] = v
    return out


def _labels(ticks):
    return [t.get_text() for t in ticks]


def test_save_figure_writes_only_when_given_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = viz.show_grid(torch.rand(4, 1, 64, 64), nrow=2)
    assert save_figure(fig, "grid", None) is fig
    assert list(tmp_path.rglob("*")) == []  # nothing written anywhere
    assert save_figure(fig, "grid", tmp_path / "figures") is fig
    assert save_figure(fig, "again.png", tmp_path / "figures") is fig  # the suffix is not doubled
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["again.png", "grid.png"]
    assert (tmp_path / "figures" / "grid.png").read_bytes().startswith(b"\x89PNG")


def test_grid_reconstructions_and_samples(setup):
    model, ds = setup
    assert _n_images(viz.show_grid(ds.images[:10], nrow=5)) == 1
    fig = viz.reconstructions(model, ds.images[:6])
    assert _n_images(fig) == 1 and _labels(fig.axes[0].get_yticklabels()) == ["input", "reconstruction"]
    assert _n_images(viz.show_grid(model.sample(8, torch.Generator().manual_seed(0)))) == 1


def test_grids_and_labelled_rows():
    x = torch.rand(12, 1, 64, 64)
    fig = viz.grids({"a": x, "b": x[:6]}, nrow=6)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"] and _n_images(fig) == 2
    fig = viz.labelled_rows({"one": x[:4], "two": x[4:8], "three": x[8:]})
    assert _labels(fig.axes[0].get_yticklabels()) == ["one", "two", "three"]
    assert fig.axes[0].get_images()[0].get_array().shape[:2] == (3 * 66 + 2, 4 * 66 + 2)  # 3 rows of 4, padded


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(256, 1, 1), torch.randn(256, 1, 1)
    assert torch.allclose(viz.slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(viz.slerp(a, b, 1.0), b, atol=1e-5)
    u, v = a / a.norm(), b / b.norm()
    assert torch.isclose(viz.slerp(u, v, 0.37).norm(), torch.tensor(1.0), atol=1e-5)  # stays on the sphere
    assert torch.allclose(viz.slerp(a, a, 0.5), a)  # parallel codes: no division by sin(0)


def test_interpolation_and_traversal(setup):
    model, ds = setup
    fig = viz.interpolation(model, ds.images[0], ds.images[1], steps=5)
    assert _n_images(fig) == 1 and len(fig.axes[0].get_xticklabels()) == 5
    assert _labels(fig.axes[0].get_yticklabels()) == ["linear", "spherical"]
    fig = viz.traversal(model, ds.images[0], channels=[3, 7, 11], steps=5)
    assert _labels(fig.axes[0].get_yticklabels()) == ["z[3]", "z[7]", "z[11]"]
    assert _labels(fig.axes[0].get_xticklabels()) == ["-3.0", "-1.5", "+0.0", "+1.5", "+3.0"]
    fig = viz.traversal(model, ds.images[0], channels=[3, 7], steps=3, labels=["x", "scale"])
    assert _labels(fig.axes[0].get_yticklabels()) == ["z[3]\nx", "z[7]\nscale"]


def test_interpolation_works_with_encoder_skips():
    torch.manual_seed(0)
    model, x = SkipVAE(in_channels=1, skips="all").eval(), torch.rand(2, 1, 64, 64)
    assert _n_images(viz.interpolation(model, x[0], x[1], steps=3)) == 1


def test_rate_bars_count_the_active_channels():
    rate = [0.0] * 250 + [0.5, 2.0, 0.02, 0.005, 3.0, 0.0]
    fig = viz.rate_per_channel(rate, active=[r > 0.01 for r in rate])
    assert "4 of 256 active" in fig.axes[0].get_title()
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:3] == [3.0, 2.0, 0.5] and heights == sorted(heights, reverse=True)  # largest first


def test_embedding_has_both_methods_for_every_colouring(setup):
    model, ds = setup
    means = encode_means(model, ds.images).flatten(1)
    assert means.shape == (40, 256)
    colors = {"shape": (ds.labels.tolist(), ds.label_names), "x": ds.factors[:, 3].tolist()}
    fig = viz.embedding(means, colors)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sorted(titles) == sorted(f"{m}, coloured by {c}" for m in ("PCA", "t-SNE") for c in colors)
    assert len(fig.axes) == 6  # plus one colour bar per numeric colouring


def test_factor_correlation_writes_each_value_and_adds_each_factors_best_channel():
    torch.manual_seed(0)
    factors = torch.rand(200, 2)
    means = torch.randn(200, 5)
    means[:, 4] = 3 * factors[:, 1] + 0.01 * torch.randn(200)  # factor b lives in channel 4
    fig = viz.factor_correlation(means, factors, ["a", "b"], channels=[0, 1])
    assert _labels(fig.axes[0].get_yticklabels()) == ["a", "b"]
    columns = _labels(fig.axes[0].get_xticklabels())
    assert columns[:2] == ["z[0]", "z[1]"] and "z[4]" in columns  # b's best channel, added after the given ones
    cells = _cells(fig)
    assert cells.shape == (2, len(columns)) and ((0 <= cells) & (cells <= 1)).all()
    assert cells[1, columns.index("z[4]")] > 0.99 and cells[0, columns.index("z[4]")] < 0.3


def test_factor_correlation_leaves_out_shape_and_a_rotation_of_a_quarter_turn_or_more():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(200, 4, generator=g)
    wide = torch.stack([torch.randint(0, 4, (200,), generator=g).float(), torch.rand(200, generator=g) * 6.2,
                        torch.rand(200, generator=g)], 1)  # shape, rotation 0..355 degrees, x
    fig = viz.factor_correlation(means, wide, ["shape", "rotation", "x"], channels=[0, 1])
    assert _labels(fig.axes[0].get_yticklabels()) == ["x"]
    narrow = wide.clone()
    narrow[:, 1] = (narrow[:, 1] / 6.2 - 0.5) * 1.04  # -30..30 degrees
    fig = viz.factor_correlation(means, narrow, ["shape", "rotation", "x"], channels=[0, 1])
    assert _labels(fig.axes[0].get_yticklabels()) == ["rotation", "x"]


def _history(n=10):
    return {"step": [{"step": i, "epoch": i / 10, "loss": 100.0 - i, "distortion": 90.0 - i, "rate": float(i),
                      "beta": min(1.0, i / 5)} for i in range(1, n + 1)],
            "epoch": [{"epoch": 1, "images": 640, "val_neg_elbo": 95.0, "val_distortion": 85.0, "val_rate": 10.0}]}


def test_history_plot_shows_distortion_and_rate_on_log_axes():
    fig = viz.plot_history(_history())
    panels = fig.axes[:3]
    assert [ax.get_ylabel() for ax in panels] == ["nats per image"] * 3
    assert all(ax.get_yscale() == "log" for ax in panels)
    distortion = panels[1]
    assert list(distortion.get_lines()[0].get_ydata()) == [90.0 - i for i in range(1, 11)]
    assert list(distortion.get_lines()[1].get_ydata()) == [85.0]  # validation
    assert list(fig.axes[3].get_lines()[0].get_ydata()) == [min(1.0, i / 5) for i in range(1, 11)]  # beta, dashed


def test_loss_curves_draw_one_line_per_run():
    history = _history()
    fig = viz.loss_curves({"warm-up": history, "none": history})
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2, 2]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [float(s) for s in range(1, 11)]  # the rate


def test_compare_runs_puts_validation_against_images_seen():
    long = {"epoch": [{"images": n, "val_neg_elbo": 200.0 / (1 + k)} for k, n in enumerate((640, 6400, 64000))]}
    fig = viz.compare_runs({"quick": _history(), "long": long})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [line.get_label() for line in ax.get_lines()] == ["quick", "long"]
    assert list(ax.get_lines()[1].get_xdata()) == [640, 6400, 64000]


def test_factor_histograms_name_the_shapes_and_count_every_image():
    ds = make_dataset("shapes", "train", size=200)
    fig = viz.factor_histograms(ds)
    assert len(fig.axes) == len(ds.factor_names)
    assert _labels(fig.axes[0].get_xticklabels()) == ds.label_names
    for ax in fig.axes:
        assert sum(p.get_height() for p in ax.patches) == len(ds)


def test_the_architecture_figure_is_drawn_from_the_spec():
    fig = viz.architecture_figure()
    ax = fig.axes[0]
    skips = [r for r in spec.DECODER if r.kind == "skip"]
    dashed = [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_linestyle() == "--"]
    assert len(dashed) == len(skips)  # one dashed arrow per "Add Skip Connection" row
    text = "\n".join(t.get_text() for t in ax.texts)
    assert all(f"skip → decoder {r.step}" in text for r in skips)
    assert spec.ENCODER[-1].symbolic() in text and spec.DECODER[-1].symbolic() in text
