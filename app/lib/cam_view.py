"""What the CAM & Occlusion page shows of one model: predictions, CAMs and the latching numbers, before and
after an occluder is drawn — all computed by :mod:`analysis`, cached per (model, image, settings).

The numbers are those of the occlusion study (:func:`analysis.occlusion_study`'s ``energy_ratio``, applied
to the two CAMs shown): the share of the CAM's energy inside the occluder's region (the pixels the occluder
changes, :func:`analysis.occluder_region`), and that share divided by the region's share of the image — the
*latching* score (1 = indifferent to the occluder, > 1 = drawn to it), for the occluded image's CAM and, as
the baseline, for the clean image's CAM over the same region. The CAM maps shown are :func:`analysis.cam`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from msda.data import SHAPE_CLASSES

from .checkpoints import LoadedModel

OCCLUDERS = {
    "solid": "solid box with a thick border",
    "translucent": "translucent box (50 % grey, no border)",
    "smooth": "soft-edged box (opacity ramps to 0 at its edges)",
    "frame": "frame only (the border, box left clear)",
}
TARGETS = {
    "predicted": "each image's own prediction",
    "clean": "the clean image's prediction, for both",
    "true": "the true class (shapes samples)",
}
"""Which class the CAMs explain (the study's ``cam_target``: "predicted", or "label" with the class given)."""


@dataclass(frozen=True)
class OccluderBox:
    """The occluder: its kind and its box as fractions of the image side (x0, y0, x1, y1), the same for every
    model whatever its input size."""

    kind: str
    fractions: tuple[float, float, float, float]

    def pixels(self, size: int) -> torch.Tensor:
        """float32 [1, 4]: the box in pixels of a `size` × `size` image (the box convention of
        :mod:`analysis.occlusion`): its side rounded to whole pixels (at least 1), then its corner."""
        x0, y0, x1, y1 = self.fractions
        width, height = max(1, round((x1 - x0) * size)), max(1, round((y1 - y0) * size))
        left, top = min(round(x0 * size), size - width), min(round(y0 * size), size - height)
        return torch.tensor([[left, top, left + width, top + height]], dtype=torch.float32)


def box_from_centre(kind: str, centre_x: float, centre_y: float, side: float) -> OccluderBox:
    """A square box of `side` (fraction of the image side) around the centre, shifted to stay inside."""
    x0 = min(max(centre_x - side / 2, 0.0), 1.0 - side)
    y0 = min(max(centre_y - side / 2, 0.0), 1.0 - side)
    return OccluderBox(kind, (x0, y0, x0 + side, y0 + side))


def random_box(kind: str, area: float, seed: int) -> OccluderBox:
    """A box of `area` (fraction of the image) at a random place inside: :func:`analysis.sample_boxes` on a
    1000-px grid, from a generator seeded with `seed`."""
    from analysis import sample_boxes

    grid = 1000
    box = sample_boxes(1, grid, grid, box_frac=area, generator=torch.Generator().manual_seed(seed))[0] / grid
    return OccluderBox(kind, tuple(float(v) for v in box))


@dataclass
class ModelView:
    """One model's column.

    Attributes:
        image, occluded: uint8 [S, S, 3] at the model's input size.
        cam_clean, cam_occluded: float32 [S, S] in [0, 1].
        box: the occluder box in pixels (x0, y0, x1, y1).
        top_clean, top_occluded: the top-k (class name, probability).
        predicted_clean, predicted_occluded: (class name, probability) of the argmax.
        explained_clean, explained_occluded: the class each CAM explains.
        share_clean, share_occluded: fraction of the CAM's energy inside the occluder's region (NaN when the
            CAM is zero everywhere).
        area: fraction of the image the occluder's region covers.
        latching_clean, latching: share / area for the clean and the occluded CAM.
        note: a remark for the column (a target that does not apply, …), or None.
    """

    image: np.ndarray
    occluded: np.ndarray
    cam_clean: np.ndarray
    cam_occluded: np.ndarray
    box: tuple[float, float, float, float]
    top_clean: list[tuple[str, float]]
    top_occluded: list[tuple[str, float]]
    predicted_clean: tuple[str, float]
    predicted_occluded: tuple[str, float]
    explained_clean: str
    explained_occluded: str
    share_clean: float
    share_occluded: float
    area: float
    latching_clean: float
    latching: float
    note: str | None = None


def as_batch(pixels: np.ndarray) -> torch.Tensor:
    """float32 [1, 3, S, S] in [0, 1] from uint8 [S, S, 3] (copied: cached arrays are read-only)."""
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].float() / 255.0


