"""The Mask Explorer as a teaching instrument: no card raises on any seed, λ mode or working size; slider
extremes; the exported code runs as pasted and reproduces its card; the focus view's sweeps; formulas that
wrap; every draw on screen."""

from __future__ import annotations

import base64
import io
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import test_app_files as files
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import msda
from app.lib import examples, export, pictures, sweeps
from app.lib.cards import draws_text, lam_applies, pictures_html, unused_controls
from app.lib.formulas import clauses, formula_markdown
from app.lib.images import decode_image, fit_square
from app.lib.mixing import mix_view
from app.lib.params import slider_bounds, slider_value

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "app" / "Home.py"
TIMEOUT = 120
SEEDS = range(100)


def photo_pair(size: int) -> torch.Tensor:
    pixels = [fit_square(examples.load_photo(name).pixels, size) for name in ("astronaut", "chelsea")]
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def pairs() -> dict[int, torch.Tensor]:
    return {size: photo_pair(size) for size in (32, 224)}


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def card_of(at: AppTest, method: str):
    return at.get_by_key(f"card-{method}")


def card_text(at: AppTest, method: str) -> str:
    block = card_of(at, method)
    return "\n".join([m.value for m in block.markdown] + [c.value for c in block.caption])


def card_picture(at: AppTest, method: str, alt: str) -> np.ndarray:
    html = next(m.value for m in card_of(at, method).markdown if 'class="msda-pics"' in m.value)
    uri = re.search(rf'<img src="(data:image/(?:png|jpeg);base64,[^"]+)" alt="{alt}"', html).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def assert_page_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert all(card_of(at, method) for method in msda.METHODS)


# ---- no card ever raises ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 224])
def test_every_card_draws_for_100_seeds_both_lam_modes(pairs, size):
    """What each card computes and sends (the mix, its PNGs, the list of draws, the notes, the exported code)
    for seeds 0–99 with λ pinned at 0.6 and drawn: no exception. The page's widget and chart keys are unique
    by construction (method name + role), so what the cards draw can no longer collide."""
    images = pairs[size]
    infos = msda.methods_info()
    for seed in SEEDS:
        for lam in (0.6, None):
            for method, info in infos.items():
                applied = lam if lam_applies(info, {}) or lam is None else 0.5
                try:
                    view = mix_view(method, images, lam=applied, alpha=1.0, seed=seed, params={})
                    assert pictures_html(view, size).count("<img") == 2
                    draws_text(view.draws, view.stages, set())
                    unused_controls(info, {})
                except Exception as error:
                    raise AssertionError(f"{method} failed at seed {seed}, λ {lam}, size {size}: {error!r}") from error
                assert 0.0 <= view.lam <= 1.0 and np.isfinite(view.mask).all(), (method, seed, lam)


@pytest.mark.parametrize("seed, lam", [(1, 0.6), (17, 0.6), (27, 0.6), (0, 0.0), (0, 1.0)],
                         ids=["seed1", "seed17", "seed27", "lam0", "lam1"])
def test_seeds_and_lam_ends_that_raised_duplicate_element_ids_render(page, seed, lam):
    """Seed 1 (MiAMix drew a single mixup layer: its figure equalled Mixup's) and λ pinned at 0 or 1 (several
    cards drew identical figures) raised StreamlitDuplicateElementId."""
    page.number_input(key="seed").set_value(seed).run()
    page.slider(key="lam").set_value(lam).run()
    assert_page_clean(page)


def test_working_size_32_and_drawn_lambda_render(page):
    page.select_slider(key="size").set_value(32).run()
    page.radio(key="lam_mode").set_value("drawn from Beta(α, α)").run()
    page.number_input(key="seed").set_value(2**31 - 1).run()
    assert_page_clean(page)
    assert card_picture(page, "cutmix", "mask").shape == (32, 32, 3)


# ---- slider extremes -------------------------------------------------------------------------------------------

def test_agmix_theta_slider_at_either_end_rounds_past_pi(page):
    """'theta must be in [-3.14159, 3.14159], got 3.1416': the slider's value was rounded past π."""
    page.toggle(key="agmix:theta:pin").set_value(True).run()
    low, high, _ = slider_bounds(msda.methods_info()["agmix"].param("theta"))
    for end in (high, low):
        page.slider(key="agmix:theta").set_value(end).run()
        assert not page.exception and not page.error, [e.value for e in page.error]
        assert re.search(r"θ [−-]?3\.14 rad .*\(pinned\)", card_text(page, "agmix"))


def test_slider_values_stay_inside_their_bounds():
    for method, info in msda.methods_info().items():
        for param in info.params:
            if param.kind != "float" or param.low is None or param.high is None:
                continue
            low, high, step = slider_bounds(param)
            for end in (low, high):
                value = slider_value(end, low, high, step)
                assert param.check(method, value) == value


# ---- every draw on screen --------------------------------------------------------------------------------------

