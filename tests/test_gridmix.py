"""GridMix keeps a real grid at every λ: separate holes, never one merged rectangle."""

import pytest
import torch

import msda
from msda.stats import connected_regions


@pytest.mark.parametrize("size", [32, 224])
def test_gridmix_holes_never_merge(size, device):
    n = 400 if size == 32 else 100
    lam = torch.rand(n, generator=torch.Generator().manual_seed(0)).to(device) * 0.8  # holes cover ≥ 20 %
    images = torch.rand(n, 1, size, size, device=device)
    out = msda.Mixer("gridmix", num_classes=2, generator=torch.Generator(device).manual_seed(1))(
        images, torch.zeros(n, dtype=torch.long, device=device), lam=lam)
    grid = out.details["grid"]
    assert bool((grid >= 2).all())
    # Every hole is its own region: a merged pair (a gap of zero pixels) would lower the count.
    assert torch.equal(connected_regions(out.mask).cpu(), (grid**2).long().cpu())


@pytest.mark.parametrize("size", [32, 224])
def test_gridmix_lambda_follows_the_request_until_the_cap(size, device):
    lam = torch.linspace(0.0, 1.0, 101, device=device)
    masks = msda.MASKS["gridmix"](lam, size, size, generator=torch.Generator(device).manual_seed(2))
    effective = masks.mean((1, 2, 3))
    pixel = 1.0 / size  # holes and gaps round to whole pixels along each axis
    # The most a 2 × 2 grid with 1/16-cell gaps can hide, after pixel rounding (measured): λ is capped there.
    lowest, cap = {32: (0.234, 0.235), 224: (0.121, 0.139)}[size]
    assert bool((effective >= lam - 8 * pixel).all()), "the holes never cover more than asked"
    assert bool((effective <= torch.maximum(lam, torch.full_like(lam, cap)) + 8 * pixel).all())
    assert effective.min() >= lowest - 1e-3


def test_gridmix_single_rectangle_masks_are_gone():
    # Before: 39 % of draws had holes filling their whole cells, and at λ = 0.2 most masks were one rectangle.
    lam = torch.full((300,), 0.2)
    masks = msda.MASKS["gridmix"](lam, 64, 64, generator=torch.Generator().manual_seed(3))
    assert int((connected_regions(masks) <= 1).sum()) == 0


def test_gridmix_pinned_grid_is_kept_when_it_can_cover_the_request():
    masks = msda.MASKS["gridmix"](torch.full((4,), 0.5), 96, 96, n_holes=4, area_ratio=1.0, aspect=1.0)
    assert torch.equal(connected_regions(masks), torch.full((4,), 16))
    # 24-px cells, holes of 0.707·24 = 17 px rendered as 16 whole pixels: λ = 1 − 16·16²/96² = 0.556.
    assert torch.allclose(masks.mean((1, 2, 3)), torch.full((4,), 0.5), atol=0.06)
