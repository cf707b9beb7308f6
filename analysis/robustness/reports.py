"""Reading a robustness report back: the JSON (long table under ``rows``) or the CSV (the long table) that
``python -m analysis.robustness`` and the app's Robustness page write.

A reloaded file may come from anyone (the page takes uploads), so everything is bounded and checked before
it sizes anything: the file's size, the JSON's nesting, the number of models and rows; every row's counts,
severity and ε; the grid of models × corruptions × severities must be complete. Validation is vectorised
over the rows (pandas), so reading is linear in the file's size: a 400 000-row file reads in about a second.
Every refusal is one sentence naming the file, the row and the value.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from msda.training.checkpoint import MAX_JSON_DEPTH, load_json_bounded

from ..corruptions import CORRUPTIONS
from .evaluate import FGSMCurve, RobustnessResults

__all__ = ["MAX_MODELS", "MAX_REPORT_BYTES", "ROW_KEYS", "read_report"]

ROW_KEYS = ("model", "kind", "corruption", "severity", "correct", "total")
"""The columns every row needs (``eps`` too for FGSM rows)."""

MAX_REPORT_BYTES = 64 << 20
"""Largest report read (64 MiB): the full grid of 19 corruptions × 5 severities plus clean and FGSM rows is
about 20 kB per model in JSON, so this holds every model the page can show; the page's uploads stop at 20 MB."""

MAX_MODELS = 1000
"""Most models in one report: the page draws a heatmap and a bar per model, and nobody reads a thousand."""

MAX_ROWS = MAX_MODELS * (1 + len(CORRUPTIONS) * 5 + 64)
"""Most rows: per model one clean row, the full corruption grid and up to 64 FGSM steps."""

KINDS = ("clean", "corruption", "fgsm")


def read_report(data: bytes, name: str) -> tuple[dict[str, Any], RobustnessResults, dict[str, FGSMCurve]]:
    """Parse a report file: ``(document, results, fgsm_curves)``.

    Args:
        data: the file's bytes.
        name: its file name; ``.csv`` reads the long table, anything else the JSON document.

    Returns the JSON document's checked context — ``data``, ``settings`` and ``checkpoints`` (model → metadata
    object) as dicts and ``command`` as a string or None (all empty for a CSV) — the corruption counts and
    the FGSM curves by model. Raises ValueError with one sentence naming the file and what is wrong.
    """
    import pandas as pd

    if len(data) > MAX_REPORT_BYTES:
        raise ValueError(f"{name} is {len(data) / 2**20:.0f} MiB; reports up to {MAX_REPORT_BYTES >> 20} MiB are read")
    document: dict[str, Any] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not a text file; expected robustness.json or robustness.csv") from None
    if name.lower().endswith(".csv"):
        try:
            table = pd.read_csv(io.StringIO(text), nrows=MAX_ROWS + 1)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ValueError(f"{name} could not be read as CSV ({error}); expected robustness.json or "
                             "robustness.csv") from None
    else:
        try:
            document = load_json_bounded(text, what="it", max_bytes=MAX_REPORT_BYTES, max_depth=MAX_JSON_DEPTH)
        except ValueError as error:
            raise ValueError(f"{name} could not be read as JSON: {error}; expected robustness.json or "
                             "robustness.csv") from None
        if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
            raise ValueError(f"{name}: it has no list of rows (the long table under \"rows\"); expected a "
                             "robustness.json written by this page or by python -m analysis.robustness")
        rows = document["rows"]
        if len(rows) > MAX_ROWS:
            raise ValueError(f"{name} has more than {MAX_ROWS} rows ({MAX_MODELS} models' worth)")
        not_object = next((number for number, row in enumerate(rows, start=1) if not isinstance(row, dict)), None)
        if not_object is not None:
            raise ValueError(f"{name}: row {not_object} is not an object with {', '.join(ROW_KEYS)}")
        table = pd.DataFrame.from_records(rows)
    if len(table) > MAX_ROWS:
        raise ValueError(f"{name} has more than {MAX_ROWS} rows ({MAX_MODELS} models' worth)")
    results, curves = _results_from_table(table, name)
    return _context(document, name), results, curves


