"""ImageNet-style class folders, and Tiny-ImageNet's annotated validation folder, at a fixed image size.

Layouts (``split`` names the sub-folder):

- ``<root>/<split>/<class>/**/<image>`` — ImageNet (Deng et al., "ImageNet: A Large-Scale Hierarchical Image
  Database", CVPR 2009) and Tiny-ImageNet's train folder (``train/<wnid>/images/*.JPEG``);
- ``<root>/<split>/images/*`` + ``<root>/<split>/val_annotations.txt`` (``file<TAB>class…`` per line) —
  Tiny-ImageNet's val folder (cs231n.stanford.edu/tiny-imagenet-200.zip).

Class indices come from ``<root>/wnids.txt`` when present, else from the class folders of ``<root>/train`` when
present, else from the split itself — so train and val always agree on the labels.

Images are decoded with PIL (torchvision's own image decoders are deprecated since torchvision 0.29 in favour of
TorchCodec) after their header has been read and images above ``MAX_PIXELS`` refused. They are resized so the
shorter side is ``size / crop_fraction`` and centre-cropped to ``size`` — deterministic: random-resized-crop and
flips are the training pipeline's job (on the GPU, on whole batches). ``train=True`` keeps the whole shorter side
(``crop_fraction`` = 1) so those augmentations have the full image to work from.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.transforms.v2 import functional as TF

from .._checks import check_int, check_real
from ._common import IMAGENET_MEAN, IMAGENET_STD, check_index, to_float

MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)
ANNOTATIONS = "val_annotations.txt"


class ImageFolder(Dataset):
    """Images of ``<root>/<split>`` with their class labels, resized and centre-cropped to ``size``×``size``.

    Args:
        root: dataset folder (holding ``train/``, ``val/``, … and optionally ``wnids.txt``).
        split: sub-folder name, e.g. "train" or "val".
        size: output side in pixels (≥ 8).
        train: True keeps the full shorter side before the centre crop (for augmenting later); defaults to
            ``split == "train"``.
        crop_fraction: evaluation crop as a fraction of the resized shorter side (0.875: 256 → 224).

    ``dataset[i]`` is ``(image float32 [3, size, size] in [0, 1], label int)``; ``as_tensors()`` decodes every
    image into ``(uint8 [n, 3, size, size], int64 [n])``. Attributes: ``classes`` (folder names / wnids),
    ``num_classes``, ``image_size``, ``mean``/``std`` (ImageNet's), ``samples`` (list of (path, label)).
    Raises ValueError for a missing or empty folder, unknown classes, or an image that cannot be decoded.
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, root, split: str, *, size: int = 224, train: bool | None = None,
                 crop_fraction: float = 0.875) -> None:
        if root is None or not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"root must be the dataset folder (holding {split}/), got {root!r}")
        if not isinstance(split, str) or not split or "/" in split or split in (".", ".."):
            raise ValueError(f"split must name a sub-folder of root such as 'train' or 'val', got {split!r}")
        self.root = Path(root)
        self.split = split
        self.image_size = check_int("size", size, low=8)
        self.train = split == "train" if train is None else train
        if not isinstance(self.train, bool):
            raise ValueError(f"train must be True, False or None, got {train!r}")
        self.crop_fraction = 1.0 if self.train else check_real("crop_fraction", crop_fraction, low=0.0, high=1.0,
                                                                low_open=True)
        if not self.root.is_dir():
            raise ValueError(f"root {str(root)!r} is not a folder: expected {self.root / split!s}/<class>/<image> "
                             "(ImageNet layout) or Tiny-ImageNet's extracted tiny-imagenet-200/ folder")
        folder = self.root / split
        if not folder.is_dir():
            present = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise ValueError(f"no {split}/ folder in {str(self.root)!r} (it has: {', '.join(present) or 'nothing'}); "
                             f"expected {folder!s}/<class>/<image>")
        self.classes = self._class_list(folder)
        class_to_idx = {name: index for index, name in enumerate(self.classes)}
        if (folder / ANNOTATIONS).is_file():
            self.samples = _annotated_samples(folder, class_to_idx)
        else:
            self.samples = _folder_samples(folder, class_to_idx)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (f"ImageFolder(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"classes={self.num_classes}, size={self.image_size})")

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[check_index(index, len(self))]
        return to_float(self.load(path)), label

    def load(self, path) -> Tensor:
        """One image file → uint8 [3, size, size] (RGB, resized and centre-cropped)."""
        shorter = max(self.image_size, round(self.image_size / self.crop_fraction))
        image = decode_rgb(path, shorter_side=shorter)
        image = TF.resize(image, [shorter], antialias=True)
        return TF.center_crop(image, [self.image_size, self.image_size])

    def as_tensors(self) -> tuple[Tensor, Tensor]:
        """Every image decoded: (images uint8 [n, 3, size, size], labels int64 [n]) — mind the memory."""
        images = torch.empty(len(self), 3, self.image_size, self.image_size, dtype=torch.uint8)
        for index, (path, _) in enumerate(self.samples):
            images[index] = self.load(path)
        return images, torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def _class_list(self, folder: Path) -> list[str]:
        wnids = self.root / "wnids.txt"
        if wnids.is_file():
            names = sorted({line.strip() for line in wnids.read_text().splitlines() if line.strip()})
            if names:
                return names
        for source in (self.root / "train", folder):
            if _has_class_folders(source):
                return find_classes(str(source))[0]
        if (folder / ANNOTATIONS).is_file():
            return sorted({row[1] for row in _annotation_rows(folder)})
        raise ValueError(f"{str(folder)!r} has no class folders: expected {folder!s}/<class>/<image>")


