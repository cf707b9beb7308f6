"""Plotly figure specs of the analysis pages: CAM overlays, top-k probabilities, occlusion-sensitivity maps and
image grids (HardMix). Plain dicts, drawn with :func:`.figures.figure` like the Mask Explorer's.

Colour: every CAM is drawn with one map, Inferno (perceptually uniform, legible in grey), on the fixed range
0…1 with its colour bar, over the image in grey so the map's colours read true. Occlusion sensitivity is
signed, so it gets a diverging map (blue: covering the window *raises* the probability, red: lowers it),
symmetric around 0 and shared by all models of the figure. Probabilities and highlights use the Okabe–Ito
colours of :mod:`.figures`.
"""

from __future__ import annotations

import base64

import numpy as np
from plotly.colors import sequential

from .figures import CURVE_COLOURS, FONT, MARK_COLOUR, grid_layout
from .images import to_png
from analysis.untrusted import plotly_text

CAM_SCALE = [[index / (len(sequential.Inferno) - 1), colour] for index, colour in enumerate(sequential.Inferno)]
"""Inferno as explicit stops: plotly.js itself only knows a few scales by name (Viridis, Cividis, …), and these
figures skip the Python-side validation that would expand the name."""
CAM_OPACITY = 0.6
SENSITIVITY_SCALE = [[0.0, "#2166AC"], [0.25, "#92C5DE"], [0.5, "#F7F7F7"], [0.75, "#F4A582"], [1.0, "#B2182B"]]
"""ColorBrewer RdBu, red for positive values (covering the window lowers the class's probability)."""
CLEAN_COLOUR, OCCLUDED_COLOUR = CURVE_COLOURS[0], CURVE_COLOURS[1]
BOX_COLOUR = "#56B4E9"  # Okabe–Ito sky blue: visible on Inferno's dark and bright ends
CAM_COLOUR_BAR = {"orientation": "h", "tickvals": [0, 50, 100], "ticktext": ["0", "0.5", "1"],
                  "title": {"text": "CAM", "side": "right"}, "thickness": 10, "len": 0.7, "outlinewidth": 0,
                  "x": 0.5, "xanchor": "center", "y": -0.02, "yanchor": "top", "ticks": "outside", "ticklen": 3}
"""Under the panels, so that they get the figure's whole width."""


def png_uri(pixels: np.ndarray) -> str:
    """A ``data:image/png`` URI: lossless, so small images enlarged on screen keep crisp pixels (a JPEG's
    halved colour resolution would blur a 32-px image)."""
    return "data:image/png;base64," + base64.b64encode(to_png(pixels)).decode("ascii")


def grey(pixels: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] in grey (the mean of the channels): the background that lets a colour map read true."""
    level = pixels.mean(axis=2, keepdims=True).round().astype(np.uint8)
    return np.repeat(level, 3, axis=2)


def _axes(index: int) -> tuple[str, str]:
    return ("x", "y") if index == 0 else (f"x{index + 1}", f"y{index + 1}")


def _box_shape(box: tuple[float, float, float, float], index: int) -> dict:
    """The occluder's box outline on panel `index` (pixel j spans j − 0.5 … j + 0.5 on a plotly image)."""
    x_name, y_name = _axes(index)
    x0, y0, x1, y1 = box
    return {"type": "rect", "xref": x_name, "yref": y_name, "x0": x0 - 0.5, "x1": x1 - 0.5, "y0": y0 - 0.5,
            "y1": y1 - 0.5, "line": {"color": BOX_COLOUR, "width": 2, "dash": "dash"}}


def overlay_spec(panels: list[tuple[np.ndarray, np.ndarray, str, tuple | None]], *, height: int = 250) -> dict:
    """CAM overlays side by side on one colour scale.

    Args:
        panels: (image uint8 [S, S, 3], CAM float [S, S] in [0, 1], title, occluder box (x0, y0, x1, y1) in
            pixels or None) per panel.
    """
    layout = grid_layout(1, len(panels), [title for _, _, title, _ in panels], gap=0.04, title_size=15)
    traces, shapes = [], []
    for index, (pixels, cam, _, box) in enumerate(panels):
        x_name, y_name = _axes(index)
        traces.append({"type": "image", "source": png_uri(grey(pixels)), "hoverinfo": "skip", "xaxis": x_name,
                       "yaxis": y_name})
        traces.append({"type": "heatmap", "z": np.rint(np.clip(cam, 0, 1) * 100).astype(np.uint8),
                       "coloraxis": "coloraxis", "opacity": CAM_OPACITY, "xaxis": x_name, "yaxis": y_name,
                       "hovertemplate": "x %{x}, y %{y}<br>CAM %{z}%<extra></extra>"})
        if box is not None:
            shapes.append(_box_shape(box, index))
    layout.update(height=height, margin={"l": 0, "r": 0, "t": 26, "b": 44}, font=FONT, plot_bgcolor="white",
                  shapes=shapes, coloraxis={"colorscale": CAM_SCALE, "cmin": 0, "cmax": 100,
                                            "colorbar": CAM_COLOUR_BAR})
    return {"data": traces, "layout": layout}


def images_spec(panels: list[tuple[np.ndarray, str, tuple | None]], *, height: int = 260) -> dict:
    """Images side by side (colour), with an optional dashed box outline each."""
    layout = grid_layout(1, len(panels), [title for _, title, _ in panels], gap=0.04, title_size=15)
    traces, shapes = [], []
    for index, (pixels, _, box) in enumerate(panels):
        x_name, y_name = _axes(index)
        traces.append({"type": "image", "source": png_uri(pixels), "hoverinfo": "skip", "xaxis": x_name,
                       "yaxis": y_name})
        if box is not None:
            shapes.append(_box_shape(box, index))
    layout.update(height=height, margin={"l": 0, "r": 0, "t": 28, "b": 0}, font=FONT, plot_bgcolor="white",
                  shapes=shapes)
    return {"data": traces, "layout": layout}


