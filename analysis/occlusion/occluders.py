"""Occluders: boxes drawn over images — solid (with a thick border), translucent, smooth, frame.

See :mod:`analysis.occlusion` for the study they serve and the box convention."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from msda._checks import check_choice, check_images, check_int, check_real, describe

OCCLUDER_KINDS: tuple[str, ...] = ("solid", "translucent", "smooth", "frame")
DEFAULT_FILL = 0.5           # mid grey, as Zeiler & Fergus's occluding square
TRANSLUCENT_OPACITY = 0.5    # smoothmix.md §1: "50 % transparency"
SMOOTH_RAMP = 0.25           # default ramp width of `smooth`, as a fraction of the box side on each axis





# ----------------------------------------------------------------------------------------------- occluders


def sample_boxes(count: int, height: int, width: int, *, box_frac: float, generator: torch.Generator) -> Tensor:
    """`count` random boxes of area ≈ `box_frac` of the image, inside it, on integer pixel coordinates.

    Sides are ``round(√box_frac · W)`` × ``round(√box_frac · H)`` (at least 1 pixel); the top-left corner is
    uniform over the positions that keep the box inside the image. Randomness comes only from `generator`
    (the boxes are created on its device).

    Returns float32 [count, 4] boxes ``(x0, y0, x1, y1)`` in pixels.
    """
    count = check_int("count", count, low=1)
    height = check_int("height", height, low=1)
    width = check_int("width", width, low=1)
    box_frac = check_real("box_frac", box_frac, low=0.0, high=1.0, low_open=True)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                         f"got {type(generator).__name__}")
    side_x = min(width, max(1, round(math.sqrt(box_frac) * width)))
    side_y = min(height, max(1, round(math.sqrt(box_frac) * height)))
    corner = torch.rand(count, 2, generator=generator, device=generator.device)
    x0 = (corner[:, 0] * (width - side_x + 1)).floor().clamp_max(width - side_x)
    y0 = (corner[:, 1] * (height - side_y + 1)).floor().clamp_max(height - side_y)
    return torch.stack([x0, y0, x0 + side_x, y0 + side_y], dim=1)


def occlude(images: Tensor, boxes: Tensor, *, kind: str, fill=None, border: float | None = None) -> Tensor:
    """Draw one occluder per image.

    Args:
        images: [B, C, H, W] floating point in [0, 1]; not modified.
        boxes: [B, 4] (or [4], the same box for every image) ``(x0, y0, x1, y1)`` in pixels, half-open, x1 > x0
            and y1 > y0 (see the module docstring for which pixels are inside).
        kind: one of ``OCCLUDER_KINDS``:

            - ``solid``: the box filled with `fill`, and a ring `border` pixels wide around it (outside the box,
              clipped to the image) in the contrasting colour: black where the fill's channel mean is ≥ 0.5, else
              white.
            - ``translucent``: ``0.5 · image + 0.5 · fill`` inside the box, no border.
            - ``smooth``: ``image + α (fill − image)`` with ``α = r_x(x) · r_y(y)``, ``r(t) = clip(d(t) / w, 0, 1)``
              where ``d`` is the distance of the pixel centre to the nearer box edge on that axis and ``w`` the
              ramp width — opaque in the core, fading to 0 at the box's edge, so nothing outside the box changes.
            - ``frame``: the ring of ``solid`` alone; the box's inside is left untouched.
        fill: the occluder's colour: None (grey 0.5), a number, C numbers, or a [B, C] tensor; values in [0, 1].
        border: ``solid``/``frame``: ring width in pixels (default ``max(1, round(min(H, W) / 16))``: 2 px at 32,
            14 px at 224; 0 = no ring). ``smooth``: ramp width in pixels (default a quarter of the box's side
            on each axis). Not allowed for ``translucent``.

    Returns the occluded images, a new [B, C, H, W] tensor of the images' dtype and device. Batched: no loop
    over the batch.
    """
    images = check_images(images)
    check_choice("kind", kind, OCCLUDER_KINDS)
    b, c, height, width = images.shape
    boxes = _check_boxes(boxes, b, images.device)
    colour = _fill_colour(fill, b, c, images)
    border = _check_border(kind, border)

    inside = _box_indicator(boxes, height, width)
    if kind == "translucent":
        return torch.where(inside, torch.lerp(images, colour, TRANSLUCENT_OPACITY), images)
    if kind == "smooth":
        alpha = _smooth_opacity(boxes, height, width, border).to(images.dtype)
        return torch.where(inside, torch.lerp(images, colour, alpha), images)
    ring = _ring_indicator(boxes, height, width, _border_width(border, height, width)) & ~inside
    ring_colour = (colour.mean(1, keepdim=True) < 0.5).to(images.dtype).expand_as(colour)
    framed = torch.where(ring, ring_colour, images)
    return framed if kind == "frame" else torch.where(inside, colour, framed)


def occluder_region(boxes: Tensor, height: int, width: int, *, kind: str, border: float | None = None) -> Tensor:
    """The pixels :func:`occlude` may change: bool [B, 1, H, W] (the box; the box and its ring for ``solid``;
    the ring alone for ``frame``), for boxes [B, 4] in pixels."""
    height, width = check_int("height", height, low=1), check_int("width", width, low=1)
    check_choice("kind", kind, OCCLUDER_KINDS)
    if not isinstance(boxes, Tensor) or boxes.ndim != 2:
        raise ValueError(f"boxes must be a tensor of shape [B, 4] (x0, y0, x1, y1) in pixels, got {describe(boxes)}")
    boxes = _check_boxes(boxes, boxes.shape[0], boxes.device)
    border = _check_border(kind, border)
    inside = _box_indicator(boxes, height, width)
    if kind in ("translucent", "smooth"):
        return inside
    ring = _ring_indicator(boxes, height, width, _border_width(border, height, width)) & ~inside
    return ring if kind == "frame" else ring | inside


def _pixel_centres(size: int, device: torch.device) -> Tensor:
    return torch.arange(size, device=device, dtype=torch.float32) + 0.5


def _box_indicator(boxes: Tensor, height: int, width: int, grow: float = 0.0) -> Tensor:
    """bool [B, 1, H, W]: pixel centres strictly inside the box grown by `grow` pixels on every side."""
    xs, ys = _pixel_centres(width, boxes.device), _pixel_centres(height, boxes.device)
    inside_x = (xs > boxes[:, 0:1] - grow) & (xs < boxes[:, 2:3] + grow)
    inside_y = (ys > boxes[:, 1:2] - grow) & (ys < boxes[:, 3:4] + grow)
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def _ring_indicator(boxes: Tensor, height: int, width: int, border: float) -> Tensor:
    return _box_indicator(boxes, height, width, grow=border)


def _smooth_opacity(boxes: Tensor, height: int, width: int, ramp: float | None) -> Tensor:
    """float32 [B, 1, H, W]: product of per-axis linear ramps from 0 at the box edge to 1, `ramp` px inside."""
    xs, ys = _pixel_centres(width, boxes.device), _pixel_centres(height, boxes.device)
    if ramp is None:
        ramp_x = (boxes[:, 2:3] - boxes[:, 0:1]) * SMOOTH_RAMP
        ramp_y = (boxes[:, 3:4] - boxes[:, 1:2]) * SMOOTH_RAMP
    else:
        ramp_x = ramp_y = torch.full_like(boxes[:, 0:1], ramp)
    to_edge_x = torch.minimum(xs - boxes[:, 0:1], boxes[:, 2:3] - xs)
    to_edge_y = torch.minimum(ys - boxes[:, 1:2], boxes[:, 3:4] - ys)
    alpha_x = (to_edge_x / ramp_x.clamp_min(1e-6)).clamp(0.0, 1.0)
    alpha_y = (to_edge_y / ramp_y.clamp_min(1e-6)).clamp(0.0, 1.0)
    return (alpha_y[:, :, None] * alpha_x[:, None, :])[:, None]


def _border_width(border: float | None, height: int, width: int) -> float:
    return float(max(1, round(min(height, width) / 16))) if border is None else border


def _check_border(kind: str, border) -> float | None:
    if border is None:
        return None
    if kind == "translucent":
        raise ValueError(f"border does not apply to kind='translucent' (a plain 50 % blend); got border={border!r}")
    low_open = kind == "smooth"  # a ramp of width 0 would divide by zero; a ring of width 0 is no ring
    return check_real("border", border, low=0.0, low_open=low_open)


def _check_boxes(boxes, batch: int, device: torch.device) -> Tensor:
    if not isinstance(boxes, Tensor):
        raise ValueError(f"boxes must be a tensor of shape [B, 4] (x0, y0, x1, y1) in pixels, got {describe(boxes)}")
    if boxes.ndim == 1 and boxes.shape[0] == 4:
        boxes = boxes.expand(batch, 4)
    if boxes.ndim != 2 or boxes.shape != (batch, 4):
        raise ValueError(f"boxes must have shape [{batch}, 4] (x0, y0, x1, y1) in pixels, one per image; "
                         f"got shape {tuple(boxes.shape)}")
    if boxes.is_complex() or boxes.dtype == torch.bool:
        raise ValueError(f"boxes must be real numbers (pixels), got dtype {boxes.dtype}")
    boxes = boxes.to(device=device, dtype=torch.float32)
    bad = ~torch.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bool(bad.any()):
        first = boxes[bad][0].tolist()
        raise ValueError(f"boxes must be finite (x0, y0, x1, y1) in pixels with x1 > x0 and y1 > y0, got {first}")
    return boxes


def _fill_colour(fill, batch: int, channels: int, images: Tensor) -> Tensor:
    """The fill as [B, C, 1, 1] in the images' dtype and device."""
    value = DEFAULT_FILL if fill is None else fill
    try:
        colour = torch.as_tensor(value, dtype=images.dtype, device=images.device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"fill must be a number, {channels} numbers or a [B, {channels}] tensor, "
                         f"got {describe(fill)}") from None
    if colour.ndim == 0:
        colour = colour.expand(batch, channels)
    elif colour.ndim == 1 and colour.shape[0] == channels:
        colour = colour.expand(batch, channels)
    elif colour.shape != (batch, channels):
        raise ValueError(f"fill must be a number, {channels} numbers or a [{batch}, {channels}] tensor, "
                         f"got {describe(fill)}")
    if not bool(((colour >= 0) & (colour <= 1)).all()):
        raise ValueError(f"fill must be in [0, 1] like the images, got {describe(fill)}")
    return colour[:, :, None, None]


