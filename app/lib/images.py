"""Turning untrusted image files into RGB pixels, and pixels into the explorer's square working images.

:func:`decode_image` is the one place uploaded bytes are read. It refuses what it cannot open safely with an
:class:`ImageLoadError` whose message names the file and says what is allowed, and it normalises everything
it can open (16-bit, palette, transparency, CMYK, grey, EXIF rotation, multi-frame) to 8-bit RGB, noting
what it did in ``notes``. :func:`fit_square` centre-crops and resizes to the working size.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# Formats opened; others (EPS runs Ghostscript, PDF, vector and scientific formats) are refused.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM")  # JPEG covers MPO (phone photos)
MAX_PIXELS = 50_000_000
"""Largest image decoded (width × height), 50 megapixels — after JPEG's reduced-size decode (``draft``), which
brings a 50-megapixel photo under a megapixel."""
MAX_DECODED_BYTES = 64 * 2**20
"""Largest full-size decode of a format that cannot decode at reduced size (PNG, WebP, TIFF, …): 64 MiB of
pixels in the file's own mode (e.g. 22 megapixels of 8-bit RGB, 16 of RGBA). The app keeps 512 px; a small file
can claim far more (a 160 KB PNG can decode to 49 megapixels), and every concurrent decode holds its pixels."""
KEEP_SIDE = 512
"""Decoded images are shrunk so that their shorter side is at most this (2 × the largest working size)."""
TRANSPARENT_BACKGROUND = (255, 255, 255)
CONCURRENT_DECODES = 2
"""Uploads decoded at once on this server (one per core); others wait up to :data:`DECODE_WAIT_S`."""
DECODE_WAIT_S = 6.0
_DECODES = threading.BoundedSemaphore(CONCURRENT_DECODES)
_BYTES_PER_PIXEL = {"L": 1, "LA": 2, "La": 2, "RGB": 3, "RGBA": 4, "RGBa": 4, "I;16": 4, "I;16B": 4, "I;16L": 4,
                    "I;16N": 4, "I": 4, "F": 4,  # 16-bit: plus its numpy copy
                    # Modes without a box reduction are converted at full size: their pixels plus the RGB(A) copy.
                    "1": 4, "P": 5, "PA": 6, "CMYK": 4, "YCbCr": 6, "LAB": 6, "HSV": 6}


class ImageLoadError(ValueError):
    """A file that cannot be used as an image; the message is meant for the page."""


@dataclass(frozen=True)
class DecodedImage:
    """An image as 8-bit RGB, shorter side at most :data:`KEEP_SIDE`.

    Attributes:
        pixels: uint8 [H, W, 3].
        original_size: (width, height) of the file as decoded, after EXIF rotation.
        notes: what was done to it, in words ("16-bit grey scaled to 8 bits", …).
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()


def decode_image(data: bytes, name: str) -> DecodedImage:
    """Decode an image file's bytes; raises :class:`ImageLoadError` with a message for the page.

    Args:
        data: the file's contents.
        name: the file name, used in messages.
    """
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes).")
    if not _DECODES.acquire(timeout=DECODE_WAIT_S):
        raise ImageLoadError(f"{name} was not opened: the server is busy decoding other uploads; try again in a "
                             "moment.")
    try:
        return _decode(data, name)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageLoadError(f"{name} was refused as a possible decompression bomb: {error}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"{name} is not an image this app opens; allowed formats: {', '.join(ALLOWED_FORMATS)}."
        ) from None
    except Exception as error:  # noqa: BLE001 — the bytes are untrusted and PIL's decoders raise many types
        reason = "it is truncated" if "truncated" in str(error) else f"{type(error).__name__}: {error}"
        raise ImageLoadError(f"{name} could not be decoded ({reason}).") from None
    finally:
        _DECODES.release()


