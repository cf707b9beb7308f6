"""Regression test for issue 13, W1: GMix and AGMix calibrate the blob's area to λ on any aspect ratio
(the coarse grid of the σ solver was empty on elongated images, so λ = 0.5 on 8×1000 gave a mask mean of
0.929 and errors of 0.37–0.49 on 1×33, 3×200, 64×1, 1×4096)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_generator

import msda


@pytest.mark.parametrize("height,width", [(8, 1000), (1, 33), (3, 200), (64, 1), (1, 4096), (40, 40), (17, 90)])
@pytest.mark.parametrize("method", ["gmix", "agmix"])
def test_W1_gaussian_calibration_holds_on_elongated_images(device, method, height, width):
    lam = torch.rand(16, generator=torch.Generator().manual_seed(0)).mul(0.9).add(0.05).to(device)
    mask = msda.MASKS[method](lam, height, width, generator=make_generator(device))
    assert torch.isfinite(mask).all()
    assert torch.allclose(mask.mean((1, 2, 3)), lam, atol=1e-4)


@pytest.mark.parametrize("method", ["gmix", "agmix"])
def test_W1_half_mask_on_8_by_1000_has_mean_one_half(device, method):
    lam = torch.full((1,), 0.5, device=device)
    mask = msda.MASKS[method](lam, 8, 1000, generator=make_generator(device))
    assert abs(mask.mean().item() - 0.5) < 1e-4
