"""The Mask Explorer grid's λ ladders and pins through AppTest: every card whose mask λ shapes carries its
ladder (21 frames replaying its draws; the frame at the card's λ is the card), none in "drawn" mode; pins
survive the focus view, which does not draw the grid's cards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app_explorer import card_picture, card_text

import msda
from app.lib import pictures
from app.lib.cards import lam_applies

HOME = Path(__file__).resolve().parents[1] / "app" / "Home.py"


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ladders(at: AppTest) -> dict[str, dict]:
    out = {}
    for element in at.get("html"):
        body = element.proto.body
        match = re.search(r"data-card='([a-z_]+)'.*data-ladder='([^']*)'", body)
        if "msda-ladder" in body and match:
            out[match.group(1)] = json.loads(match.group(2).replace("&amp;", "&").replace("&lt;", "<")
                                             .replace("&gt;", ">").replace("&#39;", "'"))
    return out


def test_every_card_that_applies_lambda_carries_its_ladder_and_drawn_mode_none(page):
    sent = ladders(page)
    infos = msda.methods_info()
    assert set(sent) == {name for name, info in infos.items() if lam_applies(info, {})}
    frames = sent["cutmix"]["frames"]
    assert [f[0] for f in frames] == pytest.approx(np.linspace(0, 1, 21))
    at_card = frames[12]  # λ = 0.60, every draw the card's: the card's mask
    np.testing.assert_array_equal(pictures.decode_uri(sent["cutmix"]["masks"][at_card[1]]),
                                  card_picture(page, "cutmix", "mask"))
    assert "0.60" in at_card[3] and "effective" in at_card[3]
    size = sum(len(element.proto.body) for element in page.get("html") if "msda-ladder" in element.proto.body)
    assert size < 5_000_000, size
    page.radio(key="lam_mode").set_value("drawn from Beta(α, α)").run()
    assert not ladders(page)


def test_pins_survive_the_focus_view(page):
    page.toggle(key="cutmix:center_x:pin").set_value(True).run()
    page.slider(key="cutmix:center_x").set_value(0.2).run()
    page.toggle(key="focus").set_value(True).run()
    page.multiselect(key="focus:methods").set_value(["gmix"]).run()  # the focus view does not draw CutMix
    page.toggle(key="focus").set_value(False).run()
    assert not page.exception and not page.error
    assert page.toggle(key="cutmix:center_x:pin").value is True
    assert page.slider(key="cutmix:center_x").value == pytest.approx(0.2)
    assert "centre (0.20, " in card_text(page, "cutmix") and "(pinned)" in card_text(page, "cutmix")
