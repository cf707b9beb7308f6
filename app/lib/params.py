"""Widgets for a method's parameters, built from ``msda.methods_info()[method].params`` — nothing per method.

Per :class:`msda.Param`:

* random parameters (``Param.random``, or no default: solved by the method) get a "pin" toggle. Pinned, a
  slider sets the value; unpinned, the method draws it from the seeded generator and a greyed-out slider shows
  the value it drew (read from ``MixOutput.params``/``details`` after the mix: :meth:`ParameterControls.
  show_draws`). Pinning starts from the value on screen;
* float/int parameters with a range get a slider, without one a number box; bool a toggle; choice a radio;
* "names" parameters (a list of method names) a multiselect of ``msda.MASKS``; a "numbers" parameter whose
  default pairs up with a "names" parameter's (same length) gets one number per selected name, other
  "numbers" a comma-separated text box;
* "tensor" parameters (and "other" ones without choices) are listed as sampled, not adjustable here.

Ranges come from the registry: the pinnable range (``Param.low``/``high``) and, for where a slider starts,
the support of the law the parameter is drawn from (``Param.sampled``). :meth:`ParameterControls.draw`
returns only what differs from the defaults, which is what is passed to ``msda.Mixer`` and exported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

import msda
from msda import MethodInfo, Param
from msda.distributions import Drawn


def _number(text: str) -> float | None:
    text = text.replace("−", "-").replace(" ", "")
    try:
        return float(text)
    except ValueError:
        return None


def sampled_range(param: Param) -> tuple[float, float] | None:
    """(low, high) of the law a random parameter is drawn from, as the registry states it; else None."""
    support = getattr(param.sampled, "support", None)
    return None if support is None else (float(support[0]), float(support[1]))


def _step(low: float, high: float) -> float:
    return 10.0 ** math.floor(math.log10((high - low) / 100))


def slider_bounds(param: Param) -> tuple[float, float, float]:
    """(low, high, step) of a float slider; an open end is moved in by one step."""
    low, high = float(param.low), float(param.high)
    step = _step(low, high)
    return (low + step if param.low_open else low), (high - step if param.high_open else high), step


def initial_value(param: Param, low: float, high: float) -> float:
    """Where a pinned slider starts without a draw on screen: the default, the middle of the law's support,
    or near the low end."""
    if param.default is not None:
        return float(param.default)
    sampled = sampled_range(param)
    middle = (sampled[0] + sampled[1]) / 2 if sampled else low + min(high - low, 1.0) / 2
    return min(max(middle, low), high)


def slider_value(value: float, low: float, high: float, step: float) -> float:
    """A float slider's value as passed to msda: rounded to the slider's precision and kept inside its
    bounds — rounding alone turns the end of [−π, π] into 3.1416, which is past π."""
    digits = max(0, -math.floor(math.log10(step))) + 2
    return min(max(round(float(value), digits), low), high)


def _label(param: Param) -> str:
    return param.name.replace("_", " ")


def _format(step: float) -> str:
    return f"%.{max(0, -math.floor(math.log10(step)))}f"


def _numeric_widget(key: str, param: Param, *, disabled: bool = False) -> float | int:
    if param.low is None or param.high is None:
        value = float(param.default) if param.default is not None else 0.0
        kept = key in st.session_state
        if param.kind == "int":
            return int(st.number_input(_label(param), **({} if kept else {"value": int(value)}), step=1, key=key,
                                       help=param.description, disabled=disabled))
        return float(st.number_input(_label(param), **({} if kept else {"value": value}), step=0.1, key=key,
                                     help=param.description, disabled=disabled))
    if param.kind == "int":
        low, high = int(param.low), int(param.high)
        start = round(initial_value(param, low, high))
        if key in st.session_state:  # set by the pin toggle (the drawn value) or by the user
            return int(st.slider(_label(param), low, high, step=1, key=key, help=param.description,
                                 disabled=disabled))
        return int(st.slider(_label(param), low, high, start, 1, key=key, help=param.description, disabled=disabled))
    low, high, step = slider_bounds(param)
    if key in st.session_state:
        value = st.slider(_label(param), low, high, step=step, key=key, help=param.description, disabled=disabled,
                          format=_format(step))
    else:
        start = min(max(round(initial_value(param, low, high) / step) * step, low), high)
        value = st.slider(_label(param), low, high, start, step, key=key, help=param.description, disabled=disabled,
                          format=_format(step))
    return slider_value(value, low, high, step)


def _display_value(param: Param, value: Any) -> float | int | None:
    """A drawn value as the greyed-out slider of ``param`` can show it (inside its bounds), or None."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if param.kind == "int":
        return int(min(max(round(value), int(param.low)), int(param.high)))
    low, high, step = slider_bounds(param)
    return min(max(round(value / step) * step, low), high)