def as_pixels(image: torch.Tensor) -> np.ndarray:
    """uint8 [S, S, 3] from a [1, 3, S, S] image in [0, 1]."""
    return (image[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def true_class_index(loaded: LoadedModel, true_class: str | None) -> int | None:
    """The index of a shapes sample's class among the model's outputs, when the model was trained on shapes'
    classes; else None."""
    if true_class is None or loaded.classes != list(SHAPE_CLASSES):
        return None
    return loaded.classes.index(true_class)


def model_view(loaded: LoadedModel, pixels: np.ndarray, occluder: OccluderBox, *, method: str, target: str,
               true_index: int | None, k: int) -> ModelView:
    """Predictions, CAMs and latching numbers of one model on one image and occluder.

    Raises ValueError (from :mod:`analysis`) when the model cannot be explained (no known CAM layer, …).
    """
    from analysis import cam, occlude, occluder_region
    from analysis.occlusion.study import energy_ratio

    size = loaded.size
    image = as_batch(pixels)
    box = occluder.pixels(size)
    occluded = occlude(image, box, kind=occluder.kind)
    both = torch.cat([image, occluded])
    classes = loaded.classes
    note = None
    if target == "true" and true_index is None:
        note = ("The true class is only known for shapes samples and models trained on the shapes classes; "
                "the CAMs explain the clean prediction instead.")
        target = "clean"
    with loaded.lock:
        with torch.no_grad():
            probs = torch.softmax(loaded.model(both).float(), dim=1)
        predicted = probs.argmax(1)
        if target == "predicted":
            explained = predicted
        elif target == "clean":
            explained = predicted[:1].expand(2)
        else:
            explained = torch.tensor([true_index, true_index])
        maps = cam(loaded.model, both, method=method, targets=explained)
    # The occlusion study's latching numbers, from the CAMs above: the clean map over the occluder's region is
    # the baseline, the occluded map over it the latching score.
    region = occluder_region(box, size, size, kind=occluder.kind)[:, 0]
    latching_clean, latching = (float(v) for v in energy_ratio(maps, region.expand(2, -1, -1)))
    top = probs.topk(min(k, len(classes)), dim=1)
    tops = [[(classes[int(i)], float(p)) for p, i in zip(top.values[row], top.indices[row])] for row in range(2)]
    area = float(region.float().mean())
    if method == "eigencam":
        note = "Eigen-CAM is class-agnostic: it shows the layer's main activation pattern, whatever the class."
    return ModelView(
        image=pixels, occluded=as_pixels(occluded), cam_clean=maps[0].numpy(), cam_occluded=maps[1].numpy(),
        box=tuple(float(v) for v in box[0]), top_clean=tops[0], top_occluded=tops[1],
        predicted_clean=(classes[int(predicted[0])], float(probs[0, predicted[0]])),
        predicted_occluded=(classes[int(predicted[1])], float(probs[1, predicted[1]])),
        explained_clean=classes[int(explained[0])], explained_occluded=classes[int(explained[1])],
        share_clean=latching_clean * area, share_occluded=latching * area,
        area=area, latching_clean=latching_clean, latching=latching, note=note)


TOP_K = 5  # the most classes the page lists per image


@st.cache_data(max_entries=128, show_spinner=False)
def cached_model_view(model_key: str, image_key: str, occluder: OccluderBox, method: str, target: str,
                      true_index: int | None, _loaded: LoadedModel, _pixels: np.ndarray) -> ModelView | str:
    """:func:`model_view` with the top :data:`TOP_K` classes (the page shows the first k of them), cached; a
    refusal from :mod:`analysis` comes back as its message."""
    try:
        return model_view(_loaded, _pixels, occluder, method=method, target=target, true_index=true_index,
                          k=TOP_K)
    except ValueError as error:
        return f"{_loaded.name}: {error}"


@dataclass
class SensitivityView:
    """Occlusion sensitivity of one model: the map [S, S] (signed probability drop), the class it is for, and
    the window and stride in pixels."""

    heat: np.ndarray
    class_name: str
    window: int
    stride: int


def sensitivity_view(loaded: LoadedModel, pixels: np.ndarray, *, window: float, stride: float,
                     target_index: int | None) -> SensitivityView:
    """:func:`analysis.occlusion_sensitivity` with window and stride given as fractions of the image side."""
    from analysis import occlusion_sensitivity

    size = loaded.size
    window_px = min(size, max(1, round(window * size)))
    stride_px = max(1, round(stride * size))
    image = as_batch(pixels)
    with loaded.lock:
        if target_index is None:
            with torch.no_grad():
                target_index = int(loaded.model(image).argmax(1)[0])
        heat = occlusion_sensitivity(loaded.model, image, window=window_px, stride=stride_px, target=target_index)
    return SensitivityView(heat[0].numpy(), loaded.classes[target_index], window_px, stride_px)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_sensitivity(model_key: str, image_key: str, window: float, stride: float, target_index: int | None,
                       _loaded: LoadedModel, _pixels: np.ndarray) -> SensitivityView | str:
    try:
        return sensitivity_view(_loaded, _pixels, window=window, stride=stride, target_index=target_index)
    except ValueError as error:
        return f"{_loaded.name}: {error}"


def percent(value: float) -> str:
    return "undefined (the CAM is zero everywhere)" if math.isnan(value) else f"{value:.0%}"


def ratio(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"
