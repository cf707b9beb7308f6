"""What every dataset of this package shares: the sample convention and uint8 → float conversion.

A dataset yields ``(image float32 [3, H, W] in [0, 1], label int)``; ``as_tensors()`` gives the whole split as
``(images uint8 [n, 3, H, W], labels int64 [n])`` for fast in-memory training. Normalisation is the model's job
(:class:`msda.models.Normalized`), using the dataset's ``mean``/``std``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import describe

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float(images: Tensor) -> Tensor:
    """uint8 [..., H, W] → float32 in [0, 1]."""
    return images.float() / 255.0


class InMemoryImages(Dataset):
    """A dataset over uint8 images [n, 3, H, W] and int64 labels [n] held in memory."""

    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self._images, self._labels = images, labels

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self._images.shape[-1])

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        index = check_index(index, len(self))
        return to_float(self._images[index]), int(self._labels[index])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, int]]:
        """A list of samples in one indexing pass (the DataLoader's batched fetch)."""
        index = torch.tensor([check_index(i, len(self)) for i in indices], dtype=torch.int64)
        images, labels = to_float(self._images[index]), self._labels[index].tolist()
        return [(images[k], labels[k]) for k in range(len(labels))]

    def as_tensors(self) -> tuple[Tensor, Tensor]:
        """(images uint8 [n, 3, H, W], labels int64 [n]); the dataset's own tensors — do not modify in place."""
        return self._images, self._labels


def check_index(index, length: int) -> int:
    """A sample index in [−length, length) as a non-negative int."""
    if isinstance(index, bool) or not isinstance(index, int):
        try:
            index = int(index)  # numpy / tensor integers from samplers
        except (TypeError, ValueError):
            raise ValueError(f"sample index must be an integer, got {describe(index)}") from None
    if not -length <= index < length:
        raise ValueError(f"sample index must be in [0, {length}), got {index}")
    return index % length
