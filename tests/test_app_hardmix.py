"""The HardMix page through AppTest: it runs with no checkpoint and with one, shows the hard pool the checkpoint's
predictions make (misclassified samples, or the highest-loss fraction) and mixes whose patches come from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import test_app_checkpoint_files as checkpoints
import torch
from streamlit.testing.v1 import AppTest

from analysis import load_checkpoint
from app.lib.checkpoints import ENV_VAR
from msda.data import Shapes

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "3_HardMix.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    checkpoints.write_folder(folder, methods=("cutmix",))
    return folder


def open_page(monkeypatch, folder: Path) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_no_checkpoint_is_a_note(monkeypatch, tmp_path):
    at = open_page(monkeypatch, tmp_path)
    assert any("No checkpoints" in i.value for i in at.info) and not at.error


def test_the_pool_is_the_misclassified_samples_and_the_patches_come_from_it(monkeypatch, folder):
    at = open_page(monkeypatch, folder)
    assert not at.error
    table = at.dataframe[0].value
    assert len(table) == 16 and list(table["test index"]) == list(range(16))
    model, _ = load_checkpoint(folder / "cutmix.safetensors")
    images, labels, _ = Shapes("test", n=16, size=32, seed=0).render(list(range(16)))
    with torch.no_grad():
        wrong = (model(images).argmax(1) != labels).tolist()
    assert list(table["in the pool"]) == wrong
    match = re.search(r"\*\*(\d+) of 16\*\* samples are misclassified", text(at))
    assert match and int(match.group(1)) == sum(wrong)
    if any(wrong):
        assert all(table["in the pool"][partner] for partner in table["partner"])
    assert "The mixes" in text(at)

    at.button(key="hm:resample").click().run()
    assert at.number_input(key="hm:seed").value == 1 and not at.exception
    at.radio(key="hm:hardness").set_value("loss").run()
    at.slider(key="hm:top_frac").set_value(0.25).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["in the pool"].sum() == 4  # ⌈0.25 · 16⌉
    assert "The pool is the **4** samples with the highest loss" in text(at)
    at.select_slider(key="hm:size").set_value(8).run()
    at.number_input(key="hm:batch").set_value(3).run()
    assert list(at.dataframe[0].value["test index"]) == list(range(24, 32))


def test_a_model_of_other_classes_is_refused_with_a_message(monkeypatch, tmp_path):
    checkpoints.safetensors_bytes(checkpoints.random_state(num_classes=3),
                                  checkpoints.meta("none", classes=("cat", "dog", "bird")), tmp_path, "pets.safetensors")
    at = open_page(monkeypatch, tmp_path)
    assert not at.exception
    assert any("pets was trained on other classes (cat, dog, bird)" in e.value for e in at.error)
