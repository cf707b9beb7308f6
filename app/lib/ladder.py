"""λ ladders for the grid: every card's mix at λ = 0, 0.05, …, 1, sent once so the grid's λ slider scrubs every
card in the browser (:mod:`.grid_script`) without a round trip to the server.

A ladder is the focus view's λ sweep (:func:`.sweeps.lam_sweep`: one batched msda call per method that
replays the card's draws, so the only thing that moves is λ), encoded small: masks as 1-bit PNGs when binary
(CutMix, GridMix, …) and 8-bit palette PNGs otherwise, mixed images as JPEG at quality 70, identical frames
sent once. For each frame the card's "λ requested → effective" line and label weights come with it, written by
the same code as the card's (:func:`.cards.lam_line`). The ladder depends on the pair, the seed, α, the
method's parameters and its guidance — not on λ — so a λ move reuses it (cached here, and Streamlit's message
cache does not send an unchanged element again).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

from .pictures import PNG_LEVEL, cividis_lut, jpeg_uri, mask_png_uri
from .sweeps import LAM_STEPS, lam_sweep

LADDER_JPEG_QUALITY = 60
"""The ladder's mixed images: JPEG at 60, ~9 kB at 224 px where the card's own JPEG at 90 is ~14 kB; the card's
picture replaces the frame when the slider is released. (Lossy WebP is smaller at the same quality but costs 6 ms a
frame to encode where JPEG costs 0.3: 1.3 s more on every new seed.)"""


def mask_uri(mask: np.ndarray) -> str:
    """A [0, 1] mask through Cividis as the smallest exact PNG: 1 bit a pixel when it is binary (~250 bytes at
    224 px), else an 8-bit palette PNG (:func:`.pictures.mask_png_uri`). Decoded, it is ``mask_rgb(mask)``."""
    values = np.unique(mask)
    if values.size <= 2 and np.isin(values, (0.0, 1.0)).all():
        image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), (mask > 0.5).astype(np.uint8).tobytes())
        lut = cividis_lut()
        image.putpalette(np.concatenate([lut[0], lut[255]]).tolist())
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", bits=1, compress_level=PNG_LEVEL)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return mask_png_uri(mask)


def mixed_uri(pixels: np.ndarray) -> str:
    return jpeg_uri(pixels, quality=LADDER_JPEG_QUALITY)


def _html(markdown_line: str) -> str:
    """A card line's markdown (bold only) as HTML."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(markdown_line, quote=False))


def ladder_payload(values: np.ndarray, masks: np.ndarray, mixed: np.ndarray, lines: list[str],
                   labels: list[tuple[float, float]], names: tuple[str, str]) -> dict[str, Any]:
    """The JSON a card's ladder element carries: unique mask and mixed-image URIs, and per frame (λ, mask
    index, mixed index, λ line HTML, label line HTML, A's label share)."""
    mask_uris: list[str] = []
    mixed_uris: list[str] = []
    seen: dict[bytes, int] = {}
    frames = []
    for value, mask, pixels, line, label in zip(values, masks, mixed, lines, labels):
        key = b"m" + mask.tobytes()
        if key not in seen:
            seen[key] = len(mask_uris)
            mask_uris.append(mask_uri(mask))
        mask_index = seen[key]
        key = b"x" + pixels.tobytes()
        if key not in seen:
            seen[key] = len(mixed_uris)
            mixed_uris.append(mixed_uri(pixels))
        label_line = (f"label: <strong>{html.escape(names[0])} {label[0]:.2f}</strong> / "
                      f"<strong>{html.escape(names[1])} {label[1]:.2f}</strong>")
        frames.append([round(float(value), 4), mask_index, seen[key], _html(line), label_line,
                       round(float(label[0]), 4)])
    return {"masks": mask_uris, "mixed": mixed_uris, "frames": frames}


@st.cache_data(max_entries=128, show_spinner=False)
def cached_ladder_html(method: str, pair_key: str, alpha: float, seed: int, frozen: tuple, guidance_key: str | None,
                       names: tuple[str, str], partner: int, _line, _images: torch.Tensor, _replay: dict) -> str:
    """The hidden element that carries a card's ladder (see the module docstring); ``_line(requested,
    effective, area)`` writes the card's λ line for a frame."""
    sweep = lam_sweep(method, _images, _replay, alpha=alpha, params=dict(frozen), steps=LAM_STEPS)
    areas = sweep.masks.reshape(len(sweep.values), -1).mean(1)
    lines = [_line(float(v), float(e), float(a)) for v, e, a in zip(sweep.values, sweep.lams, areas)]
    # the label is mixed only when A was mixed with B (partner 1); a self-mix keeps A's label at every λ
    labels = [(float(e), 1.0 - float(e)) if partner == 1 else (1.0, 0.0) for e in sweep.lams]
    payload = ladder_payload(sweep.values, sweep.masks, sweep.mixed, lines, labels, names)
    # single-quoted attribute: JSON's double quotes stay as they are (escaped, they cost 6 bytes each)
    data = html.escape(json.dumps(payload, separators=(",", ":")), quote=False).replace("'", "&#39;")
    key = ladder_key(method, pair_key, alpha, seed, frozen, guidance_key)
    return f"<div class='msda-ladder' data-card='{method}' data-key='{key}' data-ladder='{data}'></div>"


def ladder_key(method: str, pair_key: str, alpha: float, seed: int, frozen: tuple, guidance_key: str | None) -> str:
    """Names the card a ladder was made for: the card's λ line carries it, and the browser only scrubs a card
    with the ladder of the same name (a card redrawn with new draws waits for its new ladder)."""
    return hashlib.sha1(repr((method, pair_key, alpha, seed, frozen, guidance_key)).encode()).hexdigest()[:16]


LADDER_JOBS = "ladder-jobs"
"""Session-state list of the ladders a full run still has to fill in (see :func:`defer`)."""


def defer(job) -> None:
    """Run ``job`` (filling a card's ladder placeholder) after every card is drawn, so the page shows its cards
    before the ladders are computed; a card's own rerun (a fragment) runs it at once."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and ctx.fragment_ids_this_run:
        job()
    else:
        st.session_state.setdefault(LADDER_JOBS, []).append(job)


def start_run() -> None:
    st.session_state[LADDER_JOBS] = []


def run_deferred() -> None:
    """Fill every ladder placeholder of this run (call it after the grid is drawn)."""
    for job in st.session_state.pop(LADDER_JOBS, []):
        job()


def ladder_bytes(element: str) -> int:
    """Bytes a ladder element puts on the wire (its HTML, as sent)."""
    return len(element.encode("utf-8"))
