"""Regression tests for issue 13 in reloading robustness reports (analysis.robustness.reports, the
Robustness page's reload): S6 (quadratic in the number of models), S7 (nested JSON, wrong shapes) and W5
(severity 3.9, ε NaN or −5, total 0). Each refusal comes within the budget of :mod:`hardening_budget`."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hardening_budget import refused, within_budget

from analysis.corruptions import CORRUPTIONS
from analysis.robustness.reports import MAX_MODELS, MAX_ROWS, read_report


def long_table(models: int, *, fgsm: bool = True) -> pd.DataFrame:
    """The long table of `models` models with every corruption at every severity, clean and FGSM rows."""
    grid = pd.MultiIndex.from_product([range(models), CORRUPTIONS, range(1, 6)],
                                      names=["m", "corruption", "severity"]).to_frame(index=False)
    parts = [grid.assign(kind="corruption"),
             pd.DataFrame({"m": range(models), "corruption": "clean", "severity": 0, "kind": "clean"})]
    if fgsm:
        steps = pd.MultiIndex.from_product([range(models), [0.0, 1 / 255, 4 / 255]], names=["m", "eps"])
        parts.append(steps.to_frame(index=False).assign(corruption="fgsm", severity=0, kind="fgsm"))
    table = pd.concat(parts, ignore_index=True)
    table["model"] = "model-" + table["m"].astype(str)
    table["eps"] = table["eps"].fillna(0.0) if "eps" in table.columns else 0.0
    table["total"] = 100
    table["correct"] = (table.index * 7919) % 101
    return table.drop(columns="m")


def rows_json(rows: list[dict], **document) -> bytes:
    return json.dumps({"rows": rows, **document}).encode()


def one_model_rows() -> list[dict]:
    return long_table(1, fgsm=True).to_dict(orient="records")


def test_a_written_report_reads_back():
    document, results, curves = read_report(long_table(3).to_csv(index=False).encode(), "r.csv")
    assert results.models == ("model-0", "model-1", "model-2") and results.correct.shape == (3, 19, 5)
    assert int(results.clean_total) == 100 and set(curves) == set(results.models)
    assert curves["model-1"].eps == (0.0, 1 / 255, 4 / 255)


def test_S6_reloading_is_linear_in_the_number_of_models():
    data = long_table(MAX_MODELS).to_csv(index=False).encode()  # 1000 models, 99 000 rows, 5 MB
    with within_budget(seconds=4.0, megabytes=400):
        _, results, curves = read_report(data, "big.csv")
    assert len(results.models) == MAX_MODELS and len(curves) == MAX_MODELS


def test_S6_more_models_than_the_page_shows_are_refused_at_once():
    table = pd.DataFrame({"model": [f"m{i}" for i in range(MAX_ROWS + 10)], "kind": "corruption",
                          "corruption": "fog", "severity": 1, "correct": 1, "total": 2})
    data = table.to_csv(index=False).encode()  # over 10 MB, as the 400 000-row file that once took 20 minutes
    with refused(rf"has more than {MAX_ROWS} rows"):
        read_report(data, "huge.csv")
    table = table.iloc[: MAX_MODELS + 1]
    with refused(rf"holds {MAX_MODELS + 1} models; at most {MAX_MODELS}"):
        read_report(table.to_csv(index=False).encode(), "many.csv")


@pytest.mark.parametrize("depth", [40, 100_000])
def test_S7_deeply_nested_report_is_one_sentence(depth):
    data = b'{"rows": [], "settings": ' + b"[" * depth + b"]" * depth + b"}"
    with refused(r"deep.json could not be read as JSON: it is nested (too deeply|more than 32 levels deep)"):
        read_report(data, "deep.json")


@pytest.mark.parametrize("document,message", [
    ({"checkpoints": {"m": 5}}, r"\"checkpoints\" must map each model to an object of its metadata, got 5 for 'm'"),
    ({"checkpoints": [1]}, r"\"checkpoints\" must be an object, got list"),
    ({"data": "shapes"}, r"\"data\" must be an object, got str"),
    ({"command": 5}, r"\"command\" must be a string, got int"),
])
def test_S7_wrong_shapes_in_a_report_are_one_sentence(document, message):
    with refused(message):
        read_report(rows_json(one_model_rows(), **document), "shapes.json")


def test_S7_checkpoints_entry_that_is_not_an_object_without_rows_is_one_sentence():
    with refused(r"it has no list of rows"):
        read_report(b'{"checkpoints": {"m": 5}}', "r.json")


def _with(field: str, value, kind: str = "corruption") -> list[dict]:
    rows = one_model_rows()
    index = next(i for i, row in enumerate(rows) if row["kind"] == kind)
    rows[index] = {**rows[index], field: value}
    return rows


@pytest.mark.parametrize("field,value,kind,message", [
    ("severity", 3.9, "corruption", r"row \d+ has a severity that is not a whole number"),
    ("severity", 6, "corruption", r"row \d+ names corruption 'gaussian_noise' at severity 6"),
    ("eps", float("nan"), "fgsm", r"row \d+ has an FGSM step ε outside \[0, 1\]"),
    ("eps", -5, "fgsm", r"row \d+ has an FGSM step ε outside \[0, 1\]"),
    ("total", 0, "corruption", r"row \d+ counts no images \(total must be at least 1\)"),
    ("total", 0, "clean", r"row \d+ counts no images"),
    ("correct", 101, "corruption", r"row \d+ counts correct predictions outside 0 … total"),
    ("correct", 2.5, "corruption", r"row \d+ has a correct that is not a whole number"),
    ("correct", "many", "corruption", r"row \d+ has a correct that is not a whole number"),
    ("kind", "other", "corruption", r"row \d+ has a kind outside clean, corruption, fgsm"),
])
def test_W5_reloaded_rows_are_validated(field, value, kind, message):
    rows = _with(field, value, kind)
    data = json.dumps({"rows": rows}).replace("NaN", "NaN").encode()
    with refused(message):
        read_report(data, "w5.json")
    with refused(message):  # the CSV of the same table says the same
        read_report(pd.DataFrame(rows).to_csv(index=False).encode(), "w5.csv")


def test_W5_a_repeated_cell_is_refused():
    rows = one_model_rows()
    with refused(r"row \d+ repeats a model, corruption and severity"):
        read_report(rows_json(rows + [rows[3]]), "twice.json")


def test_rows_that_are_not_objects_are_one_sentence():
    with refused(r"row 2 is not an object"):
        read_report(rows_json([one_model_rows()[0], 5]), "odd.json")