def _decode(data: bytes, name: str) -> DecodedImage:
    notes: list[str] = []
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageLoadError(
                f"{name} is {width} × {height} pixels ({width * height / 1e6:.0f} megapixels); this app opens images "
                f"up to {MAX_PIXELS / 1e6:.0f} megapixels (e.g. 7000 × 7000). Downscale it first."
            )
        if getattr(image, "n_frames", 1) > 1:
            notes.append(f"first of {image.n_frames} frames")
        image.draft(None, (KEEP_SIDE, KEEP_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that is enough
        decoded_bytes = image.size[0] * image.size[1] * _BYTES_PER_PIXEL.get(image.mode, 4)
        if decoded_bytes > MAX_DECODED_BYTES:
            raise ImageLoadError(
                f"{name} is {width} × {height} pixels of {image.mode} ({decoded_bytes / 2**20:.0f} MiB to decode); this "
                f"app decodes at most {MAX_DECODED_BYTES / 2**20:.0f} MiB (e.g. 4700 × 4700 RGB; JPEG photos up to "
                f"{MAX_PIXELS / 1e6:.0f} megapixels). Downscale it first."
            )
        image.load()
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        full_size = _upright_size((width, height), orientation)
        # Shrink in the file's own mode before any conversion, so no full-size copy in another mode is made.
        reduced = _reduce(image)
        upright = ImageOps.exif_transpose(reduced)
        if orientation not in (1, None):
            notes.append(f"turned upright using its EXIF orientation ({orientation})")
        pixels = _to_rgb(upright, notes)
    return DecodedImage(pixels=_shrink(pixels), original_size=full_size, notes=tuple(notes))


def _upright_size(size: tuple[int, int], orientation) -> tuple[int, int]:
    """(width, height) after EXIF rotation: orientations 5–8 swap the sides."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _reduce(image: Image.Image) -> Image.Image:
    """The image shrunk by an integer box factor so that its shorter side stays ≥ 2 × :data:`KEEP_SIDE`
    (the final Lanczos resize does the rest); the same image when no factor ≥ 2 fits or the mode has no
    box reduction (palette images keep their size until converted)."""
    factor = min(image.size) // (2 * KEEP_SIDE)
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):  # no box reduction in PIL: average in numpy, a band of rows at a time
        return Image.fromarray(_box_mean_uint16(np.asarray(image), factor))
    try:
        return image.reduce(factor)
    except ValueError:  # modes without reduce (P, 1): converted at full size, which the byte budget allows for
        return image


def _box_mean_uint16(values: np.ndarray, factor: int) -> np.ndarray:
    """uint16 [H // f, W // f]: means of f × f blocks, computed 64 output rows at a time (small temporaries)."""
    height, width = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    out = np.empty((height // factor, width // factor), dtype=np.uint16)
    for start in range(0, out.shape[0], 64):
        stop = min(start + 64, out.shape[0])
        band = values[start * factor: stop * factor, :width].astype(np.float32)
        out[start:stop] = np.round(band.reshape(stop - start, factor, width // factor, factor).mean((1, 3)))
    return out


def _to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    """uint8 [H, W, 3] from any PIL mode; notes what was converted."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and values.max(initial=0) > 255):
            values, depth = values / 65535.0, "16-bit"
        elif mode == "F" and values.max(initial=0) > 1:
            values, depth = values / values.max(), "floating-point"
        else:
            values, depth = (values / 255.0 if mode == "I" else values), "integer" if mode == "I" else "floating-point"
        notes.append(f"{depth} grey scaled to 8 bits")
        grey = np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparent parts shown on white")
        background = Image.new("RGBA", rgba.size, TRANSPARENT_BACKGROUND + (255,))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode != "RGB":
        described = {"P": "palette colours", "L": "grey", "1": "black-and-white", "CMYK": "CMYK"}.get(mode, mode)
        notes.append(f"{described} converted to RGB")
        try:
            image = image.convert("RGB")
        except ValueError as error:
            raise ImageLoadError(f"its colour mode {mode} cannot be converted to RGB ({error}).") from None
    return np.asarray(image)


def _shrink(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape[:2]
    scale = KEEP_SIDE / min(height, width)
    if scale >= 1:
        return np.ascontiguousarray(pixels)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def fit_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` × ``size`` (Lanczos); uint8 [size, size, 3]."""
    return np.asarray(ImageOps.fit(Image.fromarray(pixels), (size, size), Image.Resampling.LANCZOS))


def describe_fit(original_size: tuple[int, int], size: int) -> str:
    """How an image of ``original_size`` (width, height) became the ``size`` × ``size`` working image."""
    width, height = original_size
    side = min(width, height)
    steps = [f"{width} × {height}"]
    if width != height:
        steps.append(f"centre crop {side} × {side}")
    if side != size:
        steps.append(f"{'enlarged' if side < size else 'resized'} to {size} × {size}")
    return " → ".join(steps)


def to_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, 3] or [H, W] array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
