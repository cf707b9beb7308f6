"""Readers for the published corrupted test sets of Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261.

* CIFAR-10-C / CIFAR-100-C: ``<root>/<corruption>.npy``, uint8 [50000, 32, 32, 3] — the 10 000 test images
  at severity 1, then at severity 2, … 5 — and ``<root>/labels.npy`` with the 50 000 labels. The reader
  accepts any number of rows that is a multiple of 5 (one equal block per severity), so that small files in
  the same layout work too; the official files have 50 000.
* ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``, already 224×224 (no resize or crop).

Both return (float32 image [3, H, W] in [0, 1], int label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from msda._checks import check_choice, check_int

from .corruptions import CORRUPTIONS
from .corruptions._frost import read_rgb

CIFAR_C_ROWS = 50000
_CIFAR_SHAPE = "[50000, 32, 32, 3] (5 severities × 10000 images; any multiple of 5 rows is accepted)"


class CifarC(Dataset):
    """One corruption at one severity of CIFAR-10-C or CIFAR-100-C.

    Args:
        root: the folder holding ``<corruption>.npy`` and ``labels.npy``.
        corruption: one of :data:`analysis.corruptions.CORRUPTIONS`.
        severity: 1 … 5; rows (s − 1)·n/5 … s·n/5 − 1 of the n rows.
        transform: optional callable applied to each float image tensor [3, 32, 32].

    Items: (float32 [3, 32, 32] in [0, 1], int label). The arrays are memory-mapped, not loaded.
    """

    def __init__(self, root: str | Path, corruption: str, severity: int, *,
                 transform: Callable[[Tensor], Tensor] | None = None):
        self.corruption = check_choice("corruption", corruption, CORRUPTIONS)
        self.severity = check_int("severity", severity, low=1, high=5)
        root = Path(root)
        images_path, labels_path = root / f"{corruption}.npy", root / "labels.npy"
        self.images = _load(images_path, f"a uint8 array of shape {_CIFAR_SHAPE}")
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1:] != (32, 32, 3):
            raise ValueError(f"{images_path}: expected a uint8 array of shape {_CIFAR_SHAPE}, got "
                             f"{self.images.dtype} of shape {list(self.images.shape)}")
        rows = self.images.shape[0]
        if rows == 0 or rows % 5:
            raise ValueError(f"{images_path}: expected a uint8 array of shape {_CIFAR_SHAPE}, got "
                             f"{rows} rows (not a positive multiple of 5)")
        self.labels = _load(labels_path, f"an integer array of shape [{rows}] (one label per row of "
                                         f"{images_path.name})")
        if not np.issubdtype(self.labels.dtype, np.integer) or self.labels.shape != (rows,):
            raise ValueError(f"{labels_path}: expected an integer array of shape [{rows}] (one label per row of "
                             f"{images_path.name}), got {self.labels.dtype} of shape {list(self.labels.shape)}")
        self.per_severity = rows // 5
        self.start = (self.severity - 1) * self.per_severity
        self.transform = transform

    def __len__(self) -> int:
        return self.per_severity

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        row = self.start + index % len(self)
        image = torch.from_numpy(np.array(self.images[row])).permute(2, 0, 1).float().div_(255)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[row])


def _load(path: Path, expected: str) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: file not found; expected {expected}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npy array ({error}); expected {expected}") from None


class ImageNetC(Dataset):
    """One corruption at one severity of ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``.

    Args:
        root: the ImageNet-C folder.
        corruption: one of :data:`analysis.corruptions.CORRUPTIONS`.
        severity: 1 … 5.
        classes: the wnids in the order of the model's outputs; default the sorted wnid folders. Folders of
            wnids missing from `classes` are an error; wnids without a folder simply have no images.

    Items: (float32 [3, H, W] in [0, 1], int label) — the images as stored (224×224), not resized.
    """

    def __init__(self, root: str | Path, corruption: str, severity: int, *,
                 classes: Sequence[str] | None = None):
        from torchvision.datasets import ImageFolder

        self.corruption = check_choice("corruption", corruption, CORRUPTIONS)
        self.severity = check_int("severity", severity, low=1, high=5)
        folder = Path(root) / corruption / str(self.severity)
        if not folder.is_dir():
            raise ValueError(f"ImageNet-C folder {folder} not found; expected "
                             f"<root>/<corruption>/<severity>/<wnid>/*.JPEG")
        found = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
        if not found:
            raise ValueError(f"ImageNet-C folder {folder} has no class folders; expected <wnid>/*.JPEG inside")
        self.classes = list(found if classes is None else classes)
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise ValueError(f"{folder} has class folders not in `classes`: {', '.join(unknown[:5])}"
                             f"{' …' if len(unknown) > 5 else ''}")
        class_to_idx = {wnid: index for index, wnid in enumerate(self.classes)}

        class _Folder(ImageFolder):
            def find_classes(self, directory):
                return list(class_to_idx), class_to_idx

        try:
            self._folder = _Folder(str(folder), loader=read_rgb, allow_empty=True)
        except FileNotFoundError as error:
            raise ValueError(f"{folder}: {error}") from None
        if len(self._folder) == 0:
            raise ValueError(f"ImageNet-C folder {folder} holds no images (expected <wnid>/*.JPEG)")
        self.samples = self._folder.samples
        self.class_to_idx = class_to_idx

    def __len__(self) -> int:
        return len(self._folder)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self._folder[index]
