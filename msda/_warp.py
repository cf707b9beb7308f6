"""Batched per-sample geometric warps through ``grid_sample`` (one affine matrix per sample)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._random import bernoulli, uniform
from ._rows import replace_rows, take


def affine(images: Tensor, theta: Tensor, *, padding_mode: str = "zeros", mode: str = "bilinear",
           size: tuple[int, int] | None = None) -> Tensor:
    """Warp [B, C, h, w] images by per-sample affine maps theta [B, 2, 3] (output → input, normalised coords)
    into [B, C, H, W] outputs, (H, W) = `size` or the input's size.

    Computed in float32 (grid_sample's half-precision support varies by device); returned in the input dtype.
    """
    height, width = size if size is not None else images.shape[-2:]
    grid = F.affine_grid(theta.float(), [images.shape[0], images.shape[1], height, width], align_corners=False)
    out = F.grid_sample(images.float(), grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.to(images.dtype)


def rotation_shear(angle: Tensor, shear: Tensor, height: int, width: int) -> Tensor:
    """[B, 2, 3] maps for a rotation by `angle` and a horizontal shear by `shear` (radians) about the centre.

    Built in pixel units so that a rotation stays a rotation on non-square images.
    """
    cos, sin, tan = angle.cos(), angle.sin(), shear.tan()
    # Output pixel p ↦ input pixel A⁻¹p with A = R·S; in normalised coordinates x_n = 2x/W, y_n = 2y/H.
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    s = torch.stack([torch.stack([torch.ones_like(tan), tan], -1),
                     torch.stack([torch.zeros_like(tan), torch.ones_like(tan)], -1)], -2)
    inverse = torch.linalg.inv(a @ s)
    scale = torch.tensor([width / 2, height / 2], device=angle.device)
    inverse = inverse * scale[None, None, :] / scale[None, :, None]
    return torch.cat([inverse, torch.zeros_like(inverse[:, :, :1])], dim=2)


def box_from(x0: Tensor, y0: Tensor, box_w: Tensor, box_h: Tensor, height: int, width: int) -> Tensor:
    """[B, 2, 3] maps that show the whole input scaled into the box (x0, y0, box_w, box_h) in pixels."""
    sx, sy = width / box_w, height / box_h
    zero = torch.zeros_like(sx)
    row_x = torch.stack([sx, zero, (width - 2 * x0) / box_w - 1], -1)
    row_y = torch.stack([zero, sy, (height - 2 * y0) / box_h - 1], -1)
    return torch.stack([row_x, row_y], 1)


def _axis_grid(size: int, device: torch.device) -> Tensor:
    """The normalised pixel-centre coordinates of an axis, as ``affine_grid`` (align_corners=False) makes them."""
    return torch.linspace(-1, 1, size, device=device) * (size - 1) / size


def box_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W, 2] sampling grid of :func:`box_from`'s maps — ``affine_grid(theta)`` for a scale and a shift
    (no rotation), built from its two axes: x·s_x + t_x and y·s_y + t_y, the values ``affine_grid``'s matrix
    product gives (its zero terms add nothing), without its [B, H, W, 3] base grid and product."""
    gx = _axis_grid(width, theta.device)[None, :] * theta[:, 0, 0, None] + theta[:, 0, 2, None]
    gy = _axis_grid(height, theta.device)[None, :] * theta[:, 1, 1, None] + theta[:, 1, 2, None]
    batch = theta.shape[0]
    return torch.stack([gx[:, None, :].expand(batch, height, width), gy[:, :, None].expand(batch, height, width)], -1)


def paste_resized(images: Tensor, x0: Tensor, y0: Tensor, box_w: Tensor, box_h: Tensor, *,
                  out: Tensor | None = None) -> Tensor:
    """[B, C, H, W]: each image shrunk into its box (elsewhere: border-padded garbage, to be masked).

    Antialiased: a sample shrunk by s ≥ 2 is resampled from the mip level 2^⌊log2 s⌋ of an average-pooled
    pyramid, so small pastes do not alias. The loop runs over pyramid levels (≤ 4 for ResizeMix's default
    τ ≥ 0.1), never over samples; each level resamples only its own samples (see :func:`replace_rows`), and on
    a CPU each level pools only the samples that needed the level above it, down to the deepest one needed.
    The sampling grid is :func:`box_grid`'s.

    ``out``: a float32 tensor of the images' shape that the result may be written into (use the returned tensor);
    it may be `images` itself, a gathered batch the caller owns: each sample is read before its own row is written.
    """
    height, width = images.shape[-2:]
    theta = box_from(x0, y0, box_w, box_h, height, width)
    shrink = torch.maximum(width / box_w, height / box_h)
    max_level = min(int(math.log2(min(height, width))), 4)
    level = shrink.log2().floor().clamp(0, max_level).long()
    source = images.float()
    out = torch.empty_like(source) if out is None else out

    def warp(source: Tensor, rows: Tensor | None) -> Tensor:
        grid = box_grid(take(theta, rows), height, width)
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)

    if images.device.type == "cpu":
        rows = torch.arange(images.shape[0])
        for current in range(max_level + 1):
            if current:
                deeper = (level[rows] >= current).nonzero()[:, 0]
                if deeper.numel() == 0:
                    break
                source = F.avg_pool2d(source, 2, ceil_mode=True)
                if deeper.numel() < rows.numel():  # the pooled level is a quarter the size: subset it, not the input
                    rows, source = rows[deeper], source[deeper]
            here = (level[rows] == current).nonzero()[:, 0]
            if here.numel():
                out[rows[here]] = warp(source[here], rows[here])
    else:
        for current in range(max_level + 1):
            if current:
                source = F.avg_pool2d(source, 2, ceil_mode=True)
            out = replace_rows(level == current, lambda rows, source=source: warp(take(source, rows), rows), out,
                               inplace=True)
    return out.to(images.dtype)


def random_view_params(n: int, *, generator: torch.Generator | None, device: torch.device,
                       min_scale: float = 0.6) -> Tensor:
    """[n, 4] draws of a cheap second view: (scale, flip ±1, shift_x, shift_y) — a random horizontal flip and a
    random crop of area ≥ min_scale whose centre moves as far as the crop stays inside the image."""
    scale = uniform(min_scale, 1.0, n, generator=generator, device=device).sqrt()
    flip = torch.where(bernoulli(0.5, n, generator=generator, device=device), -1.0, 1.0)
    shift_x = uniform(-1.0, 1.0, n, generator=generator, device=device) * (1 - scale)
    shift_y = uniform(-1.0, 1.0, n, generator=generator, device=device) * (1 - scale)
    return torch.stack([scale, flip, shift_x, shift_y], 1)


def view(images: Tensor, params: Tensor) -> Tensor:
    """The views of :func:`random_view_params` ([B, 4]) of each image, one batched affine warp."""
    scale, flip, shift_x, shift_y = params.unbind(1)
    zero = torch.zeros_like(scale)
    theta = torch.stack([torch.stack([scale * flip, zero, shift_x], -1),
                         torch.stack([zero, scale, shift_y], -1)], 1)
    return affine(images, theta, padding_mode="border")
