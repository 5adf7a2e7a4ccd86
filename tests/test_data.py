"""Datasets: shapes against its own contract, real loaders on files written in each format's on-disk layout."""
import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from vae_utils.data import (DEFAULT_SIZES, NAMES, STYLES, DatasetUnavailable, make_dataset, make_loaders,
                            render_shapes)


def test_shapes_is_deterministic_for_a_seed():
    a, b = make_dataset(size=200, seed=3), make_dataset(size=200, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.images, make_dataset(size=200, seed=4).images)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_images_and_factors_are_in_range(channels):
    ds = make_dataset(size=300, channels=channels, image_size=(128, 64))
    assert ds.images.shape == (300, channels, 128, 64) and ds.images.dtype == torch.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.factor_names == ["shape", "scale", "rotation", "x", "y"] + (["hue"] if channels == 3 else [])
    for j, name in enumerate(ds.factor_names):
        assert ds.grid[name].min() <= ds.factors[:, j].min() and ds.factors[:, j].max() <= ds.grid[name].max(), name
    assert torch.equal(ds.labels, ds.factors[:, 0].long())
    assert set(ds.labels.tolist()) == {0, 1, 2, 3}
    image, label = ds[0]
    assert image.shape == (channels, 128, 64) and isinstance(label, int)


def test_shapes_splits_are_disjoint():
    train, test = make_dataset(split="train"), make_dataset(split="test")
    rows = lambda ds: {tuple(r) for r in ds.factors.tolist()}  # noqa: E731
    assert len(rows(train)) == len(train) and rows(train).isdisjoint(rows(test))


def test_shapes_edges_are_anti_aliased_and_area_follows_scale():
    factors = torch.tensor([[0, s, 0.3, 0.5, 0.5] for s in (0.5, 1.0)])
    img = render_shapes(factors, 64, 64, 1)
    grey = ((img > 0.02) & (img < 0.98)).float().sum((1, 2, 3))
    assert (grey > 0).all()  # partial coverage on the edges
    # a square of half-size s * base_size * 64 px: area (2 * half)^2, whatever the rotation
    expected = (2 * factors[:, 1] * STYLES["shapes"].base_size * 64) ** 2
    assert torch.allclose(img.sum((1, 2, 3)), expected, rtol=0.03)


def test_loaders_are_deterministic_and_batched():
    tr1, te1 = make_loaders(batch_size=32, n_train=100, n_test=40, seed=1)
    tr2, _ = make_loaders(batch_size=32, n_train=100, n_test=40, seed=1)
    b1, b2 = [y for _, y in tr1], [y for _, y in tr2]
    assert len(tr1) == len(b1) == 3 and all(torch.equal(u, v) for u, v in zip(b1, b2))
    assert [len(y) for _, y in te1] == [32, 8]
    assert torch.equal(torch.cat([y for _, y in te1]), te1.dataset.labels)  # test order is kept


def _write_idx(path, array):
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_format_through_torchvision(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    ds = make_dataset(name, "train", 64, root=tmp_path)
    assert ds.images.shape == (12, 1, 64, 64) and 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.labels.tolist() == [i % 10 for i in range(12)] and len(ds.label_names) == 10
    rgb = make_dataset(name, "test", 128, channels=3, root=tmp_path)
    assert rgb.images.shape == (5, 3, 128, 128)


@pytest.mark.parametrize("name,where", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py"),
                                        ("fashion-mnist", "FashionMNIST/raw")])
def test_missing_files_say_where_to_put_them(tmp_path, name, where):
    with pytest.raises(DatasetUnavailable) as err:
        make_dataset(name, root=tmp_path)
    msg = str(err.value)
    assert where in msg and "download=True" in msg and "dataset='shapes' works offline" in msg
    assert err.value.__suppress_context__  # no traceback from deep inside torchvision


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("cats", "dogs"):
        (tmp_path / sub).mkdir()
        for i in range(6):
            arr = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / sub / f"{i}.{'png' if i % 2 else 'jpg'}")
    return tmp_path


def test_folder_of_png_and_jpeg(tmp_path):
    root = _folder(tmp_path)
    train = make_dataset(f"folder:{root}", "train", 64)
    test = make_dataset(f"folder:{root}", "test", 64, channels=1)
    assert len(train) + len(test) == 12 and len(test) == 1
    assert train.images.shape[1:] == (3, 64, 64) and test.images.shape[1:] == (1, 64, 64)
    assert train.label_names == ["cats", "dogs"] and set(train.labels.tolist()) <= {0, 1}


def test_folder_reports_a_corrupt_image_by_path(tmp_path):
    root = _folder(tmp_path)
    bad = root / "cats" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png"):
        make_dataset(f"folder:{root}", "train", 64, seed=0)  # 13 files: the corrupt one lands in train or test
        make_dataset(f"folder:{root}", "test", 64, seed=0)


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailable, match="no images"):
        make_dataset(f"folder:{tmp_path}")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        make_dataset("imagenet")
    assert all(n in str(err.value) for n in NAMES)


@pytest.mark.parametrize("size", [32, 100, (64, 96)])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="not a multiple of 64"):
        make_dataset(image_size=size, size=10)


@pytest.mark.parametrize("style", list(STYLES))
def test_grid_is_large_enough_for_the_default_splits(style):
    grid = STYLES[style].grid
    total = np.prod([len(grid[n]) for n in ("shape", "scale", "rotation", "x", "y")])
    assert total >= 2 * max(DEFAULT_SIZES.values())  # train takes the permutation's start, test its end
    with pytest.raises(ValueError, match=r"size must lie in 1\.\."):
        make_dataset(style, size=int(total // 2) + 1)


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_keeps_every_factor_its_range_and_its_labels(style):
    ds = make_dataset(style, size=20_000)
    grid = STYLES[style].grid
    assert ds.name == style and ds.factor_names == ["shape", "scale", "rotation", "x", "y"]
    for j, name in enumerate(ds.factor_names):
        values = set(ds.factors[:, j].tolist())
        assert values == set(grid[name].tolist()), name  # 20,000 draws reach every grid value of every factor
    assert torch.equal(ds.labels, ds.factors[:, 0].long()) and ds.label_names == ["square", "ellipse", "heart", "triangle"]


def test_the_default_shapes_are_larger_and_turn_less_than_the_small_ones():
    big, small = make_dataset("shapes", size=2000), make_dataset("shapes-small", size=2000)
    assert big.images.mean() > 2 * small.images.mean()  # objects cover more than twice the area
    span = lambda ds: float(ds.factors[:, 2].max() - ds.factors[:, 2].min())  # noqa: E731  rotation, as drawn
    assert span(big) < math.pi / 2 <= span(small)  # within a quarter turn every angle gives a distinct square


def test_default_shapes_stay_inside_the_frame():
    ds = make_dataset("shapes", size=5000)
    border = torch.cat([ds.images[..., 0, :], ds.images[..., -1, :], ds.images[..., :, 0], ds.images[..., :, -1]], -1)
    assert (border.amax(-1) > 0.5).float().mean() < 0.02  # at most a rare corner of the largest shapes is cut
