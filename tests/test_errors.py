"""Bad input gets a ValueError that names the argument, the bad value and what is allowed."""

from __future__ import annotations

import pytest
import torch

import msda


def batch(n=4, size=8):
    return torch.rand(n, 3, size, size), torch.arange(n) % 3


def raises(match):
    return pytest.raises(ValueError, match=match)


def test_unknown_method_lists_the_available_ones():
    with raises(r"unknown method 'cutmixx'; available: mixup, cutout, cutmix"):
        msda.Mixer("cutmixx", num_classes=3)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), "1"])
def test_alpha_must_be_positive(alpha):
    with raises(r"alpha must be"):
        msda.Mixer("mixup", num_classes=3, alpha=alpha)


@pytest.mark.parametrize("prob", [-0.1, 1.5])
def test_prob_must_be_a_probability(prob):
    with raises(rf"prob must be in \[0, 1\], got {prob}"):
        msda.Mixer("cutmix", num_classes=3, prob=prob)


def test_label_smoothing_range():
    with raises(r"label_smoothing must be in \[0, 1\)"):
        msda.Mixer("cutmix", num_classes=3, label_smoothing=1.0)


@pytest.mark.parametrize("num_classes", [0, 2.5, None])
def test_num_classes(num_classes):
    with raises("num_classes must be"):
        msda.Mixer("cutmix", num_classes=num_classes)


@pytest.mark.parametrize("lam", [-0.2, 1.2])
def test_lambda_outside_unit_interval(lam):
    images, labels = batch()
    with raises(r"lam must be in \[0, 1\]"):
        msda.Mixer("cutmix", num_classes=3)(images, labels, lam=lam)
    with raises(r"lam must be in \[0, 1\], got a value of"):
        msda.Mixer("cutmix", num_classes=3)(images, labels, lam=torch.full((4,), lam))
    with raises(r"lam must be in \[0, 1\]"):
        msda.MASKS["fmix"](torch.full((4,), lam), 8, 8)


def test_lambda_of_the_wrong_shape():
    images, labels = batch()
    with raises(r"lam must be a number or a tensor of shape \[4\]"):
        msda.Mixer("cutmix", num_classes=3)(images, labels, lam=torch.rand(3))
    with raises(r"lam must have shape \[B\]"):
        msda.MASKS["cutmix"](torch.rand(2, 2), 8, 8)


@pytest.mark.parametrize("q", [1.0, -1.0, 1.5])
def test_agmix_correlation_must_be_inside_the_open_interval(q):
    with raises(r"agmix: q must be in \(-1, 1\)"):
        msda.MASKS["agmix"](torch.rand(2), 8, 8, q=q)
    with raises(r"agmix: q must be in \(-1, 1\)"):
        msda.Mixer("agmix", num_classes=3, q=q)


def test_unknown_parameter_names_the_allowed_ones():
    with raises(r"cutmix got unknown parameter\(s\) sigma; it takes: center_x, center_y"):
        msda.Mixer("cutmix", num_classes=3, sigma=0.3)
    with raises(r"gmix got unknown parameter\(s\) radius"):
        msda.MASKS["gmix"](torch.rand(2), 8, 8, radius=3)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 3, 8, 8), (8,)])
def test_images_must_be_four_dimensional(shape):
    with raises(r"images must be 4-D \[B, C, H, W\], got shape"):
        msda.Mixer("mixup", num_classes=3)(torch.rand(shape), torch.zeros(shape[0], dtype=torch.long))


def test_images_must_be_floating_point():
    with raises("images must be a floating-point tensor, got dtype torch.uint8"):
        msda.Mixer("mixup", num_classes=3)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2).long())


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_labels_out_of_range(bad):
    images, labels = batch()
    labels[2] = bad
    with raises(rf"labels must be class indices in \[0, 2\], got {bad}"):
        msda.Mixer("cutmix", num_classes=3)(images, labels)


def test_labels_of_the_wrong_shape_or_dtype():
    images, _ = batch()
    mixer = msda.Mixer("cutmix", num_classes=3)
    with raises(r"soft labels must have shape \[4, 3\], got \(4, 5\)"):
        mixer(images, torch.full((4, 5), 0.2))
    with raises("class-index labels must be an integer tensor"):
        mixer(images, torch.zeros(4))
    with raises(r"labels must have shape \[B\] or \[B, 3\]"):
        mixer(images, torch.zeros(4, 3, 1))
    with raises("soft label rows must sum to 1"):
        mixer(images, torch.full((4, 3), 0.5))


