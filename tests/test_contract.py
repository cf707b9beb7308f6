"""One contract over the whole registry × devices: what every method promises through msda.Mixer."""

from __future__ import annotations

import pytest
import torch

import msda
from conftest import make_generator

NUM_CLASSES = 5


def make_batch(device, batch=6, height=20, width=28, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=g).to(device=device, dtype=dtype)
    labels = (torch.arange(batch) % NUM_CLASSES).to(device)
    logits = torch.randn(batch, NUM_CLASSES, generator=g).to(device)
    return images, labels, logits


def run(method, images, labels, logits, seed=0, **kwargs):
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, generator=make_generator(images.device, seed), **kwargs)
    return mixer(images, labels, logits=logits)


@pytest.mark.parametrize("method", msda.METHODS)
def test_output_shapes_dtypes_devices_and_ranges(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    batch, _, height, width = images.shape
    assert out.images.shape == images.shape and out.images.dtype == images.dtype
    assert out.mask.shape == (batch, 1, height, width) and out.mask.dtype == torch.float32
    assert out.targets.shape == (batch, NUM_CLASSES) and out.targets.dtype == torch.float32
    assert out.lam.shape == out.lam_requested.shape == out.partner.shape == (batch,)
    for tensor in (out.images, out.mask, out.targets, out.lam, out.partner, out.lam_requested):
        assert tensor.device.type == device.type
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert ((0 <= out.lam) & (out.lam <= 1)).all()
    assert ((0 <= out.partner) & (out.partner < batch)).all()
    assert torch.allclose(out.targets.sum(1), torch.ones(batch, device=device), atol=1e-6)
    assert (out.targets >= 0).all()
    assert torch.isfinite(out.images).all()


@pytest.mark.parametrize("method", msda.METHODS)
def test_same_seed_same_output_and_different_seed_different_output(method, device):
    images, labels, logits = make_batch(device)
    first, again = run(method, images, labels, logits, seed=3), run(method, images, labels, logits, seed=3)
    other = run(method, images, labels, logits, seed=4)
    for name in ("images", "mask", "targets", "lam", "partner"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.mask, other.mask) or not torch.equal(first.images, other.images)


@pytest.mark.parametrize("method", msda.METHODS)
def test_label_weight_is_the_effective_mask_area(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    if msda.methods_info()[method].mixes_labels:
        assert torch.allclose(out.lam, out.mask.mean((1, 2, 3)), atol=1e-6)
    else:
        assert torch.equal(out.lam, torch.ones_like(out.lam))


@pytest.mark.parametrize("method", msda.METHODS)
def test_targets_follow_the_formula(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    expected = out.lam[:, None] * onehot + (1 - out.lam[:, None]) * onehot[out.partner]
    assert torch.allclose(out.targets, expected, atol=1e-6)


@pytest.mark.parametrize("method", [m for m in msda.METHODS if msda.methods_info()[m].mask_only])
def test_images_follow_the_formula_for_masking_methods(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    expected = out.mask * images + (1 - out.mask) * images[out.partner]
    assert torch.allclose(out.images, expected, atol=1e-6)


@pytest.mark.parametrize("method", msda.METHODS)
def test_inputs_are_never_modified(method, device):
    images, labels, logits = make_batch(device)
    kept = images.clone(), labels.clone(), logits.clone()
    out = run(method, images, labels, logits)
    assert torch.equal(images, kept[0]) and torch.equal(labels, kept[1]) and torch.equal(logits, kept[2])
    assert out.images.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("method", [m for m in msda.METHODS if m != "cutout"])
def test_samples_vary_within_a_batch(method, device):
    images, labels, logits = make_batch(device, batch=8)
    out = run(method, images, labels, logits)
    masks = out.mask.flatten(1)
    assert not torch.equal(masks, masks[:1].expand_as(masks)), "every sample got the same mask"
    assert out.lam.unique().numel() > 1


def test_cutout_squares_move_between_samples(device):
    images, labels, logits = make_batch(device, batch=8)
    masks = run("cutout", images, labels, logits).mask.flatten(1)
    assert not torch.equal(masks, masks[:1].expand_as(masks))


@pytest.mark.parametrize("method", msda.METHODS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 17, 33), (2, 64, 48)])
def test_edge_sizes_work(method, shape, device):
    batch, height, width = shape
    images, labels, logits = make_batch(device, batch=batch, height=height, width=width)
    out = run(method, images, labels, logits)
    assert out.images.shape == images.shape and torch.isfinite(out.images).all()
    assert torch.allclose(out.targets.sum(1), torch.ones(batch, device=device), atol=1e-6)


@pytest.mark.parametrize("method", msda.METHODS)
def test_large_images_work(method, device):
    images, labels, logits = make_batch(device, batch=2, height=512, width=512)
    out = run(method, images, labels, logits)
    assert out.images.shape == images.shape and torch.isfinite(out.mask).all()


@pytest.mark.parametrize("method", msda.METHODS)
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_lambda_at_the_ends(method, lam, device):
    images, labels, logits = make_batch(device)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, generator=make_generator(device))
    out = mixer(images, labels, lam=lam, logits=logits)
    assert torch.isfinite(out.images).all() and torch.isfinite(out.lam).all()
    info = msda.methods_info()[method]
    if lam == 1.0 and info.uses_lam and info.mixes_labels and method not in ("miamix",):
        assert torch.allclose(out.mask, torch.ones_like(out.mask)), "λ = 1 must keep the own image"
        assert torch.equal(out.images, images) or not info.mask_only
    if lam == 0.0 and method in ("mixup", "fmix", "lmix", "gridmix", "gmix", "agmix"):
        assert torch.allclose(out.mask, torch.zeros_like(out.mask)), "λ = 0 must take the partner everywhere"


@pytest.mark.parametrize("method", msda.METHODS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images(method, dtype, device):
    images, labels, logits = make_batch(device, dtype=dtype)
    out = run(method, images, labels, logits)
    assert out.images.dtype == dtype and torch.isfinite(out.images.float()).all()
    assert out.mask.dtype == torch.float32


@pytest.mark.parametrize("method", msda.METHODS)
def test_prob_zero_returns_the_batch_unchanged(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits, prob=0.0)
    assert torch.equal(out.images, images)
    assert torch.equal(out.mask, torch.ones_like(out.mask)) and torch.equal(out.lam, torch.ones_like(out.lam))
    assert torch.equal(out.partner, torch.arange(images.shape[0], device=device))
    assert torch.equal(out.targets, torch.nn.functional.one_hot(labels, NUM_CLASSES).float())


def test_methods_info_covers_the_registry():
    info = msda.methods_info()
    assert tuple(info) == msda.METHODS
    required = {"mixup", "cutout", "cutmix", "fmix", "lmix", "gridmix", "gmix", "agmix", "smoothmix_s",
                "smoothmix_c", "saliencymix", "resizemix", "hardmix", "miamix"}
    assert required <= set(msda.METHODS)
    assert set(msda.MASKS) == {"mixup", "cutout", "cutmix", "fmix", "lmix", "gridmix", "gmix", "agmix",
                               "smoothmix_s", "smoothmix_c", "resizemix"}
    for name, entry in info.items():
        assert entry.name == name and entry.summary.endswith(".") and entry.paper and entry.formula
        assert list(entry.to_dict()["params"]) == [p.to_dict() for p in entry.params]
