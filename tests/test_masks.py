"""The image-free mask generators of msda.MASKS: signature, pinning, calibration and geometry."""

from __future__ import annotations

import math

import pytest
import torch

import msda
from conftest import make_generator

INFO = msda.methods_info()


def pinned_values(method: str, batch: int, height: int, width: int, device) -> dict:
    """A value for every random parameter of `method` (midpoints of their ranges, fixed tensors)."""
    values = {}
    for param in INFO[method].params:
        if not param.random:
            continue
        if param.kind == "tensor":  # the Fourier noise
            values[param.name] = torch.randn(batch, 2, height, width // 2 + 1,
                                             generator=torch.Generator().manual_seed(9)).to(device)
        elif param.kind == "int":
            values[param.name] = 3
        else:
            low = -0.5 if param.low is None else param.low
            high = 0.5 if param.high is None else min(param.high, 1.0)
            values[param.name] = (low + high) / 2 + 0.1 * (high - low)
    return values


@pytest.mark.parametrize("method", list(msda.MASKS))
def test_mask_signature_shape_dtype_device(method, device):
    lam = torch.tensor([0.0, 0.3, 0.7, 1.0], device=device)
    mask = msda.MASKS[method](lam, 12, 20, generator=make_generator(device))
    assert mask.shape == (4, 1, 12, 20) and mask.dtype == torch.float32 and mask.device.type == device.type
    assert mask.min() >= 0 and mask.max() <= 1


@pytest.mark.parametrize("method", list(msda.MASKS))
def test_every_random_quantity_can_be_pinned(method, device):
    lam = torch.tensor([0.2, 0.5, 0.8], device=device)
    pins = pinned_values(method, 3, 16, 24, device)
    first = msda.MASKS[method](lam, 16, 24, generator=make_generator(device, 1), **pins)
    second = msda.MASKS[method](lam, 16, 24, generator=make_generator(device, 2), **pins)
    assert torch.equal(first, second), f"{method} still depends on the generator with {sorted(pins)} pinned"


@pytest.mark.parametrize("method", list(msda.MASKS))
def test_per_sample_pins_are_honoured_per_sample(method, device):
    numeric = [p for p in INFO[method].params if p.random and p.kind == "float"]
    if not numeric:
        pytest.skip(f"{method} has no numeric random parameter")
    lam = torch.full((2,), 0.6, device=device)
    pins = pinned_values(method, 2, 16, 16, device)
    param = numeric[0]
    per_sample = torch.tensor([param.low if param.low is not None else -0.5,
                               min(param.high, 1.0) if param.high is not None else 0.5], device=device)
    per_sample = per_sample * 0.6 + per_sample.mean() * 0.4  # stay strictly inside open intervals
    pins[param.name] = per_sample
    both = msda.MASKS[method](lam, 16, 16, generator=make_generator(device), **pins)
    for i in range(2):
        single = {k: (v[i:i + 1] if isinstance(v, torch.Tensor) else v) for k, v in pins.items()}
        single[param.name] = float(per_sample[i])
        alone = msda.MASKS[method](lam[:1], 16, 16, generator=make_generator(device), **single)
        assert torch.allclose(both[i], alone[0], atol=1e-6)


# Calibration: mean |mask mean − requested λ| over random λ, per method, at 32×32 and 224×224.
# Sources of error: cutmix — border clipping (only λ_eff ≥ λ is promised); fmix/lmix — λHW rounded to a
# whole pixel; gridmix — holes rounded to pixels, and requests below what separate holes can hide are capped
# (λ_eff ≥ 0.234 at 32 px), so its λ is drawn above that; gaussians — bisection + Newton; resizemix — box
# rounding.
CALIBRATION = {  # method: (params, tolerance at 32 px, tolerance at 224 px, smallest λ drawn)
    "mixup": ({}, 1e-6, 1e-6, 0.0),
    "fmix": ({}, 0.5 / 32**2, 0.5 / 224**2, 0.0),
    "lmix": ({}, 0.5 / 32**2, 0.5 / 224**2, 0.0),
    "gridmix": ({}, 0.03, 0.005, 0.25),
    "gmix": ({}, 1e-4, 1e-4, 0.0),
    "agmix": ({}, 1e-4, 1e-4, 0.0),
    "smoothmix_s": ({"match_lam": True}, 1e-4, 1e-4, 0.0),
    "smoothmix_c": ({"match_lam": True}, 1e-4, 1e-4, 0.0),
    "resizemix": ({"match_lam": True}, 0.03, 0.005, 0.0),
    "cutmix": ({"center_x": 0.5, "center_y": 0.5}, 0.03, 0.005, 0.0),
}


