"""The fast paths of the slow masks, each against the straightforward computation it replaced.

GMix's separable σ solve against the dense O(H·W) means; AGMix's in-place solve, four halvings per evaluation,
against the step-by-step one (bit for bit); the multi-level bisection against single halvings; FMix's
histogram threshold against the full argsort, ties included; the fine-grained saliency's integral written in
place; ResizeMix's separable sampling grid and per-level pooling against ``affine_grid`` on the whole batch;
MiAMix's layers written into shared buffers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import msda
from conftest import make_generator
from msda import _fourier, _gaussian, _saliency, _warp
from msda._solve import bisect


# ---------------------------------------------------------------------------------------------------------------
# Gaussian masks: the straightforward solve, one bisection step per evaluation, every temporary fresh.

def reference_form(cx, cy, q, theta, height, width):
    device = cx.device
    dx = (torch.arange(width, device=device, dtype=torch.float32) + 0.5)[None, None, :] - cx[:, None, None]
    dy = (torch.arange(height, device=device, dtype=torch.float32) + 0.5)[None, :, None] - cy[:, None, None]
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    e1 = cos * dx + sin * dy
    e2 = -sin * dx + cos * dy
    q = q[:, None, None]
    return (e1 * e1 - 2 * q * e1 * e2 + e2 * e2) / (1 - q * q)


def reference_area(form, sigma):
    return torch.exp(-form / (2 * sigma[:, None, None] ** 2)).mean((1, 2))


def reference_gaussian_mask(lam, cx, cy, q, theta, height, width):
    form = reference_form(cx, cy, q, theta, height, width)
    cover = 1.0 - lam
    stride_y, stride_x = max(1, math.ceil(height / 32)), max(1, math.ceil(width / 32))
    coarse = form[:, stride_y // 2::stride_y, stride_x // 2::stride_x]
    inside = (cover * height * width / (2 * math.pi * (1 - q * q).sqrt())).sqrt()
    low = (0.5 * inside).clamp_min(1e-3)
    sigma = bisect(lambda s: reference_area(coarse, s), cover, low, 50.0 * max(height, width), iters=24, log=True)
    for _ in range(2):
        weight = torch.exp(-form / (2 * sigma[:, None, None] ** 2))
        area = weight.mean((1, 2))
        slope = (weight * form).mean((1, 2)) / sigma**3
        step = ((area - cover) / slope.clamp_min(1e-12)).clamp(-sigma / 2, sigma / 2)
        sigma = torch.where(slope > 1e-12, sigma - step, sigma)
    mask = 1.0 - torch.exp(-form / (2 * sigma[:, None, None] ** 2))
    mask = torch.where(lam[:, None, None] >= 1, torch.ones_like(mask), mask)
    mask = torch.where(lam[:, None, None] <= 0, torch.zeros_like(mask), mask)
    return mask[:, None], sigma


def gaussian_draws(batch, height, width, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(batch, generator=g)
    lam[: min(batch, 3)] = torch.tensor([0.0, 1.0, 1e-4])[: min(batch, 3)]
    cx, cy = torch.rand(batch, generator=g) * width, torch.rand(batch, generator=g) * height
    q = torch.rand(batch, generator=g) * 1.9 - 0.95
    theta = (torch.rand(batch, generator=g) * 2 - 1) * math.pi
    return [t.to(device) for t in (lam, cx, cy, q, theta)]


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (8, 100)])
def test_agmix_mask_equals_the_step_by_step_solve(device, batch, size):
    # In place, in two buffers, four halvings per evaluation: the same σ and mask, bit for bit on the CPU
    # (a GPU may sum the candidates' means in another order).
    height, width = size
    lam, cx, cy, q, theta = gaussian_draws(batch, height, width, device)
    fast = _gaussian.gaussian_mask(lam, cx, cy, q, theta, None, height, width)
    slow, _ = reference_gaussian_mask(lam, cx, cy, q, theta, height, width)
    if device.type == "cpu":
        assert torch.equal(fast, slow)
    else:
        assert (fast - slow).abs().max() <= 1e-6


@pytest.mark.parametrize("size", [(32, 32), (37, 53), (8, 1000), (1000, 8), (1, 50), (224, 224)])
def test_gmix_separable_solve_matches_the_dense_means(device, size):
    # mean(e^{−(dx² + dy²)/2σ²}) is mean(gx)·mean(gy): σ from the 1-D means, the mask as 1 − gy ⊗ gx.
    height, width = size
    lam, cx, cy, _, _ = gaussian_draws(64, height, width, device, seed=1)
    lam[3:8] = torch.tensor([1e-3, 0.01, 0.5, 0.99, 0.999], device=device)  # tiny λ: σ is ill-conditioned
    zeros = torch.zeros_like(lam)
    fast = _gaussian.gaussian_mask(lam, cx, cy, None, None, None, height, width)
    slow, sigma = reference_gaussian_mask(lam, cx, cy, zeros, zeros, height, width)
    assert (fast - slow).abs().max() <= 1e-6
    solved = _gaussian.solve_sigma_isotropic(_gaussian._offsets(cx, width), _gaussian._offsets(cy, height),
                                             1.0 - lam)
    calibrated = (lam > 0.02) & (lam < 1)  # below, float32's dense mean of values ≈ 1 leaves σ uncertain
    assert ((solved - sigma).abs() / sigma)[calibrated].max() <= 1e-5
    assert fast[lam >= 1].eq(1).all() and fast[lam <= 0].eq(0).all()


def test_gmix_with_pinned_sigma_is_the_separable_blob(device):
    lam, cx, cy, _, _ = gaussian_draws(6, 30, 41, device, seed=2)
    sigma = torch.linspace(0.5, 40.0, 6, device=device)
    zeros = torch.zeros_like(lam)
    fast = _gaussian.gaussian_mask(lam, cx, cy, None, None, sigma, 30, 41)
    form = reference_form(cx, cy, zeros, zeros, 30, 41)
    slow = 1.0 - torch.exp(-form / (2 * sigma[:, None, None] ** 2))
    assert (fast[:, 0] - slow).abs().max() <= 1e-6


@pytest.mark.parametrize("iters", [24, 7, 1])
@pytest.mark.parametrize("levels", [2, 3, 4, 5])
def test_bisect_levels_give_the_single_steps_result_bit_for_bit(device, iters, levels):
    g = torch.Generator().manual_seed(3)
    scale = (torch.rand(32, generator=g) * 10 + 0.1).to(device)
    target = torch.rand(32, generator=g).to(device)
    target[:2] = torch.tensor([-1.0, 2.0], device=device)  # unreachable: the nearest end

    def area(x):  # increasing in x, any shape [B] or [B, K]
        s = scale if x.ndim == 1 else scale[:, None]
        return 1 - torch.exp(-x / s)

    for log, low, high in ((False, 0.0, 50.0), (True, 1e-3, 1e3)):
        one = bisect(area, target, low, high, iters=iters, log=log)
        many = bisect(area, target, low, high, iters=iters, log=log, levels=levels)
        assert torch.equal(one, many)


# ---------------------------------------------------------------------------------------------------------------
# FMix: the count-th largest by a histogram, against the full argsort.

def adversarial_rows(seed):
    g = torch.Generator().manual_seed(seed)
    for trial in range(60):
        n = int(torch.randint(1, 900, (), generator=g))
        batch = int(torch.randint(1, 6, (), generator=g))
        if trial % 4 == 0:
            values = torch.randn(batch, n, generator=g) * 10.0 ** float(torch.randint(-30, 30, (), generator=g))
        else:  # few distinct levels: ties everywhere, also at the threshold
            values = torch.randint(-20, 20, (batch, n), generator=g).float() * (1.5 if trial % 2 else -1.0)
        if trial % 5 == 0:
            values[:, ::3] = -0.0  # −0.0 and +0.0 compare equal but differ in bits
        if trial % 7 == 0:
            values[:, ::2] = 0.0
        if trial % 11 == 0:
            values = torch.full((batch, n), float(torch.randn((), generator=g)))
        count = torch.randint(0, n + 1, (batch,), generator=g).float()
        count[0] = [0, n][trial % 2]
        yield values, count


def test_keep_top_threshold_equals_the_argsort():
    for values, count in adversarial_rows(0):
        assert torch.equal(_fourier.keep_top(values, count), _fourier._keep_top_by_sort(values, count))


def test_keep_top_threshold_equals_the_argsort_on_fmix_images():
    g = torch.Generator().manual_seed(4)
    noise = torch.randn(16, 2, 224, 113, generator=g)
    grey = _fourier.low_frequency_image(noise, torch.full((16,), 3.0), 224, 224).reshape(16, -1)
    count = (torch.rand(16, generator=g) * grey.shape[1]).round()
    count[:2] = torch.tensor([0.0, grey.shape[1]])
    assert torch.equal(_fourier.keep_top(grey, count), _fourier._keep_top_by_sort(grey, count))
    threshold, greater, equal = _fourier._count_largest_threshold(grey, count)
    top = grey.sort(1, descending=True).values
    assert torch.equal(threshold, top.gather(1, (count.long() - 1).clamp_min(0)[:, None])[:, 0])
    assert torch.equal(greater, (grey > threshold[:, None]).sum(1)) and equal.eq(1).all()


def test_fmix_with_a_soft_edge_still_ranks_by_the_sort(device):
    lam = torch.full((4,), 0.4, device=device)
    noise = torch.randn(4, 2, 32, 17, generator=torch.Generator().manual_seed(5)).to(device)
    soft = msda.MASKS["fmix"](lam, 32, 32, noise=noise, max_soft=0.1)
    hard = msda.MASKS["fmix"](lam, 32, 32, noise=noise)
    assert torch.allclose(soft.mean((1, 2, 3)), hard.mean((1, 2, 3)))
    assert ((soft > 0) & (soft < 1)).any() and ((hard == 0) | (hard == 1)).all()


# ---------------------------------------------------------------------------------------------------------------
# Fine-grained saliency: the edge-extended integral, written in place.

@pytest.mark.parametrize("decays", [[3.0] * 6, [3.0, 3.0, 2.5, 3.0, 4.0, 3.0], [1.5]])
def test_one_decay_for_the_batch_raises_the_plane_once_with_the_same_bits(device, decays):
    decay = torch.tensor(decays, device=device)
    freqs = _fourier.frequency_radius(37, 53, decay.device).clamp_min(1.0 / 53)
    assert torch.equal(_fourier.decay_scale(decay, 37, 53), freqs[None].pow(-decay[:, None, None]))
    base = 1.0 / 53 / _fourier.frequency_radius(37, 53, decay.device).clamp_min(1.0 / 53)
    assert torch.equal(_fourier.low_pass(decay, 37, 53), base[None].pow(decay[:, None, None]))


@pytest.mark.parametrize("size", [(9, 13), (224, 224), (300, 300)])  # 300²·255 ≥ 2²⁴: the int32 integral
def test_extended_integral_equals_the_padded_cumulative_sum(size):
    grey = torch.randint(0, 256, (2, *size), generator=torch.Generator().manual_seed(6)).float()
    extended, pad_y, pad_x = _saliency._edge_extended_integral(grey)
    dtype = torch.float32 if size[0] * size[1] * 255 < 1 << 24 else torch.int32
    integral = F.pad(grey.to(torch.int64).cumsum(1).cumsum(2), (1, 0, 1, 0))
    rows = torch.arange(-pad_y, size[0] + pad_y + 1).clamp(0, size[0])
    cols = torch.arange(-pad_x, size[1] + pad_x + 1).clamp(0, size[1])
    assert extended.dtype == dtype
    assert torch.equal(extended.long(), integral[:, rows][:, :, cols])


# ---------------------------------------------------------------------------------------------------------------
# ResizeMix: the sampling grid from its two axes, and pooling only what a level needs.

def test_box_grid_is_affine_grid(device):
    g = torch.Generator().manual_seed(7)
    for height, width in ((224, 224), (37, 53), (5, 9)):
        x0 = torch.randint(0, width // 2 + 1, (6,), generator=g).float()
        y0 = torch.randint(0, height // 2 + 1, (6,), generator=g).float()
        box_w = torch.randint(1, width // 2 + 2, (6,), generator=g).float()
        box_h = torch.randint(1, height // 2 + 2, (6,), generator=g).float()
        theta = _warp.box_from(x0, y0, box_w, box_h, height, width).to(device)
        reference = F.affine_grid(theta, [6, 3, height, width], align_corners=False)
        assert (_warp.box_grid(theta, height, width) - reference).abs().max() <= 1e-6


def test_paste_resized_equals_pooling_and_warping_the_whole_batch(device):
    g = torch.Generator().manual_seed(8)
    images = torch.rand(12, 3, 64, 48, generator=g).to(device)
    tau = torch.tensor([0.9, 0.6, 0.45, 0.3, 0.2, 0.12, 0.07, 0.05, 0.7, 0.33, 0.15, 0.5], device=device)
    box_w, box_h = (tau * 48).round().clamp_min(1), (tau * 64).round().clamp_min(1)
    x0, y0 = ((48 - box_w) * 0.3).round(), ((64 - box_h) * 0.6).round()
    theta = _warp.box_from(x0, y0, box_w, box_h, 64, 48)
    level = torch.maximum(48 / box_w, 64 / box_h).log2().floor().clamp(0, 4).long()
    expected, source = torch.empty_like(images), images
    for current in range(5):  # the straightforward pyramid: every sample pooled to every level
        if current:
            source = F.avg_pool2d(source, 2, ceil_mode=True)
        warped = F.grid_sample(source, F.affine_grid(theta, [12, 3, 64, 48], align_corners=False),
                               padding_mode="border", align_corners=False)
        expected = torch.where((level == current)[:, None, None, None], warped, expected)
    pasted = _warp.paste_resized(images.clone(), x0, y0, box_w, box_h)
    owned = images.clone()
    in_place = _warp.paste_resized(owned, x0, y0, box_w, box_h, out=owned)
    assert (pasted - expected).abs().max() <= 1e-6
    assert torch.equal(in_place, pasted)


# ---------------------------------------------------------------------------------------------------------------
# MiAMix: layers rendered into one buffer, augmented in a second.

def test_miamix_augmentation_leaves_the_raw_masks_untouched(device):
    # Every layer a CutMix box, rotated and smoothed: the raw masks must stay binary boxes.
    g = make_generator(device)
    mixer = msda.Mixer("miamix", num_classes=5, generator=g, methods=("cutmix",), weights=(1.0,), p_aug=1.0,
                       p_smooth=1.0, p_self=0.0)
    images = torch.rand(6, 3, 40, 40, generator=torch.Generator().manual_seed(9)).to(device)
    out = mixer(images, torch.arange(6, device=device) % 5)
    raw, masks = out.details["raw_masks"], out.details["masks"]
    assert ((raw == 0) | (raw == 1)).all()
    active = out.details["active"]
    assert ((masks[active] > 0) & (masks[active] < 1)).any()  # smoothed
    assert torch.equal(mixer(images, torch.arange(6, device=device) % 5, params=out.params).images, out.images)
