"""Widgets for a method's parameters, built from ``msda.methods_info()[method].params`` — nothing per method.

Per :class:`msda.Param`:

* random parameters (``Param.random``, or no default: solved by the method) get a "pin" toggle and a slider
  that is greyed out until pinned; unpinned, the method samples them from the seeded generator;
* float/int parameters with a range get a slider, without one a number box; bool a toggle; choice a radio;
* "names" parameters (a list of method names) a multiselect of ``msda.MASKS``; a "numbers" parameter whose
  default pairs up with a "names" parameter's (same length) gets one number per selected name, other
  "numbers" a comma-separated text box;
* "tensor" parameters are listed as sampled, not adjustable here.

:func:`parameter_controls` returns only what differs from the defaults, which is what is passed to
``msda.Mixer`` and written into the code snippet.
"""

from __future__ import annotations

import math
import re
from typing import Any

import streamlit as st

import msda
from msda import MethodInfo, Param

_UNIFORM = re.compile(r"U[({]\s*([^,]+?)\s*,\s*(?:…\s*,\s*)?([^,]+?)\s*[)}]")


def _number(text: str) -> float | None:
    text = text.replace("−", "-").replace(" ", "")
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("-+")
    if text == "π":
        return sign * math.pi
    try:
        return sign * float(text)
    except ValueError:
        return None


def _sampled_range(param: Param) -> tuple[float, float] | None:
    """(low, high) of a parameter sampled as "U(a, b)" or "U{a, …, b}", else None."""
    match = _UNIFORM.search(param.sampled or "")
    if not match:
        return None
    low, high = _number(match.group(1)), _number(match.group(2))
    return None if low is None or high is None else (low, high)


def _step(low: float, high: float) -> float:
    return 10.0 ** math.floor(math.log10((high - low) / 100))


def _slider_bounds(param: Param) -> tuple[float, float, float]:
    low, high = float(param.low), float(param.high)
    step = _step(low, high)
    return (low + step if param.low_open else low), (high - step if param.high_open else high), step


def _initial_value(param: Param, low: float, high: float) -> float:
    """Where a pinned slider starts: the default, the middle of the sampled range, or near the low end."""
    if param.default is not None:
        return float(param.default)
    sampled = _sampled_range(param)
    middle = (sampled[0] + sampled[1]) / 2 if sampled else low + min(high - low, 1.0) / 2
    return min(max(middle, low), high)


def _label(param: Param) -> str:
    return param.name.replace("_", " ")


def _numeric_widget(method: str, param: Param, *, disabled: bool = False) -> float | int:
    key = f"{method}:{param.name}"
    if param.low is None or param.high is None:
        value = float(param.default) if param.default is not None else 0.0
        if param.kind == "int":
            return int(st.number_input(_label(param), value=int(value), step=1, key=key, help=param.description,
                                       disabled=disabled))
        return float(st.number_input(_label(param), value=value, step=0.1, key=key, help=param.description,
                                     disabled=disabled))
    if param.kind == "int":
        low, high = int(param.low), int(param.high)
        start = int(round(_initial_value(param, low, high)))
        return int(st.slider(_label(param), low, high, start, 1, key=key, help=param.description, disabled=disabled))
    low, high, step = _slider_bounds(param)
    start = round(_initial_value(param, low, high) / step) * step
    start = min(max(start, low), high)
    digits = max(0, -int(math.floor(math.log10(step))))
    value = st.slider(_label(param), low, high, start, step, key=key, help=param.description, disabled=disabled,
                      format=f"%.{digits}f")
    return round(float(value), digits + 2)


def _random_widget(method: str, param: Param) -> float | int | None:
    unpinned = f"random {param.sampled}" if param.sampled else "set by the method"
    pinned = st.toggle(f"pin {_label(param)} (else {unpinned})", key=f"{method}:{param.name}:pin",
                       help=param.description)
    value = _numeric_widget(method, param, disabled=not pinned)
    return value if pinned else None


def _names_widget(method: str, param: Param) -> tuple[str, ...]:
    options = list(msda.MASKS)
    chosen = st.multiselect(_label(param), options, default=[n for n in param.default if n in options],
                            key=f"{method}:{param.name}", help=param.description)
    return tuple(chosen)


def _paired_numbers_widget(method: str, param: Param, names_param: Param, names: tuple[str, ...]) -> tuple:
    st.caption(f"{_label(param)} — {param.description}")
    defaults = dict(zip(names_param.default, param.default))
    values = []
    for name in names:
        value = st.number_input(f"{_label(param)}: {name}", min_value=param.low, max_value=param.high,
                                value=float(defaults.get(name, 1.0)), step=0.5, key=f"{method}:{param.name}:{name}")
        values.append(float(value))
    return tuple(values)


def _numbers_widget(method: str, param: Param) -> tuple | str:
    """The numbers typed in, or a message saying what is wrong with them."""
    example = ", ".join(f"{v:g}" for v in param.default)
    text = st.text_input(f"{_label(param)} (comma-separated)", value=example, key=f"{method}:{param.name}",
                         help=param.description)
    values = tuple(_number(part) for part in text.split(",") if part.strip())
    if not values or any(v is None for v in values):
        return f"{param.name} must be numbers separated by commas, like {example}; got {text!r}."
    return values


def parameter_controls(info: MethodInfo) -> tuple[dict[str, Any], list[str]]:
    """Draw the widgets of every parameter of ``info``; returns (params that differ from the defaults,
    problems found in the inputs, as messages). Call inside the container the widgets belong in."""
    chosen: dict[str, Any] = {}
    problems: list[str] = []
    if not info.params:
        st.caption(f"{info.title} has no parameters of its own.")
    names_params = [p for p in info.params if p.kind == "names"]
    sampled_only = [p for p in info.params if p.kind == "tensor"]
    for param in info.params:
        if param.kind == "tensor":
            continue
        if param.kind == "bool":
            value = st.toggle(_label(param), value=bool(param.default), key=f"{info.name}:{param.name}",
                              help=param.description)
        elif param.kind == "choice":
            value = st.radio(_label(param), param.choices, index=param.choices.index(param.default), horizontal=True,
                             key=f"{info.name}:{param.name}", help=param.description)
        elif param.kind == "names":
            value = _names_widget(info.name, param)
        elif param.kind == "numbers":
            partner = next((p for p in names_params if len(p.default) == len(param.default)), None)
            if partner is not None:
                value = _paired_numbers_widget(info.name, param, partner,
                                               chosen.get(partner.name, tuple(partner.default)))
            else:
                value = _numbers_widget(info.name, param)
                if isinstance(value, str):
                    problems.append(value)
                    continue
        elif param.default is None:
            value = _random_widget(info.name, param)
        else:
            value = _numeric_widget(info.name, param)
        if value is not None and value != param.default:
            chosen[param.name] = value
    if sampled_only:
        listed = "; ".join(f"`{p.name}` ({p.sampled})" for p in sampled_only)
        st.caption(f"Always sampled from the seed, not adjustable here: {listed}.")
    return chosen, problems
