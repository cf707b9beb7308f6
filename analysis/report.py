"""Writing analysis reports: a table as CSV, a summary as JSON, and a self-contained HTML page with plotly figures.

Every file is written to a temporary file in the target folder and renamed into place
(:func:`msda.training.checkpoint.atomic_write`), so an interrupted run never leaves a half-written report under
the final name; a study's whole set of files is written as one unit by :func:`write_report_set`. The HTML
embeds plotly.js, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from msda.training.checkpoint import atomic_write
from msda.training.outputs import OutputFolder

__all__ = ["Html", "interval_figure", "write_csv", "write_json", "write_html", "write_report", "write_report_set",
           "to_jsonable"]


class Html(str):
    """A string inserted into a report as HTML, unescaped (plain strings are escaped)."""


def to_jsonable(value: Any) -> Any:
    """`value` with tensors, numpy and pandas values turned into plain Python, and NaN/±inf into None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return to_jsonable(value.to_dict(orient="records"))
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise ValueError(f"cannot write a {type(value).__name__} to JSON: {value!r}")


def write_csv(path: str | os.PathLike, table) -> Path:
    """A pandas DataFrame as CSV (no index), atomically; text cells that a spreadsheet would run as formulas
    (file names, class names from checkpoint metadata) are neutralised (:func:`analysis.untrusted.csv_safe_frame`)."""
    from .untrusted import csv_safe_frame

    safe = csv_safe_frame(table)
    return atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """JSON (indented, UTF-8; NaN written as null), atomically."""
    text = json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def write_html(path: str | os.PathLike, *, title: str, sections: Sequence[tuple[str, Any]]) -> Path:
    """A self-contained HTML page, atomically.

    Args:
        title: page title and top heading.
        sections: (heading, content) pairs, in order; content is a plotly figure, a pandas DataFrame (rendered
            as a table, floats with 4 significant digits), an :class:`Html` string (inserted as is) or a plain
            string (escaped; blank lines separate paragraphs, single newlines break lines).
    """
    from plotly.offline import get_plotlyjs

    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, content in sections:
        body.append(f"<section><h2>{html.escape(str(heading))}</h2>{_render(content)}</section>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    return atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def write_report(folder: str | os.PathLike, name: str, *, table, summary: Mapping[str, Any] | None = None,
                 title: str, sections: Sequence[tuple[str, Any]] | Callable[[], Sequence[tuple[str, Any]]] = ()
                 ) -> dict[str, Path]:
    """``<folder>/<name>.csv`` (the table), ``<name>.json`` (`summary` plus the table's rows under "rows") and
    ``<name>.html`` (`sections`), each written atomically, in that order. Returns ``{"csv": …, "json": …,
    "html": …}``.

    `sections` may be a function that builds them: it is called after the CSV and JSON are on disk, so a
    study's figures (the slow, fallible part of a report) can never cost it its results.
    """
    folder = Path(folder)
    if not name or any(sep in name for sep in ("/", "\\")):
        raise ValueError(f"name must be a plain file name without folders, got {name!r}")
    data = {**(summary or {}), "rows": table}
    files = {"csv": write_csv(folder / f"{name}.csv", table), "json": write_json(folder / f"{name}.json", data)}
    built = sections() if callable(sections) else sections
    files["html"] = write_html(folder / f"{name}.html", title=title, sections=built)
    return files


def write_report_set(folder: OutputFolder, name: str, *, table, summary: Mapping[str, Any], title: str,
                     sections: Sequence[tuple[str, Any]] | Callable[[], Sequence[tuple[str, Any]]],
                     outcomes_file: str, outcomes: Mapping[str, Mapping[str, object]] | None = None,
                     methods=None) -> dict[str, Path]:
    """A study's files as one unit in the output folder this run holds: the per-item `outcomes`
    (:func:`analysis.outcomes.save_outcomes`, when given), ``<name>_methods.csv`` (the per-method table, when
    given) and :func:`write_report`'s CSV, JSON and HTML, written into a staging folder and moved into place
    together (:meth:`msda.training.outputs.OutputFolder.report_set`).

    A failed write (a full disk: one-line :class:`~msda.training.outputs.DiskFull`) leaves the previous set as
    it was; an error in the figures after the tables and outcomes are written commits them without the HTML. A
    file of the set this run does not write (no per-method table, no outcomes) is removed, never left from an
    older run. Returns ``{"outcomes"?, "methods_csv"?, "csv", "json", "html"}`` with the paths in the folder.
    """
    from .outcomes import save_outcomes

    results = (f"{name}.csv", f"{name}.json", *((outcomes_file,) if outcomes else ()))
    members = (*results, outcomes_file, f"{name}_methods.csv", f"{name}.html")
    files: dict[str, Path] = {}
    with folder.report_set(members, results=results) as staging:
        if outcomes:
            files["outcomes"] = save_outcomes(staging / outcomes_file, outcomes)
        if methods is not None:
            files["methods_csv"] = write_csv(staging / f"{name}_methods.csv", methods)
        files.update(write_report(staging, name, table=table, summary=summary, title=title, sections=sections))
    return {kind: folder.path / path.name for kind, path in files.items()}


def interval_figure(table, metrics: Sequence[str], *, group: str | None = None, columns: int = 2):
    """Per metric one panel: each method's mean with its 95 % interval as error bars (the ``<m>_mean``,
    ``<m>_ci_low`` and ``<m>_ci_high`` columns of :func:`analysis.verdicts.method_table`), one colour per value
    of the `group` column (e.g. the occluder kind)."""
    from plotly.subplots import make_subplots

    from .untrusted import plotly_text

    metrics = [m for m in metrics if f"{m}_mean" in table.columns]
    rows = max(1, math.ceil(len(metrics) / columns))
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=metrics, vertical_spacing=0.35 / rows)
    parts = list(table.groupby(group, sort=False)) if group else [("", table)]
    for index, metric in enumerate(metrics):
        row, col = index // columns + 1, index % columns + 1
        for name, part in parts:
            mean = part[f"{metric}_mean"]
            figure.add_scatter(x=[plotly_text(str(m)) for m in part["method"]], y=mean, mode="markers",
                               name=plotly_text(str(name)) or "mean",
                               legendgroup=str(name), showlegend=index == 0 and bool(group), row=row, col=col,
                               error_y=dict(type="data", symmetric=False, array=part[f"{metric}_ci_high"] - mean,
                                            arrayminus=mean - part[f"{metric}_ci_low"]))
    figure.update_layout(height=300 * rows, margin=dict(t=60, b=30))
    return figure


def _render(content: Any) -> str:
    if isinstance(content, Html):
        return str(content)
    if isinstance(content, str):
        paragraphs = content.strip().split("\n\n")
        return "".join(f"<p>{'<br>'.join(html.escape(line) for line in part.splitlines())}</p>"
                       for part in paragraphs)
    if hasattr(content, "to_html") and hasattr(content, "columns"):  # pandas DataFrame
        return content.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", border=0,
                               classes="table")
    if hasattr(content, "to_html"):  # plotly figure (plotly.js is embedded once, in the page head)
        return content.to_html(full_html=False, include_plotlyjs=False)
    raise ValueError(f"a report section must be a plotly figure, a DataFrame or a string, "
                     f"got {type(content).__name__}")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p { line-height: 1.4; }
table.table { border-collapse: collapse; font-size: 0.85em; }
table.table th, table.table td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
table.table th { background: #f5f5f5; }
"""
