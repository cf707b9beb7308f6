"""The model-derived inputs of PuzzleMix (``saliency=``), SnapMix and Attentive CutMix (``cams=``) for the pair.

A :class:`msda.Mixer` never runs a model: the card builds the guidance first and passes it as a tensor. Two
sources (:data:`MODEL`, :data:`IMAGE`):

* a shipped checkpoint (default ``none``): :func:`msda.guidance.input_gradient_saliency` or
  :func:`msda.guidance.class_activation_maps` of the pair, each image for its own class. The shipped models are
  32-px shapes classifiers, so the pair is resized to the model's input size first (bilinear, antialiased) and
  the saliency upsampled back to the working size (bilinear); CAMs stay at the model's 8 × 8 feature map (the
  methods upsample or pool them). Run at 224 px instead, the same model classifies only 3 of 8 shapes samples
  correctly (all 8 at 32 px): its filters see a 224-px shape as texture, and its maps say nothing about the
  shape. On photos the shapes models know no class at all, so their maps are meaningless there;
* image-only: the fine-grained static saliency of msda's SaliencyMix (OpenCV's detector, ``fine_grained``)
  as the saliency, and the same map averaged onto a 7 × 7 grid as the CAMs — what a photo pair uses.

Computed once per (need, pair, checkpoint, working size) and cached; :class:`Guidance` carries the tensors for
the Mixer, the maps the card draws beside the mask and what the exported code needs to build them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st
import torch
import torch.nn.functional as F

import msda
from msda._saliency import fine_grained

from .checkpoints import LoadedModel, ShippedFile, checkpoint_folder, list_shipped, load_shipped
from .heavy import heavy_work
from .pair import Pair
from .params import remember, restore
from .pictures import heat_png_uri

MODEL, IMAGE = "model", "image"
DEFAULT_CHECKPOINT = "none"
"""The checkpoint guided cards start from: the model trained without mixing."""
CAM_GRID = 7
"""Image-only CAMs: the fine-grained map averaged onto 7 × 7 cells (Attentive CutMix's grid)."""
NAMES = {"saliency": "saliency", "cams": "CAM"}


@dataclass(frozen=True)
class Guidance:
    """What a guided card passes to the Mixer and shows.

    Attributes:
        need: "saliency" or "cams" (``MethodInfo.needs``).
        source: :data:`MODEL` or :data:`IMAGE`.
        tensors: ``{need: tensor}`` for the Mixer: saliency [2, S, S], CAMs [2, h, w].
        maps: float32 [2, S, S] in [0, 1], each image's map scaled to its maximum.
        uris: the two maps as Inferno palette PNG data URIs (what the card draws beside the mask).
        key: identifies the guidance (for caching the mix made with it).
        checkpoint: the checkpoint's file path (MODEL), else None.
        model_size: the model's input size (MODEL), else None.
        model_labels: the class index each image's map is for, in the model's classes (MODEL), else None.
        classes: the model's class names of ``model_labels`` (MODEL), else ().
    """

    need: str
    source: str
    tensors: dict[str, torch.Tensor]
    maps: np.ndarray
    uris: tuple[str, str]
    key: str
    checkpoint: str | None = None
    model_size: int | None = None
    model_labels: tuple[int, int] | None = None
    classes: tuple[str, ...] = field(default_factory=tuple)


def need_of(method: str) -> str | None:
    """The model-derived input ``method`` needs from this module ("saliency" or "cams"), else None."""
    needs = [need for need in msda.methods_info()[method].needs if need in NAMES]
    return needs[0] if needs else None


def _display(maps: torch.Tensor, size: int) -> tuple[np.ndarray, tuple[str, str]]:
    """[2, h, w] → (float32 [2, S, S] in [0, 1], their PNG data URIs): upsampled (bilinear) and scaled to each
    map's maximum."""
    maps = maps.float()
    if maps.shape[-1] != size:
        maps = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    maps = maps - maps.flatten(1).min(1).values[:, None, None]
    shown = (maps / maps.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]).numpy()
    return shown, (heat_png_uri(shown[0]), heat_png_uri(shown[1]))


def image_guidance_tensor(need: str, images: torch.Tensor) -> torch.Tensor:
    """Image-only guidance of [B, 3, S, S] images: the fine-grained map [B, S, S], or for CAMs that map
    averaged onto 7 × 7 cells [B, 7, 7]. (The exported code writes the same two lines.)"""
    with heavy_work():
        saliency = fine_grained(images)
    if need == "saliency":
        return saliency
    return F.adaptive_avg_pool2d(saliency[:, None], CAM_GRID)[:, 0]


def image_guidance(need: str, images: torch.Tensor, pair_key: str) -> Guidance:
    tensor = image_guidance_tensor(need, images)
    return Guidance(need, IMAGE, {need: tensor}, *_display(tensor, images.shape[-1]), f"{IMAGE}:{need}:{pair_key}")


@st.cache_data(max_entries=64, show_spinner=False)
def cached_image_guidance(need: str, pair_key: str, _images: torch.Tensor) -> Guidance:
    return image_guidance(need, _images, pair_key)


def model_input(images: torch.Tensor, model_size: int) -> torch.Tensor:
    """The pair at the model's input size (bilinear, antialiased): the shipped models are 32-px classifiers."""
    if images.shape[-1] == model_size:
        return images
    return F.interpolate(images, size=(model_size, model_size), mode="bilinear", antialias=True, align_corners=False)


