"""Plotly figures of the pages, where hover or animation teaches something (λ priors, the focus view's sweeps,
the analysis pages); static masks and images are plain PNGs (:mod:`.pictures`). Masks use Cividis on the fixed
range 0…1 everywhere: dark blue is B, the partner (mask 0), yellow is A, the own image (mask 1).

Figures are written as plain plotly dicts and wrapped without plotly's per-property validation
(:func:`figure`): validating and building the object tree costs ~10 ms per figure. The tests validate every
figure these functions make.
"""

from __future__ import annotations

import numpy as np
import pandas  # noqa: F401 — imported before any figure is built, see below
import plotly.graph_objects as go
from plotly.colors import sequential

# Plotly reads pandas from sys.modules without importing it (``get_module("pandas", should_load=False)``): while
# one session's thread is still importing pandas, another session's figure finds the half-initialised module and
# fails ("partially initialized module 'pandas' has no attribute 'Series'"). Every page imports this module
# before drawing a figure, and Python's import lock makes the others wait until pandas is complete.

MASK_SCALE = "Cividis"
COLOUR_A = sequential.Cividis[-1]  # mask 1: the own image
COLOUR_B = sequential.Cividis[0]  # mask 0: the partner
MARK_COLOUR = "#D55E00"  # Okabe–Ito vermilion
CURVE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")  # Okabe–Ito: colour-blind safe
FONT = {"size": 15}
CHART_CONFIG = {"displayModeBar": False}


EMPTY_TEMPLATE = {"data": {}, "layout": {}}
"""Every figure sets its own styling; the default template would be copied into each figure (~4 ms)."""


def figure(spec: dict) -> go.Figure:
    """A plotly Figure from a dict spec, without plotly's validation (see the module docstring)."""
    spec["layout"].setdefault("template", EMPTY_TEMPLATE)
    return go.Figure(spec, _validate=False)


def _axis_names(index: int) -> tuple[str, str]:
    suffix = "" if index == 0 else str(index + 1)
    return f"x{suffix}", f"y{suffix}"