@pytest.mark.parametrize("method", list(CALIBRATION))
@pytest.mark.parametrize("size", [32, 224])
def test_mask_mean_matches_requested_lambda(method, size, device):
    params, tol_small, tol_large, lowest = CALIBRATION[method]
    g = make_generator(device, 5)
    lam = lowest + (1 - lowest) * torch.rand(64, generator=g, device=device)
    mask = msda.MASKS[method](lam, size, size, generator=g, **params)
    error = (mask.mean((1, 2, 3)) - lam).abs().mean().item()
    assert error <= (tol_small if size == 32 else tol_large), f"{method} at {size}px: mean |error| {error:.2e}"


def test_cutmix_clipping_only_raises_the_effective_lambda(device):
    g = make_generator(device, 6)
    lam = torch.rand(256, generator=g, device=device)
    mask = msda.MASKS["cutmix"](lam, 32, 32, generator=g)
    rounding = 2 * 32 / 32**2
    assert (mask.mean((1, 2, 3)) >= lam - rounding).all()


def test_cutmix_box_geometry(device):
    lam = torch.tensor([0.75], device=device)
    mask = msda.MASKS["cutmix"](lam, 16, 16, center_x=0.5, center_y=0.5)
    expected = torch.ones(16, 16, device=device)
    expected[4:12, 4:12] = 0
    assert torch.equal(mask[0, 0], expected)


def test_cutout_square_side_and_clipping(device):
    lam = torch.tensor([0.5, 0.5], device=device)
    mask = msda.MASKS["cutout"](lam, 16, 20, center_x=torch.tensor([0.5, 0.0], device=device),
                                center_y=0.5, size=0.5)
    assert (mask[0] == 0).sum() == 8 * 8
    assert (mask[1] == 0).sum() == 4 * 8  # half of the square falls off the left edge


def test_fmix_mask_is_binary_with_exact_pixel_count(device):
    lam = torch.tensor([0.0, 0.31, 0.5, 1.0], device=device)
    mask = msda.MASKS["fmix"](lam, 20, 30, generator=make_generator(device))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask.sum((1, 2, 3)), (lam * 600).round())


def test_fmix_soft_edge_keeps_the_area(device):
    lam = torch.tensor([0.3, 0.6], device=device)
    mask = msda.MASKS["fmix"](lam, 32, 32, generator=make_generator(device), max_soft=0.1)
    assert ((mask > 0) & (mask < 1)).any()
    assert torch.allclose(mask.sum((1, 2, 3)), (lam * 1024).round(), atol=1e-3)


def test_fmix_higher_decay_gives_smoother_masks(device):
    lam = torch.full((32,), 0.5, device=device)
    noise = torch.randn(32, 2, 64, 33, generator=torch.Generator().manual_seed(0)).to(device)
    edges = []
    for decay in (1.0, 4.0):
        mask = msda.MASKS["fmix"](lam, 64, 64, decay=decay, noise=noise)
        edges.append((mask[..., 1:, :] != mask[..., :-1, :]).float().mean().item())
    assert edges[1] < edges[0] / 2


def test_gaussian_calibration_holds_when_the_border_cuts_the_blob(device):
    lam = torch.full((4,), 0.6, device=device)
    corners = torch.tensor([0.0, 1.0, 0.0, 1.0], device=device)
    for method in ("gmix", "agmix"):
        mask = msda.MASKS[method](lam, 40, 40, center_x=corners, center_y=corners.flip(0),
                                  generator=make_generator(device))
        assert torch.allclose(mask.mean((1, 2, 3)), lam, atol=1e-4)


