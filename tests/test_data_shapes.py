"""Tests for msda.data.Shapes: determinism, disjoint splits, balance, formats, masks and argument errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from msda.data import Shapes
from msda.data.shapes import CLASSES


def test_a_sample_renders_to_the_same_bits_in_any_batching_and_order(device):
    dataset = Shapes("train", n=300)
    everything = torch.arange(300, device=device)
    images, labels, masks = dataset.render(everything)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0)).to(device)
    start = 0
    for size in (1, 7, 64, 3, 100, 125):  # uneven batches, shuffled
        part = order[start: start + size]
        part_images, part_labels, part_masks = dataset.render(part)
        assert torch.equal(part_images, images[part])
        assert torch.equal(part_labels, labels[part])
        assert torch.equal(part_masks, masks[part])
        start += size
    assert start == 300


def test_a_sample_does_not_depend_on_n_or_on_the_instance():
    small = Shapes("test", n=20, seed=3)
    large = Shapes("test", n=5000, seed=3)
    for index in (0, 5, 19):
        image_small, label_small = small[index]
        image_large, label_large = large[index]
        assert torch.equal(image_small, image_large) and label_small == label_large


def test_cached_items_dataloader_batches_and_render_agree():
    dataset = Shapes("train", n=40, return_mask=True)
    images, labels, masks = dataset.render(range(40))
    item_image, item_label, item_mask = dataset[17]
    assert torch.equal(item_image, images[17]) and item_label == int(labels[17]) and torch.equal(item_mask, masks[17])
    batch_images, batch_labels, batch_masks = next(iter(DataLoader(dataset, batch_size=8)))
    assert torch.equal(batch_images, images[:8]) and torch.equal(batch_labels, labels[:8])
    assert torch.equal(batch_masks, masks[:8])
    stored_images, stored_labels = dataset.as_tensors()
    assert torch.equal(stored_images.float() / 255.0, images) and torch.equal(stored_labels, labels)


def test_large_splits_render_on_demand_and_match_the_cached_path():
    uncached = Shapes("test", n=4000, size=224)  # 600 MB as uint8: over the cache limit
    cached = Shapes("test", n=8, size=224)
    assert not uncached.cached and cached.cached
    for index in (2, 7):
        assert torch.equal(uncached[index][0], cached[index][0])


def test_splits_and_seeds_give_different_images():
    train = Shapes("train", n=100).as_tensors()[0].flatten(1)
    test = Shapes("test", n=100).as_tensors()[0].flatten(1)
    other_seed = Shapes("train", n=100, seed=1).as_tensors()[0].flatten(1)
    for other in (test, other_seed):
        # No image of one set equals any image of the other.
        same = (train[:, None, :] == other[None, :, :]).all(-1)
        assert not bool(same.any())


def test_every_class_appears_in_roughly_equal_numbers():
    _, labels = Shapes("train", n=2000).as_tensors()
    counts = torch.bincount(labels, minlength=len(CLASSES))
    assert counts.shape == (10,)
    assert int(counts.min()) >= 150 and int(counts.max()) <= 250, counts.tolist()


@pytest.mark.parametrize("size", [16, 32, 48, 64])
def test_formats_at_several_sizes(size):
    dataset = Shapes("train", n=12, size=size, return_mask=True)
    image, label, mask = dataset[3]
    assert image.dtype == torch.float32 and image.shape == (3, size, size)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert isinstance(label, int) and 0 <= label < 10
    assert mask.dtype == torch.float32 and mask.shape == (1, size, size)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    images, labels = dataset.as_tensors()
    assert images.dtype == torch.uint8 and images.shape == (12, 3, size, size)
    assert labels.dtype == torch.int64 and labels.shape == (12,)
    assert dataset.image_size == size and dataset.num_classes == 10 and dataset.classes == list(CLASSES)
    assert len(Shapes("train", n=12, size=size)[0]) == 2  # no mask unless asked


def test_224_pixels_render():
    images, _, masks = Shapes("train", n=2, size=224).render([0, 1])
    assert images.shape == (2, 3, 224, 224) and masks.shape == (2, 1, 224, 224)


def test_the_mask_covers_the_object_and_nothing_else(device):
    dataset = Shapes("train", n=200)
    index = torch.arange(200, device=device)
    with_object, labels, masks = dataset.render(index)
    without_object, labels_again, masks_again = dataset.render(index, draw_object=False)
    assert torch.equal(labels, labels_again) and torch.equal(masks, masks_again)
    assert bool((masks.flatten(1).sum(1) >= 4).all())  # every object is visible
    # The object changes the pixels it covers ...
    change = (with_object - without_object).abs().amax(1, keepdim=True)
    inside = (change * masks).flatten(1).sum(1) / masks.flatten(1).sum(1)
    assert bool((inside > 0).all()) and float(inside.median()) > 0.15
    # ... and nothing else: the mask includes the anti-aliased rim, and pixels hidden by clutter drawn over the
    # object look the same with or without it.
    assert float((change * (1 - masks)).max()) == 0.0


@pytest.mark.parametrize(("version", "smallest", "largest", "mean"), [
    # v1: circumdiameter 20–60 % of the side — a diamond at 20 % covers ~1.5 % of the image, a circle at 60 % 28 %.
    (1, 0.01, 0.36, (0.05, 0.2)),
    # v2: circumradius 0.5–0.85 of the half-side — an arrow at 0.5 covers ~7.5 %, a circle at 0.85 up to 60 %.
    (2, 0.06, 0.7, (0.2, 0.3)),
])
def test_mask_area_follows_the_object_scale(version, smallest, largest, mean):
    _, _, masks = Shapes("train", n=500, version=version).render(range(500))
    area = masks.flatten(1).mean(1)
    assert float(area.min()) > smallest and float(area.max()) < largest
    assert mean[0] < float(area.mean()) < mean[1]


def test_version_1_still_renders_the_first_shipped_checkpoints_data():
    """The first checkpoints were trained and scored on version 1: its bits must not move."""
    import hashlib

    images, labels, masks = Shapes("train", n=8, version=1).render(range(8))
    digest = hashlib.sha256((images * 255).round().to(torch.uint8).numpy().tobytes() + labels.numpy().tobytes()
                            + masks.to(torch.uint8).numpy().tobytes()).hexdigest()
    assert digest == "48f1d122a84283a37d43df113ff1cbd2cc1be498e72532da024840c5dd099e83"


def test_versions_have_their_own_classes_and_statistics():
    from msda.data.shapes import DATASET_VERSION, DESIGNS, version_of_classes

    old, new = Shapes("train", n=4, version=1), Shapes("train", n=4)
    assert new.version == DATASET_VERSION == 2 and old.version == 1
    assert "square" in old.classes and "diamond" in old.classes
    assert not {"square", "diamond", "hexagon"} & set(new.classes) and new.classes == list(CLASSES)
    assert version_of_classes(old.classes) == 1 and version_of_classes(new.classes) == 2
    assert version_of_classes(["cat", "dog"]) is None
    assert old.mean != new.mean and "version=1" in repr(old)
    assert sorted(DESIGNS) == [1, 2]


def test_mean_and_std_are_deterministic_statistics():
    first, second = Shapes("train", n=10), Shapes("test", n=99)
    assert first.mean == second.mean and first.std == second.std  # from the train split, whatever the split
    assert len(first.mean) == 3 and all(0.2 < m < 0.8 for m in first.mean)
    assert all(0.1 < s < 0.4 for s in first.std)
    assert Shapes("train", n=10, seed=5).mean != first.mean


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split": "val", "n": 10}, "split must be one of 'train', 'test'; got 'val'"),
    ({"split": "train", "n": 0}, r"n must be an integer in \[1, "),
    ({"split": "train", "n": 10, "size": 8}, r"size must be an integer in \[16, inf\), got 8"),
    ({"split": "train", "n": 10, "seed": -1}, r"seed must be an integer in \[0, 2\*\*32\), got -1"),
    ({"split": "train", "n": 10, "return_mask": 1}, "return_mask must be True or False, got 1"),
    ({"split": "train", "n": 10, "version": 3}, "version must be one of 1, 2, got 3"),
    ({"split": "train", "n": 10, "version": True}, "version must be one of 1, 2, got True"),
])
def test_bad_arguments_raise(kwargs, message):
    split = kwargs.pop("split")
    with pytest.raises(ValueError, match=message):
        Shapes(split, **kwargs)


def test_bad_indices_raise():
    dataset = Shapes("train", n=10)
    with pytest.raises(ValueError, match=r"sample index must be in \[0, 10\) for this Shapes\(n=10\), got 10"):
        dataset[10]
    with pytest.raises(ValueError, match=r"got -1"):
        dataset.render([0, -1])
    with pytest.raises(ValueError, match="indices must be an integer tensor, got dtype torch.float32"):
        dataset.render(torch.tensor([0.0, 1.0]))


def test_counter_random_streams_are_uniform_and_independent():
    from msda.data._counter_random import CounterRandom, hash32, sample_keys

    keys = sample_keys(0, 1, torch.arange(100_000))
    assert torch.unique(keys).numel() == 100_000  # a bijection of the index
    assert int(hash32(torch.arange(1 << 16)).unique().numel()) == 1 << 16
    rng = CounterRandom(keys)
    u, v = rng.uniform("a"), rng.uniform("b")
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float(v.mean()) - 0.5) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([u, v]))[0, 1])) < 0.02
    counts = torch.bincount(rng.integers("c", 10), minlength=10).float()
    assert float(counts.min()) > 9_500 and float(counts.max()) < 10_500
