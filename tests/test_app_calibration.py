"""The Robustness page's calibration and PGD sections: the shipped studies from the manifest's ``calibration`` and
``attacks`` sections before anything runs, and the chosen models' calibration computed on demand."""

from __future__ import annotations

import json
from pathlib import Path

import test_app_checkpoint_files as checkpoints
from streamlit.testing.v1 import AppTest

from app.lib.checkpoints import ENV_VAR

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "2_Robustness.py"
INTERVAL = "Intervals are 95 % paired bootstrap intervals over seeds and test images."


def _bins(accuracy: float) -> dict:
    low = [k / 15 for k in range(15)]
    return {"low": low, "high": [(k + 1) / 15 for k in range(15)], "count": [0] * 13 + [10, 90],
            "confidence": [None] * 13 + [0.9, 0.98], "accuracy": [None] * 13 + [accuracy, accuracy]}


def _calibration_row(method: str, ece: float, verdict: str) -> dict:
    row = {"method": method, "seeds": 3}
    for metric, value in (("ece", ece), ("ece_ts", ece / 2), ("nll", 0.3), ("nll_ts", 0.25), ("brier", 0.1),
                          ("brier_ts", 0.09), ("corrupted_ece", 2 * ece), ("corrupted_ece_ts", ece)):
        row.update({f"{metric}_mean": value, f"{metric}_ci_low": value * 0.8, f"{metric}_ci_high": value * 1.2,
                    f"{metric}_vs_none": verdict})
    return row


def _attack_rows(method: str, clean: float, pgd: float, verdict: str) -> list[dict]:
    rows = []
    for attack, eps, value in (("clean", "0", clean), ("fgsm", "8/255", pgd + 0.1), ("pgd", "8/255", pgd)):
        rows.append({"method": method, "attack": attack, "eps": eps, "seeds": 3, "accuracy_mean": value,
                     "accuracy_ci_low": value - 0.02, "accuracy_ci_high": value + 0.02, "accuracy_vs_none": verdict})
    return rows


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints"
    checkpoints.write_folder(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["calibration"] = {
        "command": "python -m analysis.calibration --checkpoints 'checkpoints/seeds/*.safetensors' --n 2000",
        "interval": INTERVAL, "settings": {"test_images": 2000, "calibration_images": 1000},
        "methods": [_calibration_row("none", 0.03, "baseline"), _calibration_row("mixup", 0.08, "worse")],
        "reliability": {"none": {"before": _bins(0.95), "after": _bins(0.96)},
                        "mixup": {"before": _bins(0.99), "after": _bins(0.97)}},
        "severity": [{"method": m, "severity": s, "accuracy": 0.9 - 0.05 * s, "confidence": 0.95 - 0.02 * s,
                      "confidence_ts": 0.93 - 0.03 * s} for m in ("none", "mixup") for s in (1, 3, 5)]}
    manifest["attacks"] = {
        "command": "python -m analysis.attacks --checkpoints 'checkpoints/seeds/*.safetensors' --n 300",
        "interval": INTERVAL, "data": {"test_images": 300},
        "attack": {"eps_labels": ["8/255"], "description": "PGD L∞ on the [0, 1] scale, 10 steps of α = 0.25 ε"},
        "methods": _attack_rows("none", 0.92, 0.05, "baseline") + _attack_rows("mixup", 0.93, 0.15, "better")}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _table(at: AppTest, column: str):
    """The page's dataframe that has `column`."""
    (found,) = [frame.value for frame in at.dataframe if column in frame.value.columns]
    return found


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _open(monkeypatch, folder: Path) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_shipped_calibration_and_pgd_studies_show_before_any_run(monkeypatch, tmp_path):
    at = _open(monkeypatch, _folder(tmp_path))
    headers = [h.value for h in at.subheader]
    assert "FGSM and PGD on the shipped checkpoints" in headers and "Calibration of the shipped checkpoints" in headers
    pgd = _table(at, "PGD 8/255 %")
    assert list(pgd["method"]) == ["mixup", "none"]  # ordered by PGD 8/255
    assert list(pgd["PGD 8/255 %"]) == ["15.0 [13.0, 17.0]", "5.0 [3.0, 7.0]"]
    assert list(pgd["FGSM 8/255 %"]) == ["25.0 [23.0, 27.0]", "15.0 [13.0, 17.0]"]
    assert list(pgd["vs none"]) == ["better", "(baseline)"]
    assert any("10 steps of α = 0.25 ε" in m.value for m in at.markdown)
    table = _table(at, "ECE, T-scaled %")
    assert list(table["ECE %"]) == ["3.0 [2.4, 3.6]", "8.0 [6.4, 9.6]"]
    assert list(table["vs none"]) == ["(baseline)", "worse"]
    assert at.multiselect(key="rob:cal:methods").value == ["none", "mixup"]
    charts = _charts(at)
    (reliability,) = [chart for chart in charts if "Reliability" in json.dumps(chart["layout"].get("title"))]
    assert {trace["name"] for trace in reliability["data"]} >= {"none", "mixup", "perfect calibration"}
    assert any("Confidence against accuracy" in json.dumps(chart["layout"].get("title")) for chart in charts)
    assert any("--n 2000" in c.value for c in at.caption)


def test_the_chosen_models_are_calibrated_on_demand(monkeypatch, tmp_path):
    at = _open(monkeypatch, _folder(tmp_path))
    assert "Calibration of the chosen models" in [h.value for h in at.subheader]
    at.toggle(key="rob:cal:live").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    table = _table(at, "ece (T)")
    assert len(table) >= 1 and (table["T"] > 0).all() and set(table.columns) >= {"ece", "ece (T)", "nll", "nll (T)"}
    assert sum(any(t.get("name") == "perfect calibration" for t in chart["data"]) for chart in _charts(at)) == 2
