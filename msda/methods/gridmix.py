"""GridMix: the partner shows through a regular grid of separate rectangular holes.

Baek, Bang, Shim. "GridMix: Strong regularization through local context mapping", Pattern Recognition 109,
2021.

The grid covers a crop of the image (area ratio r ~ U(0.5, 1), aspect a ~ U(0.5, 2) relative to the image's
own aspect, at a uniform position inside the image); the crop is cut into n × n cells (n ~ U{2, …, 6}) and each
cell gets a centred hole whose sides are a fraction f of the cell's, so the holes cover r·f² of the image.

How the drawn grid and the requested λ combine. f is set so the holes cover 1 − λ: f = √((1 − λ)/r). The grid
must stay a grid — holes never touch, so there are always n² separate holes — so f is capped at
f_max = 1 − max(1/16, 1.01 px / cell side): a gap of at least 1/16 of a cell (1 px for a 2 × 2 grid at 32 px)
and at least one pixel. When 1 − λ needs more than the drawn crop can hold with that cap, the crop grows
(towards the whole image, its aspect pulled towards the image's), then the grid is coarsened (n decreases, down
to 2, which allows bigger holes in pixels); beyond what a 2 × 2 grid over the whole image can hide
((15/16)² ≈ 88 % at 224 px; 77 % at 32 px, where holes and gaps round to whole pixels), the request is
capped. The label weight λ is, as always, the mean of the rendered mask — it exceeds the requested λ exactly
when the request was capped. ``details`` give the grid actually used
(``grid``), the hole fraction ``hole_fraction`` and the crop's area ``crop_area``.

Mask only. The paper's second ingredient, the *local-context* loss (an auxiliary head predicting patch-level
labels on the grid), is not implemented: ``gridmix`` here is the GridMix mask with the standard mixed-label
loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._render import outer_complement, pixel_centers
from ..distributions import Integers, Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

MIN_GAP_FRACTION = 1 / 16  # the gap between two holes, as a fraction of the cell: 1 px for 2 cells at 32 px
MIN_GAP_PIXELS = 1.01  # and never under one pixel, so that a pixel centre always separates two holes
MIN_CELL_PIXELS = 2.0  # a cell narrower than this cannot hold a hole and a gap

INFO = MethodInfo(
    name="gridmix",
    title="GridMix",
    summary="Lets the partner show through a regular grid of separate holes whose total area is 1 − λ.",
    formula=r"M = 1 - \mathbb{1}_{\text{grid holes}},\ \text{hole side} = \min\!\big(\sqrt{(1-\lambda)/r},\ "
            r"f_{\max}\big)\cdot\text{cell side}",
    paper='Baek, Bang, Shim, "GridMix: Strong regularization through local context mapping", '
          "Pattern Recognition 2021",
    arxiv=None,
    default_alpha=1.0,
    params=(
        Param("n_holes", "holes per side of the grid (coarsened when the holes could not cover 1 − λ)",
              kind="int", low=1, high=32, sampled=Integers(2, 6)),
        Param("area_ratio", "area of the gridded crop, as a fraction of the image (grown when 1 − λ needs it)",
              low=0.0, high=1.0, low_open=True, sampled=Uniform(0.5, 1.0)),
        Param("aspect", "aspect ratio of the gridded crop relative to the image's", low=0.05, high=20.0,
              sampled=Uniform(0.5, 2.0)),
        Param("offset_x", "horizontal position of the crop within the free space (0 left, 1 right)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("offset_y", "vertical position of the crop within the free space (0 top, 1 bottom)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
    ),
    notes="The holes never merge: their side is at most 15/16 of a cell (and leaves ≥ 1 px gaps), so below "
          "λ ≈ 0.12 the request is capped and λ (the mask's mean) is larger than asked. Mask only: the paper's "
          "local-context loss is not implemented.",
)


def _holes_along(coords: Tensor, start: Tensor, length: Tensor, cells: Tensor, fill: Tensor) -> Tensor:
    """[B, N] bool: which pixel centres fall in a hole along one axis."""
    u = (coords[None] - start[:, None]) / length[:, None]  # position in the crop, [0, 1) inside
    cell = u * cells[:, None]
    within = cell - cell.floor()  # position in the cell, [0, 1)
    inside_crop = (u >= 0) & (u < 1)
    return inside_crop & ((within - 0.5).abs() < fill[:, None] / 2)


def _crop(ratio: Tensor, aspect: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Crop sides in pixels for an area ratio and a relative aspect, both sides kept inside the image."""
    aspect = torch.minimum(torch.maximum(aspect, ratio), 1.0 / ratio)
    return (ratio * aspect).sqrt().clamp(max=1.0) * width, (ratio / aspect).sqrt().clamp(max=1.0) * height


def _max_fill(cells: Tensor, crop_w: Tensor, crop_h: Tensor) -> Tensor:
    """The largest hole fraction of a cell that keeps the holes apart."""
    cell = torch.minimum(crop_w, crop_h) / cells
    return 1.0 - torch.maximum(torch.full_like(cell, MIN_GAP_FRACTION), MIN_GAP_PIXELS / cell)


@mask_generator(INFO)
def gridmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """GridMix mask: 0 on an n × n grid of separate holes inside a crop, 1 elsewhere; holes cover 1 − λ
    (capped where the holes would have to touch: see the module docstring).

    Params (sampled when not pinned): ``n_holes`` U{2..6}, ``area_ratio`` U(0.5, 1), ``aspect`` U(0.5, 2),
    ``offset_x``/``offset_y`` U(0, 1). Returns [B, 1, H, W] float32.
    """
    cells = read.tensor("n_holes")
    ratio = read.tensor("area_ratio")
    aspect = read.tensor("aspect")
    offset_x = read.tensor("offset_x")
    offset_y = read.tensor("offset_y")
    cover = (1.0 - lam).clamp(0.0, 1.0)

    # Cells narrower than MIN_CELL_PIXELS cannot hold a hole and a gap: coarsen the grid first.
    crop_w, crop_h = _crop(ratio, aspect, height, width)
    cells = torch.minimum(cells, (torch.minimum(crop_w, crop_h) / MIN_CELL_PIXELS).floor()).clamp_min(1.0)
    # Grow the crop until its holes can cover 1 − λ (or it is the whole image).
    ratio = torch.maximum(ratio, (cover / _max_fill(cells, crop_w, crop_h) ** 2).clamp(max=1.0))
    crop_w, crop_h = _crop(ratio, aspect, height, width)
    # Then coarsen the grid: fewer, bigger cells allow bigger holes in pixels (n ≥ 2 while the image allows).
    side = torch.minimum(crop_w, crop_h)
    wanted = (cover / ratio).sqrt()
    fits = (side * (1.0 - wanted) / MIN_GAP_PIXELS).floor()
    cells = torch.where(wanted > _max_fill(cells, crop_w, crop_h), torch.minimum(cells, fits.clamp_min(2.0)), cells)
    cells = torch.minimum(cells, (side / MIN_CELL_PIXELS).floor()).clamp_min(1.0)
    fill = torch.minimum(wanted, _max_fill(cells, crop_w, crop_h)).clamp_min(0.0)
    read.derive("grid", cells)
    read.derive("hole_fraction", fill)
    read.derive("crop_area", ratio)

    holes_x = _holes_along(pixel_centers(width, lam.device), offset_x * (width - crop_w), crop_w, cells, fill)
    holes_y = _holes_along(pixel_centers(height, lam.device), offset_y * (height - crop_h), crop_h, cells, fill)
    return outer_complement(holes_y.float(), holes_x.float())


register(MaskMethod(INFO, gridmix_mask))
