"""Tests for the file-based loaders (CIFAR-10/100, ImageFolder, Tiny-ImageNet val) and load_dataset.

The data are tiny files written here in the real formats: CIFAR's python pickles and JPEG/PNG/BMP folders.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader

from msda.data import CIFAR10, CIFAR100, DATASETS, ImageFolder, Shapes, load_dataset

CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def _write_pickle(path: Path, obj) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)  # the protocol of the official files


def write_cifar10(root: Path, per_batch: int = 3) -> dict:
    """The official layout with `per_batch` images per batch; returns {file: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for index, name in enumerate(CIFAR10_FILES[:-1]):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [(index + k) % 10 for k in range(per_batch)]
        _write_pickle(folder / name, {"batch_label": f"batch {index}", "labels": labels, "data": data,
                                      "filenames": [f"img_{index}_{k}.png" for k in range(per_batch)]})
        written[name] = (data, labels)
    _write_pickle(folder / "batches.meta", {"num_cases_per_batch": per_batch, "num_vis": 3072,
                                            "label_names": [f"class{c}" for c in range(10)]})
    return written


def write_cifar100(root: Path) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, count in (("train", 5), ("test", 2)):
        data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=count)]
        _write_pickle(folder / name, {"filenames": ["x"] * count, "batch_label": name, "fine_labels": fine,
                                      "coarse_labels": [f // 5 for f in fine], "data": data})
        written[name] = (data, fine)
    _write_pickle(folder / "meta", {"fine_label_names": [f"fine{c}" for c in range(100)],
                                    "coarse_label_names": [f"coarse{c}" for c in range(20)]})
    return written


def test_cifar10_reads_the_official_format(tmp_path):
    written = write_cifar10(tmp_path)
    train = CIFAR10(tmp_path, "train", verify="structure")
    test = CIFAR10(tmp_path, "test", verify="structure")
    assert len(train) == 15 and len(test) == 3
    assert train.classes == [f"class{c}" for c in range(10)] and train.num_classes == 10 and train.image_size == 32
    data, labels = written["data_batch_2"]
    image, label = train[3]  # first image of the second batch
    # A row holds the red plane, then green, then blue, each row-major.
    expected = torch.from_numpy(data[0].reshape(3, 32, 32).astype(np.float32) / 255.0)
    assert torch.equal(image, expected) and label == labels[0]
    images, all_labels = test.as_tensors()
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 32, 32) and all_labels.dtype == torch.int64
    assert all_labels.tolist() == written["test_batch"][1]
    batch_images, batch_labels = next(iter(DataLoader(train, batch_size=4)))
    assert batch_images.shape == (4, 3, 32, 32) and batch_labels.tolist() == [train[i][1] for i in range(4)]
    assert len(train.mean) == 3 and len(train.std) == 3


def test_cifar100_uses_the_fine_labels(tmp_path):
    written = write_cifar100(tmp_path)
    train = CIFAR100(tmp_path, "train", verify="structure")
    assert len(train) == 5 and train.num_classes == 100 and train.classes[7] == "fine7"
    assert train.as_tensors()[1].tolist() == written["train"][1]
    assert len(CIFAR100(tmp_path, "test", verify="structure")) == 2


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_md5_mode_loads_through_torchvision_when_the_checksums_match(tmp_path, monkeypatch, variant):
    # Point torchvision's official checksum lists at the tiny files, so its own loader runs end to end.
    tv = torchvision.datasets.CIFAR10 if variant == "cifar10" else torchvision.datasets.CIFAR100
    (write_cifar10 if variant == "cifar10" else write_cifar100)(tmp_path)
    folder = tmp_path / tv.base_folder
    monkeypatch.setattr(tv, "train_list", [[name, _md5(folder / name)] for name, _ in tv.train_list])
    monkeypatch.setattr(tv, "test_list", [[name, _md5(folder / name)] for name, _ in tv.test_list])
    monkeypatch.setattr(tv, "meta", {**tv.meta, "md5": _md5(folder / tv.meta["filename"])})
    ours = CIFAR10 if variant == "cifar10" else CIFAR100
    for split in ("train", "test"):
        official, structural = ours(tmp_path, split), ours(tmp_path, split, verify="structure")
        assert torch.equal(official.as_tensors()[0], structural.as_tensors()[0])
        assert torch.equal(official.as_tensors()[1], structural.as_tensors()[1])
        assert official.classes == structural.classes


def test_md5_mode_refuses_files_that_are_not_the_official_ones(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match=r"data_batch_1, .*batches\.meta in .* do not match the official MD5 "
                                         r"checksums.*verify='structure'"):
        CIFAR10(tmp_path, "train")


def test_cifar_bad_roots_say_what_to_put_where(tmp_path):
    with pytest.raises(ValueError, match="root must be the folder that contains cifar-10-batches-py/, got None"):
        CIFAR10(None, "train")
    with pytest.raises(ValueError, match=r"is not a folder: put the extracted cifar-10-batches-py/ folder "
                                         r"\(data_batch_1, .*test_batch, batches\.meta; from https://.* in "):
        CIFAR10(tmp_path / "missing", "train")
    with pytest.raises(ValueError, match=r"no cifar-100-python/ folder in .*: put the extracted cifar-100-python/ "
                                         r"folder \(test, train, meta; "):
        CIFAR100(tmp_path, "train")
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="looks like the cifar-10-batches-py/ folder itself: pass its parent"):
        CIFAR10(tmp_path / "cifar-10-batches-py", "train")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ValueError, match="lacks data_batch_3: put the extracted cifar-10-batches-py/ folder"):
        CIFAR10(tmp_path, "train", verify="structure")


