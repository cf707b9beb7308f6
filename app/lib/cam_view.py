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
POSITIONS_PER_AXIS = 4
"""The box is moved over a 4 × 4 grid of places for the study-like numbers (16 occluded copies per model)."""
READ_AS_OBJECT_IOU = 0.6
"""An occluder "resembles" a class when its silhouette's best IoU with the class reaches this (the bound the
shapes design keeps its clutter under, ``tests/test_shapes_design.py``)."""
READ_AS_OBJECT_SHARE = 0.5
"""…or, whatever the classes, when half the occluded copies or more are predicted as one new class."""


@dataclass
class PositionStudy:
    """The occlusion study (:func:`analysis.occlusion_study`) of one model on one image, with the occluder's box
    at every place of a grid: the page's study-like numbers, not one box's.

    Attributes:
        positions: how many places.
        latching, latching_clean, flip_rate, faithfulness, faithfulness_clean: the study's columns (means over
            the places; see ``analysis.STUDY_METRICS``).
        flips_to: (class, how many places) the occluded prediction flips to, most first.
        explained: the class the CAMs explain (the true class where known, else the clean prediction).
        warning: a sentence when the occluder can be read as an object, else None (see :func:`read_as_object`).
    """

    positions: int
    latching: float
    latching_clean: float
    flip_rate: float
    faithfulness: float
    faithfulness_clean: float
    flips_to: list[tuple[str, int]]
    explained: str
    warning: str | None


def grid_boxes(occluder: OccluderBox, size: int, per_axis: int = POSITIONS_PER_AXIS) -> torch.Tensor:
    """float32 [per_axis², 4]: the occluder's box (its size at `size` px) with its corner at evenly spaced places
    from the top-left to the bottom-right of the image."""
    box = occluder.pixels(size)[0]
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    xs = torch.linspace(0, size - width, per_axis).round()
    ys = torch.linspace(0, size - height, per_axis).round()
    y0, x0 = torch.meshgrid(ys, xs, indexing="ij")
    x0, y0 = x0.flatten(), y0.flatten()
    return torch.stack([x0, y0, x0 + width, y0 + height], dim=1)


def read_as_object(flips_to: list[tuple[str, int]], positions: int, kind: str, classes: list[str], size: int,
                   box_frac: float) -> str | None:
    """Whether the occluder can be read as an object, in one sentence, or None.

    Two rules, either suffices: (1) some place flips the prediction to the class whose silhouette is closest to
    the occluder's (:func:`analysis.occlusion.class_shapes.occluder_class_iou`, known for the shapes classes)
    with IoU ≥ :data:`READ_AS_OBJECT_IOU`; (2) half the places or more flip it to one class — the occluder
    itself then reads as that class, whatever it looks like.
    """
    from analysis.occlusion.class_shapes import occluder_class_iou

    if not flips_to:
        return None
    ious = occluder_class_iou(kind, classes, size=size, box_frac=box_frac)
    closest = max(ious, key=ious.get) if ious else None
    counts = dict(flips_to)
    if closest is not None and ious[closest] >= READ_AS_OBJECT_IOU and closest in counts:
        return (f"The occluder can be read as an object: with it the prediction turns to **{closest}** at "
                f"{counts[closest]} of {positions} places, and {closest} is the class whose silhouette is closest "
                f"to the occluder's (IoU {ious[closest]:.2f}). Latching here says more about the data than the "
                "model.")
    name, count = flips_to[0]
    if count >= READ_AS_OBJECT_SHARE * positions:
        return (f"The occluder can be read as an object: with it the prediction turns to **{name}** at {count} "
                f"of {positions} places, wherever it is.")
    return None


