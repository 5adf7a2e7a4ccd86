"""Datasets: the built-in `shapes` (dSprites-like, rendered in code) and real ones through torchvision.

References: Matthey et al., dSprites (2017), whose factor grid `shapes` imitates; the signed distance functions
are Inigo Quilez's (iquilezles.org/articles/distfunctions2d). Everything returns float images in [0, 1],
laid out (C, H, W), held in memory, so loading is never the bottleneck of a CPU training step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .spec import check_size

NAMES = ("shapes", "shapes-small", "mnist", "fashion-mnist", "cifar10", "celeba", "folder:PATH")
SHAPES = ("square", "ellipse", "heart", "triangle")
DEFAULT_SIZES = {"train": 20_000, "test": 2_000}


@dataclass(frozen=True)
class ShapesStyle:
    """How the built-in shapes are drawn: the object size and the grid of every factor, as in dSprites."""

    base_size: float  # half-size of a shape at scale 1, as a fraction of the image
    scale: tuple  # (low, high, values)
    rotation: tuple  # (low, high, values) in radians, both ends included
    position: tuple  # (low, high, values): the centre's x and y, as a fraction of the image

    def grid(self) -> dict:
        """{factor: values}: every combination is one possible image."""
        return {
            "shape": torch.arange(len(SHAPES), dtype=torch.float32),
            "scale": torch.linspace(*self.scale[:2], self.scale[2]),
            "rotation": torch.linspace(*self.rotation[:2], self.rotation[2]),
            "x": torch.linspace(*self.position[:2], self.position[2]),
            "y": torch.linspace(*self.position[:2], self.position[2]),
            "hue": torch.arange(8) / 8,  # colour; 3 channels only
        }


STYLES = {
    # the default: objects about 22-36 px across, turned at most 30 degrees either way, so that shape moves more of
    # the pixels between two images than at dSprites' sizes (the levers table of docs/design.md compares the two)
    "shapes": ShapesStyle(base_size=0.28, scale=(0.6, 1.0, 6), rotation=(-math.pi / 6, math.pi / 6, 13),
                          position=(0.34, 0.66, 24)),
    # dSprites' proportions: objects 13-26 px across at any angle; position dominates the likelihood
    "shapes-small": ShapesStyle(base_size=0.2, scale=(0.5, 1.0, 6), rotation=(0.0, 2 * math.pi * 39 / 40, 40),
                                position=(0.25, 0.75, 32)),
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

    def factor_ranges(self) -> dict:
        """{factor: (low, high)} of the grid the factors come from."""
        return {n: (float(self.grid[n].min()), float(self.grid[n].max())) for n in self.factor_names or ()}


# --- shapes ---------------------------------------------------------------------------------------------

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
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height  # pixel centres in [0, 1]
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    gy, gx = ys.view(1, -1, 1), xs.view(1, 1, -1)
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
    return coverage * _hue_to_rgb(factors[:, 5]).view(n, 3, 1, 1)


def _hue_to_rgb(hue):
    """HSV with saturation 0.8 and value 1 -> RGB, vectorised."""
    k = (torch.stack([hue * 6 + 5, hue * 6 + 3, hue * 6 + 1], 1)) % 6
    return 1 - 0.8 * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _grid_factors(index: torch.Tensor, grid: dict, names: list) -> torch.Tensor:
    """Decode flat grid indices into factor values (shape, scale, rotation, x, y[, hue])."""
    cols = []
    for name in reversed(names):
        values = grid[name]
        cols.append(values[index % len(values)])
        index = index // len(values)
    return torch.stack(cols[::-1], 1)


def make_shapes(split="train", image_size=64, channels=1, seed=0, size=None, style="shapes",
                chunk=2_000) -> ImageDataset:
    """The built-in dataset. One seeded permutation of the factor grid serves both splits: train takes
    its start and test its end, so they never share an image (for up to half the grid each)."""
    h, w = image_size
    look, grid = STYLES[style], STYLES[style].grid()
    names = list(grid)[:5] + (["hue"] if channels == 3 else [])
    total = math.prod(len(grid[n]) for n in names)
    n = DEFAULT_SIZES[split] if size is None else int(size)
    if not 0 < n <= total // 2:
        raise ValueError(f"{style} {split} size must lie in 1..{total // 2}, got {size!r}")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    index = perm[:n] if split == "train" else perm[-n:]
    factors = _grid_factors(index, grid, names)
    images = torch.cat([render_shapes(factors[i:i + chunk], h, w, channels, look.base_size)
                        for i in range(0, n, chunk)])
    return ImageDataset(images, factors[:, 0].long(), SHAPES, factors, names, name=style, grid=grid)


# --- real datasets --------------------------------------------------------------------------------------

def _fit(images: torch.Tensor, size, channels: int) -> torch.Tensor:
    """uint8 or float (N, C, h, w) -> float (N, channels, H, W) in [0, 1]; resized keeping the aspect ratio,
    then centre-cropped to the target."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
        if channels == 1 and images.shape[1] == 3:  # luminance, not a plain mean
            x = (images.float() / (255 if images.dtype == torch.uint8 else 1) *
                 torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    h, w = size
    s = max(h / x.shape[2], w / x.shape[3])
    out = []
    for i in range(0, len(x), 4096):  # chunks keep the peak memory small
        y = F.interpolate(x[i:i + 4096], scale_factor=s, mode="bilinear", antialias=True, align_corners=False,
                          recompute_scale_factor=True) if s != 1 else x[i:i + 4096]
        top, left = (y.shape[2] - h) // 2, (y.shape[3] - w) // 2
        out.append(y[:, :, top:top + h, left:left + w].clamp(0, 1).contiguous())
    return torch.cat(out)


def _where(name: str, root: Path) -> str:
    folders = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py",
               "celeba": "celeba"}
    return str(root / folders[name])


