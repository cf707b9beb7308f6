"""The one image the CAM & Occlusion page shows to every model: an example photo, a shapes sample or an upload.

Models may take different input sizes, so the choice is kept as a source and rendered per model: photos and
uploads are centre-cropped and resized to the model's ``input_size`` (the Mask Explorer's loader and cache,
:mod:`.pair`), shapes samples are rendered at that size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from . import examples
from .images import ALLOWED_FORMATS, DecodedImage, describe_fit, fit_square
from .pair import TINY_SIDE, UPLOAD_TYPES, cached_decode_upload, cached_fit, cached_photo, cached_shapes_sample, example_menu

SHAPES_MIN_SIZE = 16
"""The shapes dataset renders at 16 px and more; smaller inputs get the 16-px sample resized."""
DEFAULT_EXAMPLE = "shapes:0"


@dataclass(frozen=True)
class ProbeImage:
    """The chosen image, before it is fitted to a model.

    Attributes:
        key: identifies the pixels (for caching what is computed from them).
        source: where it came from, in words.
        true_class: the shapes class name of a shapes sample, else None.
        shapes_index: the shapes sample's index, or None.
        decoded: the photo or upload as 8-bit RGB (None for shapes samples).
        error: why an upload was refused (the example is used instead), or None.
        notes: what the loader did to an upload (EXIF rotation, 16-bit, …).
    """

    key: str
    source: str
    true_class: str | None
    shapes_index: int | None = None
    decoded: DecodedImage | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        """A caution about a tiny upload (enlarged, it shows as blocks or a flat colour), or None."""
        if self.decoded is None or min(self.decoded.original_size) >= TINY_SIDE:
            return None
        width, height = self.decoded.original_size
        return (f"{self.source.removeprefix('upload: ')} is only {width} × {height} pixels; enlarged to a model's "
                "input size it shows as blocks or a flat colour.")

    def pixels(self, size: int) -> np.ndarray:
        """uint8 [size, size, 3]: the image as a model of input size `size` sees it."""
        if self.shapes_index is not None:
            rendered = cached_shapes_sample(self.shapes_index, max(size, SHAPES_MIN_SIZE))
            return rendered if size >= SHAPES_MIN_SIZE else fit_square(rendered, size)
        return cached_fit(self.decoded.pixels, size)

    def history(self, size: int) -> str:
        if self.shapes_index is not None:
            return f"rendered at {size} × {size}"
        return "; ".join((describe_fit(self.decoded.original_size, size),) + self.notes)


def _from_example(example: examples.Example) -> ProbeImage:
    kind, _, name = example.key.partition(":")
    if kind == "shapes":
        return ProbeImage(example.key, example.label, example.class_name, shapes_index=int(name))
    return ProbeImage(example.key, example.label, None, decoded=cached_photo(name))


def choose_probe_image(prefix: str) -> ProbeImage:
    """Sidebar widgets (example menu and uploader); returns the image every model is shown."""
    menu, menu_note = example_menu()
    keys = [example.key for example in menu]
    example = st.selectbox("Image", menu, index=keys.index(DEFAULT_EXAMPLE) if DEFAULT_EXAMPLE in keys else 0,
                           format_func=lambda e: e.label, key=f"{prefix}:example",
                           help="Shapes samples come from the bundled dataset's test split, rendered at each "
                                "model's input size; photos are centre-cropped and resized to it.")
    upload = st.file_uploader("…or upload an image", type=UPLOAD_TYPES, key=f"{prefix}:upload_image",
                              help=f"{', '.join(ALLOWED_FORMATS)}; up to 20 MB and 50 megapixels.")
    if menu_note:
        st.caption(menu_note)
    image = _from_example(example)
    if upload is None:
        return image
    data = upload.getvalue()
    decoded, error = cached_decode_upload(data, upload.name)
    if decoded is None:
        return ProbeImage(image.key, image.source, image.true_class, image.shapes_index, image.decoded,
                          error=f"{error} Showing {image.source} instead.")
    st.caption("The upload is used; remove it (×) to use the example.")
    return ProbeImage("upload:" + hashlib.sha1(data).hexdigest()[:20], f"upload: {upload.name}", None,
                      decoded=decoded, notes=decoded.notes)
