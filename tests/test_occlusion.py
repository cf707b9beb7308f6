"""analysis.occlusion: occluders change exactly their pixels, sensitivity maps and the study's known answers, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis import (OCCLUDER_KINDS, occlude, occluder_region, occlusion_sensitivity, occlusion_study,
                      sample_boxes)
from analysis.report import write_report
from analysis.stats import VERDICTS
from msda.models import build_model
from msda.training.checkpoint import save_checkpoint

from conftest import make_generator


class RegionNet(nn.Module):
    """Logits depend only on one region's pixels; its Grad-CAM is positive there and exactly 0 elsewhere.

    (Features pass a fixed 0/1 mask in ``layer1``, the CAM layer, at full resolution; positive weights keep
    every class's map positive on the region. Class 0 weighs the features most: darkening the region lowers
    p(class 0).)
    """

    def __init__(self, size: int, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, size, size)
        mask[..., rows[0]:rows[1], cols[0]:cols[1]] = 1.0
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = _Mask(mask)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(0.02, 0.1, self.conv.weight.numel()).view_as(self.conv.weight))
            self.conv.bias.fill_(0.05)
            self.fc.weight.copy_(torch.tensor([[4.0, 4.0, 4.0, 4.0], [2.0, 1.0, 0.5, 0.0], [0.0, 0.5, 1.0, 2.0]]))
            self.fc.bias.copy_(torch.tensor([0.0, 0.5, 0.5]))

    def forward(self, images):
        return self.fc(self.layer1(torch.relu(self.conv(images))).mean((2, 3)))


class _Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, features):
        return features * self.mask


def _images(device, batch=4, height=20, width=24, seed=0, low=0.0):
    images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return (low + (1 - low) * images).to(device)


def _reference_region(box, height, width, grow=0):
    """Per-pixel loop (the slow, obvious definition): pixels of integer box (x0, y0, x1, y1) grown by `grow`."""
    x0, y0, x1, y1 = box
    region = torch.zeros(height, width, dtype=torch.bool)
    for i in range(height):
        for j in range(width):
            region[i, j] = x0 - grow <= j < x1 + grow and y0 - grow <= i < y1 + grow
    return region


BOXES = [(3, 2, 11, 9), (0, 12, 6, 20), (18, 0, 24, 5), (7, 7, 8, 8)]  # inside, at the edges, and one pixel


@pytest.mark.parametrize("kind", OCCLUDER_KINDS)
def test_each_kind_changes_exactly_its_region(kind, device):
    images = _images(device)
    original = images.clone()
    boxes = torch.tensor(BOXES, device=device)
    out = occlude(images, boxes, kind=kind, border=2 if kind in ("solid", "frame") else None)
    assert torch.equal(images, original)  # inputs untouched
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    changed = (out != images).any(1)
    for b, box in enumerate(BOXES):
        inside = _reference_region(box, 20, 24)
        ring = _reference_region(box, 20, 24, grow=2) & ~inside  # clipped to the image by construction
        expected = {"solid": inside | ring, "frame": ring}.get(kind, inside)
        assert torch.equal(changed[b].cpu(), expected), (kind, box)
    region = occluder_region(boxes, 20, 24, kind=kind, border=2 if kind in ("solid", "frame") else None)
    assert torch.equal(region[:, 0], changed)


def test_translucent_is_the_half_blend_and_solid_is_opaque_with_a_contrasting_ring(device):
    images = _images(device, batch=2)
    boxes = torch.tensor([[4, 4, 12, 10], [10, 6, 20, 16]], device=device)
    fill = torch.tensor([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]], device=device)
    inside = occluder_region(boxes, 20, 24, kind="translucent")[:, 0]
    blend = occlude(images, boxes, kind="translucent", fill=fill)
    expected = 0.5 * images + 0.5 * fill[:, :, None, None]
    torch.testing.assert_close(blend.permute(1, 0, 2, 3)[:, inside], expected.permute(1, 0, 2, 3)[:, inside])

    solid = occlude(images, boxes, kind="solid", fill=fill, border=3)
    ring = occluder_region(boxes, 20, 24, kind="frame", border=3)[:, 0]
    for b, ring_value in ((0, 0.0), (1, 1.0)):  # a fill with mean ≥ 0.5 gets a black ring, a dark one white
        assert bool((solid[b][:, inside[b]] == fill[b][:, None]).all())
        assert bool((solid[b][:, ring[b]] == ring_value).all())


def test_smooth_is_opaque_in_the_core_and_fades_to_the_edge(device):
    images = torch.zeros(1, 3, 24, 24, device=device)
    out = occlude(images, torch.tensor([4, 4, 20, 20], device=device), kind="smooth", fill=1.0)[0, 0]
    assert float(out[12, 12]) == 1.0 and 0.0 < float(out[4, 12]) < 0.2 and float(out[3, 12]) == 0.0
    row = out[12, 4:12]
    assert bool((row[1:] >= row[:-1]).all())  # rises monotonically from the edge inwards


def test_occlude_refuses_bad_arguments(device):
    images = _images(device, batch=2)
    good = torch.tensor([[0, 0, 4, 4], [1, 1, 5, 5]], device=device)
    with pytest.raises(ValueError, match="kind must be one of 'solid'"):
        occlude(images, good, kind="opaque")
    with pytest.raises(ValueError, match=r"x1 > x0 and y1 > y0, got \[5.0, 1.0, 5.0, 5.0\]"):
        occlude(images, torch.tensor([[0, 0, 4, 4], [5, 1, 5, 5]], device=device), kind="solid")
    with pytest.raises(ValueError, match=r"shape \[2, 4\]"):
        occlude(images, good[:1], kind="solid")
    with pytest.raises(ValueError, match="border does not apply to kind='translucent'"):
        occlude(images, good, kind="translucent", border=2)
    with pytest.raises(ValueError, match=r"fill must be in \[0, 1\]"):
        occlude(images, good, kind="solid", fill=2.0)


def test_sample_boxes_are_reproducible_inside_the_image_and_of_the_requested_area(device):
    boxes = sample_boxes(500, 20, 24, box_frac=0.1, generator=make_generator(device, 3))
    assert boxes.shape == (500, 4) and boxes.device.type == device.type
    assert torch.equal(boxes, sample_boxes(500, 20, 24, box_frac=0.1, generator=make_generator(device, 3)))
    assert bool((boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 24).all() and (boxes[:, 3] <= 20).all())
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) / (20 * 24)
    assert float((area - 0.1).abs().max()) < 0.02
    assert int(boxes[:, 0].min()) == 0 and int(boxes[:, 2].max()) == 24  # every position is reachable


def test_sensitivity_of_a_region_model_peaks_on_its_region(device):
    model = RegionNet(16, rows=(0, 8), cols=(8, 16)).to(device)  # top-right quadrant
    images = _images(device, batch=2, height=16, width=16, low=0.7)  # bright: a grey window lowers p(class 0)
    heat = occlusion_sensitivity(model, images, window=4, stride=2, target=0)
    assert heat.shape == (2, 16, 16) and heat.device.type == device.type
    region = torch.zeros(16, 16, dtype=torch.bool, device=device)
    region[0:8, 8:16] = True
    for b in range(2):
        peak = int(heat[b].flatten().argmax())
        assert bool(region.flatten()[peak])
        assert float(heat[b][region].mean()) > 0 and float(heat[b][12:, :2].abs().max()) == 0.0  # out of reach: 0
    chunked = occlusion_sensitivity(model, images, window=(4, 4), stride=(2, 2), target=0, batch_size=3)
    torch.testing.assert_close(chunked, heat)


def _quadrant_setup(device, batch=3):
    model = RegionNet(32, rows=(0, 16), cols=(0, 16)).to(device)  # logits and CAM live in the top-left quadrant
    images = _images(device, batch=batch, height=32, width=32, seed=5)
    with torch.no_grad():
        labels = model(images).argmax(1)  # the model is right on every clean image
    masks = torch.zeros(batch, 1, 32, 32, device=device)
    masks[..., :16, :16] = 1.0  # the "object" is the quadrant the model looks at
    return model, images, labels, masks


def test_study_model_that_never_sees_the_occluder_does_not_flip_and_does_not_latch(device):
    model, images, labels, masks = _quadrant_setup(device)
    far = torch.tensor([[20, 20, 28, 28], [19, 22, 27, 30]], device=device, dtype=torch.float32)
    boxes = far.expand(3, 2, 4)  # 3 px or more from the quadrant, border ring included
    table = occlusion_study({"region": model}, images, labels, kinds=["solid", "translucent", "smooth", "frame"],
                            boxes=boxes, masks=masks, border=2)
    assert list(table["kind"]) == ["solid", "translucent", "smooth", "frame"]
    assert (table["clean_accuracy"] == 1.0).all() and (table["occluded_accuracy"] == 1.0).all()
    assert (table["flip_rate"] == 0.0).all() and (table["true_prob_drop"].abs() < 1e-6).all()
    assert (table["latching"] == 0.0).all() and (table["latching_clean"] == 0.0).all()
    assert table["localisation"].tolist() == pytest.approx([4.0] * 4)  # all energy on 1/4 of the image
    assert (table["pointing"] == 1.0).all() and (table["pointing_occluded"] == 1.0).all()
    assert (table["images"] == 3).all() and (table["occluded_images"] == 6).all()


def test_study_latching_score_of_a_box_over_the_cam_is_computed_by_hand(device):
    model, images, labels, masks = _quadrant_setup(device)
    boxes = torch.tensor([0, 0, 16, 16], device=device, dtype=torch.float32).expand(3, 1, 4)
    table = occlusion_study({"region": model}, images, labels, kinds=["translucent", "solid", "frame"],
                            boxes=boxes, masks=masks, border=2).set_index("kind")
    # All CAM energy is in the quadrant. translucent: region = the box = 1/4 of the image → 4.
    assert table.loc["translucent", "latching"] == pytest.approx(4.0)
    assert table.loc["translucent", "latching_clean"] == pytest.approx(4.0)
    # solid: box + 2-px ring clipped at the image edge = 18 × 18 px, and it holds all the energy → 1024 / 324.
    assert table.loc["solid", "latching"] == pytest.approx(1024 / 324)
    assert table.loc["solid", "occluder_area"] == pytest.approx(324 / 1024)
    # frame: only the ring is drawn and the CAM never reaches it → 0.
    assert table.loc["frame", "latching"] == 0.0
    assert table.loc["translucent", "localisation_occluded"] == pytest.approx(4.0)


def test_study_boxes_are_shared_by_models_and_reproducible(device):
    model, images, labels, masks = _quadrant_setup(device, batch=4)
    twin = RegionNet(32, rows=(0, 16), cols=(0, 16)).to(device)
    run = lambda seed: occlusion_study({"a": model, "b": twin}, images, labels, kinds=["solid", "smooth"],  # noqa: E731
                                       n_boxes=3, box_frac=0.2, generator=make_generator(device, seed),
                                       batch_size=5)
    first, again = run(0), run(0)
    assert len(first) == 4 and list(first["model"]) == ["a", "a", "b", "b"]
    metrics = first.columns.drop("model")
    assert first[metrics].equals(again[metrics])
    a, b = (first[first["model"] == name][metrics].reset_index(drop=True) for name in ("a", "b"))
    assert a.equals(b)  # identical models see identical boxes → identical rows
    assert not math.isnan(first["latching"].iloc[0])


def test_study_refuses_bad_arguments(device):
    model, images, labels, _ = _quadrant_setup(device)
    with pytest.raises(ValueError, match="needs generator"):
        occlusion_study({"m": model}, images, labels, kinds=["solid"], n_boxes=1, box_frac=0.1)
    with pytest.raises(ValueError, match="kind must be one of"):
        occlusion_study({"m": model}, images, labels, kinds=["glass"], n_boxes=1, box_frac=0.1,
                        generator=make_generator(device))
    with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \[3\]"):
        occlusion_study({"m": model}, images, labels[:2], kinds=["solid"], n_boxes=1, box_frac=0.1,
                        generator=make_generator(device))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        occlusion_study({"m": model}, images, labels + 5, kinds=["solid"], n_boxes=1, box_frac=0.1,
                        generator=make_generator(device))
    with pytest.raises(ValueError, match="models must be a non-empty dict"):
        occlusion_study({}, images, labels, kinds=["solid"], generator=make_generator(device))


def test_report_writes_csv_json_with_nan_as_null_and_self_contained_html(tmp_path):
    import pandas as pd
    import plotly.graph_objects as go

    table = pd.DataFrame({"model": ["a", "b"], "score": [1.5, float("nan")]})
    files = write_report(tmp_path / "out", "study", table=table, summary={"seed": 0, "tensor": torch.tensor([1, 2])},
                         title="A <study>", sections=[("Table", table), ("Figure", go.Figure(go.Bar(y=[1, 2]))),
                                                      ("Notes", "line one\nline <two>")])
    assert sorted(files) == ["csv", "html", "json"]
    assert json.loads(files["json"].read_text()) == {"seed": 0, "tensor": [1, 2], "rows": [
        {"model": "a", "score": 1.5}, {"model": "b", "score": None}]}
    assert pd.read_csv(files["csv"])["model"].tolist() == ["a", "b"]
    page = files["html"].read_text()
    assert "A &lt;study&gt;" in page and "line &lt;two&gt;" in page and "Plotly.newPlot" in page
    assert '<script src="https://cdn.plot.ly' not in page  # plotly.js is embedded, the page opens offline
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["study.csv", "study.html", "study.json"]


V2_CLASSES = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]
V1_CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse", "crescent"]


def _write_checkpoints(folder, runs, classes=V2_CLASSES):
    meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3,
            "classes": classes, "dataset": "shapes"}
    for method, seed in runs:
        torch.manual_seed(100 * seed + len(method))  # test fixture: different untrained networks
        save_checkpoint(folder / f"{method}-s{seed}.safetensors", build_model("resnet20", 10).state_dict(),
                        {**meta, "method": method, "seed": seed})


def test_cli_writes_the_reports(tmp_path, capsys):
    from analysis.occlusion.__main__ import main

    _write_checkpoints(tmp_path, [("none", 0), ("cutmix", 1)])
    result = main(["--checkpoints", str(tmp_path / "*.safetensors"), "--data", "shapes", "--n", "6",
                   "--n-boxes", "2", "--examples", "1", "--device", "cpu", "--no-progress",
                   "--kinds", "solid", "smooth", "--out", str(tmp_path / "report")])
    table = result["table"]
    assert len(table) == 4 and set(table["method"]) == {"none", "cutmix"} and "pointing" in table.columns
    methods = result["methods"]  # one seed per method: intervals over the images only
    assert list(zip(methods["method"], methods["kind"])) == [("cutmix", "solid"), ("cutmix", "smooth"),
                                                             ("none", "solid"), ("none", "smooth")]
    assert list(methods["latching_vs_none"])[2:] == ["baseline", "baseline"]
    assert set(methods["latching_vs_none"][:2]) <= set(VERDICTS) and (methods["seeds"] == 1).all()
    assert table["faithfulness"].notna().all() and (table["faithfulness"] >= -1).all()
    assert set(table["occluder_closest_class"]) == {"circle"} and (table["occluder_class_iou"] < 0.85).all()
    summary = json.loads((tmp_path / "report" / "occlusion.json").read_text())
    assert summary["command"].startswith("python -m analysis.occlusion --checkpoints") and summary["seconds"] > 0
    assert len(summary["rows"]) == 4 and "latching" in summary["metrics"] and "faithfulness" in summary["metrics"]
    page = (tmp_path / "report" / "occlusion.html").read_text()
    assert "Example 1" in page and "latching" in page
    assert "occlusion.html" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "occlusion.csv", "occlusion.html", "occlusion.json", "occlusion_methods.csv", "occlusion_outcomes.safetensors"]


def test_cli_compares_methods_over_seeds_and_images_and_keeps_every_item(tmp_path):
    import pandas as pd

    from analysis.occlusion.__main__ import main
    from analysis.outcomes import load_outcomes

    _write_checkpoints(tmp_path, [(method, seed) for method in ("none", "mixup") for seed in (0, 1, 2)])
    result = main(["--checkpoints", str(tmp_path / "*.safetensors"), "--n", "6", "--n-boxes", "2",
                   "--examples", "0", "--device", "cpu", "--no-progress", "--kinds", "translucent",
                   "--replication-data-seed", "3", "--out", str(tmp_path / "report")])
    methods = result["methods"].set_index("method")
    assert list(methods.index) == ["mixup", "none"] and (methods["seeds"] == 3).all()
    stored = load_outcomes(tmp_path / "report" / "occlusion_outcomes.safetensors")
    assert set(stored) == {f"{m}-s{s}" for m in ("none", "mixup") for s in range(3)}
    none = stored["none-s0"]
    assert none["translucent/correct"].dtype == torch.bool and none["translucent/correct"].shape == (6, 2)
    assert none["clean/correct"].shape == (6,) and none["replication/translucent/latching"].shape == (6,)
    assert none["translucent/flip"].shape == (6, 2) and none["translucent/faithfulness"].shape == (6,)
    rows = result["table"].set_index("model")
    for seed in range(3):  # each row's hit rate is the mean of its stored hits
        values = stored[f"none-s{seed}"]
        assert rows.loc[f"none-s{seed}", "occluded_accuracy"] == pytest.approx(
            values["translucent/correct"].float().mean().item())
    # Per-image scores; an image whose score is undefined (NaN) for any model is left out for every model (paired).
    every = torch.stack([values["translucent/latching"] for values in stored.values()])
    defined = torch.isfinite(every).all(0)
    latching = torch.stack([stored[f"none-s{s}"]["translucent/latching"] for s in range(3)])[:, defined]
    assert methods.loc["none", "latching_mean"] == pytest.approx(latching.double().mean().item(), rel=1e-3)
    per_image = torch.stack([stored[f"none-s{s}"]["translucent/correct"].double().mean(1) for s in range(3)])
    assert methods.loc["none", "occluded_accuracy_mean"] == pytest.approx(per_image.mean().item())
    low, high = methods.loc["mixup", ["occluded_accuracy_ci_low", "occluded_accuracy_ci_high"]]
    assert low <= methods.loc["mixup", "occluded_accuracy_mean"] <= high
    assert methods.loc["mixup", "latching_vs_none"] in VERDICTS and methods.loc["none", "latching_vs_none"] == "baseline"
    assert isinstance(methods.loc["mixup", "latching_replicated"], (bool, np.bool_))
    summary = json.loads((tmp_path / "report" / "occlusion.json").read_text())
    assert "spread_rule" not in summary and "comparisons" not in summary and "bootstrap" in summary["interval"]
    assert summary["outcomes"] == "occlusion_outcomes.safetensors" and summary["replication"]["data_seed"] == 3
    assert len(pd.read_csv(tmp_path / "report" / "occlusion_methods.csv")) == 2
    page = (tmp_path / "report" / "occlusion.html").read_text()
    assert "95 % intervals and verdicts against none" in page and "spread" not in page


def test_cli_refuses_a_replication_split_the_models_saw(tmp_path):
    from analysis.occlusion.__main__ import main

    _write_checkpoints(tmp_path, [("none", 0)])
    with pytest.raises(ValueError, match="--replication-data-seed 0 is a data seed the checkpoints were trained"):
        main(["--checkpoints", str(tmp_path / "*.safetensors"), "--n", "2", "--replication-data-seed", "0",
              "--device", "cpu", "--out", str(tmp_path / "report")])


def test_cli_refuses_an_occluder_that_is_a_class_shape(tmp_path):
    # Shapes version 1 has a square class: a solid box is one, and latching on to it would be no fault.
    from analysis.occlusion.__main__ import main

    _write_checkpoints(tmp_path, [("none", 0)], classes=V1_CLASSES)
    args = ["--checkpoints", str(tmp_path / "*.safetensors"), "--n", "2", "--n-boxes", "1", "--examples", "0",
            "--device", "cpu", "--no-progress", "--out", str(tmp_path / "report")]
    with pytest.raises(ValueError, match=r"--kinds solid: the occluder's silhouette matches the class 'square' "
                                         r"of these checkpoints \(IoU 1.00"):
        main(args + ["--kinds", "solid"])
    table = main(args + ["--kinds", "frame"])["table"]  # a hollow frame is no class of version 1
    assert table["occluder_class_iou"].iloc[0] < 0.85
    flagged = main(args + ["--kinds", "solid", "--allow-class-shaped-occluders"])["table"]
    assert flagged["occluder_closest_class"].iloc[0] == "square" and flagged["occluder_class_iou"].iloc[0] == 1.0


def test_no_occluder_kind_matches_a_version_2_class_and_every_box_matches_the_version_1_square():
    from analysis.occlusion.class_shapes import MATCH_IOU, matching_classes, occluder_class_iou

    for kind in OCCLUDER_KINDS:
        assert matching_classes(kind, V2_CLASSES) == {}, kind
        assert max(occluder_class_iou(kind, V2_CLASSES).values()) < MATCH_IOU
    for kind in ("solid", "translucent", "smooth"):
        assert matching_classes(kind, V1_CLASSES)["square"] == pytest.approx(1.0)
    assert occluder_class_iou("solid", ["cat", "dog"]) == {}  # no known silhouettes


def test_cam_confidence_change_is_the_packages_metric_and_zero_for_an_all_ones_map(device):
    from analysis.cam import cam_confidence_change

    model, images, labels, _ = _quadrant_setup(device)
    ones = torch.ones(images.shape[0], *images.shape[-2:], device=device)
    assert cam_confidence_change(model, images, ones, labels).abs().max() < 1e-6
    dark = torch.zeros_like(ones)  # the image goes black: class 0's evidence (the bright quadrant) is gone
    change = cam_confidence_change(model, images, dark, labels)
    with torch.no_grad():
        before = torch.softmax(model(images), 1).gather(1, labels[:, None])[:, 0]
        after = torch.softmax(model(images * 0), 1).gather(1, labels[:, None])[:, 0]
    assert torch.allclose(change, after - before, atol=1e-6) and change.device.type == images.device.type
    assert torch.allclose(cam_confidence_change(model, images, dark, labels, reference=before), change, atol=1e-6)
    with pytest.raises(ValueError, match="maps must have shape"):
        cam_confidence_change(model, images, ones[:1], labels)


def test_example_figures_take_every_seed_of_every_method():
    # 45 checkpoints (15 methods × 3 seeds) make 46 rows of overlays: more than plotly's default spacing allows.
    from analysis.occlusion.__main__ import _example_figures

    torch.manual_seed(0)  # test fixture: an untrained network
    model = build_model("resnet20", 10).eval()
    models = {f"model-{index}": model for index in range(45)}
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[4.0, 4.0, 9.0, 9.0]])
    ((title, figure),) = _example_figures(models, images, torch.tensor([3]), boxes, ["solid"], V2_CLASSES,
                                          cam_method="gradcam", cam_target="label", fill=None, border=None)
    assert "Example 1" in title and len(figure.data) == 2 * 46


def test_a_figure_that_fails_never_costs_the_report_its_tables(tmp_path):
    import pandas as pd

    from analysis.report import write_report

    def broken_figures():
        raise ValueError("a figure could not be built")

    table = pd.DataFrame({"model": ["none-s0"], "latching": [1.0]})
    with pytest.raises(ValueError, match="could not be built"):
        write_report(tmp_path, "study", table=table, summary={"command": "c"}, title="t", sections=broken_figures)
    assert pd.read_csv(tmp_path / "study.csv").equals(table)
    assert json.loads((tmp_path / "study.json").read_text())["rows"] == [{"model": "none-s0", "latching": 1.0}]
    assert not (tmp_path / "study.html").exists()
    files = write_report(tmp_path, "study", table=table, title="t", sections=lambda: [("Notes", "built later")])
    assert "built later" in files["html"].read_text()
