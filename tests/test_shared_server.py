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


# ---------------------------------------------------------------- files a user controls (analysis.untrusted)

from analysis.untrusted import UntrustedFileError, csv_cell, csv_safe_frame, plotly_text, read_regular_file  # noqa: E402


def test_fifo_is_refused_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    done = {}
    reader = threading.Thread(target=lambda: done.setdefault("error", _refusal(fifo)), daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "is a FIFO; only regular files are read" in done["error"]


def _refusal(path):
    try:
        read_regular_file(path, max_bytes=1 << 20, what="manifest")
    except UntrustedFileError as error:
        return str(error)
    return "read"


def test_sparse_huge_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "manifest.json"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse: nothing on disk
    with pytest.raises(UntrustedFileError, match=r"manifest .*manifest.json is 1,073,741,824 bytes; at most"):
        read_regular_file(big, max_bytes=4 << 20, what="manifest")


def test_symlinks_are_followed_to_a_regular_file_only(tmp_path):
    import os
    (tmp_path / "real.json").write_text("{}")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    assert read_regular_file(tmp_path / "link.json", max_bytes=10) == b"{}"
    os.symlink(tmp_path, tmp_path / "folder.json")
    with pytest.raises(UntrustedFileError, match="is a folder"):
        read_regular_file(tmp_path / "folder.json", max_bytes=10)
    with pytest.raises(UntrustedFileError, match="does not exist"):
        read_regular_file(tmp_path / "missing.json", max_bytes=10)


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_named_checkpoint_gives_a_neutralised_csv_cell(text):
    assert csv_cell(text) == "'" + text
    import pandas as pd
    frame = csv_safe_frame(pd.DataFrame({"model": [text, "cutmix"], "accuracy": [-0.5, 0.9]}))
    assert frame["model"].tolist() == ["'" + text, "cutmix"]
    assert frame["accuracy"].tolist() == [-0.5, 0.9]  # numbers stay numbers, negative ones included


def test_plotly_label_from_hostile_metadata_is_escaped():
    assert plotly_text('<a href="http://x">cat</a> & <b>dog</b>') == \
        '&lt;a href="http://x"&gt;cat&lt;/a&gt; &amp; &lt;b&gt;dog&lt;/b&gt;'


# ---------------------------------------------------------------- the checkpoint folder (app.lib.checkpoints)

@pytest.mark.parametrize("kind, page", [("fifo", "1_CAM_and_Occlusion.py"), ("sparse", "2_Robustness.py")])
def test_fifo_or_huge_manifest_via_apptest_must_finish(monkeypatch, tmp_path, kind, page):
    import os

    from streamlit.testing.v1 import AppTest

    from app.lib.checkpoints import ENV_VAR

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "cutmix.safetensors").write_bytes((ROOT / "checkpoints" / "cutmix.safetensors").read_bytes())
    if kind == "fifo":
        os.mkfifo(folder / "manifest.json")
    else:
        with open(folder / "manifest.json", "wb") as f:
            f.truncate(1 << 30)
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(ROOT / "app" / "pages" / page), default_timeout=120)
    at.run()  # a FIFO read would block here forever
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(e.value) for e in [*at.warning, *at.info, *at.caption, *at.markdown])
    assert "manifest.json is a FIFO" in shown if kind == "fifo" else "1,073,741,824 bytes" in shown


def test_symlinks_out_of_the_checkpoint_folder_are_not_read(tmp_path):
    import os

    from app.lib.checkpoints import list_shipped, load_manifest

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shipped = (ROOT / "checkpoints" / "cutmix.safetensors").read_bytes()
    (folder / "cutmix.safetensors").write_bytes(shipped)
    private = tmp_path / "private"  # readable by the server's account, not meant for the folder's users
    private.mkdir()
    (private / "thesis.safetensors").write_bytes(shipped)
    (private / "manifest.json").write_text('{"checkpoints": []}')
    os.symlink(folder / "cutmix.safetensors", folder / "inside.safetensors")
    os.symlink(private / "thesis.safetensors", folder / "outside.safetensors")
    os.symlink("../private/thesis.safetensors", folder / "relative.safetensors")
    files, note = list_shipped(folder)
    assert [entry.path.name for entry in files] == ["cutmix.safetensors", "inside.safetensors"]
    assert "Not listed: outside.safetensors, relative.safetensors — symbolic links leading outside" in note
    os.symlink(private / "manifest.json", folder / "manifest.json")
    data, note = load_manifest(folder)
    assert data is None and "is a symbolic link that leads outside" in note and "\n" not in note
    os.symlink(folder, tmp_path / "linked")  # the folder itself may be a link ($MSDA_CHECKPOINTS on a data drive)
    files, _ = list_shipped(tmp_path / "linked")
    assert [entry.path.name for entry in files] == ["cutmix.safetensors", "inside.safetensors"]


def test_plotly_labels_from_hostile_checkpoint_metadata_are_escaped():
    from analysis.robustness.figures import fgsm_figure
    from app.lib.model_figures import topk_spec

    hostile = '<a href="http://x">cat</a>'
    spec = topk_spec([(hostile, 0.9), ("dog", 0.1)], [("dog", 0.6), (hostile, 0.4)])
    assert all(hostile not in trace["y"] and "&lt;a href" in trace["y"][0] for trace in spec["data"])

    class Curve:
        eps, accuracy = [0.0, 1 / 255], __import__("torch").tensor([0.9, 0.5])

    figure = fgsm_figure({"<b>model</b>": Curve()})
    assert figure.data[0].name == "&lt;b&gt;model&lt;/b&gt;" and "<b>" not in figure.data[0].hovertemplate


def test_calibration_charts_escape_model_and_method_names():
    import pandas as pd

    from analysis.calibration import confidence_histogram, reliability_figure, severity_figure

    hostile = "<b>model</b>"
    bins = {"low": [0.0], "high": [1.0], "count": [3], "confidence": [0.6], "accuracy": [0.5]}
    severity = pd.DataFrame({"method": [hostile], "severity": [1], "confidence": [0.7], "confidence_ts": [0.6],
                             "accuracy": [0.5]})
    for figure in (reliability_figure({hostile: {"before": bins, "after": bins}}),
                   confidence_histogram({hostile: {"before": bins, "after": bins}}), severity_figure(severity)):
        traces = [trace for trace in figure.data if trace.name != "perfect calibration"]
        assert traces and all(trace.name.startswith("&lt;b&gt;model&lt;/b&gt;") for trace in traces)
        assert not any("<b>" in (trace.hovertemplate or "") for trace in traces)
