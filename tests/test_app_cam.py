"""The CAM & Occlusion page through AppTest: it runs with no checkpoints and with a folder of them, shows each
model's predictions and the CAM energy on the occluder (the numbers of analysis.occlusion_study), and turns
hostile or mismatched checkpoint uploads and bad images into messages."""

from __future__ import annotations

import json

import re
from pathlib import Path

import pytest
import test_app_checkpoint_files as checkpoints
import test_app_files as files
import torch
from streamlit.testing.v1 import AppTest

from analysis import load_checkpoint, occlusion_study
from app.lib.cam_view import box_from_centre
from app.lib.checkpoints import ENV_VAR
from app.lib.examples import render_shapes_sample

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "1_CAM_and_Occlusion.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    checkpoints.write_folder(folder)
    return folder


def open_page(monkeypatch, folder: Path) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def page(monkeypatch, folder) -> AppTest:
    return open_page(monkeypatch, folder)


def card_text(at: AppTest, index: int) -> str:
    block = at.get_by_key(f"model-{index}")
    return "\n".join([m.value for m in block.markdown] + [c.value for c in block.caption])


def has_key(at: AppTest, key: str) -> bool:
    try:
        return bool(at.get_by_key(key))
    except KeyError:
        return False


def cards(at: AppTest) -> list[str]:
    return [card_text(at, index) for index in range(len(checkpoints.METHODS) + 2) if has_key(at, f"model-{index}")]


def upload_checkpoint(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="cam:upload").set_value([(name, data, "application/octet-stream")])
    return at.run()


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_no_checkpoints_is_a_note_not_an_exception(monkeypatch, tmp_path, state):
    folder = tmp_path / "checkpoints"
    if state == "empty":
        folder.mkdir()
    at = open_page(monkeypatch, folder)
    notes = " ".join(i.value for i in at.info)
    assert ("No checkpoints" if state == "empty" else "does not exist") in notes and str(folder) in notes
    assert not at.error and not cards(at)
    assert has_key(at, "cam:preview")  # the image and the occluder are still shown


def test_every_model_shows_its_prediction_and_the_cam_on_the_occluder(page):
    texts = cards(page)
    assert len(texts) == len(checkpoints.METHODS)
    for method, text in zip(checkpoints.METHODS, texts):
        assert f"### {method}" in text and f"method **{method}**" in text
        assert re.search(r"prediction: \*\*\w+\*\* 0\.\d\d → occluded: \*\*\w+\*\* 0\.\d\d", text), text
        assert re.search(r"on the occluder: \*\*\d+%\*\* before → \*\*\d+%\*\* after \(the occluder covers \d+% "
                         r"of the image\) · latching \d\.\d\d → \*\*\d\.\d\d\*\*", text), text
    assert not page.error
    for index in range(len(texts)):
        assert has_key(page, f"cam:overlay:{index}") and has_key(page, f"cam:topk:{index}")
    assert has_key(page, "cam:sensitivity:0")


def test_the_numbers_are_those_of_the_occlusion_study(page, folder):
    """The page's latching equals analysis.occlusion_study's for the same model, image and box."""
    text = card_text(page, 0)
    shown = float(re.search(r"latching \d\.\d\d → \*\*(\d\.\d\d)\*\*", text).group(1))
    model, _ = load_checkpoint(folder / "cutmix.safetensors")
    image = torch.from_numpy(render_shapes_sample(0, 32)).permute(2, 0, 1)[None].float() / 255
    box = box_from_centre("solid", 0.5, 0.5, 0.35).pixels(32)
    with torch.no_grad():
        predicted = model(image).argmax(1)
    row = occlusion_study({"m": model}, image, predicted, kinds=("solid",), boxes=box[None],
                          cam_target="predicted").iloc[0]
    assert shown == pytest.approx(row["latching"], abs=0.006)