class NotCifar:
    """Any class a pickle names is refused before it is imported or called."""


@pytest.mark.parametrize(("content", "message"), [
    (b"\x80\x02}q\x00(X\x04\x00\x00\x00data", "is not a CIFAR python-pickle file"),  # truncated
    (pickle.dumps({"data": NotCifar()}, protocol=2), r"refusing to load .*NotCifar"),
    (pickle.dumps([1, 2, 3], protocol=2), r"expected a dict with 'data' and 'labels', got list"),
    (pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2),
     r"'data' must be a uint8 array of shape \[N, 3072\], got ndarray uint8 \(2, 100\)"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, protocol=2), "uint8 array"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, protocol=2),
     r"'labels' must hold 2 integer labels in \[0, 10\)"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, protocol=2), "must hold 2 integer"),
])
def test_structure_mode_rejects_malformed_batches(tmp_path, content, message):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        CIFAR10(tmp_path, "train", verify="structure")


def test_structure_mode_rejects_a_malformed_meta_file(tmp_path):
    write_cifar10(tmp_path)
    _write_pickle(tmp_path / "cifar-10-batches-py" / "batches.meta", {"label_names": ["only", "three", "names"]})
    with pytest.raises(ValueError, match="'label_names' must list the 10 class names"):
        CIFAR10(tmp_path, "test", verify="structure")


