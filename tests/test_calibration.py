"""analysis.calibration: ECE against a hand computation, temperature scaling recovers a known temperature, the study's
outcomes and per-method verdicts, bad input, and the command line."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis.calibration import (brier_scores, calibration_error_metric, calibration_metrics, calibration_study,
                                  check_logits, check_splits, expected_calibration_error, fit_temperature,
                                  item_outcomes, max_calibration_error, method_table, model_logits,
                                  reliability_bins)
from analysis.stats import VERDICTS, ece_metric
from msda.models import build_model
from msda.training.checkpoint import save_checkpoint

# Ten items: four at confidence 0.95 (3 right), two at 0.55 (both right), four at 0.25 (all wrong).
CONFIDENCE = torch.tensor([0.95] * 4 + [0.55] * 2 + [0.25] * 4)
CORRECT = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
# By hand, 15 bins of width 1/15: 0.95 is in (14/15, 1], 0.55 in (8/15, 9/15], 0.25 in (3/15, 4/15].
#   bin 15: |0.75 − 0.95| = 0.20 over 4 items; bin 9: |1 − 0.55| = 0.45 over 2; bin 4: |0 − 0.25| = 0.25 over 4.
HAND_ECE = (4 * 0.20 + 2 * 0.45 + 4 * 0.25) / 10  # 0.27
HAND_MCE = 0.45


def _logits_with_confidence(confidence: torch.Tensor, correct: torch.Tensor, classes: int = 5):
    """Logits over `classes` whose softmax has top probability `confidence` (≥ 1/classes) on class 0, the rest spread
    evenly; labels 0 where `correct`, else 1."""
    rest = (1 - confidence) / (classes - 1)
    probabilities = torch.cat([confidence[:, None], rest[:, None].expand(-1, classes - 1)], dim=1)
    labels = torch.where(correct, 0, 1)
    return probabilities.double().log().float(), labels


def test_ece_and_mce_equal_the_hand_computation():
    assert expected_calibration_error(CONFIDENCE, CORRECT) == pytest.approx(HAND_ECE, abs=1e-6)
    assert max_calibration_error(CONFIDENCE, CORRECT) == pytest.approx(HAND_MCE, abs=1e-6)
    values = torch.stack([CONFIDENCE, CORRECT.float()], dim=1).double()
    ones = torch.ones(1, 10, dtype=torch.float64)
    assert float(ece_metric(15)(values, ones)) == pytest.approx(HAND_ECE)  # the bootstrap's statistic agrees
    assert float(calibration_error_metric(15, "l1")(values, ones)) == pytest.approx(HAND_ECE)
    assert float(calibration_error_metric(15, "max")(values, ones)) == pytest.approx(HAND_MCE)
    # two copies of every item as "cells" of one image pool to the same ECE
    cells = torch.stack([values, values], dim=1)
    assert float(calibration_error_metric(15, "l1")(cells, ones)) == pytest.approx(HAND_ECE)
    # an item weight of 2 counts the item twice
    weights = torch.ones(1, 10, dtype=torch.float64)
    weights[0, 3] = 2  # one more wrong item at 0.95: bin 15 becomes |3/5 − 0.95| over 5
    expected = (5 * 0.35 + 2 * 0.45 + 4 * 0.25) / 11
    assert float(ece_metric(15)(values, weights)) == pytest.approx(expected)
    assert float(calibration_error_metric(15, "l1")(values, weights)) == pytest.approx(expected)


def test_metrics_from_logits_agree_with_torchmetrics_and_the_definitions():
    from torchmetrics.classification import MulticlassCalibrationError

    confidence = torch.tensor([0.95] * 4 + [0.55] * 2 + [0.35] * 4)
    logits, labels = _logits_with_confidence(confidence, CORRECT)
    metrics = calibration_metrics(logits, labels)
    hand = (4 * 0.20 + 2 * 0.45 + 4 * 0.35) / 10
    assert metrics["ece"] == pytest.approx(hand, abs=1e-6)
    for norm, key in (("l1", "ece"), ("max", "mce")):
        reference = MulticlassCalibrationError(num_classes=5, n_bins=15, norm=norm)(logits, labels)
        assert metrics[key] == pytest.approx(float(reference), abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(0.5) and metrics["confidence"] == pytest.approx(confidence.mean(), abs=1e-6)
    assert metrics["nll"] == pytest.approx(float(F.cross_entropy(logits, labels)), abs=1e-6)
    probabilities = logits.softmax(1)
    onehot = F.one_hot(labels, 5).float()
    assert metrics["brier"] == pytest.approx(float(((probabilities - onehot) ** 2).sum(1).mean()), abs=1e-6)
    # a certain, right prediction scores 0; a certain, wrong one 2
    assert brier_scores(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1])).tolist() == [0.0, 2.0]


def test_saturated_confidence_is_binned_like_the_bootstrap():
    """A float32 softmax can give exactly 1.0; torchmetrics would bin it alone, stats.ece_metric in the top bin."""
    logits = torch.tensor([[40.0, 0.0], [40.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1, 0])
    items = item_outcomes(logits, labels)
    assert bool((items["confidence"] < 1).all())
    values = torch.stack([items["confidence"], items["correct"].float()], 1).double()
    assert expected_calibration_error(items["confidence"], items["correct"]) == pytest.approx(
        float(ece_metric(15)(values, torch.ones(1, 3, dtype=torch.float64))), abs=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(temperature):
    g = torch.Generator().manual_seed(0)
    calibrated = 3 * torch.randn(20000, 10, generator=g)
    labels = torch.multinomial(calibrated.softmax(1), 1, generator=g)[:, 0]  # the labels follow softmax(calibrated)
    fitted = fit_temperature(calibrated * temperature, labels)
    assert fitted == pytest.approx(temperature, rel=0.05)
    before = calibration_metrics(calibrated * temperature, labels)
    after = calibration_metrics(calibrated * temperature, labels, temperature=fitted)
    assert after["nll"] <= before["nll"] + 1e-9 and after["ece"] < 0.02
    assert after["accuracy"] == before["accuracy"]  # a temperature never changes a prediction


def test_reliability_bins_hold_every_item():
    bins = reliability_bins(CONFIDENCE, CORRECT)
    assert sum(bins["count"]) == 10 and len(bins["low"]) == 15
    assert bins["accuracy"][14] == pytest.approx(0.75) and bins["confidence"][14] == pytest.approx(0.95)
    assert bins["accuracy"][0] is None


class Width(nn.Module):
    def __init__(self, width: int, softmax: bool = False):
        super().__init__()
        self.linear = nn.Linear(3, width)
        self.softmax = softmax

    def forward(self, images):
        out = self.linear(images.mean((2, 3)))
        return out.softmax(1) if self.softmax else out


def test_bad_input_is_refused_in_one_line():
    images = torch.rand(4, 3, 8, 8)
    with pytest.raises(ValueError, match=r"logits \[batch, 10\].*shape \(4, 5\)"):
        model_logits(Width(5), images, num_classes=10)
    with pytest.raises(ValueError, match="look like probabilities"):
        model_logits(Width(10, softmax=True), images, num_classes=10)
    with pytest.raises(ValueError, match="10 columns"):
        check_logits(torch.randn(3, 4), 10)
    with pytest.raises(ValueError, match="must be finite"):
        check_logits(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match="calibration split is empty"):
        fit_temperature(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="calibration split is empty"):
        check_splits(range(10), [])
    with pytest.raises(ValueError, match="shares 2 images with the test split"):
        check_splits(range(10), [8, 9, 10])
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        fit_temperature(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        item_outcomes(torch.randn(2, 3), torch.tensor([0, 1]), temperature=0.0)


def _models(count: int = 4, size: int = 16):
    models = {}
    for index in range(count):
        torch.manual_seed(index)
        models[f"m{index}"] = build_model("resnet20", 10).eval()
    return models


def test_study_keeps_every_image_and_compares_methods():
    from msda.data import Shapes

    images, labels = Shapes("test", n=40, size=16).as_tensors()
    models = _models(4)
    study = calibration_study(models, (images[:24], labels[:24]), (images[24:], labels[24:]), num_classes=10,
                              corruptions=("fog", "gaussian_noise"), severities=(1, 5), corrupted_n=8, batch_size=5)
    outcomes = study["outcomes"]["m0"]
    assert outcomes["test/correct"].dtype == torch.bool and outcomes["test/correct"].shape == (24,)
    assert outcomes["corrupted/confidence"].shape == (4, 8) and outcomes["corrupted/correct"].shape == (4, 8)
    row = study["rows"][0]
    assert row["accuracy"] == pytest.approx(outcomes["test/correct"].float().mean().item())
    assert row["nll_ts"] <= row["nll"] + 0.05  # the temperature is fitted on other images: rarely much worse
    assert row["calibration_nll_ts"] <= row["calibration_nll"] + 1e-9  # …and never worse where it was fitted
    assert len(study["corrupted"]) == 4 * 4
    methods = method_table(study["outcomes"], methods={"m0": "none", "m1": "none", "m2": "mixup", "m3": "mixup"},
                           seeds={"m0": 0, "m1": 1, "m2": 0, "m3": 1}, n_boot=200)
    assert list(methods["method"]) == ["none", "mixup"] and list(methods["seeds"]) == [2, 2]
    assert methods.loc[0, "ece_vs_none"] == "baseline" and methods.loc[1, "ece_vs_none"] in VERDICTS
    assert methods.loc[1, "corrupted_ece_ts_vs_none"] in VERDICTS and methods.loc[1, "confidence_vs_none"] is None
    # the ECE column is compare() with ece_metric on (confidence, correct): seeds averaged
    point = sum(expected_calibration_error(study["outcomes"][m]["test/confidence"], study["outcomes"][m]["test/correct"])
                for m in ("m2", "m3")) / 2
    assert methods.loc[1, "ece_mean"] == pytest.approx(point, abs=1e-5)
    assert methods.loc[1, "ece_ci_low"] <= methods.loc[1, "ece_ci_high"]


V2_CLASSES = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]


def _write_checkpoints(folder, runs):
    meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3,
            "classes": V2_CLASSES, "dataset": "shapes"}
    for method, seed in runs:
        torch.manual_seed(100 * seed + len(method))  # test fixture: different untrained networks
        save_checkpoint(folder / f"{method}-s{seed}.safetensors", build_model("resnet20", 10).state_dict(),
                        {**meta, "method": method, "seed": seed})


def test_cli_writes_tables_outcomes_and_the_manifest_section(tmp_path, capsys):
    from analysis.calibration.__main__ import main
    from analysis.outcomes import load_outcomes

    _write_checkpoints(tmp_path, [(m, s) for m in ("none", "mixup") for s in (0, 1)])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"checkpoints": [], "reports": {"occlusion": {"command": "kept"}}}))
    out = tmp_path / "report"
    main(["--checkpoints", str(tmp_path / "*.safetensors"), "--n", "20", "--n-calibration", "12",
          "--corrupted-n", "6", "--corruptions", "fog", "--severities", "1", "3", "--n-boot", "100",
          "--device", "cpu", "--no-progress", "--out", str(out), "--manifest", str(manifest)])
    assert sorted(p.name for p in out.iterdir()) == ["calibration.csv", "calibration.html", "calibration.json",
                                                     "calibration_methods.csv", "calibration_outcomes.safetensors"]
    stored = load_outcomes(out / "calibration_outcomes.safetensors")
    assert set(stored) == {"none-s0", "none-s1", "mixup-s0", "mixup-s1"}
    assert stored["none-s0"]["test/correct"].shape == (20,) and stored["none-s0"]["corrupted/correct"].shape == (2, 6)
    section = json.loads(manifest.read_text())
    assert section["reports"] == {"occlusion": {"command": "kept"}}  # the rest of the manifest is left alone
    calibration = section["calibration"]
    assert calibration["command"].startswith("python -m analysis.calibration --checkpoints")
    assert calibration["settings"]["calibration_ids"] == "test split images 20 … 31"
    assert [row["method"] for row in calibration["methods"]] == ["mixup", "none"]
    assert {run["model"] for run in calibration["runs"]} == set(stored) and all(run["sha256"] for run in calibration["runs"])
    assert set(calibration["reliability"]) == {"none", "mixup"} and calibration["severity"]
    # the outcome file travels with the manifest (the report folder is not kept), so every verdict can be redone
    assert calibration["outcomes"]["file"] == "studies/calibration_outcomes.safetensors"
    assert (tmp_path / "studies" / "calibration_outcomes.safetensors").read_bytes() == \
        (out / "calibration_outcomes.safetensors").read_bytes()
    page = (out / "calibration.html").read_text()
    assert "Reliability diagrams" in page and "verdicts against none" in page
    assert "calibration.html" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--n-calibration", "0"], "--n-calibration must be an integer in"),
    (["--corrupted-n", "50"], "--corrupted-n must be an integer in"),
    (["--severities", "6"], "--severities must be an integer in"),
])
def test_cli_refuses_bad_arguments(tmp_path, capsys, args, message):
    from analysis.calibration.__main__ import main

    with pytest.raises(SystemExit):
        main(["--checkpoints", str(tmp_path / "x.safetensors"), "--n", "20", "--corrupted-n", "5", "--out",
              str(tmp_path / "o"), *args])  # the last of a repeated option wins
    assert message in capsys.readouterr().err


def test_each_model_keeps_its_colour_in_both_panels_of_the_reliability_figures():
    from analysis.calibration import confidence_histogram, reliability_figure

    bins = {"confidence": [0.5, 0.9], "accuracy": [0.4, 0.95], "count": [3, 5], "low": [0.4, 0.8], "high": [0.5, 0.9]}
    models = {name: {"before": bins, "after": bins} for name in ("none", "mixup", "cutmix")}
    for figure, colour in ((reliability_figure(models), lambda t: t.line.color),
                           (confidence_histogram(models), lambda t: t.marker.color)):
        colours = {}
        for trace in figure.data:
            if trace.name in models:
                colours.setdefault(trace.name, set()).add(colour(trace))
        assert all(len(c) == 1 for c in colours.values()) and len({next(iter(c)) for c in colours.values()}) == 3
