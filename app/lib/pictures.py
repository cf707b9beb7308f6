"""Masks and mixed images as small PNG data URIs in plain HTML, where nothing on them is interactive.

A page of 14 cards with plotly heatmaps kept the browser busy for seconds after every λ move; an ``<img>`` of a
few kilobytes is decoded and painted in milliseconds. Masks are coloured with the same Cividis scale as the
plotly figures (designed to read the same with colour-vision deficiencies and in grey) on the fixed range
0…1 — dark blue is B, the partner (mask 0), yellow is A, the own image (mask 1) — and carry a static colour
bar. A mask travels as an 8-bit palette PNG (one byte a pixel, lossless: ~2 ms to encode at 224 px, where RGB
PNG took 10); a mixed image as JPEG (0.3 ms where lossless PNG took 35 ms — the card's "Mixed image (PNG)"
download and the exported code are the lossless ones).
"""

from __future__ import annotations

import base64
import html
import io
from functools import lru_cache

import numpy as np
from PIL import Image
from plotly.colors import hex_to_rgb, sequential, unlabel_rgb

PIXELATED_BELOW = 150
"""Images smaller than this are enlarged without smoothing (a 32-pixel mask shows its pixels, not a blur)."""
PNG_LEVEL = 1
"""zlib level: masks and small photos compress about as well at 1 as at 6, several times faster."""


@lru_cache(maxsize=1)
def cividis_lut() -> np.ndarray:
    """uint8 [256, 3]: plotly's Cividis stops, interpolated linearly in RGB as plotly does for heatmaps."""
    stops = [hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for c in sequential.Cividis]
    positions = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(grid, positions, [s[i] for s in stops]) for i in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


@lru_cache(maxsize=1)
def heat_lut() -> np.ndarray:
    """uint8 [256, 3]: plotly's Inferno stops, for saliency and CAMs — never Cividis, which is the masks'."""
    stops = [hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for c in sequential.Inferno]
    positions = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(grid, positions, [s[i] for s in stops]) for i in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


def heat_png_uri(values: np.ndarray) -> str:
    """A [0, 1] map (saliency, CAM) as a palette PNG data URI whose palette is Inferno."""
    return palette_png_uri(values, heat_lut())


def palette_png_uri(values: np.ndarray, lut: np.ndarray) -> str:
    """A [0, 1] map as a palette PNG data URI: one byte a pixel, the palette ``lut`` [256, 3]."""
    image = Image.frombytes("P", (values.shape[1], values.shape[0]),
                            np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8).tobytes())
    image.putpalette(lut.reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_rgb(mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3]: a [0, 1] mask through Cividis."""
    index = np.rint(np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8)
    return cividis_lut()[index]


def mask_png_uri(mask: np.ndarray) -> str:
    """A [0, 1] mask as a palette PNG data URI whose palette is Cividis: decoded, it is :func:`mask_rgb`."""
    return palette_png_uri(mask, cividis_lut())


def jpeg_uri(pixels: np.ndarray, quality: int = 90) -> str:
    """A JPEG data URI of uint8 [H, W, 3] pixels (what the page shows of a mixed image)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def png_uri(pixels: np.ndarray) -> str:
    """A data URI of the lossless PNG of uint8 [H, W, 3] or [H, W] pixels."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def decode_uri(uri: str) -> np.ndarray:
    """The RGB pixels of a PNG or JPEG data URI (tests read cards back with this)."""
    data = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def colour_stops_css(lut: np.ndarray | None = None) -> str:
    """A CSS linear-gradient of the mask scale (or of ``lut``), left 0 (B) to right 1 (A)."""
    lut = (cividis_lut() if lut is None else lut)[np.linspace(0, 255, 11).round().astype(int)]
    stops = ", ".join(f"rgb({r},{g},{b}) {10 * i}%" for i, (r, g, b) in enumerate(lut))
    return f"linear-gradient(to right, {stops})"


def colour_bar_html() -> str:
    """The mask scale as a horizontal bar with its three labels under it, never rotated."""
    return (f'<div class="msda-bar" style="background:{colour_stops_css()}"></div>'
            '<div class="msda-ticks"><span>0 = B</span><span>0.5</span><span>1 = A</span></div>')


def heat_bar_html() -> str:
    """The saliency/CAM scale (Inferno) with its two ends: each map is scaled to its own maximum."""
    return (f'<div class="msda-bar" style="background:{colour_stops_css(heat_lut())}"></div>'
            '<div class="msda-ticks"><span>0</span><span>its maximum</span></div>')


def _img(uri: str, alt: str, side: int) -> str:
    style = ' style="image-rendering:pixelated"' if side < PIXELATED_BELOW else ""
    return f'<img src="{uri}" alt="{html.escape(alt)}"{style}>'


def panel_html(uri: str, title: str, side: int, *, colour_bar: bool = False, heat_bar: bool = False,
               alt: str | None = None) -> str:
    """One titled picture (``side`` is its size in pixels), optionally with the mask colour bar (or the
    saliency scale) under it."""
    bar = colour_bar_html() if colour_bar else heat_bar_html() if heat_bar else ""
    caption = f"<figcaption>{html.escape(title)}</figcaption>" if title else ""
    return f'<figure class="msda-panel">{caption}{_img(uri, alt or title, side)}{bar}</figure>'


def panels_html(panels: list[str], *, css_class: str = "msda-pics") -> str:
    """Panels in a row that wraps onto more rows when the column is narrow (each panel ≥ 150 px)."""
    return f'<div class="{css_class}">{"".join(panels)}</div>'


STYLE = """
.msda-pics { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0.25rem 0 0.5rem 0; }
.msda-pics .msda-panel { flex: 1 1 150px; min-width: 150px; max-width: 100%; margin: 0; }
.msda-stages { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 0.5rem; }
.msda-stages .msda-panel { margin: 0; min-width: 0; }
.msda-panel figcaption { font-size: 0.85rem; line-height: 1.2; margin-bottom: 0.15rem; overflow-wrap: anywhere; }
.msda-panel img { width: 100%; height: auto; display: block; border-radius: 2px; }
.msda-bar { height: 10px; margin-top: 4px; border-radius: 2px; }
.msda-ticks { display: flex; justify-content: space-between; font-size: 0.8rem; line-height: 1.2; }
.msda-drawn { margin: 0 0 0.6rem 0; color: #6b6f76; }
.msda-drawn-label { font-size: 0.9rem; } .msda-drawn-label span { font-size: 0.8rem; }
.msda-drawn-track { position: relative; height: 4px; background: #d5d7db; border-radius: 2px; margin: 8px 6px 4px 6px; }
.msda-drawn-dot { position: absolute; top: -5px; width: 14px; height: 14px; margin-left: -7px; border-radius: 50%;
  background: #a3a8b1; }
.msda-drawn-ends { display: flex; justify-content: space-between; font-size: 0.75rem; }
"""
"""CSS of the pictures, put on the page once (:func:`page_style` in Home)."""
