"""MiAMix, live: its card next to its stages (miamix.md Fig. 2) — the sampled k and self-mixing, each layer's
method and λ_i, each layer's mask before and after augmentation, the merged mask and the final λ — read from
``MixOutput.details``. One fragment: changing a MiAMix parameter redraws the card and the stages together."""

from __future__ import annotations

import streamlit as st

from . import figures, pictures
from .cards import Settings, render_card
from .mixing import MixView
from .pair import Pair
from .priors import dirichlet_prior_spec, subscript

METHOD = "miamix"


def _augmentation(rotated: bool, smoothed: bool, smoothing: str) -> str:
    done = (["rotated + sheared"] if rotated else []) + ([f"smoothed ({smoothing})"] if smoothed else [])
    return ", ".join(done) or "none"


def _short(augmentation: str) -> str:
    return augmentation.replace(" + sheared", "").split(" (")[0]


def render_stages(view: MixView, settings: Settings, smoothing: str, lam_mode: str, side, below) -> None:
    """The sampled stages into ``side`` (numbers and table) and ``below`` (masks and the Dirichlet prior)."""
    stages = view.stages
    k, names = int(stages["k"]), stages["methods"]
    layer_names = [names[int(i)] for i in stages["layer_methods"][:k]]
    layer_lams = [float(v) for v in stages["layer_lams"][:k]]
    own_share = float(stages["layer_lams"][-1])
    augmentations = [_augmentation(bool(stages["rotated"][i]), bool(stages["smoothed"][i]), smoothing)
                     for i in range(k)]
    partner = "another view of A itself (self-mixing)" if stages["self_mix"] else "B"
    own = f"λ{subscript(k + 1)}"
    with side:
        st.markdown("### MiAMix, stage by stage")
        st.markdown(f"**k = {k}** mask layer{'s' if k > 1 else ''} · partner: **{partner}**")
        rows = ["| layer | method | partner area λᵢ | augmentation |", "|---|---|---|---|"]
        rows += [f"| {i + 1} | {name} | {lam:.2f} | {aug} |"
                 for i, (name, lam, aug) in enumerate(zip(layer_names, layer_lams, augmentations))]
        st.markdown("\n".join(rows))
        st.markdown(f"own share {own} = **{own_share:.2f}**" + (" (the pinned λ)" if settings.lam is not None else "")
                    + f" · final λ = **{view.lam:.2f}** "
                    + ("(the own share, lam mode orig)" if lam_mode == "orig" else "(mean of the merged mask)"))
        st.caption("The stages of miamix.md Fig. 2, read from MixOutput.details; change MiAMix's parameters on "
                   "its card.")
    size = int(stages["merged"].shape[-1])
    panels = []
    for index, (name, lam, aug) in enumerate(zip(layer_names, layer_lams, augmentations)):
        panels.append(pictures.panel_html(pictures.mask_png_uri(stages["raw_masks"][index]),
                                          f"layer {index + 1}: {name}, λ{subscript(index + 1)} = {lam:.2f}", size))
        panels.append(pictures.panel_html(pictures.mask_png_uri(stages["masks"][index]),
                                          f"layer {index + 1} augmented: {_short(aug)}", size))
    panels.append(pictures.panel_html(pictures.mask_png_uri(stages["merged"][0]),
                                      f"merged, λ = {view.lam:.2f}", size, colour_bar=True))
    panels.append(pictures.panel_html(view.mixed_uri, "mixed image", size))
    prior = dirichlet_prior_spec(settings.alpha, k, layer_lams, own_share, settings.lam is not None)
    with below:
        masks, dirichlet = st.columns([2, 1], gap="medium")
        masks.markdown(pictures.panels_html(panels, css_class="msda-stages"), unsafe_allow_html=True)
        dirichlet.plotly_chart(figures.figure(prior), config=figures.CHART_CONFIG, theme=None, key="miamix:prior")
        if settings.lam is not None:
            dirichlet.caption(f"λ is pinned, so {own} = λ and the layers split the rest, 1 − λ, by Dir(α, …, α); "
                              "the curves show the prior when nothing is pinned.")


def render_miamix_section(pair: Pair, settings: Settings, side, below) -> None:
    """MiAMix's card here, its stage summary into ``side`` and its stage figures into ``below`` (containers
    made outside this fragment, so that one fragment redraws all three when a MiAMix parameter changes)."""
    view = render_card(METHOD, pair, settings)
    if view is None:
        side.info("Fix MiAMix's parameters on its card to see the stages.")
        return
    state = st.session_state  # the card's widgets, just drawn
    smoothing, lam_mode = state.get(f"{METHOD}:smoothing", "gaussian"), state.get(f"{METHOD}:lam_mode", "merged")
    render_stages(view, settings, smoothing, lam_mode, side, below)


miamix_section = st.fragment(render_miamix_section)
