"""One card per method: what it is, the mixed image and its mask, λ, the mixed label, mask statistics, the
method's parameters and the export. Every card is a fragment: changing a card's parameter reruns that card."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import streamlit as st

import msda
from msda import MethodInfo

from . import export, figures
from .mixing import MixView, cached_mix_view
from .pair import Pair
from .params import parameter_controls

FORMULA_SIZE = r"\small "
"""KaTeX size command in front of every formula: the longer ones then fit a card of a three-column grid."""
UNUSED_LAM = 0.5
"""λ passed to methods that do not use it: the mix is the same for any pinned λ, and a fixed value lets the
cache keep it while the λ slider moves."""


@dataclass(frozen=True)
class Settings:
    """The page-wide controls. ``lam`` is None when λ is drawn by each method from Beta(α, α)."""

    lam: float | None
    alpha: float
    seed: int


def lam_applies(info: MethodInfo, params: dict[str, Any]) -> bool:
    """Whether the requested λ shapes this method's mask (``match_lam`` switches it on where it exists)."""
    return info.uses_lam or params.get("match_lam") is True


def unused_controls(info: MethodInfo, params: dict[str, Any]) -> list[str]:
    """The page-wide controls this method does not apply, each with the reason.

    (That α only matters for drawn λ — and for MiAMix's layer split — is page-wide and said by the α slider.)
    """
    notes = []
    uses_lam = lam_applies(info, params)
    if not uses_lam:
        if any(p.name == "match_lam" for p in info.params):
            notes.append("**λ** — the patch size is sampled, as in the paper, and λ is read off the mask; "
                         "switch on *match lam* under Parameters to use the requested λ")
        else:
            notes.append(f"**λ** — {info.title} takes no λ")
    if info.default_alpha is None:
        notes.append(f"**α** — {info.title} has no λ prior")
    elif not uses_lam:
        notes.append("**α** — λ is not used")
    return notes


def _lam_line(info: MethodInfo, view: MixView, uses_lam: bool, settings: Settings) -> str:
    effective = f"effective **{view.lam:.2f}**"
    if not info.mixes_labels:
        return f"λ not applied · label weight of A **{view.lam:.2f}** (label unchanged) · mask mean {view.area:.2f}"
    if not uses_lam:
        return f"λ not applied · {effective} (the mask's mean)"
    if settings.lam is None:
        return f"λ drawn from Beta(α, α): **{view.lam_requested:.2f}** → {effective}"
    return f"λ requested **{view.lam_requested:.2f}** → {effective}"


def _label_bar(names: tuple[str, str], weights: tuple[float, float]) -> str:
    share = max(0.0, min(1.0, weights[0])) * 100
    return (f'<div style="display:flex;height:10px;border-radius:5px;overflow:hidden;margin:-6px 0 4px 0" '
            f'title="{html.escape(names[0])} {weights[0]:.2f} / {html.escape(names[1])} {weights[1]:.2f}">'
            f'<div style="width:{share:.1f}%;background:{figures.COLOUR_A}"></div>'
            f'<div style="flex:1;background:{figures.COLOUR_B}"></div></div>')


def _short_number(value: float) -> str:
    """Two decimals, or two significant digits for small values (a wide Gaussian's slope is ~0.004)."""
    return f"{value:.2f}" if value >= 0.095 or value == 0 else f"{value:.2g}"


def _paper_line(info: MethodInfo) -> str:
    link = f" · [arXiv:{info.arxiv}]({info.url})" if info.url else ""
    return f"{info.paper}{link}"


def _export(info: MethodInfo, view: MixView, params: dict[str, Any], pair: Pair, settings: Settings) -> None:
    if info.notes:
        st.markdown(f"**Notes.** {info.notes}")
    left, right = st.columns(2)
    left.download_button("Mixed image (PNG)", data=lambda: export.mixed_png(view.mixed), on_click="ignore",
                         file_name=f"{info.name}_mixed.png", mime="image/png", key=f"{info.name}:download_mixed")
    right.download_button("Mask (PNG)", data=lambda: export.mask_png(view.mask), on_click="ignore",
                          file_name=f"{info.name}_mask.png", mime="image/png", key=f"{info.name}:download_mask")
    alpha_used = info.default_alpha is not None
    st.code(export.mixer_snippet(info.name, params=params, alpha=settings.alpha if alpha_used else None,
                                 seed=settings.seed, lam=settings.lam, size=pair.size,
                                 class_names=pair.class_names, needs_logits=info.needs_logits), language="python")


def render_card(name: str, pair: Pair, settings: Settings) -> MixView | None:
    """Draw the card of method ``name``; returns what was shown (None when the parameters were refused)."""
    info = msda.methods_info()[name]
    with st.container(border=True, key=f"card-{name}"):
        st.markdown(f"### {info.title}")
        st.markdown(info.summary)
        st.caption(_paper_line(info))
        st.latex(FORMULA_SIZE + info.formula)
        body = st.container()
        with st.expander("Parameters"):
            params, problems = parameter_controls(info)
        more = st.expander("Notes, export and code")
    uses_lam = lam_applies(info, params)
    with body:
        if problems:
            st.error(f"{info.title}: " + " ".join(problems))
            return None
        lam = settings.lam if uses_lam or settings.lam is None else UNUSED_LAM
        try:
            view = cached_mix_view(name, pair.key, pair.images, lam=lam, alpha=settings.alpha, seed=settings.seed,
                                   params=params)
        except ValueError as error:
            st.error(f"{info.title}: {error}")
            return None
        st.plotly_chart(figures.figure(figures.card_spec(view.mixed_uri, view.mask)), config=figures.CHART_CONFIG,
                        theme=None)
        st.markdown(_lam_line(info, view, uses_lam, settings))
        names = pair.class_names
        st.markdown(f"label: **{names[0]} {view.label[0]:.2f}** / **{names[1]} {view.label[1]:.2f}**")
        st.html(_label_bar(names, view.label))
        st.markdown(f"mask mean {view.area:.2f} · edge sharpness {_short_number(view.sharpness)} · "
                    f"partner regions {view.regions}")
        if info.needs_logits:
            st.caption(f"{info.title} needs a model's predictions. Here they are made up: the “model” predicts "
                       "A's class for both images, so B counts as misclassified and is the only source of "
                       f"patches. {info.title} with a trained checkpoint's predictions: the {info.title} page.")
        if info.mixes_labels and view.partner == 0:
            st.caption("A was mixed with another view of itself (self-mixing), so its label is not mixed.")
        unused = unused_controls(info, params)
        if unused:
            st.caption("Not applied here: " + "; ".join(unused) + ".")
        elif info.default_alpha not in (None, settings.alpha):
            st.caption(f"α = {settings.alpha:g} from the sidebar; {info.title}'s own default is "
                       f"{info.default_alpha:g}.")
    with more:
        _export(info, view, params, pair, settings)
    return view


method_card = st.fragment(render_card)