def test_mismatched_batch_sizes():
    images, _ = batch(4)
    with raises(r"labels must have 4 rows \(one per image\), got shape \(5,\)"):
        msda.Mixer("cutmix", num_classes=3)(images, torch.zeros(5, dtype=torch.long))
    with raises(r"images_b must have the shape of images"):
        msda.Mixer("miamix", num_classes=3)(images, torch.zeros(4).long(), images_b=torch.rand(5, 3, 8, 8))


def test_hardmix_without_logits():
    images, labels = batch()
    with raises(r"hardmix needs logits: pass logits=model\(images\) of shape \[4, 3\]"):
        msda.Mixer("hardmix", num_classes=3)(images, labels)
    with raises(r"logits must be a tensor of shape \[4, 3\]"):
        msda.Mixer("hardmix", num_classes=3)(images, labels, logits=torch.rand(4, 2))


def test_generator_on_another_device():
    # Tensors on the meta device stand in for an accelerator on a CPU-only machine.
    images = torch.empty(2, 3, 8, 8, device="meta")
    with raises(r"generator is on cpu but the tensors are on meta"):
        msda.Mixer("cutmix", num_classes=3, generator=torch.Generator())(images, torch.zeros(2, dtype=torch.long,
                                                                                                 device="meta"))
    with raises(r"generator is on cpu but the tensors are on meta"):
        msda.MASKS["cutmix"](torch.empty(2, device="meta"), 8, 8, generator=torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generator_with_cpu_tensors():
    with raises(r"generator is on cuda"):
        msda.MASKS["cutmix"](torch.rand(2), 8, 8, generator=torch.Generator("cuda"))


def test_generator_must_be_a_generator():
    with raises("generator must be a torch.Generator or None, got int"):
        msda.Mixer("cutmix", num_classes=3, generator=0)


def test_mask_sizes_must_be_positive_integers():
    with raises("height must be an integer in"):
        msda.MASKS["cutmix"](torch.rand(2), 0, 8)
    with raises("width must be an integer"):
        msda.MASKS["cutmix"](torch.rand(2), 8, 7.5)


def test_parameter_ranges_and_kinds():
    with raises(r"gridmix: n_holes must be an integer in \[1, 32\], got 0"):
        msda.MASKS["gridmix"](torch.rand(2), 8, 8, n_holes=0)
    with raises(r"cutmix: center_x must be in \[0, 1\], got a value of 1.5"):
        msda.MASKS["cutmix"](torch.rand(2), 8, 8, center_x=torch.tensor([0.5, 1.5]))
    with raises(r"cutmix: center_x has 3 values but the batch has 2 samples"):
        msda.MASKS["cutmix"](torch.rand(2), 8, 8, center_x=torch.rand(3))
    with raises(r"miamix: merge must be one of 'product', 'sum'; got 'max'"):
        msda.Mixer("miamix", num_classes=3, merge="max")
    with raises(r"fmix: noise must have shape \[2, 2, 8, 5\]"):
        msda.MASKS["fmix"](torch.rand(2), 8, 8, noise=torch.rand(2, 8, 5))
    with raises(r"miamix: methods \['saliencymix'\] are not image-free mask methods"):
        msda.Mixer("miamix", num_classes=3, methods=("cutmix", "saliencymix"), weights=(1, 1))(*batch())
    with raises(r"miamix: weights has 1 entries but methods has 2"):
        msda.Mixer("miamix", num_classes=3, methods=("cutmix", "fmix"), weights=(1,))(*batch())


@pytest.mark.parametrize("name", ["num_classes", "k_max"])
def test_integer_arguments_refuse_true(name):
    # bool is an int subclass: True must not be read as 1.
    kwargs = {"num_classes": True} if name == "num_classes" else {"num_classes": 3, "k_max": True}
    with pytest.raises(ValueError, match=f"{name}.*got True"):
        msda.Mixer("miamix", **kwargs)
