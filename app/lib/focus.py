"""The focus view: one to three methods side by side, large, each with its parameters beside its mask and two
sweeps that play in the browser — λ from 0 to 1 and one parameter that teaches something about the method —
each computed in one batched msda call with the card's draws pinned (:mod:`.sweeps`) and sent once as plotly
frames: moving the sweep's slider or pressing play never goes back to the server.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

import msda

from . import figures, pictures
from .cards import Settings, card_facts, card_view, lam_applies, pictures_html
from .formulas import formula_markdown
from .guidance import guidance_controls
from .mixing import MixView
from .pair import Pair
from .params import ParameterControls
from .sweeps import PARAM_SWEEPS, Sweep, lam_sweep, param_sweep

DEFAULT_METHODS = ["cutmix", "gmix", "fmix"]
MAX_METHODS = 3
SWEEP_FIGURE_HEIGHT = 420


def _freeze(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@st.cache_data(max_entries=32, show_spinner="Sweeping λ…")
def cached_sweep_spec(method: str, pair_key: str, alpha: float, seed: int, frozen: tuple, card_lam: float,
                      _images: torch.Tensor, _replay: dict) -> dict:
    """The λ sweep's figure for a card (keyed by what decides the card's draws; ``card_lam`` only picks the
    frame it opens at)."""
    sweep = lam_sweep(method, _images, _replay, alpha=alpha, params=dict(frozen))
    start = int(np.argmin(np.abs(sweep.values - card_lam)))
    labels = [f"{v:.2f}" for v in sweep.values]
    captions = [f"λ = {v:.2f} → effective {e:.2f}" for v, e in zip(sweep.values, sweep.lams)]
    return _spec(sweep, labels, captions, start, "requested λ")


@st.cache_data(max_entries=32, show_spinner="Sweeping the parameter…")
def cached_param_sweep_spec(method: str, pair_key: str, alpha: float, seed: int, frozen: tuple, card_lam: float,
                            card_value: float | None, _images: torch.Tensor, _replay: dict) -> dict | None:
    sweep = param_sweep(method, _images, _replay, card_value, alpha=alpha, params=dict(frozen), seed=seed)
    if sweep is None:
        return None
    start = 0 if card_value is None else int(np.argmin(np.abs(sweep.values - card_value)))
    symbol = {"sigma": "σ", "tau": "τ", "decay": "δ", "sharpen": "k", "border": "k"}.get(sweep.name, sweep.name)
    labels = [f"{v:g}" if float(v).is_integer() else f"{v:.2f}" for v in sweep.values]
    captions = [f"{symbol} = {label} → effective λ {e:.2f}" for label, e in zip(labels, sweep.lams)]
    return _spec(sweep, labels, captions, start, symbol)


def _spec(sweep: Sweep, labels: list[str], captions: list[str], start: int, title: str) -> dict:
    mixed = [pictures.jpeg_uri(frame) for frame in sweep.mixed]
    masks = [pictures.mask_png_uri(mask) for mask in sweep.masks]
    return figures.sweep_spec(mixed, masks, labels, captions, start, slider_title=title,
                              height=SWEEP_FIGURE_HEIGHT)


def _card_value(view: MixView, name: str) -> float | None:
    value = view.draws.get(name, view.stages.get(name))
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(value[0]) if value.size else None


def focus_panel(name: str, pair: Pair, settings: Settings) -> None:
    """One method, large: the mix and its facts on the left, its parameters beside them, the sweeps under."""
    info = msda.methods_info()[name]
    with st.container(border=True, key=f"focus-{name}"):
        st.markdown(f"### {info.title}")
        st.markdown(formula_markdown(info.formula))
        left, right = st.columns([3, 2], gap="medium")
        with right:
            st.markdown("**Parameters**")
            controls = ParameterControls(info)
            params, problems = controls.draw()
        with left:
            guidance, notes = guidance_controls(name, pair) if info.model_guided else (None, [])
            if problems:
                st.error(f"{info.title}: " + " ".join(problems))
                controls.clear_draws("fix the parameters")
                return
            try:
                view = card_view(name, pair, settings, params, guidance)
            except ValueError as error:
                st.error(f"{info.title}: {error}")
                controls.clear_draws("fix the parameters")
                return
            st.markdown(pictures_html(view, pair.size, guidance), unsafe_allow_html=True)
            card_facts(info, view, params, pair, settings, guidance)
            if notes:
                st.caption(" ".join(notes))
        controls.show_draws(view.draws, view.stages)
        frozen = _freeze(params)
        lam_tab, param_tab = st.tabs(["λ sweep", f"{PARAM_SWEEPS[name].name} sweep" if name in PARAM_SWEEPS
                                      else "parameter sweep"])
        with lam_tab:
            if not lam_applies(info, params):
                st.caption("λ is not applied by this mix (see above): every frame shows the same mask.")
            spec = cached_sweep_spec(name, pair.key, settings.alpha, settings.seed, frozen, view.lam_requested,
                                     pair.images, view.replay)
            st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None, key=f"focus:{name}:lam")
            st.caption("Every draw of the mix above is pinned; only λ moves. The frames were computed in one "
                       "msda call and play in the browser.")
        with param_tab:
            sweep = PARAM_SWEEPS.get(name)
            card_value = _card_value(view, sweep.name) if sweep else None
            spec = cached_param_sweep_spec(name, pair.key, settings.alpha, settings.seed, frozen,
                                           view.lam_requested, card_value, pair.images, view.replay) \
                if sweep else None
            if spec is None:
                st.caption(f"{info.title} has no second sweep here"
                           + (f": msda does not report the {sweep.name} of this mix." if sweep else "."))
            else:
                st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None,
                                key=f"focus:{name}:param")
                st.caption(f"{sweep.why}. The other draws and λ stay those of the mix above.")


def render_focus_view(pair: Pair, settings: Settings) -> None:
    chosen = st.multiselect("Methods side by side", list(msda.METHODS), default=DEFAULT_METHODS[:2],
                            max_selections=MAX_METHODS, key="focus:methods",
                            format_func=lambda name: msda.methods_info()[name].title)
    if not chosen:
        st.info("Choose one to three methods.")
        return
    for column, name in zip(st.columns(len(chosen), gap="small"), chosen):
        with column:
            focus_panel_fragment(name, pair, settings)


focus_panel_fragment = st.fragment(focus_panel)
focus_view = render_focus_view