def topk_spec(clean: list[tuple[str, float]], occluded: list[tuple[str, float]], *, height: int | None = None
              ) -> dict:
    """Top-k probabilities before (blue) and after occlusion (orange) as horizontal bars; the classes of both
    top-k lists, ordered by their clean probability, with each class's probability in both."""
    order = list(dict.fromkeys([name for name, _ in clean] + [name for name, _ in occluded]))
    shown_names = {name: plotly_text(name) for name in order}  # class names come from a checkpoint's metadata
    clean_p, occluded_p = dict(clean), dict(occluded)
    traces = []
    for label, values, colour in (("clean", clean_p, CLEAN_COLOUR), ("occluded", occluded_p, OCCLUDED_COLOUR)):
        shown = [values.get(name) for name in order]
        traces.append({"type": "bar", "orientation": "h", "name": label, "x": shown,
                       "y": [shown_names[name] for name in order],
                       "marker": {"color": colour}, "text": [f"{v:.2f}" if v is not None else "" for v in shown],
                       "textposition": "outside", "cliponaxis": False,
                       "hovertemplate": f"{label}: %{{y}} %{{x:.3f}}<extra></extra>"})
    layout = {"barmode": "group", "height": height or 64 + 26 * len(order), "font": FONT,
              "plot_bgcolor": "white", "margin": {"l": 8, "r": 8, "t": 30, "b": 34}, "bargap": 0.2,
              "bargroupgap": 0.05,
              "xaxis": {"range": [0, 1.15], "tickvals": [0, 0.25, 0.5, 0.75, 1], "showgrid": True,
                        "gridcolor": "#e5e5e5", "title": {"text": "probability", "standoff": 2}},
              "yaxis": {"autorange": "reversed", "automargin": True},
              "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "yref": "paper"}}
    return {"data": traces, "layout": layout}


def sensitivity_spec(panels: list[tuple[np.ndarray, np.ndarray, str]], limit: float, *, height: int = 300) -> dict:
    """Occlusion-sensitivity maps side by side on one symmetric diverging scale [−limit, limit]."""
    limit = max(float(limit), 1e-3)
    layout = grid_layout(1, len(panels), [title for _, _, title in panels], gap=0.04, title_size=15)
    traces = []
    for index, (pixels, heat, _) in enumerate(panels):
        x_name, y_name = _axes(index)
        traces.append({"type": "image", "source": png_uri(grey(pixels)), "hoverinfo": "skip", "xaxis": x_name,
                       "yaxis": y_name})
        traces.append({"type": "heatmap", "z": np.round(heat.astype(np.float64), 4), "coloraxis": "coloraxis",
                       "opacity": 0.75, "xaxis": x_name, "yaxis": y_name,
                       "hovertemplate": "x %{x}, y %{y}<br>probability drop %{z:.3f}<extra></extra>"})
    layout.update(height=height, margin={"l": 0, "r": 0, "t": 28, "b": 0}, font=FONT, plot_bgcolor="white",
                  coloraxis={"colorscale": SENSITIVITY_SCALE, "cmin": -limit, "cmax": limit,
                             "colorbar": {"title": {"text": "drop in p(class)", "side": "right"}, "thickness": 12,
                                          "len": 0.9, "outlinewidth": 0}})
    return {"data": traces, "layout": layout}


def grid_spec(images: list[np.ndarray], titles: list[str], *, columns: int, highlighted: list[bool] | None = None,
              panel_height: int = 132, title_height: int = 24, title_size: int = 13) -> dict:
    """Images in a grid, row-major, each with a title above it; highlighted ones get a thick vermilion frame.

    Rows are laid out in pixels (`panel_height` for the image, `title_height` for its title), so titles never
    run into the row above whatever the number of rows.
    """
    rows = -(-len(images) // columns)
    height = rows * (panel_height + title_height)
    gap = 0.012
    width = (1 - gap * (columns - 1)) / columns
    layout: dict = {"annotations": []}
    traces, shapes = [], []
    for index, pixels in enumerate(images):
        row, column = divmod(index, columns)
        x_name, y_name = _axes(index)
        top = 1 - (row * (panel_height + title_height) + title_height) / height
        bottom = top - panel_height / height
        x0 = column * (width + gap)
        layout[x_name.replace("x", "xaxis")] = {"domain": [x0, x0 + width], "visible": False, "constrain": "domain",
                                               "anchor": y_name}
        layout[y_name.replace("y", "yaxis")] = {"domain": [bottom, top], "visible": False, "autorange": "reversed",
                                               "scaleanchor": x_name, "constrain": "domain", "anchor": x_name}
        layout["annotations"].append({"text": titles[index], "x": x0 + width / 2, "y": top, "xref": "paper",
                                      "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": title_size}})
        traces.append({"type": "image", "source": png_uri(pixels), "hoverinfo": "skip", "xaxis": x_name,
                       "yaxis": y_name})
        if highlighted is not None and highlighted[index]:
            size_y, size_x = pixels.shape[:2]
            shapes.append({"type": "rect", "xref": x_name, "yref": y_name, "x0": -0.5, "x1": size_x - 0.5,
                           "y0": -0.5, "y1": size_y - 0.5, "line": {"color": MARK_COLOUR, "width": 5}})
    layout.update(height=height + 8, margin={"l": 4, "r": 4, "t": 4, "b": 4}, font=FONT, plot_bgcolor="white",
                  shapes=shapes)
    return {"data": traces, "layout": layout}