def test_cifar_bad_split_and_verify(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'; got 'val'"):
        CIFAR10(tmp_path, "val")
    with pytest.raises(ValueError, match="verify must be one of 'md5', 'structure'; got 'none'"):
        CIFAR10(tmp_path, "train", verify="none")


# --- image folders -------------------------------------------------------------------------------------------

def _save(path: Path, colour, size=(40, 30), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def write_imagenet_layout(root: Path) -> None:
    _save(root / "train" / "dog" / "a.JPEG", (200, 30, 30))
    _save(root / "train" / "dog" / "b.png", (190, 20, 20), size=(20, 50))
    _save(root / "train" / "cat" / "c.PNG", (30, 200, 30))
    _save(root / "train" / "cat" / "d.png", 128, mode="L")  # greyscale
    _save(root / "train" / "cat" / "e.png", (30, 200, 30, 255), mode="RGBA")
    _save(root / "train" / "emu" / "f.bmp", (30, 30, 200))
    (root / "train" / "emu" / "notes.txt").write_text("not an image")
    _save(root / "val" / "emu" / "g.jpg", (30, 30, 200))


def test_image_folder_reads_classes_and_images(tmp_path):
    write_imagenet_layout(tmp_path)
    train = ImageFolder(tmp_path, "train", size=16)
    assert train.classes == ["cat", "dog", "emu"] and train.num_classes == 3 and train.image_size == 16
    assert len(train) == 6  # notes.txt is skipped
    labels = {Path(path).name: label for path, label in train.samples}
    assert labels == {"a.JPEG": 1, "b.png": 1, "c.PNG": 0, "d.png": 0, "e.png": 0, "f.bmp": 2}
    for index in range(len(train)):
        image, _ = train[index]
        assert image.dtype == torch.float32 and image.shape == (3, 16, 16)
        assert float(image.min()) >= 0 and float(image.max()) <= 1
    by_name = {Path(path).name: index for index, (path, _) in enumerate(train.samples)}
    assert torch.allclose(train[by_name["c.PNG"]][0], torch.tensor([30, 200, 30.0])[:, None, None] / 255)
    assert torch.allclose(train[by_name["d.png"]][0], torch.full((3, 16, 16), 128 / 255))
    assert torch.allclose(train[by_name["f.bmp"]][0], torch.tensor([30, 30, 200.0])[:, None, None] / 255)
    jpeg = train[by_name["a.JPEG"]][0]
    assert (jpeg - torch.tensor([200, 30, 30.0])[:, None, None] / 255).abs().max() < 0.05  # lossy
    images, all_labels = train.as_tensors()
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8
    assert all_labels.tolist() == [label for _, label in train.samples]
    assert train.mean == (0.485, 0.456, 0.406)


def test_val_split_uses_the_train_class_indices(tmp_path):
    write_imagenet_layout(tmp_path)
    val = ImageFolder(tmp_path, "val", size=16)
    assert val.classes == ["cat", "dog", "emu"] and val.samples[0][1] == 2 and not val.train


def test_train_keeps_the_whole_shorter_side_and_eval_crops_the_centre(tmp_path):
    # A 64×32 image: left half black, right half white, with a white 4-px frame.
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, 32:] = 255
    pixels[:4], pixels[-4:], pixels[:, :4], pixels[:, -4:] = 255, 255, 255, 255
    (tmp_path / "train" / "only").mkdir(parents=True)
    Image.fromarray(pixels).save(tmp_path / "train" / "only" / "x.png")
    kept = ImageFolder(tmp_path, "train", size=32)[0][0]
    cropped = ImageFolder(tmp_path, "train", size=32, train=False, crop_fraction=0.5)[0][0]
    assert kept.shape == cropped.shape == (3, 32, 32)
    assert bool((kept[:, 0, 16] == 1.0).all())  # the frame's top edge survives a full-shorter-side crop
    assert bool((cropped[:, 0, 8] == 0.0).all())  # a 0.5 crop is inside the frame, on the black half


def write_tiny_imagenet(root: Path) -> None:
    (root).mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("n02\nn01\n")
    _save(root / "train" / "n01" / "images" / "n01_0.JPEG", (250, 0, 0), size=(64, 64))
    _save(root / "train" / "n02" / "images" / "n02_0.JPEG", (0, 250, 0), size=(64, 64))
    (root / "train" / "n01" / "n01_boxes.txt").write_text("n01_0.JPEG\t0\t0\t10\t10\n")
    _save(root / "val" / "images" / "val_0.JPEG", (0, 250, 0), size=(64, 64))
    _save(root / "val" / "images" / "val_1.JPEG", (250, 0, 0), size=(64, 64))
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t5\t5\nval_1.JPEG\tn01\t1\t1\t9\t9\n")


def test_tiny_imagenet_train_and_annotated_val(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = ImageFolder(tmp_path, "train", size=64)
    val = ImageFolder(tmp_path, "val", size=64, crop_fraction=1.0)
    assert train.classes == val.classes == ["n01", "n02"]
    assert [label for _, label in train.samples] == [0, 1]
    assert [(Path(path).name, label) for path, label in val.samples] == [("val_0.JPEG", 1), ("val_1.JPEG", 0)]
    image, label = val[0]
    assert image.shape == (3, 64, 64) and label == 1 and float(image[1].mean()) > 0.9


def test_load_dataset_maps_test_to_the_val_folder(tmp_path):
    write_tiny_imagenet(tmp_path)
    test = load_dataset("imagefolder", "test", root=tmp_path, size=32)
    assert isinstance(test, ImageFolder) and test.split == "val" and len(test) == 2 and not test.train
    assert load_dataset("imagefolder", "train", root=tmp_path, size=32).train


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match="root must be the dataset folder"):
        ImageFolder(None, "train")
    with pytest.raises(ValueError, match=r"is not a folder: expected .*train/<class>/<image>"):
        ImageFolder(tmp_path / "missing", "train")
    (tmp_path / "val").mkdir()
    with pytest.raises(ValueError, match=r"no train/ folder in .* \(it has: val\)"):
        ImageFolder(tmp_path, "train")
    with pytest.raises(ValueError, match=r"val' has no class folders"):
        ImageFolder(tmp_path, "val")
    (tmp_path / "val" / "empty_class").mkdir()
    with pytest.raises(ValueError, match="found no images"):
        ImageFolder(tmp_path, "val")
    with pytest.raises(ValueError, match="split must name a sub-folder"):
        ImageFolder(tmp_path, "../x")
    with pytest.raises(ValueError, match=r"size must be an integer in \[8, inf\)"):
        ImageFolder(tmp_path, "val", size=4)


def test_image_folder_refuses_unknown_classes_and_broken_annotations(tmp_path):
    write_tiny_imagenet(tmp_path)
    _save(tmp_path / "train_extra" / "n99" / "x.png", (1, 2, 3))
    with pytest.raises(ValueError, match="class folders that are not among the dataset's classes: n99"):
        ImageFolder(tmp_path, "train_extra")
    annotations = tmp_path / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn07\t0\t0\t5\t5\n")
    with pytest.raises(ValueError, match="class 'n07' of val_0.JPEG is not among the dataset's 2 classes"):
        ImageFolder(tmp_path, "val")
    annotations.write_text("gone.JPEG\tn01\t0\t0\t5\t5\n")
    with pytest.raises(ValueError, match=r"lists gone\.JPEG, which is not in"):
        ImageFolder(tmp_path, "val")
    annotations.write_text("no tabs here\n")
    with pytest.raises(ValueError, match=r"line 1: expected '<file>\\t<class>…'"):
        ImageFolder(tmp_path, "val")


def test_an_undecodable_image_names_its_file(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"definitely not a jpeg")
    dataset = ImageFolder(tmp_path, "train", size=16)
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.jpg"):
        dataset[0]


# --- load_dataset --------------------------------------------------------------------------------------------

def test_load_dataset_builds_each_kind(tmp_path):
    write_cifar10(tmp_path / "c10")
    write_imagenet_layout(tmp_path / "folder")
    shapes = load_dataset("shapes", "test", n=5, size=16, seed=2, return_mask=True)
    assert isinstance(shapes, Shapes) and len(shapes) == 5 and len(shapes[0]) == 3 and shapes.seed == 2
    assert load_dataset("shapes", "train", n=3).image_size == 32
    assert isinstance(load_dataset("cifar10", "train", root=tmp_path / "c10", verify="structure"), CIFAR10)
    folder = load_dataset("imagefolder", "train", root=tmp_path / "folder")
    assert isinstance(folder, ImageFolder) and folder.image_size == 224
    assert DATASETS == ("shapes", "cifar10", "cifar100", "imagefolder")


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("mnist", {}, "dataset name must be one of 'shapes', 'cifar10', 'cifar100', 'imagefolder'; got 'mnist'"),
    ("shapes", {}, "shapes needs n, the number of samples"),
    ("shapes", {"n": 4, "root": "/data"}, "shapes is generated, it reads no files: root must be None"),
    ("cifar10", {}, "cifar10 needs root, the folder that holds its files"),
    ("cifar100", {"root": "/data", "n": 10}, "n only applies to shapes"),
    ("imagefolder", {}, "imagefolder needs root"),
    ("imagefolder", {"root": "/data", "return_mask": True}, "return_mask only applies to shapes"),
    ("cifar10", {"root": "/data", "size": 64}, "cifar10 images are 32×32: size must be None or 32, got 64"),
    ("cifar10", {"root": "/data", "verify": "md4"}, "verify must be one of 'md5', 'structure'; got 'md4'"),
])
def test_load_dataset_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(name, "train", **kwargs)
