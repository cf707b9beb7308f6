"""Shapes: a procedurally generated, deterministic 10-class image dataset with object masks, shipped as code.

Each image shows one class shape with random colour, size, rotation, aspect jitter, shading and position, on a
textured background (value noise, gradients, stripes, checkers, crops of the photos and textures bundled with
scikit-image), among distractor clutter (a few lines drawn over the object), with global brightness/contrast
jitter and pixel noise. The object mask — every pixel the visible object touches, its anti-aliased rim
included — is the ground truth for CAM localisation.

Sample ``i`` of a split is a pure function of ``(seed, split, i, version)``: all its random parameters come from
a counter-based hash (:mod:`._counter_random`), so train and test never share a sample, nothing is stored, and a
sample renders to the same bits in any batch or order. Rendering is batched in torch: shapes are signed distance
functions (:mod:`._sdf`) evaluated on rotated coordinate grids and anti-aliased by their distance in pixels.

Versions (``DESIGNS``; ``Shapes(..., version=…)``, default ``DATASET_VERSION`` = 2)
-------------------------------------------------------------------------------------
Version 1 — circle, square, triangle, star, cross, ring, hexagon, diamond, ellipse, crescent; circumdiameter
20–60 % of the side; clutter of thin lines, arcs and small cut-off discs and squares. Tuned for 10 000 images:
resnet20, 30 epochs, batch 128, one-cycle cosine to lr 0.1, reached 79.7 % on 2 000 test images. It is kept,
bit for bit, because the first shipped checkpoints were trained on it (their metadata names its classes:
:func:`version_of_classes`). Its faults for studying MSDA: from scratch on 2 000 images ``none`` sat at chance
until epoch 28; objects covered 10.4 % of the image on average (10th percentile 3.9 %), so a mix box often hid
the object its label names; the clutter drew the circle and square classes; a rectangular occluder or mix box
*is* a square, a rotated square a diamond; aspect jitter (0.88–1.12 per axis) stretched circles to 1.29:1.

Version 2 — designed so that resnet20 learns it from scratch on a laptop, a mixed label names something
visible, and nothing but the object can be read as a class. Hardness comes from small data, textured
backgrounds and clutter, never from label noise.

* Classes: circle, triangle, star (inner radius 0.5), cross, ring, arrow, heart, ellipse, crescent, trefoil.
  Square and diamond are gone (a rectangle imitates them) and so is hexagon (its silhouette has IoU 0.93 with
  the circle's at 32 px); every class's best IoU with its own bounding rectangle, over rotations, is < 0.85.
  The closest pairs of silhouettes: triangle–trefoil 0.77, circle–ring 0.76 (best over rotation and ±20 % scale).
* Objects: circumradius 0.5–0.85 of the half-side (v1: 0.2–0.6). Object share of the image, first 1 024 test
  images: mean 24.6 %, 10th percentile 13.3 %, median 22.9 %, min 7.6 % (v1: 10.4, 3.9, 9.1, 2.0 %).
* Aspect jitter 0.93–1.075 per axis: a circle becomes at most 1.16:1, the 2:1 ellipse at least 1.73:1.
* Clutter: strokes only — lines (half-length 0.3–0.6), open arcs (radius 0.2–0.35, 120–240°) and zigzags,
  0.7–1.2 px wide at 32 px, each kept whole inside the image (a stroke cut by the border leaves a stub that is
  just a blob). Best silhouette IoU of a clutter element with any class fitted at the element's own scale
  (``tests/test_shapes_design.py``, 1 000 images at 64 px): median 0.34, max 0.55 over 1 998 elements; v1's
  clutter: median 0.45, max 0.87, 34 % of its elements ≥ 0.6.
* Contrast: the object's colour is pushed at least 0.5–0.7 per channel from the local background (v1:
  0.2–0.45). This was the lever that made the first epoch learn: with 0.25–0.5 (and hexagon in place of arrow,
  clutter not kept inside), ``none`` with the shapes-scratch recipe scored 10.2 % after epoch 1 (chance), 12.6 %
  after epoch 2, 14.5 % after epoch 3, and memorised (train 100 % and test 71.5 % at epoch 24; stopped at 25).

Measured on version 2 (``python -m msda.train --data shapes --arch resnet20 --recipe shapes-scratch
--train-size 2000 --test-size 2000 --data-seed 0 --seed S --method M --device cpu``, OMP_NUM_THREADS=1):

* ``none`` leaves chance within its first epoch: test accuracy after epoch 1 is 13.3, 17.5, 16.8 and 19.1 %
  for seeds 0–3 (chance 10 %; 3 binomial σ on 2 000 images is 2 points).
* After 30 epochs: ``none`` 90.9 % (seed 0) and 90.1 % (seed 1) test accuracy, train accuracy 100 % from
  epochs 23 and 22 — it memorises. Seed 0 with half of each batch mixed (the recipe, ``prob`` 0.5): ``mixup``
  90.7 % (train 94.2 %), ``cutmix`` 94.0 % (train 85.8 % on its mixed batches). With every sample mixed
  (``--prob 1``): ``mixup`` 92.3 % (train 89.3 %), ``cutmix`` 79.8 % (train 61.6 %) — CutMix underfits in 30
  epochs, which is why the recipe mixes half. Few seeds — not differences until the three-seed sweep
  (:mod:`msda.training.sweep`) says so.

Invisible-label share — mixed samples giving ≥ 0.25 label weight to an object < 10 % visible, every method with
its default parameters on the first 1 024 test images (``python -m msda.data.shapes_report``), v1 → v2:
cutmix 27.3 → 11.4 %, hardmix 27.3 → 11.2 %, fmix 21.6 → 8.7 %, saliencymix 21.4 → 12.4 %, lmix 19.6 → 6.6 %,
resizemix 18.9 → 13.7 %, smoothmix_s 14.1 → 3.9 %, miamix 12.0 → 5.8 %, smoothmix_c 6.5 → 0.8 %, cutout 5.4 → 0.8 %,
agmix 5.3 → 0.6 %, gmix 4.4 → 0.2 %, gridmix 1.9 → 0.0 %, mixup 0 → 0 %.

Rendering 50 000 version-1 images at 32 px takes ≈ 9 s on one CPU thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_choice, check_int
from . import _sdf
from ._backgrounds import random_colour, random_direction, render_backgrounds
from ._counter_random import CounterRandom, sample_keys

SPLITS = ("train", "test")
_SPLIT_SALTS = {"train": 0x7A3D1E05, "test": 0x1C94F2B7}


@dataclass(frozen=True)
class Design:
    """One version of the dataset: its classes and the knobs that set its difficulty (changing one changes the
    dataset, so a change is a new version)."""

    version: int
    classes: tuple[str, ...]
    sdfs: tuple[Callable[[Tensor, Tensor], Tensor], ...]
    scale_range: tuple[float, float]          # object circumradius, normalised units (the image side is 2)
    aspect_jitter: tuple[float, float]        # independent stretch of the two object axes
    contrast_range: tuple[float, float]       # minimal per-channel object/background difference, per sample
    shading_range: tuple[float, float]        # linear shading across the object, ± this fraction of its colour
    clutter_kinds: tuple[str, ...]            # what a clutter slot may draw
    clutter_slots: int
    clutter_probability: float                # each slot is used with this probability
    over_object_probability: float            # a line is drawn over the object with this probability
    clutter_thickness: tuple[float, float] = (0.045, 0.1)      # stroke width, normalised units
    line_half_length: tuple[float, float] = (0.15, 0.6)
    arc_radius: tuple[float, float] = (0.08, 0.3)
    clutter_inside: bool = False              # keep every element inside the image (no clipped stubs)
    contrast_jitter: tuple[float, float] = (0.7, 1.15)   # global contrast factor around mid-grey
    brightness_jitter: tuple[float, float] = (-0.1, 0.1)
    pixel_noise_range: tuple[float, float] = (0.0, 0.06)  # half-width of the uniform per-pixel noise


DESIGNS: dict[int, Design] = {
    1: Design(
        version=1,
        classes=("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse",
                 "crescent"),
        sdfs=_sdf.CLASS_SDFS_V1, scale_range=(0.2, 0.6), aspect_jitter=(0.88, 1.12), contrast_range=(0.2, 0.45),
        shading_range=(0.0, 0.3), clutter_kinds=("line", "arc", "blob"), clutter_slots=4,
        clutter_probability=0.4, over_object_probability=0.3),
    2: Design(
        version=2,
        classes=("circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent",
                 "trefoil"),
        sdfs=_sdf.CLASS_SDFS_V2, scale_range=(0.5, 0.85), aspect_jitter=(0.93, 1.075), contrast_range=(0.5, 0.7),
        shading_range=(0.0, 0.3), clutter_kinds=("line", "arc", "zigzag"), clutter_slots=4,
        clutter_probability=0.5, over_object_probability=0.3, clutter_thickness=(0.045, 0.075),
        line_half_length=(0.3, 0.6), arc_radius=(0.2, 0.35), clutter_inside=True),
}
DATASET_VERSION = 2
"""The version ``Shapes`` renders by default; checkpoints trained on version 1 (square, diamond) name its
classes, so :func:`version_of_classes` tells them apart."""

CLASSES = DESIGNS[DATASET_VERSION].classes


def version_of_classes(classes) -> int | None:
    """The dataset version whose class list equals `classes` (a checkpoint's metadata), else None."""
    for version, design in DESIGNS.items():
        if list(classes) == list(design.classes):
            return version
    return None


MIN_SIZE = 16
_CACHE_LIMIT_BYTES = 1 << 29        # rendered uint8 images are kept in memory up to 512 MiB
_CHUNK_PIXELS = 1 << 20             # samples rendered per pass ≈ this many pixels, to bound temporary memory
_STATISTICS_SAMPLES = 1024
_STATISTICS_MAX_SIZE = 64           # mean/std barely depend on resolution; render them at ≤ 64 px


def pixel_centres(size: int, device: torch.device) -> Tensor:
    """[size] coordinates of the pixel centres in (−1, 1)."""
    return (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0


def render_shapes(indices: Tensor, *, seed: int, split: str, size: int, draw_object: bool = True,
                  version: int = DATASET_VERSION) -> tuple[Tensor, Tensor, Tensor]:
    """Render samples of the shapes dataset on the device of `indices` (no argument checks: see Shapes.render).

    Returns (images uint8 [B, 3, S, S], labels int64 [B], masks bool [B, 1, S, S]).
    """
    design = DESIGNS[version]
    device = indices.device
    rng = CounterRandom(sample_keys(seed, _SPLIT_SALTS[split], indices))
    b = indices.shape[0]
    xs = ys = pixel_centres(size, device)
    half_size = size * 0.5  # normalised units → pixels

    images = render_backgrounds(rng, xs, ys)
    labels = rng.integers("label", len(design.classes))

    # The object: a class SDF in rotated, scaled local coordinates.
    radius = rng.uniform("object.scale", None, *design.scale_range)
    aspect = rng.uniform("object.aspect", None, *design.aspect_jitter)
    radius_x, radius_y = radius * aspect, radius / aspect
    reach = torch.maximum(radius_x, radius_y)
    centre_x = (rng.uniform("object.x") * 2.0 - 1.0) * (1.0 - reach)
    centre_y = (rng.uniform("object.y") * 2.0 - 1.0) * (1.0 - reach)
    cos, sin = random_direction(rng, "object.angle")
    dx = xs[None, None, :] - centre_x[:, None, None]
    dy = ys[None, :, None] - centre_y[:, None, None]
    local_x = (dx * cos[:, None, None] + dy * sin[:, None, None]) / radius_x[:, None, None]
    local_y = (dy * cos[:, None, None] - dx * sin[:, None, None]) / radius_y[:, None, None]
    distance = torch.empty(b, size, size, device=device)
    for label, sdf in enumerate(design.sdfs):  # each sample evaluates only its own class's SDF
        chosen = (labels == label).nonzero().squeeze(1)
        if chosen.numel():
            distance[chosen] = sdf(local_x[chosen], local_y[chosen])
    scale_px = torch.minimum(radius_x, radius_y) * half_size
    coverage = (0.5 - distance * scale_px[:, None, None]).clamp(0.0, 1.0)

    colour = _contrasting_colour(rng, images, centre_x, centre_y, radius, size, design.contrast_range)
    shade_x, shade_y = random_direction(rng, "object.shade_angle")
    shade = rng.uniform("object.shade", None, *design.shading_range)
    shading = 1.0 + shade[:, None, None] * (local_x * shade_x[:, None, None] + local_y * shade_y[:, None, None])
    object_pixels = (colour[:, :, None, None] * shading[:, None]).clamp(0.0, 1.0)

    slot_coverage, slot_colour, over = _distractors(rng, xs, ys, half_size, design)
    under_alpha = slot_coverage * (~over)[:, :, None, None]
    for slot in range(design.clutter_slots):
        images = images + (slot_colour[:, slot, :, None, None] - images) * under_alpha[:, slot, None]
    if draw_object:
        images = images + (object_pixels - images) * coverage[:, None]
    # Few samples have a distractor over the object: composite those on their subset only.
    visible = coverage
    covered = over.any(1).nonzero().squeeze(1)
    if covered.numel():
        over_alpha = (slot_coverage[covered] * over[covered][:, :, None, None])
        layered, seen = images[covered], coverage[covered]
        for slot in range(design.clutter_slots):
            layered = layered + (slot_colour[covered, slot, :, None, None] - layered) * over_alpha[:, slot, None]
            seen = seen * (1.0 - over_alpha[:, slot])
        images, visible = images.index_copy(0, covered, layered), visible.index_copy(0, covered, seen)

    images = _camera(rng, images, size, design)
    masks = (visible > 0.0)[:, None]  # every pixel the visible object touches, anti-aliased rim included
    return (images * 255.0).round().to(torch.uint8), labels, masks


def render_clutter(indices: Tensor, *, seed: int, split: str, size: int,
                   version: int = DATASET_VERSION) -> Tensor:
    """The clutter of samples, one layer per slot, exactly as :func:`render_shapes` draws it (before the object
    and the camera): coverage float32 [B, SLOTS, S, S] in [0, 1], zero for unused slots. For checking that
    no clutter element looks like a class (``tests/test_shapes_design.py``)."""
    design = DESIGNS[version]
    rng = CounterRandom(sample_keys(seed, _SPLIT_SALTS[split], indices))
    xs = ys = pixel_centres(size, indices.device)
    return _distractors(rng, xs, ys, size * 0.5, design)[0]


def _contrasting_colour(rng: CounterRandom, backgrounds: Tensor, centre_x: Tensor, centre_y: Tensor,
                        radius: Tensor, size: int, contrast_range: tuple[float, float]) -> Tensor:
    """A random colour [B, 3], pushed away from the background around the object where it is too close.

    The background is read at five points (centre, ± radius/2 in x and y) — gathers and fixed-order sums, so
    the result does not depend on the batch.
    """
    b = backgrounds.shape[0]
    flat = backgrounds.reshape(b, 3, size * size)
    local = torch.zeros(b, 3, device=backgrounds.device)
    for ox, oy in ((0.0, 0.0), (-0.5, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5)):
        column = ((centre_x + ox * radius + 1.0) * (size * 0.5)).floor().clamp(0, size - 1).long()
        row = ((centre_y + oy * radius + 1.0) * (size * 0.5)).floor().clamp(0, size - 1).long()
        local = local + flat.gather(2, (row * size + column)[:, None, None].expand(b, 3, 1))[:, :, 0]
    local = local * 0.2
    colour = random_colour(rng, "object.colour", saturation=(0.3, 1.0), value=(0.2, 1.0))
    contrast = rng.uniform("object.contrast", None, *contrast_range)[:, None]
    too_close = ((colour - local).abs().amax(1) < contrast[:, 0])[:, None]
    # Move every channel at least `contrast` away from the background, towards the end with more room.
    pushed = torch.where(local < 0.5, torch.maximum(colour, local + contrast), torch.minimum(colour, local - contrast))
    return torch.where(too_close, pushed, colour)


def _distractors(rng: CounterRandom, xs: Tensor, ys: Tensor, half_size: float,
                 design: Design) -> tuple[Tensor, Tensor, Tensor]:
    """Clutter: per slot one of the design's kinds — a thin line, a thin open arc, a thin zigzag (version 2), or
    a small cut-off disc or square blob (version 1 only: those are class shapes).

    Returns (coverage [B, SLOTS, S, S], colours [B, SLOTS, 3], over-object flags bool [B, SLOTS]).
    """
    b, size, slots = rng.keys.shape[0], xs.shape[0], design.clutter_slots
    device = rng.device
    active = rng.bernoulli("clutter.active", design.clutter_probability, slots)
    kind = rng.integers("clutter.kind", len(design.clutter_kinds), slots)
    over = active & (kind == 0) & rng.bernoulli("clutter.over", design.over_object_probability, slots)
    colours = random_colour(rng, "clutter.colour", slots)
    centre_x, centre_y = rng.uniform("clutter.x", slots, -1.0, 1.0), rng.uniform("clutter.y", slots, -1.0, 1.0)
    dir_x, dir_y = random_direction(rng, "clutter.angle", slots)
    thickness = rng.uniform("clutter.thickness", slots, *design.clutter_thickness)  # 0.7–1.6 px at 32 px (v1)
    line_half_length = rng.uniform("clutter.length", slots, *design.line_half_length)
    arc_radius = rng.uniform("clutter.arc_radius", slots, *design.arc_radius)
    cut_x, cut_y = random_direction(rng, "clutter.cut_angle", slots)
    cut = rng.uniform("clutter.cut", slots, -0.5, 0.5)
    if "blob" in design.clutter_kinds:
        blob_radius = rng.uniform("clutter.blob_radius", slots, 0.05, 0.13)
        square_blob = rng.bernoulli("clutter.square", 0.5, slots)
    else:
        zigzag_step = rng.uniform("clutter.zigzag_step", slots, 0.12, 0.25)
        zigzag_height = rng.uniform("clutter.zigzag_height", slots, 0.06, 0.15)
    if design.clutter_inside:
        # An element cut by the border leaves a short stub, a blob with no shape of its own: keep each whole.
        reach = torch.stack([line_half_length, arc_radius, zigzag_step * 1.5 + zigzag_height]).gather(
            0, kind[None])[0] + thickness
        centre_x, centre_y = centre_x * (1.0 - reach), centre_y * (1.0 - reach)

    coverage = torch.zeros(b * slots, size, size, device=device)
    x, y = xs[None, None, :], ys[None, :, None]
    for slot_kind, kind_name in enumerate(design.clutter_kinds):
        chosen = (active.reshape(-1) & (kind.reshape(-1) == slot_kind)).nonzero().squeeze(1)
        if not chosen.numel():
            continue
        cx, cy, ux, uy, nx, ny, width, cut_at = _for_slots(
            chosen, centre_x, centre_y, dir_x, dir_y, cut_x, cut_y, thickness, cut)
        px, py = x - cx, y - cy
        if kind_name == "line":
            (half_length,) = _for_slots(chosen, line_half_length)
            distance = _sdf.segment(px, py, -ux * half_length, -uy * half_length,
                                    ux * half_length, uy * half_length) - width * 0.5
        elif kind_name == "arc":
            (radius,) = _for_slots(chosen, arc_radius)
            ring = (_sdf.length(px, py) - radius).abs() - width * 0.5
            distance = torch.maximum(ring, _sdf.half_plane(px, py, nx, ny, cut_at * radius))
        elif kind_name == "zigzag":
            # Four corners alternating ± height across the direction u, one step apart along it: a stroke no
            # class outline follows.
            step, height = _for_slots(chosen, zigzag_step, zigzag_height)
            corners = [(ux * step * (k - 1.5) - uy * height * sign, uy * step * (k - 1.5) + ux * height * sign)
                       for k, sign in enumerate((1.0, -1.0, 1.0, -1.0))]
            first, *rest = itertools.pairwise(corners)
            distance = _sdf.segment(px, py, *first[0], *first[1])
            for start, end in rest:
                distance = torch.minimum(distance, _sdf.segment(px, py, *start, *end))
            distance = distance - width * 0.5
        else:
            radius, is_square = _for_slots(chosen, blob_radius, square_blob)
            disc = _sdf.length(px, py) - radius
            square = _sdf.box(px * ux + py * uy, py * ux - px * uy, radius * 0.8, radius * 0.8)
            blob = torch.where(is_square, square, disc)
            distance = torch.maximum(blob, _sdf.half_plane(px, py, nx, ny, cut_at * radius))
        coverage[chosen] = (0.5 - distance * half_size).clamp(0.0, 1.0)
    return coverage.view(b, slots, size, size), colours, over


def _for_slots(chosen: Tensor, *per_slot: Tensor) -> list[Tensor]:
    """[B, SLOTS] parameters → [n, 1, 1] each, for the chosen (flattened) slots, ready to broadcast."""
    return [values.reshape(-1)[chosen][:, None, None] for values in per_slot]


def _camera(rng: CounterRandom, images: Tensor, size: int, design: Design) -> Tensor:
    """Global contrast/brightness jitter and uniform per-pixel noise (10 bits per channel from one hash)."""
    b = images.shape[0]
    contrast = rng.uniform("camera.contrast", None, *design.contrast_jitter)
    brightness = rng.uniform("camera.brightness", None, *design.brightness_jitter)
    amplitude = rng.uniform("camera.noise", None, *design.pixel_noise_range)
    # (x − ½)·contrast + ½ + brightness + amplitude·(2·field/1023 − 1), folded into one scale and one offset.
    offset = 0.5 - 0.5 * contrast + brightness - amplitude
    # The low 30 of the 32 hash bits, as int32 (half the memory traffic of int64): a 10-bit field per channel.
    bits = (rng.bits("camera.pixels", size * size) & 0x3FFFFFFF).to(torch.int32).view(b, 1, size, size)
    shifts = torch.tensor([0, 10, 20], dtype=torch.int32, device=images.device).view(1, 3, 1, 1)
    fields = ((bits >> shifts) & 1023).float()
    noisy = images * contrast[:, None, None, None] + fields * (amplitude * (2.0 / 1023.0))[:, None, None, None]
    return (noisy + offset[:, None, None, None]).clamp(0.0, 1.0)


class Shapes(Dataset):
    """The shapes dataset: ``n`` samples of a split, rendered on demand or from an in-memory uint8 cache.

    Args:
        split: "train" or "test" (disjoint: sample i of each split comes from a different hash stream).
        n: number of samples (indices 0…n − 1).
        size: image side in pixels (≥ 16; 32 by default, 64 and 224 are common).
        seed: dataset seed in [0, 2³²); the same (seed, split, i) always gives the same sample.
        return_mask: also return the object mask.
        version: the dataset design (a key of ``DESIGNS``; default ``DATASET_VERSION``). Version 1 is the
            dataset of the first shipped checkpoints, kept so they can still be scored.

    ``dataset[i]`` is ``(image float32 [3, S, S] in [0, 1], label int)``, plus ``mask float32 [1, S, S]`` in
    {0, 1} when ``return_mask``. Images are quantised to 8 bits, so rendered and cached samples are identical.
    Rendered images are cached (chunk by chunk, on first access) while the whole split fits in 512 MiB as uint8;
    larger splits are rendered per request — DataLoader batches arrive through ``__getitems__`` and are rendered
    in one pass.

    Attributes: ``classes`` (list of the 10 names), ``num_classes``, ``image_size``, ``version``, ``mean``/``std``
    (per-channel statistics of 1024 rendered train images, at min(size, 64) px).
    """

    num_classes: int = len(CLASSES)  # every version has 10 classes

    def __init__(self, split: str, *, n: int, size: int = 32, seed: int = 0, return_mask: bool = False,
                 version: int = DATASET_VERSION) -> None:
        if isinstance(version, bool) or version not in DESIGNS:
            raise ValueError(f"version must be one of {', '.join(map(str, DESIGNS))}, got {version!r}")
        self.version = int(version)
        self.classes: list[str] = list(DESIGNS[self.version].classes)
        self.split = check_choice("split", split, SPLITS)
        self.n = check_int("n", n, low=1, high=1 << 31)
        self.image_size = check_int("size", size, low=MIN_SIZE)
        self.seed = check_int("seed", seed)
        if not 0 <= self.seed < 1 << 32:  # the hash takes 32-bit seeds
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed}")
        if not isinstance(return_mask, bool):
            raise ValueError(f"return_mask must be True or False, got {return_mask!r}")
        self.return_mask = return_mask
        self.chunk = max(1, _CHUNK_PIXELS // (self.image_size * self.image_size))
        self.cached = self.n * 3 * self.image_size ** 2 <= _CACHE_LIMIT_BYTES
        self._images: Tensor | None = None
        self._labels: Tensor | None = None
        self._masks: Tensor | None = None
        self._rendered_chunks: Tensor | None = None

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (f"Shapes(split={self.split!r}, n={self.n}, size={self.image_size}, seed={self.seed}, "
                f"return_mask={self.return_mask}, version={self.version})")

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple]:
        """A list of samples (the DataLoader's batched fetch: one rendering pass for the whole batch)."""
        index = self._check_indices(indices)
        if not index.numel():
            return []
        if self.cached:
            self._ensure_cached(index)
            images, labels = self._images[index], self._labels[index]
            masks = self._masks[index] if self.return_mask else None
        else:
            images, labels, masks = self._render_chunked(index)
        images = images.float() / 255.0
        if self.return_mask:
            masks = masks.float()
            return [(images[i], int(labels[i]), masks[i]) for i in range(len(index))]
        return [(images[i], int(labels[i])) for i in range(len(index))]

    def render(self, indices, *, draw_object: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Render samples in one batched pass, on the device of `indices` if it is a tensor (else the CPU).

        Args:
            indices: sample indices in [0, n) — a sequence of ints or an integer tensor [B].
            draw_object: False renders the same scene without the object (background and clutter only), e.g.
                to measure how much a model relies on the background; the mask still marks where it would be.

        Returns (images float32 [B, 3, S, S] in [0, 1] (8-bit levels), labels int64 [B],
        masks float32 [B, 1, S, S] in {0, 1}).
        """
        index = self._check_indices(indices)
        images, labels, masks = self._render_chunked(index, draw_object=draw_object)
        return images.float() / 255.0, labels, masks.float()

    def as_tensors(self) -> tuple[Tensor, Tensor]:
        """The whole split in memory: (images uint8 [n, 3, S, S], labels int64 [n]) on the CPU.

        While the split fits the cache these are the cache's tensors (do not modify them in place).
        """
        everything = torch.arange(self.n)
        if self.cached:
            self._ensure_cached(everything)
            return self._images, self._labels
        images = torch.empty(self.n, 3, self.image_size, self.image_size, dtype=torch.uint8)
        labels = torch.empty(self.n, dtype=torch.int64)
        for start in range(0, self.n, self.chunk):
            part = everything[start: start + self.chunk]
            images[part], labels[part], _ = render_shapes(part, seed=self.seed, split=self.split,
                                                          size=self.image_size, version=self.version)
        return images, labels

    @property
    def mean(self) -> tuple[float, float, float]:
        return _statistics(self.seed, min(self.image_size, _STATISTICS_MAX_SIZE), self.version)[0]

    @property
    def std(self) -> tuple[float, float, float]:
        return _statistics(self.seed, min(self.image_size, _STATISTICS_MAX_SIZE), self.version)[1]

    def _check_indices(self, indices) -> Tensor:
        if isinstance(indices, Tensor):
            if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
                raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
            index = indices.reshape(-1).long()
        else:
            try:
                index = torch.as_tensor([int(i) for i in indices] if not isinstance(indices, int) else [indices],
                                        dtype=torch.int64)
            except (TypeError, ValueError):
                raise ValueError(f"indices must be integers in [0, {self.n}), got {indices!r}") from None
        if index.numel() and bool(((index < 0) | (index >= self.n)).any()):
            bad = index[(index < 0) | (index >= self.n)][0].item()
            raise ValueError(f"sample index must be in [0, {self.n}) for this Shapes(n={self.n}), got {bad}")
        return index

    def _render_chunked(self, index: Tensor, draw_object: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        parts = [render_shapes(index[start: start + self.chunk], seed=self.seed, split=self.split,
                               size=self.image_size, draw_object=draw_object, version=self.version)
                 for start in range(0, max(1, index.numel()), self.chunk)]
        return tuple(torch.cat(tensors) for tensors in zip(*parts))

    def _ensure_cached(self, index: Tensor) -> None:
        if self._images is None:
            size = self.image_size
            self._images = torch.empty(self.n, 3, size, size, dtype=torch.uint8)
            self._labels = torch.empty(self.n, dtype=torch.int64)
            self._masks = torch.empty(self.n, 1, size, size, dtype=torch.bool) if self.return_mask else None
            self._rendered_chunks = torch.zeros((self.n + self.chunk - 1) // self.chunk, dtype=torch.bool)
        needed = torch.unique(index.cpu() // self.chunk)
        for chunk in needed[~self._rendered_chunks[needed]].tolist():
            part = torch.arange(chunk * self.chunk, min(self.n, (chunk + 1) * self.chunk))
            images, labels, masks = render_shapes(part, seed=self.seed, split=self.split, size=self.image_size,
                                                  version=self.version)
            self._images[part], self._labels[part] = images, labels
            if self.return_mask:
                self._masks[part] = masks
            self._rendered_chunks[chunk] = True


@lru_cache(maxsize=16)
def _statistics(seed: int, size: int, version: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the first 1024 train images of `seed` at `size` px."""
    sample = torch.arange(_STATISTICS_SAMPLES)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    images = torch.cat([render_shapes(sample[s: s + chunk], seed=seed, split="train", size=size, version=version)[0]
                        for s in range(0, _STATISTICS_SAMPLES, chunk)])
    pixels = images.transpose(0, 1).reshape(3, -1).double() / 255.0
    return tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).tolist())
