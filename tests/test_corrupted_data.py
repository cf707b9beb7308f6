"""Readers of the published corrupted test sets (analysis.corrupted_data) on small files written here in the
official layouts. The official CIFAR-10-C files have 50 000 rows (10 000 per severity); the files here have
5·n rows, which the reader accepts as n per severity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from analysis.corrupted_data import CifarC, ImageNetC

PER_SEVERITY = 4


@pytest.fixture
def cifar_root(tmp_path):
    """fog.npy whose pixel values encode (severity, image index); labels 0 … 9 repeating."""
    rows = 5 * PER_SEVERITY
    images = np.zeros((rows, 32, 32, 3), dtype=np.uint8)
    for row in range(rows):
        images[row, ..., 0] = row // PER_SEVERITY + 1  # severity
        images[row, ..., 1] = row % PER_SEVERITY  # index within the severity
        images[row, 5, 7, 2] = 255
    np.save(tmp_path / "fog.npy", images)
    np.save(tmp_path / "labels.npy", (np.arange(rows) % 10).astype(np.uint8))
    return tmp_path


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_cifar_c_rows_per_severity(cifar_root, severity):
    data = CifarC(cifar_root, "fog", severity)
    assert len(data) == PER_SEVERITY
    for index in range(PER_SEVERITY):
        image, label = data[index]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert torch.allclose(image[0], torch.full((32, 32), severity / 255))
        assert torch.allclose(image[1], torch.full((32, 32), index / 255))
        assert image[2, 5, 7] == 1.0 and image[2].sum() == 1.0
        assert label == ((severity - 1) * PER_SEVERITY + index) % 10 and isinstance(label, int)
    assert torch.equal(data[-1][0], data[PER_SEVERITY - 1][0])
    with pytest.raises(IndexError):
        data[PER_SEVERITY]


def test_cifar_c_transform_and_loader(cifar_root):
    data = CifarC(cifar_root, "fog", 2, transform=lambda image: image * 2)
    images, labels = next(iter(DataLoader(data, batch_size=PER_SEVERITY)))
    assert images.shape == (PER_SEVERITY, 3, 32, 32)
    assert torch.allclose(images[:, 0], torch.full_like(images[:, 0], 2 * 2 / 255))
    assert labels.tolist() == [(PER_SEVERITY + i) % 10 for i in range(PER_SEVERITY)]


def _expect(root, message_parts, corruption="fog"):
    with pytest.raises(ValueError) as error:
        CifarC(root, corruption, 1)
    for part in message_parts:
        assert part in str(error.value), (part, str(error.value))


def test_cifar_c_malformed_files(tmp_path):
    good = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "labels.npy", np.zeros(10, dtype=np.uint8))
    _expect(tmp_path, ["fog.npy", "file not found", "[50000, 32, 32, 3]"])
    np.save(tmp_path / "fog.npy", good.astype(np.float32))
    _expect(tmp_path, ["fog.npy", "uint8", "[50000, 32, 32, 3]", "float32"])
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32), dtype=np.uint8))
    _expect(tmp_path, ["fog.npy", "[50000, 32, 32, 3]", "[10, 32, 32]"])
    np.save(tmp_path / "fog.npy", np.zeros((12, 32, 32, 3), dtype=np.uint8))
    _expect(tmp_path, ["fog.npy", "[50000, 32, 32, 3]", "12 rows"])
    np.save(tmp_path / "fog.npy", np.array([object()] * 10, dtype=object), allow_pickle=True)
    _expect(tmp_path, ["fog.npy", "not a readable .npy", "[50000, 32, 32, 3]"])
    (tmp_path / "fog.npy").write_bytes(b"not an array")
    _expect(tmp_path, ["fog.npy", "not a readable .npy"])
    np.save(tmp_path / "fog.npy", good)
    np.save(tmp_path / "labels.npy", np.zeros(9, dtype=np.uint8))
    _expect(tmp_path, ["labels.npy", "shape [10]", "[9]"])
    np.save(tmp_path / "labels.npy", np.zeros(10, dtype=np.float32))
    _expect(tmp_path, ["labels.npy", "integer array"])
    (tmp_path / "labels.npy").unlink()
    _expect(tmp_path, ["labels.npy", "file not found"])
    _expect(tmp_path, ["corruption must be one of"], corruption="rain")
    with pytest.raises(ValueError, match="severity"):
        CifarC(tmp_path, "fog", 6)


@pytest.fixture
def imagenet_c_root(tmp_path):
    """Two classes under fog/2 with 224×224 JPEGs whose colour tells the class."""
    from PIL import Image

    colours = {"n01440764": (200, 30, 30), "n01443537": (30, 30, 200)}
    for wnid, colour in colours.items():
        folder = tmp_path / "fog" / "2" / wnid
        folder.mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (224, 224), colour).save(folder / f"ILSVRC2012_val_{k:08d}.JPEG", "JPEG", quality=95)
    return tmp_path


def test_imagenet_c_sorted_classes(imagenet_c_root):
    data = ImageNetC(imagenet_c_root, "fog", 2)
    assert data.classes == ["n01440764", "n01443537"] and len(data) == 4
    for image, label in (data[i] for i in range(len(data))):
        assert image.shape == (3, 224, 224) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        red_dominant = image[0].mean() > image[2].mean()
        assert red_dominant == (label == 0)


def test_imagenet_c_given_class_list(imagenet_c_root):
    classes = ["n00000001", "n01443537", "n01440764", "n09999999"]
    data = ImageNetC(imagenet_c_root, "fog", 2, classes=classes)
    labels = sorted({label for _, label in (data[i] for i in range(len(data)))})
    assert labels == [1, 2]
    for image, label in (data[i] for i in range(len(data))):
        assert (image[0].mean() > image[2].mean()) == (classes[label] == "n01440764")


def test_imagenet_c_errors(imagenet_c_root):
    with pytest.raises(ValueError, match="fog/3 not found"):
        ImageNetC(imagenet_c_root, "fog", 3)
    (imagenet_c_root / "fog" / "4").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        ImageNetC(imagenet_c_root, "fog", 4)
    (imagenet_c_root / "fog" / "4" / "n01440764").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        ImageNetC(imagenet_c_root, "fog", 4)
    with pytest.raises(ValueError, match="not in `classes`: n01443537"):
        ImageNetC(imagenet_c_root, "fog", 2, classes=["n01440764"])
    with pytest.raises(ValueError, match="corruption must be one of"):
        ImageNetC(imagenet_c_root, "haze", 2)
