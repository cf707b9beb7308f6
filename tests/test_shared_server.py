"""One server for a whole class: regression tests named after the shared-server faults they pin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from PIL import Image

from app.lib import images
from app.lib.images import ImageLoadError, decode_image

ROOT = Path(__file__).resolve().parents[1]

MEASURE = textwrap.dedent("""
    import resource, sys, time
    sys.path.insert(0, {root!r})
    from app.lib.images import ImageLoadError, decode_image
    data = open(sys.argv[1], "rb").read()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        outcome = "decoded %dx%d" % decode_image(data, "bomb.png").pixels.shape[:2]
    except ImageLoadError as error:
        outcome = "refused: " + str(error)
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(outcome, "|", extra, "|", time.perf_counter() - start)
""")


@pytest.mark.parametrize("mode, side, outcome", [
    ("RGB", 7000, "refused"),  # 49 megapixels of RGB from a ~140 KB file
    ("RGB", 4700, "decoded"),
    ("P", 3500, "decoded"),
    ("I;16", 4000, "decoded"),
])
def test_decompression_bomb_png_is_refused_or_decoded_within_memory(mode, side, outcome, tmp_path):
    path = tmp_path / "bomb.png"
    Image.new(mode, (side, side)).save(path)
    assert path.stat().st_size < 400_000  # a small file that claims many pixels
    script = tmp_path / "measure.py"
    script.write_text(MEASURE.format(root=str(ROOT)))
    result = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    text, extra_mb, seconds = result.stdout.strip().split(" | ")
    assert text.startswith(outcome), text
    assert float(extra_mb) < 300, f"{mode} {side}²: {extra_mb} MB of extra peak memory"
    assert float(seconds) < 8
    if outcome == "refused":
        assert "\n" not in text and "Downscale it first" in text


def test_concurrent_decodes_are_bounded(monkeypatch):
    monkeypatch.setattr(images, "_DECODES", threading.BoundedSemaphore(1))
    monkeypatch.setattr(images, "DECODE_WAIT_S", 0.05)
    images._DECODES.acquire()  # another session's decode in progress
    try:
        with pytest.raises(ImageLoadError, match="the server is busy decoding other uploads"):
            decode_image(b"\x89PNG not really", "waiting.png")
    finally:
        images._DECODES.release()
    with pytest.raises(ImageLoadError, match="waiting.png is not an image"):
        decode_image(b"\x89PNG not really", "waiting.png")  # the slot is free again, and freed after a failure
    with pytest.raises(ImageLoadError, match="waiting.png is not an image"):
        decode_image(b"\x89PNG not really", "waiting.png")
