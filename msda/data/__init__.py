"""Datasets for training and analysis: the bundled shapes dataset, CIFAR-10/100 and ImageNet-style folders.

Every dataset yields ``(image float32 [3, H, W] in [0, 1], label int)`` (shapes can add its object mask) and
has ``classes``, ``num_classes``, ``image_size``, ``mean``, ``std`` and ``as_tensors()``. Normalisation belongs
to the model (:class:`msda.models.Normalized`).
"""

from __future__ import annotations

from torch.utils.data import Dataset

from .._checks import check_choice
from .cifar import CIFAR10, CIFAR100
from .folder import ImageFolder
from .shapes import CLASSES as SHAPE_CLASSES
from .shapes import Shapes

DATASETS: tuple[str, ...] = ("shapes", "cifar10", "cifar100", "imagefolder")


def load_dataset(name: str, split: str, *, root=None, n: int | None = None, size: int | None = None,
                 seed: int = 0, return_mask: bool = False, verify: str = "md5") -> Dataset:
    """A dataset by name.

    Args:
        name: one of ``DATASETS``.
        split: "train" or "test". For "imagefolder", "test" reads the ``val/`` folder (ImageNet and Tiny-ImageNet
            label their held-out images there); other folder names ("val", …) are passed through.
        root: folder holding the data files — required for cifar10/cifar100/imagefolder, refused for shapes.
        n: number of samples — required for shapes (the others have a fixed size).
        size: image side — shapes: default 32; imagefolder: default 224; cifar: 32 only.
        seed: the shapes dataset's seed (the other datasets' content is fixed, so they ignore it).
        return_mask: shapes only: also return the object mask.
        verify: cifar only: "md5" (official files) or "structure" (see :mod:`msda.data.cifar`).

    Returns the ``torch.utils.data.Dataset``. Raises ValueError for unknown names and missing or misplaced
    arguments.
    """
    check_choice("dataset name", name, DATASETS)
    if name == "shapes":
        if root is not None:
            raise ValueError(f"shapes is generated, it reads no files: root must be None, got {root!r}")
        if n is None:
            raise ValueError("shapes needs n, the number of samples to generate (e.g. n=20000)")
        return Shapes(split, n=n, size=32 if size is None else size, seed=seed, return_mask=return_mask)

    if root is None:
        raise ValueError(f"{name} needs root, the folder that holds its files")
    if n is not None:
        raise ValueError(f"n only applies to shapes; {name} has a fixed number of images (got n={n!r})")
    if return_mask:
        raise ValueError(f"return_mask only applies to shapes; {name} has no object masks")
    if name in ("cifar10", "cifar100"):
        if size not in (None, 32):
            raise ValueError(f"{name} images are 32×32: size must be None or 32, got {size!r}")
        check_choice("split", split, ("train", "test"))
        return (CIFAR10 if name == "cifar10" else CIFAR100)(root, split, verify=verify)
    folder = "val" if split == "test" else split
    return ImageFolder(root, folder, size=224 if size is None else size, train=split == "train")


__all__ = ["CIFAR10", "CIFAR100", "DATASETS", "SHAPE_CLASSES", "ImageFolder", "Shapes", "load_dataset"]