def _context(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The document's descriptive parts, each of the type the page expects."""
    context: dict[str, Any] = {}
    for key in ("data", "settings", "checkpoints"):
        value = document.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ValueError(f"{name}: \"{key}\" must be an object, got {type(value).__name__}")
        context[key] = value
    for model, entry in context["checkpoints"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: \"checkpoints\" must map each model to an object of its metadata, got "
                             f"{entry!r} for {model!r}")
    command = document.get("command")
    if command is not None and not isinstance(command, str):
        raise ValueError(f"{name}: \"command\" must be a string, got {type(command).__name__}")
    context["command"] = command
    return context


def _first(mask, table, name: str, problem: str) -> None:
    """Raise for the first row where `mask` is True: one sentence with the row number and the row."""
    import numpy as np

    where = np.flatnonzero(np.asarray(mask, dtype=bool))
    if where.size:
        index = int(where[0])
        row = {key: _plain(value) for key, value in table.iloc[index].items() if key in ROW_KEYS + ("eps",)}
        raise ValueError(f"{name}: row {index + 1} {problem}: {row}")


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _results_from_table(table, name: str) -> tuple[RobustnessResults, dict[str, FGSMCurve]]:
    """(RobustnessResults, FGSM curves) from the long table, every row checked, in linear time."""
    import numpy as np
    import pandas as pd

    missing = [key for key in ROW_KEYS if key not in table.columns]
    if missing or table.empty:
        raise ValueError(f"{name}: the rows lack {', '.join(missing) or 'content'} (each row needs "
                         f"{', '.join(ROW_KEYS)})")
    _first(table[list(ROW_KEYS)].isna().any(axis=1), table, name, f"lacks one of {', '.join(ROW_KEYS)}")
    model = table["model"].astype(str).to_numpy()
    # Strings become codes through hash maps (one pass each); unknown names map to -1.
    kind_code = table["kind"].astype(str).map({k: i for i, k in enumerate(KINDS)}).fillna(-1).to_numpy(np.int64)
    corruption = table["corruption"].astype(str)
    corruption_code = corruption.map({c: i for i, c in enumerate(CORRUPTIONS)}).fillna(-1).to_numpy(np.int64)
    numbers = {key: pd.to_numeric(table[key], errors="coerce").to_numpy(dtype=np.float64)
               for key in ("correct", "total", "severity")}
    eps = (pd.to_numeric(table["eps"], errors="coerce").to_numpy(dtype=np.float64) if "eps" in table.columns
           else np.zeros(len(table)))
    for key, values in numbers.items():
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 2**53)
        _first(~whole, table, name, f"has a {key} that is not a whole number")
    correct, total, severity = (numbers[key].astype(np.int64) for key in ("correct", "total", "severity"))
    _first(total < 1, table, name, "counts no images (total must be at least 1)")
    _first((correct < 0) | (correct > total), table, name, "counts correct predictions outside 0 … total")
    _first(kind_code < 0, table, name, f"has a kind outside {', '.join(KINDS)}")
    is_clean, is_corruption, is_fgsm = (kind_code == code for code in range(len(KINDS)))
    outside = np.flatnonzero(is_corruption & ((corruption_code < 0) | (severity < 1) | (severity > 5)))
    if outside.size:
        index = int(outside[0])
        raise ValueError(f"{name}: row {index + 1} names corruption {corruption.iloc[index]!r} at severity "
                         f"{severity[index]}; allowed: {', '.join(CORRUPTIONS)} at 1 … 5")
    _first(is_fgsm & ~(np.isfinite(eps) & (eps >= 0) & (eps <= 1)), table, name,
           "has an FGSM step ε outside [0, 1] (the [0, 1] pixel scale)")

    models, model_code = _codes(model)
    if len(models) > MAX_MODELS:
        raise ValueError(f"{name} holds {len(models)} models; at most {MAX_MODELS} are read")

    # Corruption grid: every model × corruption × severity exactly once, one image count per cell.
    rows = np.flatnonzero(is_corruption)
    if rows.size == 0:
        raise ValueError(f"{name} holds no corruption rows")
    present = np.unique(corruption_code[rows])  # sorted: CORRUPTIONS order
    corruptions = tuple(CORRUPTIONS[i] for i in present)
    severities = tuple(int(v) for v in np.unique(severity[rows]))
    c_code = np.searchsorted(present, corruption_code[rows])
    s_code = np.searchsorted(np.array(severities), severity[rows])
    cell = (model_code[rows] * len(corruptions) + c_code) * len(severities) + s_code
    cells = len(models) * len(corruptions) * len(severities)
    seen = np.bincount(cell, minlength=cells)
    if (seen > 1).any():
        repeated = np.zeros(len(table), dtype=bool)
        repeated[rows] = pd.Series(cell).duplicated().to_numpy()
        _first(repeated, table, name, "repeats a model, corruption and severity")
    if (seen == 0).any():
        m, c, s = np.unravel_index(int(np.flatnonzero(seen == 0)[0]), (len(models), len(corruptions), len(severities)))
        raise ValueError(f"{name} has no row for {models[m]}, {corruptions[c]}, severity {severities[s]}: every "
                         "model needs every corruption at every severity")
    grid_correct = np.zeros(cells, dtype=np.int64)
    grid_total = np.zeros(cells, dtype=np.int64)
    grid_correct[cell], grid_total[cell] = correct[rows], total[rows]
    grid_correct = grid_correct.reshape(len(models), len(corruptions), len(severities))
    grid_total = grid_total.reshape(len(models), len(corruptions), len(severities))
    differs = np.argwhere(grid_total != grid_total[:1])
    if differs.size:
        _, c, s = differs[0]
        raise ValueError(f"{name}: the models were evaluated on different numbers of images "
                         f"({corruptions[c]}, severity {severities[s]})")

    # Clean rows: none, or one per model with one image count.
    clean_rows = np.flatnonzero(is_clean)
    clean_correct = np.zeros(len(models), dtype=np.int64)
    clean_total = 0
    if clean_rows.size:
        per_model = np.bincount(model_code[clean_rows], minlength=len(models))
        if (per_model != 1).any() or np.unique(total[clean_rows]).size != 1:
            raise ValueError(f"{name}: clean rows must give every model the same number of images, once")
        clean_correct[model_code[clean_rows]] = correct[clean_rows]
        clean_total = int(total[clean_rows[0]])
    results = RobustnessResults(tuple(models), corruptions, severities, torch.from_numpy(grid_correct),
                                torch.from_numpy(grid_total[0].copy()), torch.from_numpy(clean_correct),
                                torch.tensor(clean_total))

    # FGSM rows: per model, one row per ε, one image count.
    curves: dict[str, FGSMCurve] = {}
    fgsm_rows = np.flatnonzero(is_fgsm)
    if fgsm_rows.size:
        order = fgsm_rows[np.lexsort((eps[fgsm_rows], model_code[fgsm_rows]))]  # by model, then ε
        starts = np.flatnonzero(np.diff(model_code[order])) + 1
        for mine in np.split(order, starts):
            code = model_code[mine[0]]
            steps = eps[mine]
            if np.unique(steps).size != steps.size or np.unique(total[mine]).size != 1:
                raise ValueError(f"{name}: the FGSM rows of {models[code]} must give each ε once, on one number "
                                 "of images")
            curves[models[code]] = FGSMCurve(tuple(float(e) for e in steps), torch.from_numpy(correct[mine].copy()),
                                              torch.tensor(int(total[mine[0]])))
    return results, curves


def _codes(values) -> tuple[list[str], Any]:
    """Distinct values in order of first appearance, and each row's index into them (hashing, linear)."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    return [str(value) for value in uniques], codes

