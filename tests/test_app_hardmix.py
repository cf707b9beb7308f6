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


def test_the_page_opens_on_the_hardmix_checkpoint_and_says_which_batch(monkeypatch, tmp_path):
    checkpoints.write_folder(tmp_path, methods=("cutmix", "hardmix", "none"))
    at = open_page(monkeypatch, tmp_path)
    assert at.selectbox(key="hm:shipped").value.startswith("hardmix")
    assert "**hardmix**" in text(at)
    batch = at.number_input(key="hm:batch").value
    assert any(f"Opened on batch {batch}: the first batch of 16" in c.value for c in at.sidebar.caption)
    assert at.dataframe[0].value["in the pool"].any()  # the pool it opens on is not empty
    at.number_input(key="hm:batch").set_value(batch + 1).run()  # the user's choice stays
    assert at.number_input(key="hm:batch").value == batch + 1 and not at.exception


class _Oracle(torch.nn.Module):
    """Right on the images it was shown (by exact pixels), wrong on every other: a model whose misclassified
    samples are known."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.register_buffer("images", images.flatten(1))
        self.register_buffer("labels", labels)

    def forward(self, images):
        flat = images.flatten(1)
        same = (flat[:, None, :] == self.images[None]).all(2)
        known = same.any(1)
        label = self.labels[same.float().argmax(1)]
        predicted = torch.where(known, label, (label + 1) % 10)
        return torch.nn.functional.one_hot(predicted, 10).float()


def test_the_batch_search_finds_the_first_batch_with_a_misclassified_sample():
    from app.lib.checkpoints import LoadedModel
    from app.lib.hardmix_view import first_batch_with_misclassified, hardmix_view
    from msda.data import SHAPE_CLASSES

    images, labels, _ = Shapes("test", n=16, size=32, seed=0).render(list(range(16)))
    loaded = LoadedModel("oracle", "oracle", "test", _Oracle(images, labels),
                         checkpoints.meta("hardmix", classes=SHAPE_CLASSES))
    assert first_batch_with_misclassified(loaded, 8) == 2  # samples 0–15 are right, 16 on wrong
    assert first_batch_with_misclassified(loaded, 16) == 1
    assert first_batch_with_misclassified(loaded, 8, search=2) is None
    view = hardmix_view(loaded, batch=0, size=8, seed=0, hardness="misclassified", top_frac=0.5)
    assert view.fallback and not any(view.hard)


def test_an_empty_pool_never_says_every_patch_comes_from_it(monkeypatch, folder):
    # Regression: with no misclassified sample the page said "every patch is cut from one of them" next to
    # "the pool is empty".
    import app.lib.hardmix_view as hardmix_module
    from app.lib.checkpoints import LoadedModel
    from msda.data import SHAPE_CLASSES

    images, labels, _ = Shapes("test", n=16, size=32, seed=0).render(list(range(16)))
    oracle = LoadedModel("oracle", "oracle", "test", _Oracle(images, labels),
                         checkpoints.meta("hardmix", classes=SHAPE_CLASSES))
    empty = hardmix_module.hardmix_view(oracle, batch=0, size=16, seed=0, hardness="misclassified", top_frac=0.5)
    monkeypatch.setattr(hardmix_module, "cached_hardmix_view", lambda *args: empty)
    at = open_page(monkeypatch, folder)
    page_text = text(at)
    assert "**0 of 16** samples are misclassified: the pool is empty" in page_text
    assert "every patch is cut from one of them" not in page_text


def test_a_version_1_checkpoint_is_shown_on_version_1_samples(monkeypatch, tmp_path):
    # The first shipped checkpoints name shapes version 1's classes (square, diamond): they are not refused,
    # and their batch is rendered in version 1.
    v1 = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse", "crescent")
    checkpoints.safetensors_bytes(checkpoints.random_state(), checkpoints.meta("hardmix", classes=v1), tmp_path,
                                  "hardmix.safetensors")
    at = open_page(monkeypatch, tmp_path)
    assert not at.error
    batch = at.number_input(key="hm:batch").value
    table = at.dataframe[0].value
    _, labels, _ = Shapes("test", n=16 * (batch + 1), size=32, seed=0, version=1).render(
        list(range(16 * batch, 16 * (batch + 1))))
    assert list(table["true"]) == [v1[int(c)] for c in labels]
