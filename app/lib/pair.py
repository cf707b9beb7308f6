"""The image pair: for each of A and B an example or an upload, made square at the working size.

Image A is the sample whose mask is shown (its own image, label 0); B is its partner (label 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import streamlit as st
import torch

from . import examples
from .images import ALLOWED_FORMATS, DecodedImage, ImageLoadError, decode_image, describe_fit, fit_square

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "ppm"]
TINY_SIDE = 16
"""Images whose shorter side is below this get a warning: enlarged, they show blocks or a flat colour."""


@dataclass(frozen=True)
class PairImage:
    """One side of the pair at the working size.

    Attributes:
        slot: "A" or "B".
        pixels: uint8 [S, S, 3].
        source: where it came from, in words.
        class_name: the class name shown in labels (editable in the sidebar).
        history: how the file became the working image ("640 × 427 → centre crop … → 224 × 224"; notes).
        error: why an upload was refused (the example is used instead), or None.
        warning: a caution about the image (tiny, strongly enlarged), or None.
        photo: the scikit-image name of an example photo (exported code loads it by name), else None.
        shapes_class: the class of a shapes sample (what a shapes model's guidance is computed for), else None.
    """

    slot: str
    pixels: np.ndarray
    source: str
    class_name: str
    history: str
    error: str | None = None
    warning: str | None = None
    photo: str | None = None
    shapes_class: str | None = None


@dataclass(frozen=True)
class Pair:
    a: PairImage
    b: PairImage
    size: int

    @cached_property
    def key(self) -> str:
        """Identifies the pixels of both images (for caching what is computed from them)."""
        digest = hashlib.sha1(self.a.pixels.tobytes())
        digest.update(self.b.pixels.tobytes())
        return digest.hexdigest()[:20]

    @property
    def class_names(self) -> tuple[str, str]:
        return self.a.class_name, self.b.class_name

    @cached_property
    def images(self) -> torch.Tensor:
        """[2, 3, S, S] float32 in [0, 1]: the batch [A, B] (msda never modifies its inputs)."""
        stacked = torch.from_numpy(np.stack([self.a.pixels, self.b.pixels]))
        return stacked.permute(0, 3, 1, 2).float() / 255.0


# Cached loaders, shared by every page that shows an image.


@st.cache_data(max_entries=16, show_spinner=False)
def cached_decode_upload(data: bytes, name: str) -> tuple[DecodedImage | None, str | None]:
    try:
        return decode_image(data, name), None
    except ImageLoadError as error:
        return None, str(error)


@st.cache_data(max_entries=16, show_spinner=False)
def cached_photo(name: str) -> DecodedImage:
    return examples.load_photo(name)


@st.cache_data(max_entries=64, show_spinner="Rendering a shapes sample…")
def cached_shapes_sample(index: int, size: int) -> np.ndarray:
    return examples.render_shapes_sample(index, size)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_fit(pixels: np.ndarray, size: int) -> np.ndarray:
    return fit_square(pixels, size)


@st.cache_resource(show_spinner=False)
def example_menu() -> tuple[list[examples.Example], str | None]:
    """The example entries (photos, then shapes samples) and a note when the shapes dataset is unavailable."""
    menu = examples.photo_examples()
    try:
        labels, classes = examples.shapes_labels()
    except ImportError as error:
        return menu, f"Shapes samples are unavailable ({error})."
    return menu + examples.shapes_examples(labels, classes), None


def _example_image(slot: str, example: examples.Example, size: int) -> PairImage:
    kind, _, name = example.key.partition(":")
    if kind == "shapes":
        pixels = cached_shapes_sample(int(name), size)
        history = f"rendered at {size} × {size}"
    else:
        decoded = cached_photo(name)
        pixels = cached_fit(decoded.pixels, size)
        history = describe_fit(decoded.original_size, size)
        return PairImage(slot, pixels, example.label, example.class_name, history, photo=name)
    return PairImage(slot, pixels, example.label, example.class_name, history, shapes_class=example.class_name)


def _upload_image(slot: str, upload, size: int, fallback: PairImage) -> PairImage:
    decoded, error = cached_decode_upload(upload.getvalue(), upload.name)
    if decoded is None:
        return PairImage(slot, fallback.pixels, fallback.source, fallback.class_name, fallback.history,
                         error=f"Image {slot}: {error} Showing {fallback.source} instead.", photo=fallback.photo,
                         shapes_class=fallback.shapes_class)
    history = "; ".join((describe_fit(decoded.original_size, size),) + decoded.notes)
    side = min(decoded.original_size)
    warning = None
    if side < TINY_SIDE:
        warning = (f"Image {slot} ({upload.name}) is only {decoded.original_size[0]} × {decoded.original_size[1]} "
                   f"pixels; enlarged to {size} × {size} it shows as blocks or a flat colour.")
    stem = upload.name.rsplit(".", 1)[0] or upload.name
    return PairImage(slot, cached_fit(decoded.pixels, size), f"upload: {upload.name}", stem, history, warning=warning)


def choose_image(slot: str, default_index: int, size: int) -> PairImage:
    """Sidebar widgets for one side of the pair (example menu, uploader, class name); returns the image."""
    menu, menu_note = example_menu()
    example = st.selectbox(f"Image {slot}", menu, index=default_index, format_func=lambda e: e.label,
                           key=f"example_{slot.lower()}")
    upload = st.file_uploader(f"…or upload image {slot}", type=UPLOAD_TYPES, key=f"upload_{slot.lower()}",
                              help=f"{', '.join(ALLOWED_FORMATS)}; up to 20 MB and 50 megapixels.")
    if menu_note:
        st.caption(menu_note)
    image = _example_image(slot, example, size)
    source_id = example.key
    if upload is not None:
        image = _upload_image(slot, upload, size, image)
        if image.error is None:
            source_id = upload.file_id
            st.caption(f"Image {slot} is the upload; remove it (×) to use the example.")
    class_name = st.text_input(f"Class name of {slot}", value=image.class_name, key=f"class_{slot}_{source_id}",
                               max_chars=40).strip() or image.class_name
    return PairImage(slot, image.pixels, image.source, class_name, image.history, image.error, image.warning,
                     image.photo, image.shapes_class)