def test_latching_is_measured_over_many_places_as_the_study_does(page, folder):
    """Each card gives the study's numbers over a 4 × 4 grid of places of the box, equal to
    analysis.occlusion_study's for the same model, image, boxes and class (the shapes sample's true class),
    with CAM faithfulness."""
    from app.lib.cam_view import grid_boxes
    from app.lib.examples import SHAPES_SAMPLES, SHAPES_SEED, SHAPES_SPLIT
    from msda.data import Shapes

    text = card_text(page, 0)
    match = re.search(r"\*\*Over 16 places\*\* of this box .*latching (\d\.\d\d) → \*\*(\d\.\d\d)\*\* · "
                      r"prediction flips at \*\*(\d+)%\*\*.* CAM faithfulness ([+-]\d\.\d\d)", text)
    assert match, text
    model, _ = load_checkpoint(folder / "cutmix.safetensors")
    image = torch.from_numpy(render_shapes_sample(0, 32)).permute(2, 0, 1)[None].float() / 255
    label = Shapes(SHAPES_SPLIT, n=SHAPES_SAMPLES, seed=SHAPES_SEED).render([0])[1]
    boxes = grid_boxes(box_from_centre("solid", 0.5, 0.5, 0.35), 32)
    assert boxes.shape == (16, 4) and boxes[:, 0].unique().numel() == 4 and boxes[:, 1].unique().numel() == 4
    row = occlusion_study({"m": model}, image, label, kinds=("solid",), boxes=boxes[None], cam_target="label").iloc[0]
    assert float(match.group(2)) == pytest.approx(row["latching"], abs=0.006)
    assert float(match.group(3)) == pytest.approx(100 * row["flip_rate"], abs=0.6)
    assert float(match.group(4)) == pytest.approx(row["faithfulness"], abs=0.006)


def test_an_occluder_that_reads_as_an_object_is_warned_about():
    from app.lib.cam_view import read_as_object

    v1 = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse", "crescent"]
    v2 = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]
    # Version 1: a solid box is the square class; one flip to it is enough to warn.
    warning = read_as_object([("square", 1)], 16, "solid", v1, 32, 0.12)
    assert "turns to **square** at 1 of 16 places" in warning and "IoU 1.00" in warning
    # Version 2: no class looks like a box; a few scattered flips are no warning, a flip at half the places is.
    assert read_as_object([("ring", 3), ("star", 1)], 16, "solid", v2, 32, 0.12) is None
    assert "turns to **star** at 8 of 16 places, wherever it is" in read_as_object([("star", 8)], 16, "solid", v2,
                                                                                    32, 0.12)
    assert read_as_object([], 16, "solid", v1, 32, 0.12) is None
    assert read_as_object([("cat", 9)], 16, "frame", ["cat", "dog"], 224, 0.1) is not None  # any classes: rule 2


def test_moving_the_occluder_and_a_random_place_change_the_numbers(page):
    before = card_text(page, 1)
    page.slider(key="cam:x").set_value(0.2).run()
    assert not page.exception and card_text(page, 1) != before
    page.radio(key="cam:placement").set_value("random").run()
    first = " ".join(m.value for m in page.markdown if "**Occluder:**" in m.value)
    page.button(key="cam:resample").click().run()
    assert page.number_input(key="cam:seed").value == 1
    assert " ".join(m.value for m in page.markdown if "**Occluder:**" in m.value) != first
    for kind in ("translucent", "smooth", "frame"):
        page.selectbox(key="cam:kind").set_value(kind).run()
        assert not page.exception and not page.error and len(cards(page)) == 3


def test_other_cam_methods_and_the_true_class(page):
    page.selectbox(key="cam:method").set_value("gradcam++").run()
    page.radio(key="cam:target").set_value("true").run()
    assert not page.exception and not page.error
    # Shapes version 2's sample #0 is a triangle (version 1's was a square).
    assert "CAM of **triangle** on the occluder" in card_text(page, 0)
    page.selectbox(key="cam:method").set_value("eigencam").run()
    assert "class-agnostic" in card_text(page, 0)


