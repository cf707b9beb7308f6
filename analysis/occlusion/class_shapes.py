"""Whether an occluder can be read as a class shape of the shapes dataset.

The occlusion study asks whether a model *latches on* to an occluder. If the occluder itself looks like a class
— a solid rectangle is the ``square`` class of shapes version 1, and a rotated one its ``diamond`` — a model
that predicts that class is right to look at it, and the latching score measures the dataset, not the model.
Version 2 (:mod:`msda.data.shapes`) has no box-like class: every class's best IoU with its own bounding
rectangle is < 0.85 (``tests/test_shapes_design.py``). This module measures the same for the occluders.

The measure: the occluder's silhouette (what :func:`analysis.occlusion.occluder_region` changes: the box, its
ring too for ``solid``, the ring alone for ``frame``; ``translucent`` and ``smooth`` count as the filled box)
against each class's silhouette centred on it, over 24 rotations and scales 0.8–1.2 of the occluder's
circumradius; the best IoU per class. An occluder *matches* a class when that IoU reaches
:data:`MATCH_IOU` = 0.85, the bound under which the dataset's design keeps every version-2 class away from a
rectangle.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from msda._checks import check_choice, check_int, check_real

from .occluders import OCCLUDER_KINDS, _border_width

__all__ = ["MATCH_IOU", "occluder_class_iou", "matching_classes"]

MATCH_IOU = 0.85
_GRID = 96
_SPAN = 1.25          # half-width of the comparison grid, in units of the occluder's circumradius
_ANGLES = 24
_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2)


def occluder_class_iou(kind: str, classes, *, size: int = 32, box_frac: float = 0.1,
                       border: float | None = None) -> dict[str, float]:
    """Best silhouette IoU of the occluder with each class of the shapes version whose classes are `classes`.

    Args:
        kind: one of ``OCCLUDER_KINDS``.
        classes: the class names (a checkpoint's ``meta["classes"]``); classes that are no version of the shapes
            dataset have no known silhouettes, and the result is empty.
        size: the image side in pixels (boxes are square on square images, as :func:`sample_boxes` draws them).
        box_frac: the box's share of the image.
        border: ring width in pixels of ``solid`` and ``frame`` (default :func:`occlude`'s).

    Returns ``{class name: IoU in [0, 1]}``.
    """
    from msda.data.shapes import DESIGNS, version_of_classes

    check_choice("kind", kind, OCCLUDER_KINDS)
    size = check_int("size", size, low=1)
    box_frac = check_real("box_frac", box_frac, low=0.0, high=1.0, low_open=True)
    version = version_of_classes(list(classes))
    if version is None:
        return {}
    design = DESIGNS[version]
    side = min(size, max(1, round(math.sqrt(box_frac) * size)))
    ring = _border_width(border, size, size) if kind in ("solid", "frame") else 0.0
    inner, outer = side / 2.0, side / 2.0 + ring
    radius = outer * math.sqrt(2.0)
    u = (torch.arange(_GRID, dtype=torch.float64) + 0.5) * (2 * _SPAN / _GRID) - _SPAN
    x, y = u[None, :], u[:, None]
    box_distance = torch.maximum(x.abs(), y.abs()) * radius  # in pixels from the centre, square level sets
    silhouette = box_distance < outer
    if kind == "frame":
        silhouette &= box_distance >= inner
    return {name: _best_iou(silhouette, sdf, x, y) for name, sdf in zip(design.classes, design.sdfs)}


def matching_classes(kind: str, classes, **options) -> dict[str, float]:
    """The classes the occluder matches (IoU ≥ :data:`MATCH_IOU`) with their IoU; empty when none does."""
    return {name: iou for name, iou in occluder_class_iou(kind, classes, **options).items() if iou >= MATCH_IOU}


def _best_iou(silhouette: Tensor, sdf, x: Tensor, y: Tensor) -> float:
    flat = silhouette.flatten().float()
    templates = []
    for k in range(_ANGLES):
        cos, sin = math.cos(2 * math.pi * k / _ANGLES), math.sin(2 * math.pi * k / _ANGLES)
        for scale in _SCALES:
            templates.append((sdf((x * cos + y * sin) / scale, (y * cos - x * sin) / scale) < 0).flatten())
    stacked = torch.stack(templates).float()
    intersection = stacked @ flat
    union = stacked.sum(1) + flat.sum() - intersection
    return float((intersection / union).max())