def test_every_card_lists_the_values_its_mix_used(page):
    text = card_text(page, "agmix")
    used = re.search(r"\*\*This mix used:\*\* (.*)", text).group(1)
    assert "centre (" in used and "q " in used and "θ " in used
    assert "centre (" in card_text(page, "cutmix") and "n holes" in card_text(page, "gridmix")


def test_unpinned_sliders_show_the_drawn_value(page):
    def drawn_q() -> float:
        html = next(m.value for m in card_of(page, "agmix").markdown if 'title="q: ' in m.value)
        return float(re.search(r"<b>([−0-9.]+)</b>", html).group(1).replace("−", "-"))

    used = re.search(r"q ([−-]?[0-9.]+)", card_text(page, "agmix")).group(1)
    assert drawn_q() == pytest.approx(float(used.replace("−", "-")), abs=0.006)
    before = drawn_q()
    page.number_input(key="seed").set_value(5).run()  # a new draw moves the greyed-out slider
    assert drawn_q() != before
    page.toggle(key="agmix:q:pin").set_value(True).run()  # pinning starts from the value on screen
    assert page.slider(key="agmix:q").value == pytest.approx(page.session_state["agmix:q:drawn"], abs=1e-9)


def test_a_pinned_sigma_says_lambda_is_not_applied(page):
    page.toggle(key="gmix:sigma:pin").set_value(True).run()
    assert not page.exception and not page.error
    text = card_text(page, "gmix")
    assert "λ not applied" in text and "σ is pinned at" in text and "decides the mask's area" in text
    assert "λ requested" not in text


# ---- export that runs ------------------------------------------------------------------------------------------

RUNNER = textwrap.dedent("""
    import os, runpy, sys
    import numpy as np, torch
    for folder in sys.argv[1:]:
        os.chdir(folder)
        scope = runpy.run_path("snippet.py")
        np.save("mask.npy", scope["out"].mask[0, 0].numpy())
""")


def run_snippets(folders: list[Path]) -> None:
    """Execute each folder's snippet.py as pasted, one subprocess for all (fresh namespace each)."""
    result = subprocess.run([sys.executable, "-c", RUNNER, *map(str, folders)], check=False, cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                         "PYTHONPATH": str(ROOT), "HOME": str(Path.home())})
    assert result.returncode == 0, result.stderr[-3000:]


def card_mix(method: str, images: torch.Tensor, params: dict, lam: float = 0.6, seed: int = 0):
    """The card's mix under the page's default settings (what its lossless PNG download holds)."""
    info = msda.methods_info()[method]
    return mix_view(method, images, lam=lam if lam_applies(info, params) else 0.5, alpha=1.0, seed=seed,
                    params=params)


def test_the_exported_code_of_every_card_runs_as_pasted_and_reproduces_it(page, pairs, tmp_path):
    page.toggle(key="agmix:q:pin").set_value(True).run()
    page.slider(key="agmix:q").set_value(-0.5).run()
    folders = []
    for method in msda.METHODS:
        folder = tmp_path / method
        folder.mkdir()
        (folder / "snippet.py").write_text(card_of(page, method).code[0].value)
        folders.append(folder)
    run_snippets(folders)
    images = pairs[224]
    for method, folder in zip(msda.METHODS, folders):
        view = card_mix(method, images, {"q": -0.5} if method == "agmix" else {})
        mixed = np.asarray(Image.open(folder / f"{method}_mixed.png").convert("RGB"))
        np.testing.assert_array_equal(mixed, view.mixed, err_msg=method)  # the card's PNG download, bit for bit
        np.testing.assert_array_equal(np.load(folder / "mask.npy"), view.mask, err_msg=method)
        grey = np.asarray(Image.open(folder / f"{method}_mask.png"))
        np.testing.assert_array_equal(grey, export.mask_grey(view.mask), err_msg=method)
        np.testing.assert_array_equal(pictures.cividis_lut()[grey], card_picture(page, method, "mask"),
                                      err_msg=method)  # and the mask the card shows


def test_the_exported_code_of_an_uploaded_pair_reads_the_pair_download(page, tmp_path):
    data = files.split_png((230, 160, 20), (20, 120, 60), 90, 60)
    page.file_uploader(key="upload_a").set_value(("stripes.png", data, "image/png"))
    page.run()
    code = card_of(page, "cutmix").code[0].value
    assert "skimage" not in code and export.PAIR_FILE.format(size=224) in code
    assert page.get_by_key("pair:download") is not None
    a = fit_square(decode_image(data, "stripes.png").pixels, 224)
    b = fit_square(examples.load_photo("chelsea").pixels, 224)
    (tmp_path / export.PAIR_FILE.format(size=224)).write_bytes(export.pair_png(a, b))  # what the download holds
    (tmp_path / "snippet.py").write_text(code)
    run_snippets([tmp_path])
    view = card_mix("cutmix", torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255.0, {})
    mixed = np.asarray(Image.open(tmp_path / "cutmix_mixed.png").convert("RGB"))
    np.testing.assert_array_equal(mixed, view.mixed)
    np.testing.assert_array_equal(pictures.cividis_lut()[export.mask_grey(view.mask)],
                                  card_picture(page, "cutmix", "mask"))


