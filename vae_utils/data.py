"""Datasets: the built-in `shapes` (dSprites-like, rendered in code) and real ones through torchvision.

References: Matthey et al., dSprites (2017), whose factor grid `shapes` imitates; the signed distance functions
are Inigo Quilez's (iquilezles.org/articles/distfunctions2d). Everything returns float images in [0, 1],
laid out (C, H, W), held in memory, so loading is never the bottleneck of a CPU training step.
"""
import math
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision import datasets

from .spec import check_image_size

NAMES = ("shapes", "shapes-small", "mnist", "fashion-mnist", "cifar10", "celeba", "folder:PATH")
GREY = ("shapes", "shapes-small", "mnist", "fashion-mnist")  # one channel of their own; the others have three
SHAPES = ("square", "ellipse", "heart", "triangle")
DEFAULT_SIZES = {"train": 20_000, "test": 2_000}


class ShapesStyle(NamedTuple):
    """How shapes are drawn: a shape's half-size at scale 1 (a fraction of the image) and each factor's values."""

    base_size: float
    grid: dict


def _grid(scale: tuple, rotation: tuple, position: tuple) -> dict:
    """{factor: values} from (low, high, count) for scale, rotation (radians) and the centre's x and y."""
    return {"shape": torch.arange(len(SHAPES), dtype=torch.float32), "scale": torch.linspace(*scale),
            "rotation": torch.linspace(*rotation), "x": torch.linspace(*position), "y": torch.linspace(*position),
            "hue": torch.arange(8) / 8}  # colour; 3 channels only


STYLES = {
    # the default: squares 22-36 px on a side, turned at most 30 degrees either way, so that shape moves more of
    # the pixels between two images than at dSprites' sizes (the levers table of docs/design.md compares the two)
    "shapes": ShapesStyle(0.28, _grid(scale=(0.6, 1.0, 6), rotation=(-math.pi / 6, math.pi / 6, 13),
                                      position=(0.34, 0.66, 24))),
    # dSprites' proportions: squares 13-26 px on a side, at any angle; position dominates the likelihood
    "shapes-small": ShapesStyle(0.2, _grid(scale=(0.5, 1.0, 6), rotation=(0.0, 2 * math.pi * 39 / 40, 40),
                                           position=(0.25, 0.75, 32))),
}


class DatasetUnavailable(FileNotFoundError):
    """A real dataset is not on disk and could not be downloaded."""


class ImageDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W) in [0, 1] and integer labels, in memory; shapes also carry their factors."""

    def __init__(self, images, labels, label_names, factors=None, factor_names=None, name="", grid=None):
        self.images, self.labels, self.label_names = images, labels, list(label_names)
        self.factors, self.factor_names, self.name, self.grid = factors, factor_names, name, grid

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def _sd_box(px, py):  # square of half-size 1
    dx, dy = px.abs() - 1, py.abs() - 1
    return torch.sqrt(dx.clamp(min=0) ** 2 + dy.clamp(min=0) ** 2) + torch.maximum(dx, dy).clamp(max=0)


def _sd_ellipse(px, py, a=1.0, b=0.6):  # a close approximation to the true distance
    k0 = torch.sqrt((px / a) ** 2 + (py / b) ** 2)
    k1 = torch.sqrt((px / a**2) ** 2 + (py / b**2) ** 2).clamp(min=1e-6)
    return k0 * (k0 - 1) / k1


def _sd_heart(px, py):  # exact; the heart spans y in [-0.6, 0.6] after the shift
    px, py = px.abs() / 1.5, (-py / 1.5) + 0.6  # tip down, centred, about as large as the others
    upper = torch.sqrt((px - 0.25) ** 2 + (py - 0.75) ** 2) - math.sqrt(2) / 4
    m = 0.5 * (px + py).clamp(min=0)
    lower = torch.sqrt(torch.minimum(px**2 + (py - 1) ** 2, (px - m) ** 2 + (py - m) ** 2)) * torch.sign(px - py)
    return torch.where(px + py > 1, upper, lower) * 1.5


def _sd_triangle(px, py, r=1.0):  # equilateral, exact
    k = math.sqrt(3)
    px, py = px.abs() - r, py + r / k
    flip = px + k * py > 0
    px, py = torch.where(flip, (px - k * py) / 2, px), torch.where(flip, (-k * px - py) / 2, py)
    px = px - px.clamp(-2 * r, 0)
    return -torch.sqrt(px**2 + py**2) * torch.sign(py)


_SDF = (_sd_box, _sd_ellipse, _sd_heart, _sd_triangle)


def render_shapes(factors: torch.Tensor, height: int, width: int, channels: int,
                  base_size: float = STYLES["shapes"].base_size) -> torch.Tensor:
    """Render (N, F) factor rows as (N, C, H, W) images, anti-aliased from the signed distance (1-pixel ramp)."""
    n = len(factors)
    gy = ((torch.arange(height, dtype=torch.float32) + 0.5) / height).view(1, -1, 1)  # pixel centres in [0, 1]
    gx = ((torch.arange(width, dtype=torch.float32) + 0.5) / width).view(1, 1, -1)
    shape, scale, rot, cx, cy = (factors[:, i].view(n, 1, 1) for i in range(5))
    half = scale * base_size
    dx, dy = (gx - cx) * width / min(height, width), (gy - cy) * height / min(height, width)
    cos, sin = torch.cos(rot), torch.sin(rot)
    px, py = (cos * dx + sin * dy) / half, (-sin * dx + cos * dy) / half  # shape-local coordinates
    sd = torch.empty(n, height, width)
    for k, sdf in enumerate(_SDF):
        idx = (shape.view(-1) == k).nonzero().view(-1)
        if len(idx):
            sd[idx] = sdf(px[idx], py[idx]) * half[idx] * min(height, width)  # in pixels
    coverage = (0.5 - sd).clamp(0, 1).unsqueeze(1)  # (N, 1, H, W)
    if channels == 1:
        return coverage
    hue = factors[:, 5].view(n, 1, 1, 1) * 6  # HSV with saturation 0.8 and value 1 -> RGB
    k = torch.cat([hue + 5, hue + 3, hue + 1], 1) % 6  # (N, 3, 1, 1)
    return coverage * (1 - 0.8 * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


def make_shapes(split: str, image_size: tuple, channels: int, seed: int, size, style: str) -> ImageDataset:
    """The built-in dataset. One seeded permutation of the factor grid serves both splits: train takes
    its start and test its end, so they never share an image (for up to half the grid each)."""
    base_size, grid = STYLES[style]
    names = list(grid)[:5] + (["hue"] if channels == 3 else [])
    dims = [len(grid[name]) for name in names]
    n = DEFAULT_SIZES[split] if size is None else int(size)
    if not 0 < n <= math.prod(dims) // 2:
        raise ValueError(f"{style} {split} size must lie in 1..{math.prod(dims) // 2}, got {size!r}")
    perm = torch.randperm(math.prod(dims), generator=torch.Generator().manual_seed(seed))
    index = perm[:n] if split == "train" else perm[-n:]
    digits = np.unravel_index(index.numpy(), dims)  # flat grid index -> one index per factor, the last fastest
    factors = torch.stack([grid[name][torch.from_numpy(d)] for name, d in zip(names, digits)], 1)
    images = torch.cat([render_shapes(factors[i:i + 2000], *image_size, channels, base_size)
                        for i in range(0, n, 2000)])  # in chunks, to bound the peak memory
    return ImageDataset(images, factors[:, 0].long(), SHAPES, factors, names, name=style, grid=grid)


def _fit(images: torch.Tensor, size, channels: int) -> torch.Tensor:
    """uint8 or float (N, C, h, w) -> float (N, channels, H, W) in [0, 1]: resized to cover, centre-cropped."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 3 and channels == 1:  # luminance (ITU-R 601), not a plain mean
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] != channels:
        x = x.expand(-1, channels, -1, -1)  # grey to RGB
    h, w = size
    s = max(h / x.shape[2], w / x.shape[3])
    out = []
    for i in range(0, len(x), 4096):  # chunks keep the peak memory small
        y = F.interpolate(x[i:i + 4096], scale_factor=s, mode="bilinear", antialias=True, align_corners=False,
                          recompute_scale_factor=True) if s != 1 else x[i:i + 4096]
        top, left = (y.shape[2] - h) // 2, (y.shape[3] - w) // 2
        out.append(y[:, :, top:top + h, left:left + w].clamp(0, 1).contiguous())
    return torch.cat(out)


# name -> (torchvision class, the folder under root that holds its files)
TORCHVISION = {"mnist": (datasets.MNIST, "MNIST/raw"), "fashion-mnist": (datasets.FashionMNIST, "FashionMNIST/raw"),
               "cifar10": (datasets.CIFAR10, "cifar-10-batches-py"), "celeba": (datasets.CelebA, "celeba")}


