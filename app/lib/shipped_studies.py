"""The studies of the shipped checkpoints, as the manifest records them: per method, mean ± sd over seeds.

``python -m msda.training.manifest checkpoints/ --seeds … --robustness … --occlusion …`` copies each report's
per-method table (``reports.<study>.methods``) and the command that made it into ``manifest.json``; the pages
show them as a starting point before the user runs anything. Nothing here recomputes a figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoints import load_manifest

__all__ = ["Column", "ShippedStudy", "shipped_study", "study_table"]


@dataclass(frozen=True)
class Column:
    """A metric of a per-method table, as shown: header, the metric's key, scale (100 for %) and digits."""

    header: str
    key: str
    scale: float = 100.0
    digits: int = 1


@dataclass(frozen=True)
class ShippedStudy:
    """One study of the manifest: the command that ran it, its per-method rows and the spread rule."""

    command: str
    methods: list[dict[str, Any]]
    spread_rule: str


def shipped_study(folder: Path, name: str) -> ShippedStudy | None:
    """The `name` study ("robustness" or "occlusion") of the manifest in `folder`, or None when the manifest
    has no per-method table for it."""
    manifest, _ = load_manifest(folder)  # the checkpoint menu says what is wrong with an unreadable one
    reports = manifest.get("reports") if isinstance(manifest, dict) else None
    report = reports.get(name) if isinstance(reports, dict) else None
    if not isinstance(report, dict) or not isinstance(report.get("methods"), list) or not report["methods"]:
        return None
    return ShippedStudy(command=str(report.get("command", "")), methods=report["methods"],
                        spread_rule=str(report.get("spread_rule", "")))


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _text(mean: float, sd: float, column: Column) -> str:
    if math.isnan(mean):
        return ""
    text = f"{column.scale * mean:.{column.digits}f}"
    return text if math.isnan(sd) else f"{text} ± {column.scale * sd:.{column.digits}f}"


def study_table(study: ShippedStudy, columns: list[Column], *, where: dict[str, Any] | None = None,
                order_by: str | None = None, verdict_of: str | None = None):
    """A DataFrame for reading: one row per method (rows of `study.methods` matching `where`, e.g. an
    occluder kind), ``mean ± sd`` per column, ordered by `order_by`'s mean (highest first), and, for
    `verdict_of`, the spread rule's verdict against ``none``."""
    import pandas as pd

    rows = [row for row in study.methods if all(row.get(key) == value for key, value in (where or {}).items())]
    if order_by is not None:
        def rank(row: dict) -> tuple[bool, float]:
            mean = _number(row.get(f"{order_by}_mean"))
            return math.isnan(mean), 0.0 if math.isnan(mean) else -mean  # highest first, unknown last

        rows.sort(key=rank)
    table = []
    for row in rows:
        line = {"method": row.get("method"), "seeds": row.get("seeds")}
        for column in columns:
            line[column.header] = _text(_number(row.get(f"{column.key}_mean")), _number(row.get(f"{column.key}_sd")),
                                        column)
        if verdict_of is not None:
            line["vs none"] = row.get(f"{verdict_of}_vs_none") or ("(baseline)" if row.get("method") == "none" else "")
        table.append(line)
    return pd.DataFrame(table)