def grid_layout(rows: int, columns: int, titles: list[str], *, gap: float, title_size: int) -> dict:
    """Layout of a grid of image panels with square pixels and a title above each panel (row-major)."""
    layout: dict = {"annotations": []}
    width, height = (1 - gap * (columns - 1)) / columns, (1 - gap * 2 * (rows - 1)) / rows
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        x_name, y_name = _axis_names(index)
        x0, y1 = column * (width + gap), 1 - row * (height + 2 * gap)
        layout[x_name.replace("x", "xaxis")] = {"domain": [x0, x0 + width], "visible": False, "constrain": "domain",
                                               "anchor": y_name}
        layout[y_name.replace("y", "yaxis")] = {"domain": [y1 - height, y1], "visible": False,
                                               "autorange": "reversed", "scaleanchor": x_name,
                                               "constrain": "domain", "anchor": x_name}
        if index < len(titles):
            layout["annotations"].append({"text": titles[index], "x": x0 + width / 2, "y": y1, "xref": "paper",
                                          "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                                          "showarrow": False, "font": {"size": title_size}})
    return layout


def _image(uri: str, index: int) -> dict:
    x_name, y_name = _axis_names(index)
    return {"type": "image", "source": uri, "hoverinfo": "skip", "xaxis": x_name, "yaxis": y_name}


def prior_spec(x: np.ndarray, curves: list[tuple[str, np.ndarray]], marks: list[tuple[str, float, int | None]],
               title: str, height: int = 260) -> dict:
    """Densities over λ ∈ (0, 1) with dashed vertical marks (requested or sampled values).

    Each mark is (label, value, index of the curve it belongs to — drawn in that curve's colour — or None).
    """
    traces = [{"type": "scatter", "x": x, "y": density, "name": name, "mode": "lines",
               "line": {"width": 3, "color": CURVE_COLOURS[index % len(CURVE_COLOURS)]},
               "hovertemplate": "λ %{x:.2f}: density %{y:.2f}<extra></extra>"}
              for index, (name, density) in enumerate(curves)]
    peak = max((float(np.max(density)) for _, density in curves), default=1.0)
    top = min(max(peak * 1.1, 1.2), 6.0)  # densities with α < 1 diverge at 0 and 1
    shapes, annotations = [], []
    for index, (name, value, curve) in enumerate(marks):
        colour = MARK_COLOUR if curve is None else CURVE_COLOURS[curve % len(CURVE_COLOURS)]
        shapes.append({"type": "line", "x0": value, "x1": value, "y0": 0, "y1": 1, "yref": "paper",
                       "line": {"color": colour, "width": 2, "dash": "dash"}})
        left = value < 0.6
        annotations.append({"x": value, "y": top * (0.93 - 0.16 * index), "text": name, "showarrow": False,
                            "xanchor": "left" if left else "right", "xshift": 4 if left else -4,
                            "font": {"size": 14, "color": colour}, "bgcolor": "rgba(255,255,255,0.9)"})
    grid = {"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False}
    top_margin = 36 if len(curves) < 2 else 70  # room for the legend between the title and the plot
    layout = {"height": height + top_margin - 36, "margin": {"l": 64, "r": 10, "t": top_margin, "b": 50},
              "font": FONT, "plot_bgcolor": "white",
              "title": {"text": title, "x": 0, "y": 0.98, "yanchor": "top", "yref": "container", "font": {"size": 16}},
              "xaxis": {"title": {"text": "λ"}, "range": [0, 1], "dtick": 0.2, **grid},
              "yaxis": {"title": {"text": "density"}, "range": [0, top], **grid},
              "showlegend": len(curves) > 1,
              "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "bgcolor": "rgba(0,0,0,0)"},
              "shapes": shapes, "annotations": annotations}
    return {"data": traces, "layout": layout}


def sweep_spec(mixed_uris: list[str], mask_uris: list[str], labels: list[str], captions: list[str],
               start: int, *, slider_title: str, height: int = 400) -> dict:
    """The mixed image and its mask for each value of a sweep, as plotly frames played in the browser: a
    slider (and a play button) switches frames with no round trip to the server.

    ``labels`` name the slider's steps; ``captions`` (one per frame) are shown above the panels; the figure
    opens at frame ``start``.
    """
    layout = grid_layout(1, 2, ["mixed image", "mask (weight of A)"], gap=0.03, title_size=15)
    caption = {"text": captions[start], "x": 0.5, "y": 1.0, "xref": "paper", "yref": "paper", "yshift": 24,
               "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 16}}

    def traces(index: int) -> list[dict]:
        return [_image(mixed_uris[index], 0), _image(mask_uris[index], 1)]

    frames = [{"name": str(index), "data": traces(index),
               "layout": {"annotations": layout["annotations"] + [dict(caption, text=captions[index])]}}
              for index in range(len(labels))]
    step_args = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    slider = {"active": start, "currentvalue": {"prefix": f"{slider_title} = ", "font": {"size": 15}},
              "pad": {"t": 8, "b": 4}, "len": 0.8, "x": 0.15,
              "steps": [{"label": label, "method": "animate", "args": [[str(index)], step_args]}
                        for index, label in enumerate(labels)]}
    play = {"type": "buttons", "showactive": False, "x": 0.0, "y": 0, "xanchor": "left", "yanchor": "top",
            "pad": {"t": 36}, "direction": "left",
            "buttons": [{"label": "▶ play", "method": "animate",
                         "args": [None, {"mode": "immediate", "fromcurrent": True, "transition": {"duration": 0},
                                         "frame": {"duration": 180, "redraw": True}}]}]}
    layout.update(height=height, margin={"l": 0, "r": 0, "t": 56, "b": 96}, font=FONT, plot_bgcolor="white",
                  sliders=[slider], updatemenus=[play])
    layout["annotations"] = layout["annotations"] + [caption]
    for annotation in layout["annotations"][:2]:
        annotation["yshift"] = 2
    return {"data": traces(start), "layout": layout, "frames": frames}