def _real(name, split, size, channels, root, download, limit):
    cls, folder = TORCHVISION[name]
    try:
        ds = (cls(root, split=split, target_type="attr", download=download) if name == "celeba" else
              cls(root, train=split == "train", download=download))
    except Exception as err:  # missing files, failed download (urllib), or a corrupt archive
        how = ("the download failed" if download else "its files are not on disk")
        raise DatasetUnavailable(
            f"dataset {name!r} is unavailable: {how} ({type(err).__name__}: {str(err).splitlines()[0][:120]}). "
            f"Put the files where torchvision expects them, under {Path(root) / folder}, or pass download=True "
            f"where the network is available (e.g. Colab). dataset='shapes' works offline.") from None
    n = len(ds) if limit is None else min(int(limit), len(ds))
    if name in ("mnist", "fashion-mnist"):
        images, labels = ds.data[:n].unsqueeze(1), ds.targets[:n].long()
    elif name == "cifar10":
        images, labels = torch.from_numpy(ds.data[:n]).permute(0, 3, 1, 2), torch.tensor(ds.targets[:n])
    else:  # celeba: decode image by image; the label is the "Smiling" attribute
        smiling = ds.attr_names.index("Smiling")
        pairs = [ds[i] for i in range(n)]
        images = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1) for im, _ in pairs])
        labels = torch.tensor([int(a[smiling]) for _, a in pairs])
    label_names = ["not smiling", "smiling"] if name == "celeba" else list(ds.classes)
    return ImageDataset(_fit(images, size, channels), labels, label_names, name=name)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _folder(path, split, size, channels, seed, limit):
    """A folder of images; images in sub-folders are labelled by sub-folder, as torchvision's ImageFolder does.
    A seeded 90/10 split of the sorted file list gives train and test."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetUnavailable(f"folder {str(root)!r} does not exist; use dataset='folder:/path/to/images'")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetUnavailable(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {str(root)!r}")
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, len(files) // 10) if len(files) > 1 else 0
    chosen = sorted(perm[n_test:] if split == "train" else perm[:n_test])[:limit]
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    images, labels = [], []
    for i in chosen:
        try:
            with Image.open(files[i]) as im:
                arr = np.atleast_3d(np.array(im.convert("L" if channels == 1 else "RGB")))  # (h, w, C)
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ValueError(f"could not read image {files[i]}: {err}") from None
        images.append(_fit(torch.from_numpy(arr).permute(2, 0, 1)[None], size, channels)[0])
        labels.append(classes.index(files[i].parent.relative_to(root).as_posix()))
    if not images:
        raise DatasetUnavailable(f"folder {str(root)!r} has too few images for a {split} split")
    return ImageDataset(torch.stack(images), torch.tensor(labels), classes, name="folder")


def check_dataset_name(name: str) -> None:
    """A ValueError that lists NAMES unless `name` is one of them (any "folder:PATH" included)."""
    if not isinstance(name, str) or (name not in NAMES[:-1] and not name.startswith("folder:")):
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")


def make_dataset(name: str = "shapes", split: str = "train", image_size: Union[int, tuple] = 64,
                 channels: Optional[int] = None, root: Union[str, Path] = "data", download: bool = False,
                 seed: int = 0, size: Optional[int] = None) -> ImageDataset:
    """One split as an in-memory ImageDataset of (image (C, H, W) in [0, 1], label) pairs; `channels=None` keeps the
    dataset's own count (shapes: 1), `size` caps the number of images."""
    check_dataset_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None (the dataset's own), got {channels!r}")
    hw = check_image_size(image_size)
    channels = channels or (1 if name in GREY else 3)  # None: the dataset's own
    if name in STYLES:
        return make_shapes(split, hw, channels, seed, size, style=name)
    if name.startswith("folder:"):
        return _folder(name[len("folder:"):], split, hw, channels, seed, size)
    return _real(name, split, hw, channels, root, download, size)


class BatchLoader:
    """Batches (x, y) sliced straight from in-memory tensors: one index per batch, no per-image work, no workers.
    Shuffling uses its own seeded generator, so the batch order is reproducible and resumable."""

    def __init__(self, dataset: ImageDataset, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for idx in order.split(self.batch_size)[:len(self)]:  # without the short last batch under drop_last
            yield self.dataset.images[idx], self.dataset.labels[idx]


def make_loaders(name: str = "shapes", image_size: Union[int, tuple] = 64, channels: Optional[int] = None,
                 batch_size: int = 64, root: Union[str, Path] = "data", download: bool = False, seed: int = 0,
                 n_train: Optional[int] = None, n_test: Optional[int] = None):
    """(train_loader, test_loader): the train loader reshuffles every epoch from `seed`; the test loader keeps order."""
    train = make_dataset(name, "train", image_size, channels, root, download, seed, n_train)
    test = make_dataset(name, "test", image_size, train.images.shape[1], root, download, seed, n_test)
    return (BatchLoader(train, batch_size, shuffle=True, seed=seed, drop_last=len(train) > batch_size),
            BatchLoader(test, batch_size, shuffle=False))
