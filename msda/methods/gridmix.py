"""GridMix: the partner shows through a regular grid of rectangular holes.

Baek, Bang, Shim. "GridMix: Strong regularization through local context mapping", Pattern Recognition 109,
2021.

The grid covers a crop of the image (area ratio r ~ U(0.5, 1), aspect a ~ U(0.5, 2) relative to the image's
own aspect, at a uniform position); the crop is cut into n × n cells (n ~ U{2, …, 6}) and each cell gets a
centred hole whose sides are f = √((1 − λ)/r) of the cell's, so the holes cover 1 − λ of the image. When
1 − λ > r the crop grows to area 1 − λ, so every λ in [0, 1] is reachable; λ is then the mean of the
rendered mask (pixel rounding moves it by at most a few pixels' worth). Grids are coarsened so that a cell is
at least 2 px wide.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._random import integers
from .._render import outer, pixel_centers
from ..distributions import Uniform, Integers
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

INFO = MethodInfo(
    name="gridmix",
    title="GridMix",
    summary="Lets the partner show through a regular grid of holes whose total area is 1 − λ.",
    formula=r"M = 1 - \mathbb{1}_{\text{grid holes}},\ \text{hole side} = \sqrt{(1-\lambda)/r}\cdot\text{cell side}",
    paper='Baek, Bang, Shim, "GridMix: Strong regularization through local context mapping", '
          "Pattern Recognition 2021",
    arxiv=None,
    default_alpha=1.0,
    params=(
        Param("n_holes", "holes per side of the grid", kind="int", low=1, high=32, sampled=Integers(2, 6)),
        Param("area_ratio", "area of the gridded crop, as a fraction of the image", low=0.0, high=1.0,
              low_open=True, sampled=Uniform(0.5, 1.0)),
        Param("aspect", "aspect ratio of the gridded crop relative to the image's", low=0.05, high=20.0,
              sampled=Uniform(0.5, 2.0)),
        Param("offset_x", "horizontal position of the crop within the free space (0 left, 1 right)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("offset_y", "vertical position of the crop within the free space (0 top, 1 bottom)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
    ),
)


def _holes_along(coords: Tensor, start: Tensor, length: Tensor, cells: Tensor, fill: Tensor) -> Tensor:
    """[B, N] bool: which pixel centres fall in a hole along one axis."""
    u = (coords[None] - start[:, None]) / length[:, None]  # position in the crop, [0, 1) inside
    cell = u * cells[:, None]
    within = cell - cell.floor()  # position in the cell, [0, 1)
    inside_crop = (u >= 0) & (u < 1)
    return inside_crop & ((within - 0.5).abs() < fill[:, None] / 2)


@mask_generator(INFO)
def gridmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """GridMix mask: 0 on an n × n grid of holes inside a crop, 1 elsewhere; holes cover ≈ 1 − λ.

    Params (sampled when not pinned): ``n_holes`` U{2..6}, ``area_ratio`` U(0.5, 1), ``aspect`` U(0.5, 2),
    ``offset_x``/``offset_y`` U(0, 1). Returns [B, 1, H, W] float32.
    """
    cells = read.tensor("n_holes", lambda n: integers(2, 6, n, generator=read.generator, device=read.device))
    ratio = read.tensor("area_ratio")
    aspect = read.tensor("aspect")
    offset_x = read.tensor("offset_x")
    offset_y = read.tensor("offset_y")

    cover = (1.0 - lam).clamp(0.0, 1.0)
    ratio = torch.maximum(ratio, cover)  # the crop must be able to hold 1 − λ of the image
    aspect = torch.minimum(torch.maximum(aspect, ratio), 1.0 / ratio)  # keep both sides inside the image
    crop_w = (ratio * aspect).sqrt().clamp(max=1.0) * width
    crop_h = (ratio / aspect).sqrt().clamp(max=1.0) * height
    fill = (cover / ratio).sqrt().clamp(max=1.0)
    # Cells narrower than 2 px cannot hold a hole of any chosen fraction: coarsen the grid instead.
    cells = torch.minimum(cells, (torch.minimum(crop_w, crop_h) / 2).floor().clamp_min(1.0))

    holes_x = _holes_along(pixel_centers(width, lam.device), offset_x * (width - crop_w), crop_w, cells, fill)
    holes_y = _holes_along(pixel_centers(height, lam.device), offset_y * (height - crop_h), crop_h, cells, fill)
    return 1.0 - outer(holes_y.float(), holes_x.float())


register(MaskMethod(INFO, gridmix_mask))