def _torchvision(name: str, split: str, root: Path, download: bool):
    from torchvision import datasets

    train = split == "train"
    try:
        if name == "mnist":
            return datasets.MNIST(root, train=train, download=download)
        if name == "fashion-mnist":
            return datasets.FashionMNIST(root, train=train, download=download)
        if name == "cifar10":
            return datasets.CIFAR10(root, train=train, download=download)
        return datasets.CelebA(root, split="train" if train else "test", target_type="attr", download=download)
    except Exception as err:  # missing files, failed download (urllib), or a corrupt archive
        how = ("the download failed" if download else "its files are not on disk")
        raise DatasetUnavailable(
            f"dataset {name!r} is unavailable: {how} ({type(err).__name__}: {str(err).splitlines()[0][:120]}). "
            f"Put the files where torchvision expects them, under {_where(name, root)}, or pass download=True "
            f"where the network is available (e.g. Colab). dataset='shapes' works offline.") from None


def _real(name, split, size, channels, root, download, limit):
    ds = _torchvision(name, split, Path(root), download)
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
    natural = 1 if name in ("mnist", "fashion-mnist") else 3
    channels = natural if channels is None else channels
    label_names = ["not smiling", "smiling"] if name == "celeba" else list(ds.classes)
    return ImageDataset(_fit(images, size, channels), labels, label_names, name=name)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _folder(path, split, size, channels, seed, limit):
    """A folder of images; images in sub-folders are labelled by sub-folder, as torchvision's ImageFolder does.
    A seeded 90/10 split of the sorted file list gives train and test."""
    from PIL import Image, UnidentifiedImageError

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetUnavailable(f"folder {str(root)!r} does not exist; use dataset='folder:/path/to/images'")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetUnavailable(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {str(root)!r}")
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, len(files) // 10) if len(files) > 1 else 0
    chosen = perm[n_test:] if split == "train" else perm[:n_test]
    chosen = sorted(chosen)[:limit] if limit else sorted(chosen)
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for i in chosen:
        try:
            with Image.open(files[i]) as im:
                arr = np.asarray(im.convert(mode))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ValueError(f"could not read image {files[i]}: {err}") from None
        t = torch.from_numpy(arr.copy())
        t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
        images.append(_fit(t.unsqueeze(0), size, t.shape[0])[0])
        labels.append(classes.index(files[i].parent.relative_to(root).as_posix()))
    if not images:
        raise DatasetUnavailable(f"folder {str(root)!r} has too few images for a {split} split")
    return ImageDataset(torch.stack(images), torch.tensor(labels), classes, name="folder")


# --- the entry points -----------------------------------------------------------------------------------

def check_dataset_name(name: str) -> str:
    """`name` if it is one of NAMES (any "folder:PATH" included); otherwise a ValueError that lists them."""
    if not isinstance(name, str) or (name not in NAMES[:-1] and not name.startswith("folder:")):
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    return name


def check_image_size(image_size) -> tuple:
    """(H, W) from an int (square) or a pair, each a positive multiple of 64; otherwise a ValueError with the fix."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_size(h, "image height")
    check_size(w, "image width")
    return h, w


def make_dataset(name: str = "shapes", split: str = "train", image_size: Union[int, tuple] = 64,
                 channels: Optional[int] = None, root: Union[str, Path] = "data", download: bool = False,
                 seed: int = 0, size: Optional[int] = None) -> ImageDataset:
    """One dataset split as an in-memory ImageDataset of (image (C, H, W) in [0, 1], label) pairs.

    `channels=None` keeps the dataset's own count (shapes: 1); `size` caps the number of images.
    """
    check_dataset_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None (the dataset's own), got {channels!r}")
    hw = check_image_size(image_size)
    if name in STYLES:
        return make_shapes(split, hw, channels or 1, seed, size, style=name)
    if name.startswith("folder:"):
        return _folder(name[len("folder:"):], split, hw, channels or 3, seed, size)
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
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.dataset.images[idx], self.dataset.labels[idx]


def make_loaders(name: str = "shapes", image_size: Union[int, tuple] = 64, channels: Optional[int] = None,
                 batch_size: int = 64, root: Union[str, Path] = "data", download: bool = False, seed: int = 0,
                 n_train: Optional[int] = None, n_test: Optional[int] = None):
    """(train_loader, test_loader): the train loader reshuffles every epoch from `seed`; the test loader keeps order."""
    train = make_dataset(name, "train", image_size, channels, root, download, seed, n_train)
    test = make_dataset(name, "test", image_size, train.images.shape[1], root, download, seed, n_test)
    return (BatchLoader(train, batch_size, shuffle=True, seed=seed, drop_last=len(train) > batch_size),
            BatchLoader(test, batch_size, shuffle=False))
