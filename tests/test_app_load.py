"""A classroom on one server: the load benchmark's options and figures, the work sessions share (a mix
computed once for every session showing the same pair and settings, never shared between different inputs),
the bound on concurrent msda work, and the concurrent first import that used to fail a session."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.lib import heavy, mixing
from app.lib.load_benchmark import (ACTIONS, BOMB_SIDE, ArgumentError, bomb_png, format_table, parse_args,
                                    percentile, summarize)

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "app" / "Home.py"


# The benchmark's pure parts.


def test_options_default_to_a_class_of_sixteen():
    args = parse_args([])
    assert (args.sessions, args.uploads, args.out) == (16, 0, None)
    assert parse_args(["--sessions", "4", "--uploads", "4"]).uploads == 4


@pytest.mark.parametrize("argv, words", [
    (["--sessions", "0"], "--sessions must be between 1 and 64, got 0"),
    (["--sessions", "65"], "got 65"),
    (["--sessions", "four"], "invalid int value: 'four'"),
    (["--sessions", "8", "--uploads", "9"], "--uploads must be between 0 and --sessions (8), got 9"),
    (["--uploads", "-1"], "got -1"),
    (["--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
    (["--timeout", "0"], "got 0.0"),
    (["--settle", "-2"], "--settle must be zero or more seconds"),
    (["--width", "100"], "at least 320 × 240"),
    (["--out", "/no/such/folder/load.json"], "folder /no/such/folder does not exist"),
    (["--sessoins", "3"], "unrecognized arguments"),
])
def test_bad_options_are_one_line(argv, words):
    with pytest.raises(ArgumentError) as raised:
        parse_args(argv)
    message = str(raised.value)
    assert words in message and "\n" not in message and message.startswith("load_benchmark: ")


def test_bad_option_exits_2_with_one_line_on_stderr():
    done = subprocess.run([sys.executable, "-m", "app.lib.load_benchmark", "--uploads", "20"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "load_benchmark: --uploads must be between 0 and --sessions (16), got 20"]


def test_percentile_interpolates_like_numpy():
    values = [3.0, 1.0, 10.0, 4.0, 7.5, 2.0, 9.0]
    for q in (0, 25, 50, 90, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(percentile([], 50))


def test_summary_counts_failures_and_skips_untried_actions():
    timings = {"first paint": [1.0, 2.0, 3.0, 4.0], "pair change": [0.5], "focus view": []}
    failures = {"first paint": 1, "focus view": 1}
    server = {"first paint": [(0.2, 0.1), (0.4, 0.3)]}
    rows = summarize(timings, failures, server)
    assert [row["action"] for row in rows] == ["first paint", "pair change", "focus view"]  # no upload row
    first = rows[0]
    assert (first["done"], first["failed"], first["p50"], first["max"]) == (4, 1, 2.5, 4.0)
    assert first["p95"] == pytest.approx(3.85)
    assert (first["run_p50"], first["run_cpu_p50"]) == pytest.approx((0.3, 0.2))
    assert math.isnan(rows[2]["p50"]) and rows[2]["failed"] == 1
    table = format_table(rows).splitlines()
    assert table[0].split()[:6] == ["action", "done", "failed", "p50", "s", "p95"]
    assert table[1].split()[:7] == ["first", "paint", "4", "1", "2.50", "3.85", "4.00"]
    assert set(ACTIONS) >= {row["action"] for row in rows}


def test_the_uploaded_png_claims_fifty_megapixels_in_a_small_file(tmp_path):
    path = bomb_png(tmp_path)
    data = path.read_bytes()
    assert len(data) < 1_000_000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (BOMB_SIDE, BOMB_SIDE) and width * height >= 50_000_000


# Shared work.


def _pair(seed: int) -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_a_mix_is_computed_once_for_every_caller_with_the_same_inputs(monkeypatch):
    calls = []
    real = mixing.mix_view

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(mixing, "mix_view", counted)
    mixing._cached.clear()
    images = _pair(0)
    settings = {"lam": 0.3, "alpha": 1.0, "seed": 5, "params": {}}
    first = mixing.cached_mix_view("cutmix", "pair-0", images, **settings)
    second = mixing.cached_mix_view("cutmix", "pair-0", images.clone(), **settings)  # another session's copy
    assert calls == ["cutmix"]
    assert second.mixed_uri == first.mixed_uri and second.mask_uri == first.mask_uri
    np.testing.assert_array_equal(second.mask, first.mask)
    # any input that decides the output is part of the key: none of these is served from the first mix
    mixing.cached_mix_view("cutmix", "pair-1", _pair(1), **settings)
    mixing.cached_mix_view("cutmix", "pair-0", images, **{**settings, "seed": 6})
    mixing.cached_mix_view("cutmix", "pair-0", images, **{**settings, "lam": 0.4})
    mixing.cached_mix_view("cutmix", "pair-0", images, **{**settings, "alpha": 2.0})
    mixing.cached_mix_view("cutmix", "pair-0", images, **{**settings, "params": {"fit_inside": True}})
    mixing.cached_mix_view("fmix", "pair-0", images, **settings)
    assert len(calls) == 7


def test_a_second_session_draws_the_default_pair_without_mixing(monkeypatch):
    """Two sessions of one server (two AppTests in one process share Streamlit's caches as sessions do): the
    second one's cards come from the first one's mixes; a session with another seed mixes its own."""
    calls = []
    real = mixing.mix_view
    monkeypatch.setattr(mixing, "mix_view", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    mixing._cached.clear()
    first = AppTest.from_file(str(HOME), default_timeout=300)
    first.run()
    assert not first.exception and len(calls) >= 14
    computed = len(calls)
    second = AppTest.from_file(str(HOME), default_timeout=300)
    second.run()
    assert not second.exception and len(calls) == computed
    assert second.get_by_key("card-cutmix").markdown[-1].value == first.get_by_key("card-cutmix").markdown[-1].value
    second.number_input(key="seed").set_value(7).run()
    assert not second.exception and len(calls) > computed


# The bound on concurrent work.


def test_heavy_work_lets_at_most_the_core_count_run_at_once_and_nests():
    inside, peak, lock = 0, 0, threading.Lock()

    def work():
        nonlocal inside, peak
        with heavy.heavy_work(), heavy.heavy_work():  # nested: one slot
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(heavy.HEAVY_SLOTS + 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert peak == heavy.HEAVY_SLOTS
    assert not any(thread.is_alive() for thread in threads)
    with heavy.heavy_work():  # every slot was given back
        pass


def test_concurrent_first_figures_find_pandas_complete():
    """Regression (a classroom's load): plotly reads pandas from sys.modules without importing it, so a
    session drawing its first figure while another was still importing pandas failed with "partially
    initialized module 'pandas'" (without the fix this script fails every time). The figures module imports
    pandas first, so a session importing it waits for pandas to be complete; run in a fresh interpreter."""
    script = """
import threading, time
import plotly.graph_objects  # loaded, as on a running server; pandas not yet
errors = []
def draw():
    try:
        from app.lib import figures
        figures.figure({"data": [{"type": "scatter", "x": [0, 1], "y": [0, 1]}], "layout": {}})
    except Exception as error:
        errors.append(repr(error))
importer = threading.Thread(target=lambda: __import__("pandas"))  # another session's first import
importer.start()
time.sleep(0.02)
threads = [threading.Thread(target=draw) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads + [importer]]
print(errors)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
