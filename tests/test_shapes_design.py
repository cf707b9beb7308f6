"""The shapes dataset's design holds (msda.data.shapes, version 2): objects cover enough of the image for a mixed
label to name something visible, and no clutter element can be read as a class shape."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from msda.data.shapes import DESIGNS, Shapes, render_clutter

# Floors under the measured figures (1 000 train images at 32 px: mean 0.247, 10th percentile 0.131, min 0.076).
COVERAGE_MEAN_FLOOR = 0.22
COVERAGE_P10_FLOOR = 0.12
# A clutter element "matches" a class when its IoU with the class silhouette, fitted at the element's own scale,
# reaches this. Measured with this file's fit: v2's strokes have median 0.29 and maximum 0.57 (a straight line
# against the arrow's shaft); a third of v1's elements, its disc and square blobs, reach 0.6 and up to 0.87;
# the closest pairs of v2 classes (triangle–trefoil, circle–ring) reach 0.77.
MATCH_IOU = 0.6

_GRID = 32          # local grid of a component, in pixels
_SPAN = 1.25        # half-width of the local grid, in units of the component's radius
_ANGLES = 24
_SCALES = (0.8, 0.9, 1.0, 1.1)


def object_coverage(version: int = 2, n: int = 1000) -> torch.Tensor:
    """The share of the image each of the first n train objects covers."""
    _, _, masks = Shapes("train", n=n, version=version).render(range(n))
    return masks.flatten(1).float().mean(1)


def test_objects_cover_enough_of_the_image():
    area = object_coverage()
    assert float(area.mean()) > COVERAGE_MEAN_FLOOR, float(area.mean())
    assert float(area.quantile(0.1)) > COVERAGE_P10_FLOOR, float(area.quantile(0.1))
    assert float(area.min()) > 0.06  # the smallest object, an arrow at the smallest scale, is still ~75 pixels


def _class_templates(version: int) -> torch.Tensor:
    """[classes · angles · scales, GRID²] bool silhouettes on the local grid (unit = the component's radius)."""
    u = (torch.arange(_GRID) + 0.5) * (2 * _SPAN / _GRID) - _SPAN
    x, y = u[None, :], u[:, None]
    templates = []
    for sdf in DESIGNS[version].sdfs:
        for k in range(_ANGLES):
            cos, sin = math.cos(2 * math.pi * k / _ANGLES), math.sin(2 * math.pi * k / _ANGLES)
            for scale in _SCALES:
                local_x, local_y = (x * cos + y * sin) / scale, (y * cos - x * sin) / scale
                templates.append((sdf(local_x, local_y) < 0).flatten())
    return torch.stack(templates)


def best_class_iou(version: int, n: int, size: int = 64) -> torch.Tensor:
    """For every clutter element of the first n train images: its best IoU with any class silhouette, centred
    on the element's centroid and scaled to its radius (farthest pixel), over rotations and ±20 % scale."""
    layers = render_clutter(torch.arange(n), seed=0, split="train", size=size, version=version).flatten(0, 1)
    components = layers[(layers > 0.5).flatten(1).sum(1) >= 6]  # elements with a few solid pixels
    solid = components > 0.5
    coords = (torch.arange(size) + 0.5) * (2.0 / size) - 1.0
    weight = solid.float()
    count = weight.sum((1, 2))
    centre_x = (weight * coords[None, None, :]).sum((1, 2)) / count
    centre_y = (weight * coords[None, :, None]).sum((1, 2)) / count
    distance = torch.sqrt((coords[None, None, :] - centre_x[:, None, None]) ** 2
                          + (coords[None, :, None] - centre_y[:, None, None]) ** 2)
    radius = (distance * weight).amax((1, 2))
    u = (torch.arange(_GRID) + 0.5) * (2 * _SPAN / _GRID) - _SPAN
    grid_x = centre_x[:, None, None] + radius[:, None, None] * u[None, None, :]
    grid_y = centre_y[:, None, None] + radius[:, None, None] * u[None, :, None]
    grid = torch.stack(torch.broadcast_tensors(grid_x, grid_y), dim=-1)
    local = F.grid_sample(components[:, None], grid, mode="bilinear", align_corners=False)[:, 0] > 0.5
    local = local.flatten(1).float()
    templates = _class_templates(version).float()
    intersection = local @ templates.T
    union = local.sum(1, keepdim=True) + templates.sum(1)[None] - intersection
    return (intersection / union).amax(1)


def test_no_clutter_element_matches_a_class_shape():
    best = best_class_iou(version=2, n=1000)
    assert best.numel() > 1000  # about two elements per image are checked
    assert float(best.max()) < MATCH_IOU, float(best.max())


def test_the_clutter_check_catches_the_first_designs_disc_and_square_blobs():
    # Version 1 drew small (cut-off) discs and squares — the circle and square classes; the check must see them.
    best = best_class_iou(version=1, n=300)
    assert float((best >= MATCH_IOU).float().mean()) > 0.2


def test_aspect_jitter_cannot_turn_a_circle_into_an_ellipse():
    low, high = DESIGNS[2].aspect_jitter
    # The object's axes are stretched by a and 1/a: a circle becomes at most a²:1, the 2:1 ellipse at least 2/a²:1.
    widest_circle = max(high * high, 1.0 / (low * low))
    roundest_ellipse = 2.0 / widest_circle
    assert widest_circle < 1.2 and roundest_ellipse > 1.6


def test_no_class_is_a_box_that_a_rectangle_reproduces():
    # The best IoU of every class silhouette with an axis-aligned rectangle of its own area and centre: a square
    # scores 1 at 0°, and v1's rhombus and square under rotation come close; every v2 class stays well below.
    u = (torch.arange(96) + 0.5) * (2.4 / 96) - 1.2
    x, y = u[None, :], u[:, None]

    def best_rectangle_iou(sdf) -> float:
        best = 0.0
        for k in range(12):
            angle = math.pi * k / 12
            cos, sin = math.cos(angle), math.sin(angle)
            shape = sdf(x * cos + y * sin, y * cos - x * sin) < 0
            rows, cols = shape.any(1).nonzero(), shape.any(0).nonzero()
            box = torch.zeros_like(shape)
            box[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1] = True  # the bounding box
            best = max(best, float((shape & box).sum() / (shape | box).sum()))
        return best

    v1 = dict(zip(DESIGNS[1].classes, DESIGNS[1].sdfs))
    assert best_rectangle_iou(v1["square"]) > 0.97
    for name, sdf in zip(DESIGNS[2].classes, DESIGNS[2].sdfs):
        assert best_rectangle_iou(sdf) < 0.85, name


def test_invisible_label_share_counts_labels_on_hidden_objects():
    from types import SimpleNamespace

    from msda.stats import invisible_label_share, object_visibility

    objects = torch.zeros(3, 1, 8, 8)
    objects[0, :, :, 0:2] = 1   # left edge
    objects[1, :, :, 6:8] = 1   # right edge
    objects[2, :, 3:5, 3:5] = 1  # centre
    partner = torch.tensor([1, 2, 0])
    mask = torch.ones(3, 1, 8, 8)
    mask[0, :, :, 0:4] = 0      # hides its own object (λ 0.5) and shows the partner's left half: nothing of it
    mask[1, :, :, 4:8] = 0      # hides its own object (λ 0.5), shows the right half of the partner's centre
    mask[2, :, 3:4, 3:5] = 0    # hides half its own object and shows the top half of the partner's centre
    lam = mask.mean((1, 2, 3))
    own, other = object_visibility(mask, objects, partner)
    assert own.tolist() == [0.0, 0.0, 0.5] and other.tolist() == [0.0, 0.5, 0.0]
    out = SimpleNamespace(mask=mask, lam=lam, partner=partner)
    # Samples 0 and 1 give 0.5 to invisible objects; sample 2's partner weight is 1/32 < 0.25.
    assert float(invisible_label_share(out, objects)) == pytest.approx(2 / 3)
    assert float(invisible_label_share(out, objects, weight=0.6)) == 0.0
    with pytest.raises(ValueError, match="object_masks must have the mask's shape"):
        invisible_label_share(out, objects[:2])
    with pytest.raises(ValueError, match=r"weight must be in \(0, 1\], got 0.0"):
        invisible_label_share(out, objects, weight=0.0)


def test_mixup_never_labels_an_invisible_object_and_cutmix_sometimes_does():
    import msda
    from msda.stats import invisible_label_share

    images, labels, masks = Shapes("test", n=256).render(range(256))
    shares = {}
    for method in ("mixup", "cutmix"):
        mixer = msda.Mixer(method, num_classes=10, generator=torch.Generator().manual_seed(0))
        shares[method] = float(invisible_label_share(mixer(images, labels), masks))
    assert shares["mixup"] == 0.0 and 0.0 < shares["cutmix"] < 0.25
