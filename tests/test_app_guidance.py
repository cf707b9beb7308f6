"""The Mask Explorer's model-guided cards (PuzzleMix, SnapMix, Attentive CutMix): the checkpoint selector starts
at the `none` model; a photo pair gets the notice and the image-only saliency; a shapes pair gets the
checkpoint's saliency/CAMs, computed once and drawn beside the mask; the exported code rebuilds the guidance and
reproduces the card; SnapMix's label bar is its CAM share, not the mask's area."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_app_explorer import card_of, card_picture, card_text, run_snippets

import msda
from analysis import load_checkpoint
from app.lib import examples, export, guidance, pictures
from app.lib.images import fit_square
from app.lib.mixing import mix_view

HOME = Path(__file__).resolve().parents[1] / "app" / "Home.py"
GUIDED = ("puzzlemix", "snapmix", "attentive_cutmix")
SIZE = 64
TIMEOUT = 180


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.select_slider(key="size").set_value(SIZE).run()
    return at


def shapes_pair(at: AppTest) -> tuple[int, int]:
    """Choose the first two shapes samples as A and B; returns their indices."""
    for slot, index in (("a", 0), ("b", 1)):
        menu = at.selectbox(key=f"example_{slot}")
        at = menu.select_index(next(i for i, label in enumerate(menu.options)
                                    if f"shapes sample test #{index})" in label)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return 0, 1


def heat(values: np.ndarray) -> np.ndarray:
    return pictures.heat_lut()[np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)]


def shown_map(values: torch.Tensor) -> np.ndarray:
    """What the card draws of guidance [2, h, w]: map A at the working size, scaled to its maximum."""
    return guidance._display(values, SIZE)[0][0]


def test_every_guided_card_starts_from_the_none_checkpoint(page):
    for method in GUIDED:
        assert card_of(page, method) is not None
        assert page.selectbox(key=f"{method}:guidance:checkpoint").value.startswith("none"), method


def test_a_photo_pair_gets_the_notice_and_the_image_only_saliency(page):
    for method in GUIDED:
        text = card_text(page, method)
        assert "meaningless" in text and "image-only" in text, text
        assert page.toggle(key=f"{method}:guidance:on_photos").value is False
    photos = np.stack([fit_square(examples.load_photo(name).pixels, SIZE) for name in ("astronaut", "chelsea")])
    images = torch.from_numpy(photos).permute(0, 3, 1, 2).float() / 255.0
    saliency = guidance.image_guidance_tensor("saliency", images)
    np.testing.assert_array_equal(card_picture(page, "puzzlemix", "saliency of A"), heat(shown_map(saliency)))
    cams = guidance.image_guidance_tensor("cams", images)
    assert cams.shape == (2, guidance.CAM_GRID, guidance.CAM_GRID)
    np.testing.assert_array_equal(card_picture(page, "snapmix", "CAM of A"), heat(shown_map(cams)))
    # the toggle shows the checkpoint's maps anyway, still with the notice
    page.toggle(key="snapmix:guidance:on_photos").set_value(True).run()
    assert not page.exception and not page.error
    text = card_text(page, "snapmix")
    assert "meaningless" in text and "Shown anyway" in text and "none" in text


def test_a_shapes_pair_is_guided_by_the_checkpoint_computed_once(page, monkeypatch):
    import streamlit as st

    st.cache_data.clear()
    calls = {"saliency": 0, "cams": 0}
    real = {"saliency": msda.guidance.input_gradient_saliency, "cams": msda.guidance.class_activation_maps}

    def counting(need):
        def call(*args, **kwargs):
            calls[need] += 1
            return real[need](*args, **kwargs)
        return call

    monkeypatch.setattr(msda.guidance, "input_gradient_saliency", counting("saliency"))
    monkeypatch.setattr(msda.guidance, "class_activation_maps", counting("cams"))
    shapes_pair(page)
    counted = dict(calls)
    assert counted == {"saliency": 1, "cams": 1}, counted  # SnapMix and Attentive CutMix share the CAMs
    page.slider(key="lam").set_value(0.3).run()  # a new λ and seed mix again from the cached guidance
    page.number_input(key="seed").set_value(4).run()
    page.slider(key="lam").set_value(0.6).run()
    page.number_input(key="seed").set_value(0).run()
    assert calls == counted, calls
    monkeypatch.undo()
    for method in GUIDED:
        text = card_text(page, method)
        assert "meaningless" not in text and "checkpoint **none**" in text and "triangle / star" in text, text
    model, _ = load_checkpoint(guidance.checkpoint_folder() / "none.safetensors")
    a, b = (examples.render_shapes_sample(index, SIZE) for index in (0, 1))
    images = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255.0
    classes = list(examples.shapes_labels()[1])
    labels = torch.tensor([classes.index("triangle"), classes.index("star")])
    cams = guidance.model_guidance_tensor("cams", model, images, labels, 32)
    assert cams.shape == (2, 8, 8)
    np.testing.assert_array_equal(card_picture(page, "attentive_cutmix", "CAM of B"),
                                  heat(guidance._display(cams, SIZE)[0][1]))
    saliency = guidance.model_guidance_tensor("saliency", model, images, labels, 32)
    np.testing.assert_array_equal(card_picture(page, "puzzlemix", "saliency of A"), heat(shown_map(saliency)))


def test_the_exported_code_of_the_guided_cards_rebuilds_the_guidance_and_reproduces_them(page, tmp_path):
    shapes_pair(page)
    a, b = (examples.render_shapes_sample(index, SIZE) for index in (0, 1))
    folders = []
    for method in GUIDED:
        folder = tmp_path / method
        folder.mkdir()
        code = card_of(page, method).code[0].value
        assert "load_checkpoint(" in code and "none.safetensors" in code, code
        (folder / "snippet.py").write_text(code)
        (folder / export.PAIR_FILE.format(size=SIZE)).write_bytes(export.pair_png(a, b))
        folders.append(folder)
    run_snippets(folders)
    for method, folder in zip(GUIDED, folders):
        grey = np.asarray(Image.open(folder / f"{method}_mask.png"))
        np.testing.assert_array_equal(pictures.cividis_lut()[grey], card_picture(page, method, "mask"),
                                      err_msg=method)
        mask = np.load(folder / "mask.npy")
        assert 0 < mask.mean() < 1, method


def test_snapmix_label_bar_is_its_cam_share_not_the_mask_area(page):
    text = card_text(page, "snapmix")
    effective = float(re.search(r"effective \*\*([0-9.]+)\*\*", text).group(1))
    area = float(re.search(r"box area kept ([0-9.]+)", text).group(1))
    label = re.search(r"label: \*\*astronaut ([0-9.]+)\*\* / \*\*cat ([0-9.]+)\*\*", text)
    assert float(label.group(1)) == effective and effective != area
    html = next(m.value for m in card_of(page, "snapmix").markdown if "label:" in m.value)
    assert abs(float(re.search(r"width:([0-9.]+)%", html).group(1)) - effective * 100) < 0.6  # the bar too


def test_mix_view_of_a_guided_method_defaults_to_the_image_only_maps():
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for method in GUIDED:
        need = guidance.need_of(method)
        default = mix_view(method, images, lam=0.6, alpha=1.0, seed=0, params={})
        explicit = mix_view(method, images, lam=0.6, alpha=1.0, seed=0, params={},
                            guidance={need: guidance.image_guidance_tensor(need, images)})
        np.testing.assert_array_equal(default.mask, explicit.mask)
        assert default.replay[need].shape[0] == 2  # recorded: the sweeps replay it without a model