def _has_class_folders(folder: Path) -> bool:
    return folder.is_dir() and not (folder / ANNOTATIONS).is_file() and any(p.is_dir() for p in folder.iterdir())


def _folder_samples(folder: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not present:
        raise ValueError(f"{str(folder)!r} has no class folders: expected {folder!s}/<class>/<image>")
    unknown = [name for name in present if name not in class_to_idx]
    if unknown:
        raise ValueError(f"{str(folder)!r} has class folders that are not among the dataset's classes: "
                         f"{', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}")
    samples = make_dataset(str(folder), {name: class_to_idx[name] for name in present},
                           extensions=IMG_EXTENSIONS, allow_empty=True)
    if not samples:
        raise ValueError(f"found no images ({', '.join(IMG_EXTENSIONS)}) in the class folders of {str(folder)!r}")
    return samples


def _annotation_rows(folder: Path) -> list[list[str]]:
    rows = [line.split("\t") for line in (folder / ANNOTATIONS).read_text().splitlines() if line.strip()]
    bad = [i + 1 for i, row in enumerate(rows) if len(row) < 2]
    if bad:
        raise ValueError(f"{str(folder / ANNOTATIONS)!r} line {bad[0]}: expected '<file>\\t<class>…'")
    return rows


def _annotated_samples(folder: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """Tiny-ImageNet's val layout: images/ plus a tab-separated file → class list."""
    rows = _annotation_rows(folder)
    if not rows:
        raise ValueError(f"{str(folder / ANNOTATIONS)!r} lists no images")
    images = folder / "images" if (folder / "images").is_dir() else folder
    samples = []
    for file_name, class_name, *_ in rows:
        if class_name not in class_to_idx:
            raise ValueError(f"{str(folder / ANNOTATIONS)!r}: class {class_name!r} of {file_name} is not among the "
                             f"dataset's {len(class_to_idx)} classes")
        path = images / file_name
        if not path.is_file():
            raise ValueError(f"{str(folder / ANNOTATIONS)!r} lists {file_name}, which is not in {str(images)!r}")
        samples.append((str(path), class_to_idx[class_name]))
    return samples


def decode_rgb(path, *, shorter_side: int | None = None) -> Tensor:
    """An image file → uint8 [3, H, W] RGB, read with PIL.

    The header is read first and images above ``MAX_PIXELS`` are refused before decoding. With
    ``shorter_side``, JPEGs are decoded at the smallest DCT scale that keeps both sides ≥ it (``Image.draft``),
    which is several times faster for large photos. Raises ValueError naming the file if it cannot be decoded.
    """
    try:
        with Image.open(path) as image:  # identifies the format from the content, reads the header only
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"image {str(path)!r} has {width}×{height} pixels, over the {MAX_PIXELS} allowed")
            if shorter_side is not None and image.format == "JPEG":
                image.draft("RGB", (shorter_side, shorter_side))
            array = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
