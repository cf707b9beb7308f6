"""The studies of the shipped checkpoints, as the manifest records them: per method, the mean with its 95 %
interval and the verdict against ``none`` from :func:`analysis.stats.compare`.

``python -m msda.training.manifest checkpoints/ --seeds … --robustness … --occlusion …`` copies each report's
per-method table (``reports.<study>.methods``: ``<metric>_mean``, ``_ci_low``, ``_ci_high``, ``_vs_none`` and,
with a replication split, ``_replicated``) and the command that made it into ``manifest.json``; the pages show
them as a starting point before the user runs anything. Nothing here recomputes a figure or decides a verdict:
a table written before the studies kept intervals is not shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoints import load_manifest

__all__ = ["Column", "ShippedStudy", "interval_chart", "shipped_study", "study_table"]


@dataclass(frozen=True)
class Column:
    """A metric of a per-method table, as shown: header, the metric's key, scale (100 for %) and digits."""

    header: str
    key: str
    scale: float = 100.0
    digits: int = 1


@dataclass(frozen=True)
class ShippedStudy:
    """One study of the manifest: the command that ran it, its per-method rows and what its intervals mean."""

    command: str
    methods: list[dict[str, Any]]
    interval: str


def shipped_study(folder: Path, name: str) -> ShippedStudy | None:
    """The `name` study ("robustness" or "occlusion") of the manifest in `folder`, or None when the manifest
    has no per-method table with intervals for it."""
    manifest, _ = load_manifest(folder)  # the checkpoint menu says what is wrong with an unreadable one
    reports = manifest.get("reports") if isinstance(manifest, dict) else None
    report = reports.get(name) if isinstance(reports, dict) else None
    if not isinstance(report, dict) or not isinstance(report.get("methods"), list) or not report["methods"]:
        return None
    rows = [row for row in report["methods"] if isinstance(row, dict)]
    if not any(key.endswith("_ci_low") for row in rows for key in row):
        return None  # a table from before the studies kept per-item outcomes: no interval, no verdict to show
    return ShippedStudy(command=str(report.get("command", "")), methods=rows, interval=str(report.get("interval", "")))


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _text(mean: float, low: float, high: float, column: Column) -> str:
    if math.isnan(mean):
        return ""
    text = f"{column.scale * mean:.{column.digits}f}"
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{column.scale * low:.{column.digits}f}, {column.scale * high:.{column.digits}f}]"


def _rows(study: ShippedStudy, where: dict[str, Any] | None, order_by: str | None) -> list[dict]:
    rows = [row for row in study.methods if all(row.get(key) == value for key, value in (where or {}).items())]
    if order_by is not None:
        def rank(row: dict) -> tuple[bool, float]:
            mean = _number(row.get(f"{order_by}_mean"))
            return math.isnan(mean), 0.0 if math.isnan(mean) else -mean  # highest first, unknown last

        rows.sort(key=rank)
    return rows


def study_table(study: ShippedStudy, columns: list[Column], *, where: dict[str, Any] | None = None,
                order_by: str | None = None, verdict_of: str | None = None):
    """A DataFrame for reading: one row per method (rows of `study.methods` matching `where`, e.g. an
    occluder kind), ``mean [95 % interval]`` per column, ordered by `order_by`'s mean (highest first), and, for
    `verdict_of`, compare()'s verdict against ``none`` (and whether it replicated, when the study has a
    replication split)."""
    import pandas as pd

    table = []
    for row in _rows(study, where, order_by):
        line = {"method": row.get("method"), "seeds": row.get("seeds")}
        for column in columns:
            line[column.header] = _text(*(_number(row.get(f"{column.key}_{part}")) for part in ("mean", "ci_low", "ci_high")),
                                        column)
        if verdict_of is not None:
            verdict = row.get(f"{verdict_of}_vs_none")
            line["vs none"] = "(baseline)" if verdict == "baseline" or row.get("method") == "none" else (verdict or "")
            if f"{verdict_of}_replicated" in row:
                replicated = row.get(f"{verdict_of}_replicated")
                line["replicated"] = "" if replicated is None else ("yes" if replicated else "no")
        table.append(line)
    return pd.DataFrame(table)


def interval_chart(study: ShippedStudy, column: Column, *, where: dict[str, Any] | None = None,
                   order_by: str | None = None, title: str = ""):
    """A plotly figure: each method's mean of `column` with its 95 % interval as error bars (the rows of
    :func:`study_table`, same order)."""
    import plotly.graph_objects as go

    from analysis.untrusted import plotly_text

    rows = _rows(study, where, order_by or column.key)
    mean = [column.scale * _number(row.get(f"{column.key}_mean")) for row in rows]
    high = [column.scale * _number(row.get(f"{column.key}_ci_high")) - m for row, m in zip(rows, mean)]
    low = [m - column.scale * _number(row.get(f"{column.key}_ci_low")) for row, m in zip(rows, mean)]
    figure = go.Figure(go.Scatter(x=[plotly_text(str(row.get("method"))) for row in rows], y=mean, mode="markers",
                                  marker={"size": 9}, error_y={"type": "data", "symmetric": False, "array": high,
                                                               "arrayminus": low},
                                  hovertemplate="%{x}: %{y:.2f}<extra></extra>"))
    figure.update_layout(title={"text": title or column.header, "x": 0}, yaxis_title=column.header, height=340,
                         margin={"t": 50, "b": 40, "l": 60, "r": 20}, template="plotly_white")
    return figure