def position_study(loaded: LoadedModel, pixels: np.ndarray, occluder: OccluderBox, *, method: str,
                   true_index: int | None) -> PositionStudy:
    """:func:`analysis.occlusion_study` of the model on the image with the occluder's box at
    :data:`POSITIONS_PER_AXIS`² places, the CAMs explaining the true class (where known) or the clean
    prediction, and which classes the occluded predictions flip to."""
    from analysis import occlude, occlusion_study

    size = loaded.size
    image = as_batch(pixels)
    boxes = grid_boxes(occluder, size)
    with loaded.lock:
        with torch.no_grad():
            clean = int(loaded.model(image).argmax(1)[0])
            copies = occlude(image.expand(len(boxes), -1, -1, -1), boxes, kind=occluder.kind)
            predicted = loaded.model(copies).argmax(1)
        label = clean if true_index is None else true_index
        table = occlusion_study({loaded.name: loaded.model}, image, torch.tensor([label]), kinds=[occluder.kind],
                                boxes=boxes[None], cam_method=method, cam_target="label", batch_size=len(boxes))
    row = table.iloc[0]
    flipped = predicted[predicted != clean]
    names, counts = torch.unique(flipped, return_counts=True)
    flips_to = sorted(((loaded.classes[int(c)], int(n)) for c, n in zip(names, counts)), key=lambda item: -item[1])
    x0, y0, x1, y1 = occluder.pixels(size)[0].tolist()
    box_frac = (x1 - x0) * (y1 - y0) / (size * size)
    return PositionStudy(
        positions=len(boxes), latching=float(row["latching"]), latching_clean=float(row["latching_clean"]),
        flip_rate=float(row["flip_rate"]), faithfulness=float(row["faithfulness"]),
        faithfulness_clean=float(row["faithfulness_clean"]), flips_to=flips_to,
        explained=loaded.classes[label],
        warning=read_as_object(flips_to, len(boxes), occluder.kind, loaded.classes, size, box_frac))


@st.cache_data(max_entries=128, show_spinner=False)
def cached_position_study(model_key: str, image_key: str, occluder: OccluderBox, method: str,
                          true_index: int | None, _loaded: LoadedModel, _pixels: np.ndarray) -> PositionStudy | str:
    try:
        return position_study(_loaded, _pixels, occluder, method=method, true_index=true_index)
    except ValueError as error:
        return f"{_loaded.name}: {error}"


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


AUTOMATIC = "automatic"
"""The CAM layer menu's first entry: the family's rule (:func:`msda.models.cam_layer`)."""


def with_cam_layer(loaded: LoadedModel, layer: str) -> LoadedModel:
    """The same weights with the CAM layer pinned to the module named `layer`
    (:class:`msda.models.CamTarget`: nothing is copied, the lock is shared); its key names the layer, so what
    is cached for it is kept apart. Raises ValueError for a name that is not a module of the network."""
    from msda.models import CamTarget

    return LoadedModel(key=f"{loaded.key}:layer={layer}", name=loaded.name, source=loaded.source,
                       model=CamTarget(loaded.model, layer), meta={**loaded.meta, "cam_layer": layer},
                       warning=loaded.warning, lock=loaded.lock)


def choose_cam_layers(models: list[LoadedModel], prefix: str) -> list[LoadedModel]:
    """Sidebar widgets: one CAM layer menu per model, in an expander — the family's rule (timm names its last
    stage differently per family: ``layer4``, ``stages.3``, ``bn2``, ``blocks.11.norm1``, …) or any other
    candidate layer. A model without a rule gets its last candidate, and the page says so."""
    from msda.models import cam_layer_name, cam_layer_names

    chosen = []
    with st.expander("CAM layer per model", expanded=False):
        st.caption("Grad-CAM looks at the last convolutional stage of each model, found by a rule per family. "
                   "Pick another layer here when the rule fails or to compare stages (ViT and Swin layers are "
                   "reshaped to maps).")
        for index, loaded in enumerate(models):
            rule = cam_layer_name(loaded.model)
            names = cam_layer_names(loaded.model)
            options = ([f"{AUTOMATIC} ({rule})"] if rule else []) + names
            if not options:
                chosen.append(loaded)
                continue
            pick = st.selectbox(loaded.name, options, index=0 if rule else len(options) - 1,
                                key=f"{prefix}:layer:{loaded.key}")
            if not rule:
                st.caption(f"No rule knows {loaded.meta.get('arch', 'this architecture')}'s last stage: "
                           f"{pick} is used; pick the last layer with a spatial map.")
            chosen.append(loaded if pick.startswith(AUTOMATIC) else with_cam_layer(loaded, pick))
    return chosen