def test_a_pickle_with_code_is_refused_and_runs_nothing(page, tmp_path):
    marker = tmp_path / "created_by_unpickling.txt"
    upload_checkpoint(page, "weights.pt", checkpoints.pickle_with_code(marker))
    assert not page.exception, [e.value for e in page.exception]
    errors = [e.value for e in page.error]
    assert any("Upload weights.pt was not loaded" in e and "contains Python objects/code" in e for e in errors), errors
    refusal = next(e for e in errors if "weights.pt" in e)
    # One short sentence, never torch's paragraph that ends by advising weights_only=False.
    assert "is a pickle that would run code" in refusal and "only .safetensors or weights-only .pt files" in refusal
    assert "weights_only" not in refusal and "WeightsUnpickler" not in refusal and len(refusal) < 400, refusal
    assert not marker.exists()
    assert len(cards(page)) == len(checkpoints.METHODS)  # the shipped models are unaffected


def test_a_checkpoint_for_another_architecture_is_refused(page, tmp_path):
    upload_checkpoint(page, "wrong.safetensors", checkpoints.wrong_architecture(tmp_path))
    assert not page.exception
    errors = [e.value for e in page.error]
    assert any("wrong.safetensors was not loaded" in e and "does not fit arch 'resnet20'" in e for e in errors), errors
    assert len(cards(page)) == len(checkpoints.METHODS)


def test_a_plain_state_dict_needs_its_architecture(page):
    upload_checkpoint(page, "plain.pt", checkpoints.plain_state_dict_pt())
    errors = [e.value for e in page.error]
    assert any("does not say which architecture" in e and "Architecture of uploaded files" in e for e in errors)
    page.selectbox(key="cam:arch").set_value("resnet20").run()
    assert not page.exception and not page.error
    texts = cards(page)
    assert len(texts) == len(checkpoints.METHODS) + 1 and "### plain" in texts[0]
    assert re.search(r"prediction: \*\*class \d\*\*", texts[0]), texts[0]  # no metadata: "class 0", "class 1", …


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name, data, message", [
    ("notes.png", files.not_an_image(), "notes.png is not an image this app opens"),
    ("bomb.png", files.decompression_bomb(), "bomb.png was refused as a possible decompression bomb"),
], ids=["not-an-image", "decompression-bomb"])
def test_a_bad_image_is_a_message_and_the_example_is_used(page, name, data, message):
    page.file_uploader(key="cam:upload_image").set_value((name, data, "image/png")).run()
    assert not page.exception
    assert any(message in e.value and "Showing triangle (shapes sample test #0) instead" in e.value for e in page.error)
    assert len(cards(page)) == len(checkpoints.METHODS)


def test_an_uploaded_photo_is_fitted_to_each_model(page):
    page.file_uploader(key="cam:upload_image").set_value(("red.png", files.solid_png((200, 20, 20), 90, 60),
                                                          "image/png")).run()
    assert not page.exception and not page.error
    assert any("upload: red.png: 90 × 60 → centre crop 60 × 60 → resized to 32 × 32" in c.value for c in page.caption)
    page.file_uploader(key="cam:upload_image").set_value(("dot.png", files.one_pixel_png(), "image/png")).run()
    assert any("only 1 × 1 pixels" in w.value for w in page.warning)


def test_no_hooks_or_frozen_parameters_are_left_on_the_shared_models(page, folder):
    """The cached models are shared by every session: after the page has drawn CAMs and the study, none of
    their modules keeps a hook and every parameter is trainable again (analysis.cam restores them)."""
    from app.lib.checkpoints import list_shipped, load_shipped

    page.selectbox(key="cam:method").set_value("layercam").run()
    assert not page.exception
    for entry in list_shipped(folder)[0]:
        loaded = load_shipped(entry)  # the same cached object the page used
        for module in loaded.model.modules():
            assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
            assert not getattr(module, "_full_backward_hooks", None)
        assert all(p.requires_grad and p.grad is None for p in loaded.model.parameters())
        assert not loaded.model.training


