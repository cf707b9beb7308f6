"""Plotly figures of the robustness report: error heatmaps (corruption × severity, one per model, one colour
scale), bars per model, and FGSM accuracy against ε."""

from __future__ import annotations

import math
from collections.abc import Mapping

from .evaluate import FGSMCurve, RobustnessResults
from ..untrusted import plotly_text

_COLUMNS_PER_ROW = 3


def error_heatmaps(results: RobustnessResults):
    """One heatmap per model of the top-1 error, corruptions down, severities across, all on one shared
    colour scale from 0 to the largest error shown."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    errors = results.errors()
    count = len(results.models)
    columns = min(count, _COLUMNS_PER_ROW)
    rows = math.ceil(count / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[plotly_text(m) for m in results.models],
                           shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.25 / rows)
    severities = [str(severity) for severity in results.severities]
    for mi, name in enumerate(results.models):
        figure.add_trace(go.Heatmap(z=errors[mi].tolist(), x=severities, y=list(results.corruptions),
                                    coloraxis="coloraxis",
                                    hovertemplate=f"{plotly_text(name)}<br>%{{y}}, severity %{{x}}: error %{{z:.3f}}<extra></extra>"),
                         row=mi // columns + 1, col=mi % columns + 1)
    top = float(errors.max()) if errors.numel() else 1.0
    figure.update_layout(coloraxis=dict(cmin=0.0, cmax=max(top, 1e-6), colorscale="Viridis",
                                        colorbar=dict(title="error")),
                         height=max(300, 22 * len(results.corruptions) + 120) * rows, margin=dict(t=60, b=40))
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title_text="severity", type="category")  # severities are levels, not a number line
    return figure


def summary_bars(summary):
    """Per model: clean error and mean corrupted errors (left); mCE and relative mCE where defined (right,
    1.0 = AlexNet)."""
    from plotly.subplots import make_subplots

    error_columns = [("clean_error", "clean", False), ("corrupted_accuracy", "all corruptions evaluated", True),
                     ("mean_corrupted_accuracy_15", "15 benchmark", True), ("mean_corrupted_accuracy_19", "all 19", True)]
    normalised = [column for column in ("mce", "relative_mce")
                  if column in summary.columns and summary[column].notna().any()]
    figure = make_subplots(rows=1, cols=2 if normalised else 1, column_widths=[0.65, 0.35] if normalised else None,
                           subplot_titles=["top-1 error"] + (["AlexNet-normalised (1.0 = AlexNet)"] if normalised
                                                             else []))
    models = [plotly_text(model) for model in summary["model"]]
    for column, label, is_accuracy in error_columns:
        values = summary[column]
        if not values.notna().any():
            continue
        values = 1 - values if is_accuracy else values
        figure.add_bar(x=models, y=list(values), name=label if column == "clean_error" else f"mean corrupted: {label}",
                       hovertemplate=f"%{{x}}<br>{label}: %{{y:.3f}}<extra></extra>", row=1, col=1)
    for column in normalised:
        figure.add_bar(x=models, y=list(summary[column]), name=column.replace("_", " "),
                       hovertemplate=f"%{{x}}<br>{column}: %{{y:.3f}}<extra></extra>", row=1, col=2)
    if normalised:
        figure.add_hline(y=1.0, line_dash="dot", line_color="grey", row=1, col=2)
    figure.update_layout(barmode="group", height=380, margin=dict(t=60, b=40))
    return figure


def fgsm_figure(curves: Mapping[str, FGSMCurve]):
    """Accuracy against ε (in units of 1/255), one line per model."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, curve in curves.items():
        label = plotly_text(name)
        figure.add_scatter(x=[step * 255 for step in curve.eps], y=curve.accuracy.tolist(), mode="lines+markers",
                           name=label, hovertemplate=f"{label}<br>ε = %{{x:.3g}}/255: accuracy %{{y:.3f}}<extra></extra>")
    figure.update_layout(xaxis_title="ε (× 1/255, on the [0, 1] pixel scale)", yaxis_title="top-1 accuracy",
                         yaxis_range=[0, 1], height=380, margin=dict(t=30, b=40))
    return figure