def test_gmix_closed_form_ignores_the_border_and_we_do_not(device):
    # The paper's σ = √(λN) style closed form assumes the whole blob lies inside the image; with the centre
    # in a corner only a quarter of it does, so the area would be far off. Our σ is larger there.
    lam = torch.tensor([0.8, 0.8], device=device)
    centre = torch.tensor([0.5, 0.0], device=device)
    mask = msda.MASKS["gmix"](lam, 64, 64, center_x=centre, center_y=centre)
    assert torch.allclose(mask.mean((1, 2, 3)), lam, atol=1e-4)
    blob_mid, blob_corner = 1 - mask[0, 0, 32, 32], 1 - mask[1, 0, 0, 0]
    assert blob_mid > 0.99 and blob_corner > 0.99
    radius_mid = (1 - mask[0, 0, 32]).gt(0.5).sum() / 2  # the row crosses the whole blob
    radius_corner = (1 - mask[1, 0, 0]).gt(0.5).sum()  # the row crosses half of it
    assert radius_corner > 1.5 * radius_mid  # a wider blob makes up for the three quarters cut off


def test_agmix_covariance_elongates_and_rotates_the_blob(device):
    lam = torch.full((2,), 0.85, device=device)
    mask = msda.MASKS["agmix"](lam, 64, 64, center_x=0.5, center_y=0.5, q=0.9,
                               theta=torch.tensor([0.0, math.pi / 2], device=device))
    blob = 1 - mask[:, 0]
    # With θ = 0 and q > 0 the long axis runs along the main diagonal; a quarter turn swaps the diagonals.
    main = torch.stack([blob[:, i, i] for i in range(64)], 1).sum(1)
    anti = torch.stack([blob[:, i, 63 - i] for i in range(64)], 1).sum(1)
    assert main[0] > 2 * anti[0] and anti[1] > 2 * main[1]


def test_smoothmix_square_border_is_a_linear_ramp(device):
    lam = torch.tensor([0.5], device=device)
    mask = msda.MASKS["smoothmix_s"](lam, 1, 100, center_x=0.5, center_y=0.5, sigma=0.5, border=0.2)
    row = 1 - mask[0, 0, 0]
    # Span 50 px centred at 50, ramp half-width k = 10 px: 1 on [35, 65), ½ at 25 and 75, 0 beyond 15/85.
    assert torch.allclose(row[40:60], torch.ones(20, device=device))
    assert row[:15].max() == 0 and row[85:].max() == 0
    steps = row[16:34].diff()
    assert torch.allclose(steps, torch.full_like(steps, 0.05), atol=1e-5)
    assert math.isclose(row.sum().item(), 50.0, abs_tol=1e-3)  # same area as a hard box of side 50


def test_smoothmix_circle_is_a_separable_gaussian(device):
    lam = torch.tensor([0.5], device=device)
    mask = msda.MASKS["smoothmix_c"](lam, 33, 45, center_x=0.5, center_y=0.5, sigma=0.3)
    blob = 1 - mask[0, 0]
    rank_one = torch.outer(blob[:, 22], blob[16, :]) / blob[16, 22]
    assert torch.allclose(blob, rank_one, atol=1e-5)
    assert blob.max() == blob[16, 22]


def test_gridmix_holes_form_a_regular_grid(device):
    lam = torch.tensor([0.75], device=device)
    mask = msda.MASKS["gridmix"](lam, 24, 24, n_holes=3, area_ratio=1.0, aspect=1.0, offset_x=0.0,
                                 offset_y=0.0)
    holes = 1 - mask[0, 0]
    cell = torch.zeros(8, 8, device=device)
    cell[2:6, 2:6] = 1  # hole side √(0.25) = ½ of the 8 px cell, centred
    assert torch.equal(holes, cell.repeat(3, 3))


def test_resizemix_box_lies_inside_the_image(device):
    g = make_generator(device)
    lam = torch.rand(200, generator=g, device=device)
    mask = msda.MASKS["resizemix"](lam, 30, 50, generator=g)
    pasted = 1 - mask[:, 0]
    tau_area = pasted.mean((1, 2))
    assert ((tau_area > 0.1**2 - 0.02) & (tau_area < 0.8**2 + 0.05)).all()
