"""msda.stats: mask statistics on known masks, batched, on every device; λ-prior densities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy import stats as scipy_stats

from conftest import guidance, runnable

import msda
from msda import stats

SIZE = 32


def box_mask(device, top=8, left=8, side=16, size=SIZE) -> torch.Tensor:
    """[1, 1, size, size]: 1 everywhere, 0 on one square (the partner's box)."""
    mask = torch.ones(1, 1, size, size, device=device)
    mask[..., top:top + side, left:left + side] = 0.0
    return mask


def ramp_mask(device, width: int, size: int = 64) -> torch.Tensor:
    """[1, 1, size, size]: 0 on the left, 1 on the right, a linear ramp ``width`` pixels wide in between."""
    columns = torch.arange(size, device=device, dtype=torch.float32)
    profile = ((columns - (size / 2 - width / 2)) / width).clamp(0, 1)
    return profile.expand(size, size)[None, None].contiguous()


def blobs_mask(device, count: int, size: int = SIZE) -> torch.Tensor:
    """[1, 1, size, size] with ``count`` separate 4×4 partner squares (diagonal neighbours of each other)."""
    mask = torch.ones(1, 1, size, size, device=device)
    for index in range(count):
        start = 2 + 8 * index
        mask[..., start:start + 4, start:start + 4] = 0.0
    return mask


def test_mask_area_of_a_box(device):
    area = stats.mask_area(box_mask(device))
    assert area.shape == (1,) and area.device.type == device.type
    assert area.item() == pytest.approx(1 - 16 * 16 / SIZE**2)


def test_boundary_sharpness_hard_edge_is_one_soft_edge_is_one_over_width(device):
    hard = stats.boundary_sharpness(box_mask(device)).item()
    assert hard == pytest.approx(1.0, abs=0.02)  # the box's corners add a few √2 steps
    for width in (2, 4, 8, 16):
        soft = stats.boundary_sharpness(ramp_mask(device, width)).item()
        assert soft == pytest.approx(1 / width, rel=1e-4)


def test_boundary_sharpness_orders_hard_before_smoothed_masks(device):
    """The SmoothMix argument: CutMix's edge is strong, a smoothed mask's edge is not."""
    generator = torch.Generator(device=device).manual_seed(0)
    lam = torch.full((4,), 0.6, device=device)
    cutmix = msda.MASKS["cutmix"](lam, 64, 64, generator=generator)
    smooth = msda.MASKS["smoothmix_s"](lam, 64, 64, generator=generator)
    assert bool((stats.boundary_sharpness(cutmix) > 0.9).all())
    assert bool((stats.boundary_sharpness(smooth) < stats.boundary_sharpness(cutmix)).all())


def test_boundary_sharpness_of_a_constant_mask_is_zero(device):
    assert stats.boundary_sharpness(torch.full((2, 1, 8, 8), 0.6, device=device)).tolist() == [0.0, 0.0]
    assert stats.boundary_sharpness(torch.zeros(1, 1, 1, 5, device=device)).tolist() == [0.0]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_connected_regions_counts_blobs(device, count):
    assert stats.connected_regions(blobs_mask(device, count)).tolist() == [count]


def test_connected_regions_is_batched(device):
    masks = torch.cat([blobs_mask(device, 0), blobs_mask(device, 1), blobs_mask(device, 3), box_mask(device)])
    regions = stats.connected_regions(masks)
    assert regions.dtype == torch.int64 and regions.device.type == device.type
    assert regions.tolist() == [0, 1, 3, 1]


def test_connected_regions_uses_four_connectivity_and_the_threshold(device):
    mask = torch.ones(1, 1, 4, 4, device=device)
    mask[..., 0, 0] = mask[..., 1, 1] = 0.0  # touching only at a corner: two regions
    assert stats.connected_regions(mask).item() == 2
    soft = torch.full((1, 1, 4, 4), 0.4, device=device)
    assert stats.connected_regions(soft).item() == 1  # all partner-dominated
    assert stats.connected_regions(soft, threshold=0.3).item() == 0


def test_connected_regions_matches_scipy_on_random_and_winding_masks(device):
    generator = torch.Generator(device=device).manual_seed(0)
    masks = (torch.rand(6, 1, 40, 56, generator=generator, device=device) > 0.45).float()
    spiral = np.ones((41, 41), dtype=np.float32)  # one serpentine partner region, 20 rows long
    spiral[1::4, 1:-1] = 0
    spiral[3::4, 1:-1] = 0
    spiral[1:-1:4, -2] = spiral[2::4, -2] = 0
    spiral[3:-1:4, 1] = spiral[4::4, 1] = 0
    expected = [ndimage.label(m[0].cpu().numpy() < 0.5)[1] for m in masks]
    assert stats.connected_regions(masks).tolist() == expected
    spiral_tensor = torch.from_numpy(spiral)[None, None].to(device)
    assert stats.connected_regions(spiral_tensor).item() == ndimage.label(spiral < 0.5)[1]


def test_every_method_mask_matches_scipy(device):
    generator = torch.Generator(device=device).manual_seed(1)
    images = torch.rand(4, 3, 48, 48, generator=generator, device=device)
    labels = torch.tensor([0, 1, 0, 1], device=device)
    for name in runnable(msda.METHODS):
        inputs = guidance(name, images, logits=torch.tensor([[2.0, 0.0]] * 4, device=device))
        mask = msda.Mixer(name, num_classes=2, generator=generator)(images, labels, **inputs).mask
        expected = [ndimage.label(m[0].cpu().numpy() < 0.5)[1] for m in mask]
        assert stats.connected_regions(mask).tolist() == expected, name


def test_batch_equals_samples(device):
    generator = torch.Generator(device=device).manual_seed(2)
    masks = msda.MASKS["fmix"](torch.rand(5, generator=generator, device=device), 32, 32, generator=generator)
    for function in (stats.mask_area, stats.boundary_sharpness, stats.connected_regions):
        batched = function(masks)
        one_by_one = torch.cat([function(masks[i:i + 1]) for i in range(5)])
        torch.testing.assert_close(batched, one_by_one)


@pytest.mark.parametrize("bad", [torch.ones(4, 4), torch.ones(2, 3, 4, 4), torch.ones(2, 1, 4, 4, dtype=torch.int64),
                                 torch.ones(0, 1, 4, 4), [[1.0]]])
def test_bad_masks_are_refused_with_the_shape(bad):
    for function in (stats.mask_area, stats.boundary_sharpness, stats.connected_regions):
        with pytest.raises(ValueError, match="mask must be"):
            function(bad)


def test_bad_threshold_is_refused():
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\], got 1.5"):
        stats.connected_regions(torch.ones(1, 1, 2, 2), threshold=1.5)


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (2.0, 2.0), (0.5, 0.5), (2.0, 6.0)])
def test_beta_density_matches_scipy_and_integrates_to_one(device, a, b):
    x = torch.linspace(0.001, 0.999, 999, device=device)
    density = stats.beta_density(x, a, b)
    np.testing.assert_allclose(density.cpu().numpy(), scipy_stats.beta.pdf(x.cpu().numpy(), a, b), rtol=1e-4)
    if a >= 1 and b >= 1:
        assert torch.trapezoid(density, x).item() == pytest.approx(1.0, abs=5e-3)


def test_beta_density_refuses_non_positive_parameters():
    with pytest.raises(ValueError, match="Beta parameters must be positive"):
        stats.beta_density(torch.tensor([0.5]), 0.0, 1.0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_dirichlet_marginals_of_miamix(device, k):
    alpha = 1.5
    a, b = stats.dirichlet_marginals(torch.tensor([alpha] * k + [k * alpha], device=device))
    assert a[:k].tolist() == [alpha] * k and b[:k].tolist() == pytest.approx([(2 * k - 1) * alpha] * k)
    assert a[k].item() == pytest.approx(k * alpha) and b[k].item() == pytest.approx(k * alpha)
    # A Beta marginal's mean is the component's share of the concentration.
    assert (a / (a + b)).sum().item() == pytest.approx(1.0)


def test_dirichlet_marginals_refuses_bad_concentrations():
    with pytest.raises(ValueError, match="positive"):
        stats.dirichlet_marginals(torch.tensor([1.0, 0.0]))
    assert math.isclose(stats.dirichlet_marginals(torch.tensor([[1.0, 3.0]]))[1][0, 0].item(), 3.0)
