"""The grid's script in the browser: λ scrubbing from the cards' ladders and click-to-place (``grid.js``).

Mounted once per run of the grid as a Streamlit v2 component (its JavaScript is ``app/lib/grid.js``, served
from this repository: no CDN, no web framework). A click on a card's picture comes back as the trigger value
``place`` = {method, x, y}; :func:`place_centre` pins that method's centre there (see
:func:`.params.remember`), before the script reruns.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import msda

from .params import pin_values

SCRIPT = (Path(__file__).with_name("grid.js")).read_text(encoding="utf-8")
KEY = "grid-script"
_component = st.components.v2.component("msda_grid", js=SCRIPT)


def placeable_methods() -> list[str]:
    """Methods whose centre can be pinned (``center_x`` and ``center_y``): a click on their picture places it."""
    return [name for name, info in msda.methods_info().items()
            if {"center_x", "center_y"} <= {param.name for param in info.params}]


def place_centre(place: dict | None) -> None:
    """Pin ``place["method"]``'s centre at (x, y), fractions of the width and height."""
    if not isinstance(place, dict) or place.get("method") not in placeable_methods():
        return
    x, y = (min(max(float(place.get(axis, 0.5)), 0.0), 1.0) for axis in ("x", "y"))
    pin_values(place["method"], {"center_x": x, "center_y": y})


def _on_place() -> None:
    state = st.session_state.get(KEY)
    place_centre(getattr(state, "place", None) if state is not None and not isinstance(state, dict)
                 else (state or {}).get("place"))


def grid_script() -> None:
    """Mount the grid's script (an invisible element)."""
    _component(key=KEY, data={"placeable": placeable_methods()}, on_place_change=_on_place)
