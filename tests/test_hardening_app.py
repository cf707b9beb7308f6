"""Regression tests for issue 13, S1 and S7 on the pages: a checkpoint whose header claims 10⁹ classes or
nests its JSON 100 000 deep, in the folder or uploaded, is a message on the CAM and HardMix pages (it was a
5 GB, 30 s load, or an uncaught RecursionError); a nested or wrongly shaped report is a message on the
Robustness page (an uncaught RecursionError or AttributeError before)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_app_checkpoint_files as checkpoints
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from app.lib.checkpoints import ENV_VAR
from msda.training.checkpoint import FORMAT, save_checkpoint

PAGES = Path(__file__).resolve().parents[1] / "app" / "pages"
TIMEOUT = 120


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    state = checkpoints.random_state()
    nested = json.dumps(checkpoints.meta("cutmix"))[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "a_nested.safetensors"),
              metadata={"format": FORMAT, "msda": nested})
    save_checkpoint(folder / "b_billion.safetensors", state, {**checkpoints.meta("cutmix"), "num_classes": 10**9})
    return folder


def open_page(monkeypatch, folder: Path, page: str) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_S1_S7_hostile_checkpoints_are_messages_on_the_cam_page(monkeypatch, hostile_folder):
    at = open_page(monkeypatch, hostile_folder, "1_CAM_and_Occlusion.py")
    errors = " ".join(e.value for e in at.error)
    assert "a_nested.safetensors was not loaded" in errors and "nested too deeply" in errors
    assert "b_billion.safetensors was not loaded" in errors and "num_classes must be an integer" in errors


def test_S7_nested_checkpoint_header_is_a_message_on_the_hardmix_page(monkeypatch, hostile_folder):
    at = open_page(monkeypatch, hostile_folder, "3_HardMix.py")
    errors = " ".join(e.value for e in at.error)
    assert "a_nested.safetensors was not loaded" in errors and "nested too deeply" in errors


@pytest.mark.parametrize("data,message", [
    (b'{"rows": [], "settings": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "it is nested too deeply"),
    (json.dumps({"rows": [{"model": "m", "kind": "corruption", "corruption": "fog", "severity": 1, "correct": 1,
                           "total": 2}], "checkpoints": {"m": 5}}).encode(),
     "\"checkpoints\" must map each model to an object of its metadata, got 5 for 'm'"),
], ids=["nested", "checkpoints-entry-not-an-object"])
def test_S7_hostile_reports_are_messages_on_the_robustness_page(monkeypatch, tmp_path, data, message):
    at = open_page(monkeypatch, tmp_path, "2_Robustness.py")
    at.file_uploader(key="rob:reload").set_value(("report.json", data, "application/json")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