def test_the_training_snippet_has_a_num_classes_placeholder():
    code = export.training_snippet("cutmix", params={"fit_inside": True}, alpha=1.0, needs_logits=False)
    assert "NUM_CLASSES = 10  # the number of classes of your data" in code
    assert "num_classes=NUM_CLASSES" in code and "num_classes=2" not in code
    compile(code, "training", "exec")


# ---- focus view and its sweeps ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", msda.METHODS)
def test_the_lam_sweep_is_one_call_whose_frame_at_the_card_lam_is_the_card(pairs, method):
    images = pairs[32]
    view = mix_view(method, images, lam=0.6, alpha=1.0, seed=3, params={})
    sweep = sweeps.lam_sweep(method, images, view.replay, alpha=1.0, params={})
    assert sweep.masks.shape == (21, 32, 32) and sweep.mixed.shape == (21, 32, 32, 3)
    np.testing.assert_allclose(sweep.values, np.linspace(0, 1, 21), atol=1e-6)
    if method == "miamix":
        # Its layers are rendered and smoothed for the rows that drew each candidate: a batch of 42 rows groups
        # them differently from the card's 2, which moves a mask value by at most a float32 rounding (≤ 1.2e-7
        # over 40 seeds) and never a pixel of the mixed image.
        np.testing.assert_allclose(sweep.masks[12], view.mask, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(sweep.masks[12], view.mask)  # λ = 0.6, every other draw the card's
    np.testing.assert_array_equal(sweep.mixed[12], view.mixed)


def test_the_lam_sweep_morphs_gmix_from_all_b_to_all_a(pairs):
    view = mix_view("gmix", pairs[32], lam=0.6, alpha=1.0, seed=3, params={})
    sweep = sweeps.lam_sweep("gmix", pairs[32], view.replay, alpha=1.0, params={})
    assert np.all(np.diff(sweep.lams) >= -1e-3) and sweep.lams[0] < 0.05 and sweep.lams[-1] > 0.95


@pytest.mark.parametrize("method", sorted(sweeps.PARAM_SWEEPS))
def test_parameter_sweeps_move_their_parameter_only(pairs, method):
    images = pairs[32]
    view = mix_view(method, images, lam=0.6, alpha=1.0, seed=3, params={})
    name = sweeps.PARAM_SWEEPS[method].name
    value = view.draws.get(name, view.stages.get(name))
    card_value = None if value is None else float(np.asarray(value).reshape(-1)[0])
    sweep = sweeps.param_sweep(method, images, view.replay, card_value, alpha=1.0, params={})
    if sweep is None:
        assert sweeps.PARAM_SWEEPS[method].span is not None and card_value is None
        return
    assert len(sweep.values) >= 2 and sweep.masks.shape[0] == len(sweep.values)
    assert not all(np.array_equal(sweep.masks[0], mask) for mask in sweep.masks[1:]), method


def test_focus_view_sends_the_sweeps_as_plotly_frames(page):
    page.toggle(key="focus").set_value(True).run()
    page.multiselect(key="focus:methods").set_value(["agmix", "cutmix", "miamix"]).run()
    assert not page.exception and not page.error, [e.value for e in page.error]
    import json

    for method in ("agmix", "cutmix", "miamix"):
        panel = page.get_by_key(f"focus-{method}")
        assert panel is not None
        charts = panel.get("plotly_chart")
        spec = json.loads(charts[0].proto.spec)
        assert len(spec["frames"]) == 21 and len(spec["layout"]["sliders"][0]["steps"]) == 21
    q_sweep = json.loads(page.get_by_key("focus-agmix").get("plotly_chart")[1].proto.spec)
    assert q_sweep["layout"]["sliders"][0]["currentvalue"]["prefix"] == "q = "
    k_max_sweep = json.loads(page.get_by_key("focus-miamix").get("plotly_chart")[1].proto.spec)
    assert [step["label"] for step in k_max_sweep["layout"]["sliders"][0]["steps"]] == [str(k) for k in range(1, 9)]


# ---- formulas --------------------------------------------------------------------------------------------------

def test_formulas_split_into_top_level_clauses_only():
    assert clauses(r"a = b,\ c = d,\quad e") == ["a = b", "c = d", "e"]
    assert clauses(r"x_{a,\ b} = 1,\ y") == [r"x_{a,\ b} = 1", "y"]
    assert clauses(r"\left(a,\ b\right),\ c") == [r"\left(a,\ b\right)", "c"]
    for method, info in msda.methods_info().items():
        parts = clauses(info.formula)
        assert formula_markdown(info.formula).count("$") == 2 * len(parts)
        assert all(p.count("{") == p.count("}") for p in parts), (method, parts)


def test_the_mask_scale_is_cividis_end_to_end():
    lut = pictures.cividis_lut()
    assert lut.shape == (256, 3) and tuple(lut[0]) == (0, 34, 78) and tuple(lut[-1]) == (254, 232, 56)
    assert math.isclose(float(np.abs(np.diff(lut.astype(int), axis=0)).max()), 3, abs_tol=3)