def _names_widget(key: str, param: Param) -> tuple[str, ...]:
    options = list(msda.MASKS)
    default = {} if key in st.session_state else {"default": [n for n in param.default if n in options]}
    chosen = st.multiselect(_label(param), options, **default, key=key, help=param.description)
    return tuple(chosen)


def _paired_numbers_widget(key: str, param: Param, names_param: Param, names: tuple[str, ...]) -> tuple:
    st.caption(f"{_label(param)} — {param.description}")
    defaults = dict(zip(names_param.default, param.default))
    values = []
    for name in names:
        value = st.number_input(f"{_label(param)}: {name}", min_value=param.low, max_value=param.high,
                                value=float(defaults.get(name, 1.0)), step=0.5, key=f"{key}:{name}")
        values.append(float(value))
    return tuple(values)


def _numbers_widget(key: str, param: Param) -> tuple | str | None:
    """The numbers typed in, None when left empty (no default: the method chooses), or a message saying what
    is wrong with them."""
    example = ", ".join(f"{v:g}" for v in param.default) if param.default is not None else ""
    default = {} if key in st.session_state else {"value": example}
    text = st.text_input(f"{_label(param)} (comma-separated)", **default, key=key, help=param.description,
                         placeholder=str(param.sampled or "the method's choice"))
    if param.default is None and not text.strip():
        return None
    example = example or "5, 7"
    values = tuple(_number(part) for part in text.split(",") if part.strip())
    if not values or any(v is None for v in values):
        return f"{param.name} must be numbers separated by commas, like {example}; got {text!r}."
    return values


def _end(value: float) -> str:
    return f"{value:.3g}".replace("-", "−")


def drawn_slider_html(label: str, value: float, low: float, high: float, source: str, integer: bool) -> str:
    """A greyed-out slider at ``value`` on [low, high], in HTML: where an unpinned parameter's draw is shown."""
    share = 0.0 if high <= low else (value - low) / (high - low) * 100
    text = f"{int(value)}" if integer else _end(round(value, 2)) if abs(value) < 10 else f"{value:.1f}"
    return (f'<div class="msda-drawn" title="{label}: {text}, {source}; pin it to set it">'
            f'<div class="msda-drawn-label">{label} <b>{text}</b> <span>({source})</span></div>'
            f'<div class="msda-drawn-track"><div class="msda-drawn-dot" style="left:{share:.1f}%"></div></div>'
            f'<div class="msda-drawn-ends"><span>{_end(low)}</span><span>{_end(high)}</span></div></div>')


def _pin_from_screen(value_key: str, drawn_key: str) -> None:
    """Pinning starts the slider at the value the mix on screen drew."""
    if drawn_key in st.session_state:
        st.session_state[value_key] = st.session_state[drawn_key]


PINS = "msda:pins"
"""Session-state entry that keeps every parameter widget's value, keyed by its widget key
(``{method}:{parameter}``, ``…:pin``): Streamlit forgets the state of a widget that a run does not draw (the grid's
cards in the focus view and the other way round), this does not."""


def _pins() -> dict[str, Any]:
    return st.session_state.setdefault(PINS, {})


def restore(key: str) -> bool:
    """Put a remembered widget value back before its widget is drawn; True when the key has a value now (the
    widget must then be drawn without a default, or Streamlit warns)."""
    if key not in st.session_state and key in _pins():
        st.session_state[key] = _pins()[key]
    return key in st.session_state


def remember(key: str) -> None:
    if key in st.session_state:
        _pins()[key] = st.session_state[key]


def pin_values(method: str, values: dict[str, float]) -> None:
    """Pin parameters of ``method`` at ``values`` (a click on a card's picture placing its centre); call it from
    a widget callback, before the cards are drawn."""
    for name, value in values.items():
        for key, pinned in ((f"{method}:{name}:pin", True), (f"{method}:{name}", value)):
            st.session_state[key] = pinned
            _pins()[key] = pinned