def model_guidance_tensor(need: str, model, images: torch.Tensor, labels: torch.Tensor, model_size: int
                          ) -> torch.Tensor:
    """The model's guidance for [B, 3, S, S] images run at ``model_size``: the input-gradient saliency upsampled
    back to S × S (bilinear), or the CAMs at the model's feature-map size."""
    small = model_input(images, model_size)
    if need == "cams":
        return msda.guidance.class_activation_maps(model, small, labels)
    saliency = msda.guidance.input_gradient_saliency(model, small, labels)
    size = images.shape[-1]
    if saliency.shape[-1] == size:
        return saliency
    return F.interpolate(saliency[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def model_labels(model, classes: list[str], shapes_classes: tuple[str | None, str | None],
                 images_small: torch.Tensor) -> tuple[int, int]:
    """The class each image's map is for: a shapes sample's own class when the model knows it by name,
    otherwise the class the model predicts (a photo has no class the model knows)."""
    with torch.no_grad():
        predicted = model(images_small).argmax(1).tolist()
    labels = [classes.index(known) if known in classes else int(guess)
              for known, guess in zip(shapes_classes, predicted)]
    return labels[0], labels[1]


@st.cache_data(max_entries=64, show_spinner="Computing the model's guidance…")
def _cached_model_guidance(need: str, pair_key: str, model_key: str, path: str, size: int,
                           shapes_classes: tuple[str | None, str | None], _loaded: LoadedModel,
                           _images: torch.Tensor) -> Guidance:
    with _loaded.lock:
        labels = model_labels(_loaded.model, _loaded.classes, shapes_classes, model_input(_images, _loaded.size))
        tensor = model_guidance_tensor(need, _loaded.model, _images, torch.tensor(labels), _loaded.size)
    return Guidance(need, MODEL, {need: tensor}, *_display(tensor, size), f"{MODEL}:{need}:{model_key}:{pair_key}",
                    checkpoint=path, model_size=_loaded.size, model_labels=labels,
                    classes=tuple(_loaded.classes[index] for index in labels))


def model_guidance(need: str, loaded: LoadedModel, pair: Pair, path: Path) -> Guidance:
    """The checkpoint's guidance for the pair (cached per need, pair, checkpoint and working size)."""
    return _cached_model_guidance(need, pair.key, loaded.key, str(path), pair.size,
                                  (pair.a.shapes_class, pair.b.shapes_class), loaded, pair.images)


def shipped_menu() -> tuple[list[ShippedFile], int]:
    """The shipped checkpoints and the index of the default (the ``none`` model, else the first)."""
    shipped, _ = list_shipped(checkpoint_folder())
    index = next((i for i, entry in enumerate(shipped)
                  if (entry.manifest.get("method") or entry.path.stem) == DEFAULT_CHECKPOINT
                  and entry.path.stem == DEFAULT_CHECKPOINT), None)
    if index is None:
        index = next((i for i, entry in enumerate(shipped) if entry.path.stem == DEFAULT_CHECKPOINT), 0)
    return shipped, index


def is_shapes_pair(pair: Pair) -> bool:
    return pair.a.shapes_class is not None and pair.b.shapes_class is not None


def guidance_controls(method: str, pair: Pair) -> tuple[Guidance | None, list[str]]:
    """The card's guidance widgets (checkpoint selector; on a photo pair, the choice of the checkpoint's maps
    over the image-only ones) and the guidance they choose, with the notes the card shows. None (with a
    note) when no guidance can be made."""
    need = need_of(method)
    if need is None:
        return None, []
    notes: list[str] = []
    shipped, default = shipped_menu()
    labels = [entry.label for entry in shipped]
    what = NAMES[need]
    key = f"{method}:guidance:checkpoint"
    if restore(key) and st.session_state[key] not in labels:
        del st.session_state[key]  # the folder changed
    chosen = st.selectbox(f"{what} from checkpoint", labels,
                          **({} if key in st.session_state else {"index": default if labels else None}),
                          key=key, placeholder="no checkpoint in the folder",
                          help=f"The shipped checkpoint whose {what} guides this mix (files in {checkpoint_folder()}).")
    remember(key)
    shapes = is_shapes_pair(pair)
    use_model = shapes
    if not shapes:
        key = f"{method}:guidance:on_photos"
        use_model = st.toggle(f"use the checkpoint's {what} on this pair", **({} if restore(key) else {"value": False}),
                              key=key, help="The shipped models are 32-px shapes classifiers: on photos their maps "
                                            "are meaningless. Switch on to see them anyway.")
        remember(key)
        image_only = ("msda's fine-grained saliency (SaliencyMix's detector)"
                      + (" averaged onto 7 × 7 cells" if need == "cams" else ""))
        notes.append(f"The shipped checkpoints are 32-px shapes classifiers: on photos their {what} is meaningless."
                     + (" Shown anyway, as asked." if use_model else
                        f" This card's {what} is image-only: {image_only}. Choose two shapes samples as A and B "
                        "for a model's guidance."))
    if not use_model:
        return cached_image_guidance(need, pair.key, pair.images), notes
    entry = next((e for e in shipped if e.label == chosen), None)
    loaded = load_shipped(entry) if entry is not None else None
    if not isinstance(loaded, LoadedModel):
        reason = loaded.message if loaded is not None else "No checkpoint in the folder."
        notes.append(f"{reason} This card's {what} is image-only.")
        return cached_image_guidance(need, pair.key, pair.images), notes
    try:
        guidance = model_guidance(need, loaded, pair, entry.path)
    except ValueError as error:
        notes.append(f"{entry.path.name} gives no {what} ({error}); this card's {what} is image-only.")
        return cached_image_guidance(need, pair.key, pair.images), notes
    notes.append(f"{what} of the checkpoint **{entry.path.stem}** on the pair resized to {loaded.size} px, each image "
                 f"for its class ({' / '.join(guidance.classes)}).")
    return guidance, notes
