"""The Mask Explorer page (app/Home.py) through streamlit's AppTest: it runs, shows every method, reacts to
the controls, uses uploads and turns bad uploads into messages."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import test_app_files as files
from PIL import Image
from streamlit.testing.v1 import AppTest

import msda

HOME = Path(__file__).resolve().parents[1] / "app" / "Home.py"
TIMEOUT = 120  # the first run imports torch and msda


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def card(at: AppTest, method: str):
    return at.get_by_key(f"card-{method}")


def card_text(at: AppTest, method: str) -> str:
    block = card(at, method)
    return "\n".join([m.value for m in block.markdown] + [c.value for c in block.caption])


def effective_lam(at: AppTest, method: str) -> float:
    match = re.search(r"effective \*\*([0-9.]+)\*\*", card_text(at, method))
    assert match, card_text(at, method)
    return float(match.group(1))


def card_picture(at: AppTest, method: str, alt: str) -> np.ndarray:
    """A picture a card sends to the browser ("mixed image" or "mask"), decoded from its PNG data URI."""
    pictures = next(m.value for m in card(at, method).markdown if 'class="msda-pics"' in m.value)
    uri = re.search(rf'<img src="(data:image/(?:png|jpeg);base64,[^"]+)" alt="{alt}"', pictures).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def mixed_image(at: AppTest, method: str) -> np.ndarray:
    return card_picture(at, method, "mixed image")


def upload(at: AppTest, slot: str, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=f"upload_{slot}").set_value((name, data, "image/png"))
    return at.run()


def test_page_runs_and_shows_every_method(page):
    for method in msda.METHODS:
        text = card_text(page, method)
        assert msda.methods_info()[method].title in text
        assert mixed_image(page, method).shape == (224, 224, 3), method
        assert card_picture(page, method, "mask").shape == (224, 224, 3), method
    assert not page.error
    assert any("stage by stage" in m.value for m in page.markdown)


def test_moving_lambda_changes_cutmix_effective_lambda(page):
    before = effective_lam(page, "cutmix")
    page.slider(key="lam").set_value(0.2).run()
    assert not page.exception
    assert "λ requested **0.20**" in card_text(page, "cutmix")
    assert effective_lam(page, "cutmix") != before
    assert effective_lam(page, "mixup") == pytest.approx(0.2)


def test_methods_that_ignore_lambda_say_so(page):
    assert "Not applied here: **λ** — Cutout takes no λ" in card_text(page, "cutout")
    assert "switch on *match lam*" in card_text(page, "smoothmix_s")
    assert "**λ**" not in card_text(page, "cutmix").split("Not applied here")[-1]
    page.toggle(key="smoothmix_s:match_lam").set_value(True).run()
    assert "λ requested **0.60** → effective **0.60**" in card_text(page, "smoothmix_s")


def test_an_uploaded_pair_is_used(page):
    upload(page, "a", "red.png", files.solid_png((255, 0, 0), 90, 60))
    upload(page, "b", "blue.png", files.solid_png((0, 0, 255), 40, 70))
    assert not page.exception and not page.error
    captions = " ".join(c.value for c in page.caption)
    assert "upload: red.png: 90 × 60 → centre crop 60 × 60 → enlarged to 224 × 224" in captions
    assert "upload: blue.png" in captions
    assert re.search(r"label: \*\*red 0\.\d\d\*\* / \*\*blue 0\.\d\d\*\*", card_text(page, "cutmix"))
    mixed = mixed_image(page, "mixup").reshape(-1, 3).mean(0)  # λ = 0.6 of red, 0.4 of blue
    assert mixed == pytest.approx([0.6 * 255, 0, 0.4 * 255], abs=6)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's, before the app refuses
@pytest.mark.parametrize("name, data, message", [
    ("notes.png", files.not_an_image(), "notes.png is not an image this app opens"),
    ("half.png", files.truncated_png(), "half.png could not be decoded (it is truncated)"),
    ("bomb.png", files.decompression_bomb(), "bomb.png was refused as a possible decompression bomb"),
    ("huge.png", files.png_claiming_size(10000, 10000), "huge.png is 10000 × 10000 pixels"),
], ids=["not-an-image", "truncated", "decompression-bomb", "10000x10000"])
def test_a_bad_upload_shows_an_error_and_the_page_keeps_working(page, name, data, message):
    upload(page, "b", name, data)
    assert not page.exception, [e.value for e in page.exception]
    errors = [e.value for e in page.error]
    assert any(message in error and "Showing cat (photo) instead" in error for error in errors), errors
    assert all(card(page, method) for method in msda.METHODS)


def test_a_tiny_upload_gets_a_warning(page):
    upload(page, "a", "dot.png", files.one_pixel_png())
    assert not page.exception
    assert any("only 1 × 1 pixels" in w.value for w in page.warning)


def test_every_parameter_has_a_widget(page):
    keys = {widget.key for widget in page.main if getattr(widget, "key", None)}
    for method, info in msda.methods_info().items():
        for param in info.params:
            if param.kind == "tensor" or (param.kind == "other" and not param.choices):
                continue
            paired = param.kind == "numbers" and param.default is not None and any(
                p.kind == "names" and len(p.default) == len(param.default) for p in info.params)
            if paired:  # one number per chosen name
                assert any(k.startswith(f"{method}:{param.name}:") for k in keys), (method, param.name)
            elif param.default is None and param.kind in ("float", "int"):  # random or solved: a pin toggle
                assert f"{method}:{param.name}:pin" in keys, (method, param.name)
            else:
                assert f"{method}:{param.name}" in keys, (method, param.name)


def test_pinned_parameters_reach_the_mixer_and_the_snippet(page):
    page.toggle(key="agmix:q:pin").set_value(True).run()
    page.slider(key="agmix:q").set_value(0.5).run()
    page.toggle(key="gridmix:n_holes:pin").set_value(True).run()
    page.slider(key="gridmix:n_holes").set_value(3).run()
    assert not page.exception and not page.error
    assert "q=0.5" in card(page, "agmix").code[0].value
    assert "q 0.50 (pinned)" in card_text(page, "agmix")
    assert "n_holes=3" in card(page, "gridmix").code[0].value
    assert "partner regions 9" in card_text(page, "gridmix")


def test_a_refused_parameter_combination_is_an_error_on_its_card(page):
    page.toggle(key="miamix:k:pin").set_value(True).run()
    page.slider(key="miamix:k").set_value(4).run()  # k_max is 2
    assert not page.exception
    assert any("MiAMix: miamix: k must be at most k_max=2" in e.value for e in page.error)
    page.slider(key="miamix:k_max").set_value(4).run()
    assert not page.error
    assert any("**k = 4** mask layers" in m.value for m in page.markdown)


def test_miamix_weights_follow_the_chosen_methods(page):
    page.multiselect(key="miamix:methods").set_value(["cutmix", "gridmix"]).run()
    page.number_input(key="miamix:weights:cutmix").set_value(0.0).run()
    assert not page.exception and not page.error
    snippet = card(page, "miamix").code[0].value
    assert "methods=('cutmix', 'gridmix')" in snippet and "weights=(0.0, 1.0)" in snippet
    table = next(m.value for m in page.markdown if "| layer | method |" in m.value)
    assert "cutmix" not in table and "gridmix" in table


def test_drawn_lambda_resample_and_working_size(page):
    page.radio(key="lam_mode").set_value("drawn from Beta(α, α)").run()
    assert "λ drawn from Beta(α, α)" in card_text(page, "cutmix")
    drawn = card_text(page, "cutmix")
    page.button[0].click().run()  # resample: the next seed
    assert page.number_input(key="seed").value == 1
    assert card_text(page, "cutmix") != drawn
    page.select_slider(key="size").set_value(32).run()
    assert not page.exception
    assert mixed_image(page, "cutmix").shape == (32, 32, 3)


def test_a_shapes_sample_can_be_the_partner(page):
    page.select_slider(key="size").set_value(64).run()
    menu = page.selectbox(key="example_b")
    menu.select_index(next(i for i, label in enumerate(menu.options) if "shapes sample" in label)).run()
    assert not page.exception and not page.error
    assert "rendered at 64 × 64" in " ".join(c.value for c in page.caption)


def test_a_badly_typed_list_is_an_error_on_its_card(page):
    page.text_input(key="miamix:windows").set_value("5, seven").run()
    assert not page.exception
    assert any("windows must be numbers separated by commas, like 5, 7; got '5, seven'" in e.value
               for e in page.error)
    assert card(page, "cutmix")  # the other cards are unaffected
