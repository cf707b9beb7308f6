"""CIFAR-10 and CIFAR-100 from the official python-pickle files in a local folder, through torchvision.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009 (cs.toronto.edu/~kriz/cifar.html).

Nothing is downloaded: put the extracted ``cifar-10-batches-py/`` (data_batch_1…5, test_batch, batches.meta) or
``cifar-100-python/`` (train, test, meta) folder in ``root``.

The files are pickles, and unpickling runs code named in the file. Two ways of trusting them:

- ``verify="md5"`` (default): every file must match the official MD5 checksum that torchvision ships
  (``torchvision.datasets.CIFAR10.train_list`` …), so only the official files are unpickled — by torchvision's
  own ``CIFAR10``/``CIFAR100`` loader, as is standard practice.
- ``verify="structure"``: for re-packed or subset files (and the tests' tiny files), which cannot match the
  checksums. Each file is read with a restricted unpickler that only resolves the numpy names needed to rebuild
  an array (anything else is refused before it can run), then checked: a dict with ``data`` uint8 [N, 3072] and
  N integer labels in range, and a meta file with one name per class.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity

from .._checks import check_choice
from ._common import InMemoryImages

VERIFY_MODES = ("md5", "structure")
SPLITS = ("train", "test")

# Per-channel statistics of the training images (the figures every CIFAR codebase uses).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

_ARCHIVES = {
    torchvision.datasets.CIFAR10: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    torchvision.datasets.CIFAR100: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}

# What a CIFAR pickle may reference: numpy's array reconstruction helpers (their numpy 1 and numpy 2 paths).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")
        return super().find_class(module, name)


class _CIFAR(InMemoryImages):
    """Shared loader; subclasses name torchvision's class, the labels key and the class count."""

    _torchvision_class: type
    _labels_key: str
    _expected_classes: int

    def __init__(self, root, split: str, *, verify: str = "md5") -> None:
        self.split = check_choice("split", split, SPLITS)
        self.verify = check_choice("verify", verify, VERIFY_MODES)
        tv = self._torchvision_class
        folder = _check_folder(root, tv)
        files = [name for name, _ in (tv.train_list if split == "train" else tv.test_list)]
        if verify == "md5":
            _check_checksums(folder, tv)
            dataset = tv(str(Path(root)), train=split == "train", download=False)
            images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
            labels = torch.tensor(dataset.targets, dtype=torch.int64)
            self.classes = list(dataset.classes)
        else:
            self.classes = _read_meta(folder / tv.meta["filename"], tv.meta["key"], self._expected_classes)
            parts = [_read_batch(folder / name, self._labels_key, len(self.classes)) for name in files]
            images = torch.cat([p[0] for p in parts])
            labels = torch.cat([p[1] for p in parts])
        super().__init__(images, labels)
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


class CIFAR10(_CIFAR):
    """CIFAR-10: 50 000 train / 10 000 test images, 32×32, 10 classes.

    Args:
        root: folder containing ``cifar-10-batches-py/``.
        split: "train" or "test".
        verify: "md5" (official files only) or "structure" (any files in the official format); see the module
            docstring.

    ``dataset[i]`` is ``(image float32 [3, 32, 32] in [0, 1], label int)``; ``as_tensors()`` gives
    ``(uint8 [n, 3, 32, 32], int64 [n])``. Attributes: ``classes``, ``num_classes``, ``image_size`` (32),
    ``mean``/``std`` (of the official training set). Raises ValueError for a missing or malformed folder.
    """

    _torchvision_class = torchvision.datasets.CIFAR10
    _labels_key = "labels"
    _expected_classes = 10
    mean, std = CIFAR10_MEAN, CIFAR10_STD


class CIFAR100(_CIFAR):
    """CIFAR-100: 50 000 train / 10 000 test images, 32×32, 100 fine classes.

    Args and attributes as :class:`CIFAR10`; ``root`` contains ``cifar-100-python/``. Labels are the fine labels.
    """

    _torchvision_class = torchvision.datasets.CIFAR100
    _labels_key = "fine_labels"
    _expected_classes = 100
    mean, std = CIFAR100_MEAN, CIFAR100_STD


def _check_folder(root, tv: type) -> Path:
    """The dataset folder inside root, or a ValueError saying what to put where."""
    expected = sorted(name for name, _ in tv.train_list + tv.test_list) + [tv.meta["filename"]]
    what = (f"put the extracted {tv.base_folder}/ folder ({', '.join(expected)}; from {_ARCHIVES[tv]}) "
            f"in {root}")
    if root is None or not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be the folder that contains {tv.base_folder}/, got {root!r}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root {str(root)!r} is not a folder: {what}")
    folder = root / tv.base_folder
    if not folder.is_dir():
        if (root / tv.meta["filename"]).is_file():
            raise ValueError(f"{str(root)!r} looks like the {tv.base_folder}/ folder itself: pass its parent "
                             f"{str(root.parent)!r} as root")
        raise ValueError(f"no {tv.base_folder}/ folder in {str(root)!r}: {what}")
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{str(folder)!r} lacks {', '.join(missing)}: {what}")
    return folder


def _check_checksums(folder: Path, tv: type) -> None:
    """All files, as torchvision's loader checks all of them whichever split it reads."""
    checksums = tv.train_list + tv.test_list + [(tv.meta["filename"], tv.meta["md5"])]
    wrong = [name for name, md5 in checksums if not check_integrity(str(folder / name), md5)]
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} in {str(folder)!r} do not match the official MD5 checksums (corrupted, truncated "
            f"or re-packed): re-extract the official archive {_ARCHIVES[tv]}, or pass verify='structure' to "
            "accept files in the same format after a structural check"
        )


def _load_restricted(path: Path):
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{str(path)!r} is not a CIFAR python-pickle file: {error}") from None


def _read_batch(path: Path, labels_key: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) of one batch file, after checking its structure."""
    entry = _load_restricted(path)
    if not isinstance(entry, dict) or "data" not in entry or labels_key not in entry:
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"{str(path)!r} is not a CIFAR batch: expected a dict with 'data' and {labels_key!r}, "
                         f"got {keys}")
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{str(path)!r}: 'data' must be a uint8 array of shape [N, 3072], got "
                         f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}")
    labels = entry[labels_key]
    if (not isinstance(labels, (list, np.ndarray)) or len(labels) != data.shape[0]
            or not all(isinstance(v, (int, np.integer)) and 0 <= v < num_classes for v in labels)):
        raise ValueError(f"{str(path)!r}: {labels_key!r} must hold {data.shape[0]} integer labels in "
                         f"[0, {num_classes})")
    images = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)
    return images, torch.as_tensor(np.asarray(labels, dtype=np.int64))


def _read_meta(path: Path, key: str, num_classes: int) -> list[str]:
    meta = _load_restricted(path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != num_classes or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{str(path)!r}: {key!r} must list the {num_classes} class names")
    return names