class ParameterControls:
    """The widgets of one method's parameters, in two steps around the mix::

        controls = ParameterControls(info)          # inside the container the widgets belong in
        params, problems = controls.draw()          # pinned values and fixed parameters → the Mixer
        view = mix(..., params)
        controls.show_draws(view.draws, view.stages)  # greyed-out sliders at the values the mix drew

    Widget keys are ``{prefix}:{parameter}`` (``:pin`` for the toggle, ``:drawn`` for the greyed-out slider):
    unique by construction, never derived from what is shown.
    """

    def __init__(self, info: MethodInfo, prefix: str | None = None):
        self.info = info
        self.prefix = prefix or info.name
        self._unpinned: list[tuple[Param, Any]] = []  # (param, placeholder) of unpinned random parameters

    def key(self, param: Param, role: str = "") -> str:
        return f"{self.prefix}:{param.name}" + (f":{role}" if role else "")

    def draw(self) -> tuple[dict[str, Any], list[str]]:
        """Draw every widget; returns (params that differ from the defaults, problems found in the inputs)."""
        info = self.info
        chosen: dict[str, Any] = {}
        problems: list[str] = []
        if not info.params:
            st.caption(f"{info.title} has no parameters of its own.")
        names_params = [p for p in info.params if p.kind == "names"]
        fixed = [p for p in info.params if p.kind == "tensor" or (p.kind == "other" and not p.choices)]
        for param in info.params:
            if param in fixed:
                continue
            key = self.key(param)
            restored = restore(key)
            if param.kind == "bool":
                value = st.toggle(_label(param), **({} if restored else {"value": bool(param.default)}), key=key,
                                  help=param.description)
            elif param.kind in ("choice", "other"):
                value = st.radio(_label(param), param.choices,
                                 **({} if restored else {"index": param.choices.index(param.default)}),
                                 horizontal=True, key=key, help=param.description)
            elif param.kind == "names":
                value = _names_widget(key, param)
            elif param.kind == "numbers":
                partner = next((p for p in names_params if param.default is not None
                                and len(p.default) == len(param.default)), None)
                if partner is not None:
                    value = _paired_numbers_widget(key, param, partner,
                                                   chosen.get(partner.name, tuple(partner.default)))
                else:
                    value = _numbers_widget(key, param)
                    if isinstance(value, str):
                        problems.append(value)
                        continue
            elif param.default is None:
                value = self._random_widget(param)
            else:
                value = _numeric_widget(key, param)
            for remembered in (key, self.key(param, "pin")):
                remember(remembered)
            if value is not None and value != param.default:
                chosen[param.name] = value
        guided = [p for p in fixed if p.name in info.needs]  # the card's guidance selector sets these
        fixed = [p for p in fixed if p not in guided]
        if guided:
            st.caption(" ".join(f"`{p.name}`: from the guidance chosen on the card ({p.description})."
                                for p in guided))
        if fixed:
            listed = "; ".join(f"`{p.name}` ({p.sampled if p.sampled is not None else p.description})"
                               for p in fixed)
            st.caption(f"Not adjustable here: {listed}.")
        return chosen, problems

    def _random_widget(self, param: Param) -> float | int | None:
        law = ("set by the method" if param.sampled is None else
               f"{param.sampled}" if isinstance(param.sampled, Drawn) else f"drawn from {param.sampled}")
        restore(self.key(param, "pin"))
        restore(self.key(param))
        pinned = st.toggle(f"pin {_label(param)} (else {law})", key=self.key(param, "pin"), help=param.description,
                           on_change=_pin_from_screen, args=(self.key(param), self.key(param, "drawn")))
        if pinned:
            return _numeric_widget(self.key(param), param)
        self._unpinned.append((param, st.empty()))
        return None

    def show_draws(self, draws: dict[str, Any], derived: dict[str, Any]) -> None:
        """Fill the place of each unpinned parameter with a greyed-out slider at the value the mix used
        (``draws``: msda's ``out.params`` of sample 0; ``derived``: its ``out.details``, where a solved value
        such as GMix's σ is), or say that the mix did not use it. The greyed-out slider is drawn, not a widget:
        it follows every new draw, and pinning starts from its value (kept in session state)."""
        for param, placeholder in self._unpinned:
            value = draws.get(param.name, derived.get(param.name))
            shown = None if value is None or param.low is None or param.high is None else _display_value(param,
                                                                                                        value)
            if shown is None:
                placeholder.caption(f"{_label(param)}: {'not used by this mix' if value is None else value}")
                continue
            st.session_state[self.key(param, "drawn")] = shown
            source = "drawn" if param.name in draws else "solved by the method"
            placeholder.markdown(drawn_slider_html(_label(param), shown, float(param.low), float(param.high),
                                                   source, param.kind == "int"), unsafe_allow_html=True)

    def clear_draws(self, message: str) -> None:
        for _, placeholder in self._unpinned:
            placeholder.caption(message)
