"""msda.Mixer as a drop-in for a training loop: options, soft labels, the loss, and property tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import msda
from conftest import guidance, make_generator, runnable


def test_unpacks_as_images_and_targets(device):
    images = torch.rand(4, 3, 8, 8, device=device)
    mixed, targets = msda.Mixer("cutmix", num_classes=3, generator=make_generator(device))(
        images, torch.tensor([0, 1, 2, 0], device=device))
    assert mixed.shape == images.shape and targets.shape == (4, 3)


def test_prob_mixes_about_that_fraction(device):
    images = torch.rand(2000, 1, 8, 8, device=device)
    out = msda.Mixer("mixup", num_classes=2, prob=0.3, generator=make_generator(device))(
        images, torch.zeros(2000, dtype=torch.long, device=device))
    mixed = out.partner != torch.arange(2000, device=device)
    assert abs(mixed.float().mean().item() - 0.3) < 0.04
    assert torch.equal(out.images[~mixed], images[~mixed])
    assert (out.lam[~mixed] == 1).all()


def test_label_smoothing_then_mixing(device):
    labels = torch.tensor([0, 1], device=device)
    out = msda.Mixer("mixup", num_classes=4, label_smoothing=0.2, generator=make_generator(device))(
        torch.rand(2, 3, 4, 4, device=device), labels, lam=0.75)
    smooth = F.one_hot(labels, 4).float() * 0.8 + 0.05
    assert torch.allclose(out.targets, 0.75 * smooth + 0.25 * smooth.flip(0))


def test_soft_labels_are_mixed_as_given(device):
    soft = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.1, 0.9]], device=device)
    out = msda.Mixer("cutmix", num_classes=3, generator=make_generator(device))(
        torch.rand(2, 3, 8, 8, device=device), soft, lam=0.5)
    assert torch.allclose(out.targets, out.lam[:, None] * soft + (1 - out.lam[:, None]) * soft.flip(0))


def test_check_values_off_skips_value_checks_only(device):
    mixer = msda.Mixer("cutmix", num_classes=3, check_values=False, generator=make_generator(device))
    out = mixer(torch.rand(2, 3, 8, 8, device=device), torch.tensor([0, 2], device=device))
    assert out.targets.shape == (2, 3)
    with pytest.raises(ValueError, match="labels must have 2 rows"):
        mixer(torch.rand(2, 3, 8, 8, device=device), torch.tensor([0, 2, 1], device=device))


def test_soft_cross_entropy_matches_the_definition(device):
    g = make_generator(device)
    logits = torch.randn(5, 4, generator=g, device=device)
    targets = torch.softmax(torch.randn(5, 4, generator=g, device=device), 1)
    expected = -(targets * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(msda.soft_cross_entropy(logits, targets), expected, atol=1e-6)
    assert torch.allclose(msda.soft_cross_entropy(logits.bfloat16(), targets), expected, atol=5e-2)
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        msda.soft_cross_entropy(logits, targets[:, :3])


def test_training_step_with_every_method(device):
    """The documented loop runs and its gradients are finite for every method."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).to(device)
    images = torch.rand(8, 3, 16, 16, device=device)
    labels = (torch.arange(8) % 3).to(device)
    for method in runnable(msda.METHODS):
        mixer = msda.Mixer(method, num_classes=3, generator=make_generator(device))
        with torch.no_grad():
            logits = model(images)
        inputs = {"logits": logits, "saliency": msda.guidance.input_gradient_saliency(model, images, labels),
                  "cams": msda.guidance.class_activation_maps(model, images, labels)}
        out = mixer(images, labels, **{need: inputs[need] for need in msda.methods_info()[method].needs})
        loss = msda.soft_cross_entropy(model(out.images), out.targets)
        model.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()), method


def test_repr_names_the_settings():
    text = repr(msda.Mixer("gridmix", num_classes=10, alpha=0.5, n_holes=4))
    assert text == "Mixer('gridmix', num_classes=10, alpha=0.5, prob=1, label_smoothing=0, n_holes=4)"


def test_default_alpha_comes_from_the_method():
    assert msda.Mixer("miamix", num_classes=2).alpha == 2.0
    assert msda.Mixer("cutmix", num_classes=2).alpha == 1.0


def test_random_pairing_never_pairs_a_sample_with_itself(device):
    out = msda.Mixer("mixup", num_classes=2, generator=make_generator(device))(
        torch.rand(50, 1, 4, 4, device=device), torch.zeros(50, dtype=torch.long, device=device))
    assert sorted(out.partner.tolist()) == list(range(50))
    assert (out.partner != torch.arange(50, device=device)).all()


@settings(max_examples=40, deadline=None)
@given(method=st.sampled_from(runnable(msda.METHODS)), batch=st.integers(1, 5), height=st.integers(4, 40),
       width=st.integers(4, 40), seed=st.integers(0, 2**31 - 1),
       lam=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_invariants_hold_for_any_size_and_lambda(method, batch, height, width, seed, lam):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=g)
    labels = torch.randint(0, 4, (batch,), generator=g)
    logits = torch.randn(batch, 4, generator=g)
    out = msda.Mixer(method, num_classes=4, generator=g)(images, labels, lam=lam,
                                                         **guidance(method, images, logits=logits, seed=seed))
    assert out.mask.shape == (batch, 1, height, width)
    assert 0 <= out.mask.min() and out.mask.max() <= 1
    assert torch.allclose(out.targets.sum(1), torch.ones(batch), atol=1e-5)
    info = msda.methods_info()[method]
    if info.mixes_labels and info.label_weight == "area":
        assert torch.allclose(out.lam, out.mask.mean((1, 2, 3)), atol=1e-6)
    if info.mask_only:
        expected = out.mask * images + (1 - out.mask) * images[out.partner]
        assert torch.allclose(out.images, expected, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(lam=st.floats(0.0, 1.0), size=st.integers(8, 64), seed=st.integers(0, 1000))
def test_gaussian_masks_hit_any_lambda(lam, size, seed):
    g = torch.Generator().manual_seed(seed)
    for method in ("gmix", "agmix"):
        mask = msda.MASKS[method](torch.tensor([lam]), size, size, generator=g)
        assert abs(mask.mean().item() - lam) < 1e-4
