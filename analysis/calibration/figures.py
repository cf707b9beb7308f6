"""Plotly figures of the calibration study: reliability diagrams, confidence histograms, and confidence against
accuracy across corruption severities. Presentation only: every number comes from :mod:`.study`."""

from __future__ import annotations

from collections.abc import Mapping

from ..untrusted import plotly_text

__all__ = ["confidence_histogram", "reliability_figure", "severity_figure"]

_PANELS = (("before", "before temperature scaling"), ("after", "after temperature scaling"))


def _colour(index: int) -> str:
    """The name's colour, the same in both panels (plotly would otherwise go on cycling in the second)."""
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly
    return palette[index % len(palette)]


def reliability_figure(reliability: Mapping[str, Mapping[str, Mapping[str, list]]]):
    """Reliability diagrams, before and after temperature scaling: per model (or method) the accuracy of each
    confidence bin against the bin's mean confidence (marker size ∝ share of images); the diagonal is perfect
    calibration, points below it are over-confident. `reliability`: name → {"before"|"after": bins of
    :func:`~.metrics.reliability_bins`}."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=[title for _, title in _PANELS], shared_yaxes=True)
    for col, (key, _) in enumerate(_PANELS, start=1):
        figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                           name="perfect calibration", showlegend=col == 1, row=1, col=col)
        for index, (name, bins) in enumerate(reliability.items()):
            part = bins[key]
            total = max(1, sum(part["count"]))
            kept = [k for k, count in enumerate(part["count"]) if count]
            name = plotly_text(name)  # model and method names come from checkpoint files and the manifest
            figure.add_scatter(
                x=[part["confidence"][k] for k in kept], y=[part["accuracy"][k] for k in kept], mode="lines+markers",
                name=name, legendgroup=name, showlegend=col == 1, row=1, col=col, line=dict(color=_colour(index)),
                marker=dict(size=[6 + 24 * (part["count"][k] / total) ** 0.5 for k in kept], color=_colour(index)),
                customdata=[[part["count"][k], part["low"][k], part["high"][k]] for k in kept],
                hovertemplate=f"{name}<br>bin (%{{customdata[1]:.2f}}, %{{customdata[2]:.2f}}]: %{{customdata[0]}} "
                              "images<br>confidence %{x:.3f}, accuracy %{y:.3f}<extra></extra>")
    figure.update_xaxes(title_text="mean confidence in the bin", range=[0, 1.02])
    figure.update_yaxes(title_text="accuracy in the bin", range=[0, 1.02], row=1, col=1)
    figure.update_layout(height=420, margin=dict(t=50, b=40))
    return figure


def confidence_histogram(reliability: Mapping[str, Mapping[str, Mapping[str, list]]]):
    """Share of test images per confidence bin, before and after temperature scaling, one colour per name."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=[title for _, title in _PANELS], shared_yaxes=True)
    for col, (key, _) in enumerate(_PANELS, start=1):
        for index, (name, bins) in enumerate(reliability.items()):
            part = bins[key]
            total = max(1, sum(part["count"]))
            name = plotly_text(name)
            figure.add_bar(x=[(low + high) / 2 for low, high in zip(part["low"], part["high"])],
                           y=[count / total for count in part["count"]], name=name, legendgroup=name,
                           marker_color=_colour(index),
                           showlegend=col == 1, row=1, col=col,
                           hovertemplate=f"{name}<br>confidence ≈ %{{x:.2f}}: %{{y:.1%}} of images<extra></extra>")
    figure.update_xaxes(title_text="top-label confidence", range=[0, 1])
    figure.update_yaxes(title_text="share of images", tickformat=".0%", row=1, col=1)
    figure.update_layout(barmode="group", height=380, margin=dict(t=50, b=40))
    return figure


def severity_figure(severity):
    """Mean confidence (solid) and accuracy (dotted) against corruption severity, per method, before and after
    temperature scaling; a confidence line above its accuracy line is over-confidence. `severity` is
    :func:`~.study.severity_table`'s DataFrame."""
    import plotly.express as px
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=[title for _, title in _PANELS], shared_yaxes=True)
    palette = px.colors.qualitative.Plotly + px.colors.qualitative.Dark24
    for index, (method, part) in enumerate(severity.groupby("method", sort=False)):
        colour = palette[index % len(palette)]
        method = plotly_text(method)
        for col, column in ((1, "confidence"), (2, "confidence_ts")):
            figure.add_scatter(x=part["severity"], y=part[column], mode="lines+markers", name=method,
                               legendgroup=method, showlegend=col == 1, line=dict(color=colour), row=1, col=col,
                               hovertemplate=f"{method}, severity %{{x}}: confidence %{{y:.3f}}<extra></extra>")
            figure.add_scatter(x=part["severity"], y=part["accuracy"], mode="lines", name=f"{method} accuracy",
                               legendgroup=method, showlegend=False, line=dict(color=colour, dash="dot"), row=1,
                               col=col, hovertemplate=f"{method}, severity %{{x}}: accuracy %{{y:.3f}}<extra></extra>")
    figure.update_xaxes(title_text="severity (mean over the corruptions)", dtick=1)
    figure.update_yaxes(title_text="confidence (solid), accuracy (dotted)", row=1, col=1)
    figure.update_layout(height=420, margin=dict(t=50, b=40))
    return figure