def test_the_page_preselects_the_baseline_a_hard_and_a_soft_mask(monkeypatch, tmp_path):
    checkpoints.write_folder(tmp_path, methods=("agmix", "cutmix", "fmix", "none", "smoothmix_s"))
    at = open_page(monkeypatch, tmp_path)
    assert [label.split(" · ")[0] for label in at.multiselect(key="cam:shipped").value] == [
        "cutmix", "none", "smoothmix_s"]


def test_preselection_tops_up_from_the_folder_order(tmp_path):
    from app.lib.checkpoints import list_shipped, preselected

    checkpoints.write_folder(tmp_path, methods=("agmix", "cutmix", "fmix", "none"))
    entries, _ = list_shipped(tmp_path)
    names = lambda labels: [label.split(" · ")[0] for label in labels]  # noqa: E731
    assert names(preselected(entries, ("none", "smoothmix_s"), 3)) == ["agmix", "cutmix", "none"]
    assert names(preselected(entries, (), 2)) == ["agmix", "cutmix"]
    assert names(preselected(entries, ("fmix", "none", "agmix", "cutmix"), 1)) == ["agmix", "cutmix", "fmix", "none"]


def test_the_folder_listing_reads_the_manifest_and_skips_resume_states(tmp_path):
    from app.lib.checkpoints import list_shipped, load_shipped

    checkpoints.write_folder(tmp_path, methods=("cutmix", "none"))
    (tmp_path / "mixup.safetensors.state.pt").write_bytes(b"a run in progress")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    entries, note = list_shipped(tmp_path)
    assert note is None and [entry.path.name for entry in entries] == ["cutmix.safetensors", "none.safetensors"]
    assert entries[0].manifest["method"] == "cutmix" and entries[0].label == "cutmix · 10.0%"
    assert load_shipped(entries[0]).warning is None
    checkpoints.save_checkpoint(tmp_path / "none.safetensors", checkpoints.random_state(seed=7),
                                checkpoints.meta("none"))  # replaced after the manifest was written
    assert "differs from the file manifest.json describes" in load_shipped(entries[1]).warning


def test_the_occlusion_study_of_every_seed_is_shown_per_occluder_kind(monkeypatch, tmp_path):
    checkpoints.write_folder(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rows = [{"method": method, "kind": kind, "seeds": 3, "latching_mean": latching, "latching_ci_low": latching - 0.05,
             "latching_ci_high": latching + 0.05, "occluded_accuracy_mean": 0.5, "occluded_accuracy_ci_low": 0.48,
             "occluded_accuracy_ci_high": 0.52, "latching_vs_none": verdict}
            for kind, shift in (("solid", 0.0), ("translucent", 0.3))
            for method, latching, verdict in (("none", 1.0 + shift, "baseline"), ("cutmix", 0.8 + shift, "better"))]
    manifest["reports"] = {"occlusion": {"command": "python -m analysis.occlusion --n 500",
                                         "interval": "95 % paired bootstrap intervals", "methods": rows}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    at = open_page(monkeypatch, tmp_path)
    table = at.dataframe[-1].value
    assert list(table["method"]) == ["none", "cutmix"]
    assert list(table["latching"]) == ["1.00 [0.95, 1.05]", "0.80 [0.75, 0.85]"]
    assert list(table["vs none"]) == ["(baseline)", "better"]
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    latching = next(c for c in charts if "latching" in c["layout"].get("title", {}).get("text", ""))
    assert latching["data"][0]["error_y"]["array"] == pytest.approx([0.05, 0.05])
    assert not any("spread" in c.value for c in at.caption)
    at.radio(key="cam:study-kind").set_value("translucent").run()
    assert list(at.dataframe[-1].value["latching"]) == ["1.30 [1.25, 1.35]", "1.10 [1.05, 1.15]"]
