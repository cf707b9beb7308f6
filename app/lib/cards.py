"""One card per method: what it is, the mixed image and its mask, λ, the mixed label, mask statistics, every
value the mix drew, the method's parameters and the export. Every card is a fragment: changing a card's
parameter reruns that card.

Everything a card shows of a mix is read from what msda returns (``MixOutput.params`` for the draws,
``details`` for what was derived from them); nothing is recomputed here. Widget keys are ``{method}:{role}``
— unique by construction, never derived from content — so no two cards can collide whatever they draw.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import msda
from msda import MethodInfo

from . import export, figures, pictures
from .formulas import formula_markdown
from .guidance import NAMES as GUIDANCE_NAMES
from .guidance import Guidance, guidance_controls
from .ladder import cached_ladder_html, defer, ladder_key
from .mixing import MixView, cached_mix_view
from .pair import Pair
from .params import ParameterControls

UNUSED_LAM = 0.5
"""λ passed to methods that do not use it: the mix is the same for any pinned λ, and a fixed value lets the
cache keep it while the λ slider moves."""

SYMBOLS = {"sigma": "σ", "theta": "θ", "tau": "τ", "q": "q", "k": "k", "lam": "λ"}


@dataclass(frozen=True)
class Settings:
    """The page-wide controls. ``lam`` is None when λ is drawn by each method from Beta(α, α)."""

    lam: float | None
    alpha: float
    seed: int


def lam_applies(info: MethodInfo, params: dict[str, Any]) -> bool:
    """Whether the requested λ shapes this method's mask: ``match_lam`` switches it on where it exists, and
    a pinned area parameter (``MethodInfo.area_param``) switches it off."""
    if info.area_param in params:
        return False
    return info.uses_lam or params.get("match_lam") is True


def unused_controls(info: MethodInfo, params: dict[str, Any]) -> list[str]:
    """The page-wide controls this method does not apply, each with the reason.

    (That α only matters for drawn λ — and for MiAMix's layer split — is page-wide and said by the α slider.)
    """
    notes = []
    area = info.area_param
    if area in params:
        symbol = SYMBOLS.get(area, area)
        also = (" and switch on *match lam*" if any(p.name == "match_lam" for p in info.params)
                and params.get("match_lam") is not True else "")
        notes.append(f"**λ** — {symbol} is pinned at {params[area]:g}, and {symbol} decides the mask's area; "
                     f"unpin {symbol}{also} to have the requested λ applied")
    elif not lam_applies(info, params):
        if any(p.name == "match_lam" for p in info.params):
            notes.append("**λ** — the patch size is sampled, as in the paper, and λ is read off the mask; "
                         "switch on *match lam* under Parameters to use the requested λ")
        else:
            notes.append(f"**λ** — {info.title} takes no λ")
    if info.default_alpha is None:
        notes.append(f"**α** — {info.title} has no λ prior")
    elif not lam_applies(info, params):
        notes.append("**α** — λ is not used")
    return notes


def lam_line(info: MethodInfo, requested: float, effective: float, area: float, uses_lam: bool,
             settings: Settings) -> str:
    """The card's "λ requested → effective" line (markdown; the grid's ladder writes each frame's with it)."""
    shown = f"effective **{effective:.2f}**"
    if info.label_weight == "cam":  # SnapMix: A's label weight is its share of the CAM mass, not the mask's mean
        asked = (f"λ drawn from Beta(α, α): **{requested:.2f}**" if settings.lam is None
                 else f"λ requested **{requested:.2f}**")
        return (f"{asked} → box area kept {area:.2f} · {shown} "
                "(A's label weight: its CAM share, not the mask's mean)")
    if not info.mixes_labels:
        return f"λ not applied · label weight of A **{effective:.2f}** (label unchanged) · mask mean {area:.2f}"
    if not uses_lam:
        return f"λ not applied · {shown} (the mask's mean)"
    if settings.lam is None:
        return f"λ drawn from Beta(α, α): **{requested:.2f}** → {shown}"
    return f"λ requested **{requested:.2f}** → {shown}"


def _label_bar(names: tuple[str, str], weights: tuple[float, float]) -> str:
    share = max(0.0, min(1.0, weights[0])) * 100
    return (f'<div class="msda-labelbar" style="display:flex;height:10px;border-radius:5px;overflow:hidden;'
            f'margin:-6px 0 4px 0" '
            f'title="{html.escape(names[0])} {weights[0]:.2f} / {html.escape(names[1])} {weights[1]:.2f}">'
            f'<div style="width:{share:.1f}%;background:{figures.COLOUR_A}"></div>'
            f'<div style="flex:1;background:{figures.COLOUR_B}"></div></div>')


def _short_number(value: float) -> str:
    """Two decimals, or two significant digits for small values (a wide Gaussian's slope is ~0.004)."""
    return f"{value:.2f}" if abs(value) >= 0.095 or value == 0 else f"{value:.2g}"


def _paper_line(info: MethodInfo) -> str:
    link = f" · [arXiv:{info.arxiv}]({info.url})" if info.url else ""
    return f"{info.paper}{link}"


def _value_text(name: str, value: Any, integer: bool = False) -> str | None:
    """A drawn value in a few characters, or None for what does not read as numbers (a spectrum, a mask)."""
    if isinstance(value, np.ndarray):
        if value.size == 1:
            value = value.item()
        elif value.size <= 4 and value.ndim == 1:
            return "(" + ", ".join(_value_text(name, v, integer) or "?" for v in value.tolist()) + ")"
        else:
            return f"{'×'.join(map(str, value.shape))} array"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (integer and isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, float):
        text = _short_number(value).replace("-", "−")
        return f"{text} rad ({math.degrees(value):.0f}°)" if name == "theta" else text
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    return str(value) if value is not None else None


def _shown(info: MethodInfo | None, name: str, pinned: set[str]) -> bool:
    """A value is listed when it was drawn (or solved) for this mix, or pinned; a fixed parameter at its
    default is on the Parameters panel instead."""
    if info is None or name in pinned:
        return True
    param = next((p for p in info.params if p.name == name), None)
    return param is None or param.default is None


def draws_text(draws: dict[str, Any], derived: dict[str, Any], pinned: set[str],
               info: MethodInfo | None = None) -> list[str]:
    """"name value" for every value the mix drew or was pinned to (pinned ones marked), then what msda derived
    from them; ``x``/``y`` pairs read as one point; per-layer entries (MiAMix) as "layer i: method (…)"."""
    infos = msda.methods_info()
    items: list[str] = []
    for name, value in draws.items():
        if name.endswith("_y") and name[:-2] + "_x" in draws:
            continue
        if isinstance(value, list):  # one entry per layer: {method: its draws}
            for index, layer in enumerate(value):
                for method, inner in (layer or {}).items():
                    inner_text = draws_text(inner, {}, set(), infos.get(method)) if isinstance(inner, dict) else []
                    items.append(f"layer {index + 1}: {method}" + (f" ({', '.join(inner_text)})" if inner_text
                                                                     else ""))
            continue
        if not _shown(info, name, pinned):
            continue
        label = SYMBOLS.get(name, name.replace("_", " "))
        param = next((p for p in info.params if p.name == name), None) if info else None
        integer = param is not None and param.kind == "int"
        if isinstance(value, dict):
            inner = draws_text(value, {}, set())
            if inner:
                items.append(f"{label}: " + ", ".join(inner))
            continue
        if name.endswith("_x") and name[:-2] + "_y" in draws:
            x, y = _value_text(name, value), _value_text(name, draws[name[:-2] + "_y"])
            label = {"center": "centre"}.get(name[:-2], name[:-2].replace("_", " "))
            text = f"({x}, {y})"
            was_pinned = name in pinned or name[:-2] + "_y" in pinned
        else:
            text = _value_text(name, value, integer)
            was_pinned = name in pinned
        if text is not None:
            items.append(f"{label} {text}" + (" (pinned)" if was_pinned else ""))
    for name, value in derived.items():
        if isinstance(value, np.ndarray) and value.size > 4 or isinstance(value, (dict, list, tuple)):
            continue  # stages and masks have their own figures
        text = _value_text(name, value)
        if text is not None and name not in draws:
            items.append(f"{SYMBOLS.get(name, name.replace('_', ' '))} {text} (derived)")
    return items


def _export(info: MethodInfo, view: MixView, params: dict[str, Any], pair: Pair, settings: Settings,
            prefix: str, guidance: Guidance | None = None) -> None:
    if info.notes:
        st.markdown(f"**Notes.** {info.notes}")
    left, right = st.columns(2)
    left.download_button("Mixed image (PNG)", data=lambda: export.mixed_png(view.mixed), on_click="ignore",
                         file_name=f"{info.name}_mixed.png", mime="image/png", key=f"{prefix}:download_mixed")
    right.download_button("Mask (PNG)", data=lambda: export.mask_png(view.mask), on_click="ignore",
                          file_name=f"{info.name}_mask.png", mime="image/png", key=f"{prefix}:download_mask")
    alpha_used = info.default_alpha is not None
    st.markdown("**Reproduce this card** (runs as pasted; saves its mixed image and mask):")
    st.code(reproduce_code(info, params, pair, settings, guidance), language="python", wrap_lines=True)
    st.markdown("**In a training loop:**")
    st.code(export.training_snippet(info.name, params=params, alpha=settings.alpha if alpha_used else None,
                                    needs_logits=info.needs_logits, needs=info.needs),
            language="python", wrap_lines=True)


def reproduce_code(info: MethodInfo, params: dict[str, Any], pair: Pair, settings: Settings,
                   guidance: Guidance | None = None) -> str:
    """The card's self-contained code (see :func:`export.reproduce_snippet`)."""
    lam = settings.lam if lam_applies(info, params) or settings.lam is None else UNUSED_LAM
    return export.reproduce_snippet(info.name, params=params,
                                    alpha=settings.alpha if info.default_alpha is not None else None,
                                    seed=settings.seed, lam=lam, photos=(pair.a.photo, pair.b.photo),
                                    size=pair.size, class_names=pair.class_names, needs_logits=info.needs_logits,
                                    guidance=guidance)


def card_view(name: str, pair: Pair, settings: Settings, params: dict[str, Any],
              guidance: Guidance | None = None) -> MixView:
    """The mix a card shows (cached): sample A of the batch [A, B] under the page's settings and ``params``
    (and, for a model-guided method, ``guidance``; default the image-only maps).
    Raises msda's ValueError for a refused parameter combination."""
    info = msda.methods_info()[name]
    lam = settings.lam if lam_applies(info, params) or settings.lam is None else UNUSED_LAM
    return cached_mix_view(name, pair.key, pair.images, lam=lam, alpha=settings.alpha, seed=settings.seed,
                           params=params, guidance=guidance.tensors if guidance else None,
                           guidance_key=guidance.key if guidance else None)


def guidance_panels(guidance: Guidance, size: int) -> list[str]:
    """The saliency or CAMs of A and B the mix used, as pictures (Inferno, each scaled to its maximum)."""
    what = GUIDANCE_NAMES[guidance.need]
    source = "image-only" if guidance.checkpoint is None else Path(guidance.checkpoint).stem
    return [pictures.panel_html(uri, f"{what} of {slot} ({source})", size, heat_bar=True, alt=f"{what} of {slot}")
            for uri, slot in zip(guidance.uris, "AB")]


def pictures_html(view: MixView, size: int, guidance: Guidance | None = None) -> str:
    panels = [pictures.panel_html(view.mixed_uri, "mixed image", size),
              pictures.panel_html(view.mask_uri, "mask (weight of A)", size, colour_bar=True, alt="mask")]
    shown = pictures.panels_html(panels)
    return shown + (pictures.panels_html(guidance_panels(guidance, size)) if guidance else "")


def card_facts(info: MethodInfo, view: MixView, params: dict[str, Any], pair: Pair, settings: Settings,
               guidance: Guidance | None = None) -> None:
    """λ, the label, the mask statistics, every draw and the notes of a card (into the current container)."""
    uses_lam = lam_applies(info, params)
    names = pair.class_names
    draws = {name: value for name, value in view.draws.items() if name not in info.needs}  # drawn as pictures
    drawn = draws_text(draws, view.stages if info.name != "miamix" else {}, set(params), info)
    # one element for the lot: every element costs the page a little on each λ move. The grid's script
    # (grid.js) rewrites the λ line, the label and its bar while the λ slider moves; the rest is marked stale.
    scrubbed = ""
    if settings.lam is not None and uses_lam:
        key = ladder_key(info.name, pair.key, settings.alpha, settings.seed, tuple(sorted(params.items())),
                         guidance.key if guidance else None)
        scrubbed = f' data-lam="{settings.lam:.2f}" data-ladder="{key}"'
    line = lam_line(info, view.lam_requested, view.lam, view.area, uses_lam, settings)
    lines = [f'<span class="msda-lamline"{scrubbed}><span class="msda-now">{line}</span></span>',
             (f'<span class="msda-label"><span class="msda-now">label: **{html.escape(names[0])} '
              f"{view.label[0]:.2f}** / **{html.escape(names[1])} {view.label[1]:.2f}**</span></span>\n"
              f"{_label_bar(names, view.label)}"),
             (f'<span class="msda-stale">mask mean {view.area:.2f} · '
              f"edge sharpness {_short_number(view.sharpness)} · "
              f"partner regions {view.regions}</span>")]
    if drawn:
        lines.append('<span class="msda-stale">**This mix used:** ' + " · ".join(drawn) + "</span>")
    st.markdown("\n\n".join(lines), unsafe_allow_html=True)
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


def render_card(name: str, pair: Pair, settings: Settings) -> MixView | None:
    """Draw the card of method ``name`` in the grid; returns what was shown (None when the parameters were
    refused)."""
    info = msda.methods_info()[name]
    with st.container(border=True, key=f"card-{name}"):
        st.markdown(f"### {info.title}")
        st.markdown(info.summary)
        st.caption(_paper_line(info))
        st.markdown(f'<div class="msda-formula">\n\n{formula_markdown(info.formula)}\n\n</div>',
                    unsafe_allow_html=True)
        body = st.container()
        with st.expander("Parameters"):
            controls = ParameterControls(info)
            params, problems = controls.draw()
        more = st.expander("Notes, export and code")
    with body:
        guidance, notes = guidance_controls(name, pair) if info.model_guided else (None, [])
        if problems:
            st.error(f"{info.title}: " + " ".join(problems))
            controls.clear_draws("fix the parameters above")
            return None
        try:
            view = card_view(name, pair, settings, params, guidance)
        except ValueError as error:
            st.error(f"{info.title}: {error}")
            controls.clear_draws("fix the parameters above")
            return None
        st.markdown(pictures_html(view, pair.size, guidance), unsafe_allow_html=True)
        card_facts(info, view, params, pair, settings, guidance)
        if notes:
            st.caption(" ".join(notes))
        if settings.lam is not None and lam_applies(info, params):
            slot = st.empty()
            defer(lambda: slot.html(card_ladder(info, view, params, pair, settings, guidance)))
    controls.show_draws(view.draws, view.stages)
    with more:
        _export(info, view, params, pair, settings, info.name, guidance)
    return view


def card_ladder(info: MethodInfo, view: MixView, params: dict[str, Any], pair: Pair, settings: Settings,
                guidance: Guidance | None) -> str:
    """The card's λ ladder element (:mod:`.ladder`): its mix at λ = 0, 0.05, …, 1, replaying its draws."""
    def line(requested: float, effective: float, area: float) -> str:
        return lam_line(info, requested, effective, area, True, settings)

    return cached_ladder_html(info.name, pair.key, settings.alpha, settings.seed, tuple(sorted(params.items())),
                              guidance.key if guidance else None, pair.class_names, view.partner, line,
                              pair.images, view.replay)


method_card = st.fragment(render_card)
