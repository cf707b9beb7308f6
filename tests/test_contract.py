"""One contract over the whole registry × devices: what every method promises through msda.Mixer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import msda
from msda.distributions import Distribution
from conftest import guidance, make_generator, method_cases

NUM_CLASSES = 5


def make_batch(device, batch=6, height=20, width=28, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=g).to(device=device, dtype=dtype)
    labels = (torch.arange(batch) % NUM_CLASSES).to(device)
    logits = torch.randn(batch, NUM_CLASSES, generator=g).to(device)
    return images, labels, logits


def run(method, images, labels, logits, seed=0, lam=None, **kwargs):
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, generator=make_generator(images.device, seed), **kwargs)
    return mixer(images, labels, lam=lam, **guidance(method, images, logits=logits))


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
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


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_same_seed_same_output_and_different_seed_different_output(method, device):
    images, labels, logits = make_batch(device)
    first, again = run(method, images, labels, logits, seed=3), run(method, images, labels, logits, seed=3)
    other = run(method, images, labels, logits, seed=4)
    for name in ("images", "mask", "targets", "lam", "partner"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.mask, other.mask) or not torch.equal(first.images, other.images)


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_label_weight_is_the_effective_mask_area(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    info = msda.methods_info()[method]
    if not info.mixes_labels:
        assert torch.equal(out.lam, torch.ones_like(out.lam))
    elif info.label_weight == "area":
        assert torch.allclose(out.lam, out.mask.mean((1, 2, 3)), atol=1e-6)
    else:  # SnapMix: the CAM share, a weight in [0, 1]; where nothing is pasted the own label stays whole
        assert ((0 <= out.lam) & (out.lam <= 1)).all()
        unmixed = (out.mask == 1).flatten(1).all(1)
        assert torch.equal(out.lam[unmixed], torch.ones_like(out.lam[unmixed]))


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_targets_follow_the_formula(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    expected = out.lam[:, None] * onehot + (1 - out.lam[:, None]) * onehot[out.partner]
    assert torch.allclose(out.targets, expected, atol=1e-6)


@pytest.mark.parametrize("method", method_cases([m for m in msda.METHODS if msda.methods_info()[m].mask_only]))
def test_images_follow_the_formula_for_masking_methods(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    expected = out.mask * images + (1 - out.mask) * images[out.partner]
    assert torch.allclose(out.images, expected, atol=1e-6)


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_inputs_are_never_modified(method, device):
    images, labels, logits = make_batch(device)
    kept = images.clone(), labels.clone(), logits.clone()
    out = run(method, images, labels, logits)
    assert torch.equal(images, kept[0]) and torch.equal(labels, kept[1]) and torch.equal(logits, kept[2])
    assert out.images.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_samples_vary_within_a_batch(method, device):
    images, labels, logits = make_batch(device, batch=8)
    out = run(method, images, labels, logits)
    masks = out.mask.flatten(1)
    assert not torch.equal(masks, masks[:1].expand_as(masks)), "every sample got the same mask"
    if msda.methods_info()[method].mixes_labels:
        assert out.lam.unique().numel() > 1


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 17, 33), (2, 64, 48)])
def test_edge_sizes_work(method, shape, device):
    batch, height, width = shape
    images, labels, logits = make_batch(device, batch=batch, height=height, width=width)
    out = run(method, images, labels, logits)
    assert out.images.shape == images.shape and torch.isfinite(out.images).all()
    assert torch.allclose(out.targets.sum(1), torch.ones(batch, device=device), atol=1e-6)


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_large_images_work(method, device):
    images, labels, logits = make_batch(device, batch=2, height=512, width=512)
    out = run(method, images, labels, logits)
    assert out.images.shape == images.shape and torch.isfinite(out.mask).all()


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_lambda_at_the_ends(method, lam, device):
    images, labels, logits = make_batch(device)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, generator=make_generator(device))
    out = mixer(images, labels, lam=lam, **guidance(method, images, logits=logits))
    assert torch.isfinite(out.images).all() and torch.isfinite(out.lam).all()
    info = msda.methods_info()[method]
    if lam == 1.0 and info.uses_lam and info.mixes_labels:
        assert torch.allclose(out.mask, torch.ones_like(out.mask)), "λ = 1 must keep the own image"
        assert torch.equal(out.images, images) or not info.mask_only
    if lam == 0.0 and info.exact_lam:
        assert torch.allclose(out.mask, torch.zeros_like(out.mask)), "λ = 0 must take the partner everywhere"


AREA_METHODS = [name for name, info in msda.methods_info().items() if info.area_param]


def test_area_params_are_declared_where_a_pinned_value_sets_the_area():
    assert set(AREA_METHODS) == {"gmix", "agmix", "smoothmix_s", "smoothmix_c", "resizemix", "cutout"}
    for name in AREA_METHODS:
        info = msda.methods_info()[name]
        assert info.param(info.area_param).kind == "float"


@pytest.mark.parametrize("method", AREA_METHODS)
def test_a_pinned_area_param_makes_the_mask_independent_of_lambda(method, device):
    # What the app says on a card ("σ decides the mask's area: the requested λ is not applied") holds.
    images, labels, logits = make_batch(device)
    info = msda.methods_info()[method]
    pinned = {info.area_param: 0.3}
    if any(p.name == "match_lam" for p in info.params):
        pinned["match_lam"] = True  # even with λ matching asked for, the pinned area wins
    low = run(method, images, labels, logits, lam=0.2, **pinned)
    high = run(method, images, labels, logits, lam=0.8, **pinned)
    assert torch.equal(low.mask, high.mask) and torch.equal(low.lam, high.lam)


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images(method, dtype, device):
    images, labels, logits = make_batch(device, dtype=dtype)
    out = run(method, images, labels, logits)
    assert out.images.dtype == dtype and torch.isfinite(out.images.float()).all()
    assert out.mask.dtype == torch.float32


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
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
    methods_dir = Path(msda.__file__).parent / "methods"
    files = {f.stem for f in methods_dir.glob("*.py") if not f.stem.startswith("_")}
    assert files == set(msda.METHODS), "one file per method, each registered"
    assert set(msda.MASKS) == {name for name, entry in info.items() if entry.image_free_mask}
    for name, entry in info.items():
        assert entry.name == name and entry.summary.endswith(".") and entry.paper and entry.formula
        assert entry.to_dict()["params"] == [p.to_dict() for p in entry.params]
        json.dumps(entry.to_dict())  # the app and the docs read it as data


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_random_params_have_their_law_as_data(method):
    for param in msda.methods_info()[method].params:
        if param.default is None:
            assert isinstance(param.sampled, Distribution), f"{method}.{param.name} has no law"
            assert str(param.sampled)
        support = param.sampled.support if param.sampled is not None else None
        if support is not None:
            low, high = param.slider_range
            assert low <= support[0] <= support[1] <= high, f"{method}.{param.name}: draws outside its range"


# ---------------------------------------------------------------- replay

def replay_kwargs(method, images, logits):
    return guidance(method, images, logits=logits)


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_params_replay_the_mix_bit_for_bit(method, prob, device):
    images, labels, logits = make_batch(device, batch=8)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, prob=prob, generator=make_generator(device, 7))
    out = mixer(images, labels, **replay_kwargs(method, images, logits))
    # Another generator state: a replay draws nothing, so it must not matter. No model input is needed.
    other = msda.Mixer(method, num_classes=NUM_CLASSES, prob=prob, generator=make_generator(device, 99))
    again = other(images, labels, params=out.params)
    for name in ("images", "mask", "targets", "lam", "partner"):
        assert torch.equal(getattr(again, name), getattr(out, name)), name
    assert again.params.keys() == out.params.keys()


@pytest.mark.parametrize("method", method_cases(msda.METHODS))
def test_params_hold_every_random_parameter(method, device):
    images, labels, logits = make_batch(device)
    out = run(method, images, labels, logits)
    assert out.params["method"] == method
    for key in ("lam", "partner", "mixed"):
        assert out.params[key].shape == (images.shape[0],) and out.params[key].device.type == device.type
    for param in msda.methods_info()[method].params:
        if param.random:
            assert param.name in out.params, f"{method}: the drawn {param.name} is not returned"


def test_replay_refuses_params_of_another_call(device):
    images, labels, logits = make_batch(device)
    out = run("cutmix", images, labels, logits)
    with pytest.raises(ValueError, match="drawn by 'cutmix' but this Mixer mixes with 'fmix'"):
        msda.Mixer("fmix", num_classes=NUM_CLASSES)(images, labels, params=out.params)
    with pytest.raises(ValueError, match="batch of 6 samples but images have 4"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(images[:4], labels[:4], params=out.params)
    with pytest.raises(ValueError, match="lack partner"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(
            images, labels, params={k: v for k, v in out.params.items() if k != "partner"})
    with pytest.raises(ValueError, match="lam or params, not both"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(images, labels, lam=0.5, params=out.params)
    with pytest.raises(ValueError, match="params must be the params dict"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(images, labels, params=[1, 2])
    bad = dict(out.params, partner=out.params["partner"] + 10)
    with pytest.raises(ValueError, match="must index the batch"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(images, labels, params=bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device (CUDA)")
def test_replay_refuses_params_from_another_device():
    images, labels, logits = make_batch(torch.device("cuda"))
    out = run("cutmix", images, labels, logits)
    with pytest.raises(ValueError, match="replay on the device"):
        msda.Mixer("cutmix", num_classes=NUM_CLASSES)(images.cpu(), labels.cpu(), params=out.params)
