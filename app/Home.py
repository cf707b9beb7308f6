"""MSDA Lab — the Mask Explorer: every msda method on one image pair, side by side.

Run from the repository root: ``streamlit run app/Home.py``. Nothing is downloaded: the example photos come
with scikit-image and the shapes samples are rendered by msda.data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import torch  # noqa: E402

import msda  # noqa: E402
from app.lib import figures  # noqa: E402
from app.lib.cards import Settings, method_card  # noqa: E402
from app.lib.miamix_view import METHOD as MIAMIX  # noqa: E402
from app.lib.miamix_view import miamix_section  # noqa: E402
from app.lib.pair import Pair, choose_image  # noqa: E402
from app.lib.priors import beta_prior_spec  # noqa: E402

# Every mix here is a batch of two small images: one thread is fastest, and on a shared machine it does not
# fight other processes for cores.
torch.set_num_threads(1)

WORKING_SIZES = (32, 64, 128, 224, 256)
DEFAULT_A, DEFAULT_B = 0, 1  # astronaut, cat
COLUMNS = 3  # cards per row: legible on a projector with the sidebar open

st.set_page_config(page_title="MSDA Lab · Mask Explorer", layout="wide")
st.html("""<style>
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; }
[class*="st-key-card-"] .katex-display { overflow-x: auto; overflow-y: hidden; margin: 0.2em 0; }
</style>""")


def _next_seed() -> None:
    st.session_state.seed = (st.session_state.seed + 1) % (2**31)


def sidebar_controls() -> tuple[Pair, Settings]:
    with st.sidebar:
        st.header("Images")
        size = st.select_slider("Working size (pixels)", WORKING_SIZES, value=224, key="size",
                                help="Both images are centre-cropped to a square and resized to this size.")
        image_a = choose_image("A", DEFAULT_A, size)
        image_b = choose_image("B", DEFAULT_B, size)
        st.header("Mixing")
        lam_mode = st.radio("λ", ("pinned", "drawn from Beta(α, α)"), horizontal=True, key="lam_mode",
                            help="λ is the share of A the mix is asked for; each card shows what it got.")
        lam = st.slider("requested λ", 0.0, 1.0, 0.6, 0.01, key="lam", disabled=lam_mode != "pinned")
        alpha = st.slider("α", 0.1, 5.0, 1.0, 0.1, key="alpha",
                          help="Concentration of the λ prior Beta(α, α); MiAMix: Dir(α, …, α, k·α).")
        if lam_mode == "pinned":
            st.caption("With λ pinned, α only changes MiAMix (how its layers share 1 − λ) and the plot.")
        if "seed" not in st.session_state:
            st.session_state.seed = 0
        seed_box, button_box = st.columns([3, 2], vertical_alignment="bottom")
        seed = int(seed_box.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="seed"))
        button_box.button("resample", on_click=_next_seed, help="Next seed: new random draws for every method.")
    settings = Settings(lam=float(lam) if lam_mode == "pinned" else None, alpha=float(alpha), seed=seed)
    return Pair(image_a, image_b, size), settings


def pair_row(pair: Pair, settings: Settings) -> None:
    for image in (pair.a, pair.b):
        if image.error:
            st.error(image.error)
        if image.warning:
            st.warning(image.warning)
    col_a, col_b, col_prior = st.columns([1, 1, 1.4], gap="medium")
    for column, image, role in ((col_a, pair.a, "own image, mask 1"), (col_b, pair.b, "partner, mask 0")):
        with column:
            st.markdown(f"**{image.slot}** · {image.class_name}")
            st.image(image.pixels, width="stretch")
            st.caption(f"{role} · {image.source}: {image.history}")
    with col_prior:
        st.plotly_chart(figures.figure(beta_prior_spec(settings.alpha, settings.lam)), config=figures.CHART_CONFIG,
                        theme=None)
        st.markdown(
            f'Masks: <span style="background:{figures.COLOUR_A};padding:0 6px">1 = A</span> '
            f'<span style="background:{figures.COLOUR_B};color:white;padding:0 6px">0 = B</span>, '
            "one scale on every card. **Effective λ** = mask mean = A's share of the label. "
            "**Edge sharpness**: the mask's slope across its boundary, per pixel (1 hard, 0 no edge). "
            "**Partner regions**: patches where B dominates.",
            unsafe_allow_html=True)


def method_grid(pair: Pair, settings: Settings) -> None:
    """The cards, three per row; the methods that need logits (HardMix) come last, and MiAMix's card and stages
    fill the last row and a full-width row below it."""
    infos = msda.methods_info()
    names = sorted((name for name in msda.METHODS if name != MIAMIX), key=lambda name: infos[name].needs_logits)
    leftover = len(names) % COLUMNS
    if leftover > COLUMNS - 2:  # no room for MiAMix's card and its summary beside them
        leftover = 0
    for start in range(0, len(names) - leftover, COLUMNS):
        for column, name in zip(st.columns(COLUMNS, gap="small"), names[start:start + COLUMNS]):
            with column:
                method_card(name, pair, settings)
    last_row = st.columns([1] * (leftover + 1) + [COLUMNS - leftover - 1], gap="small")
    below = st.container()
    for column, name in zip(last_row, names[len(names) - leftover:]):
        with column:
            method_card(name, pair, settings)
    with last_row[leftover]:
        miamix_section(pair, settings, last_row[leftover + 1], below)


started = time.perf_counter()
st.title("Mask Explorer")
st.markdown(f"Every method of `msda` ({len(msda.METHODS)}) mixes **A** with **B**; each card shows sample A "
            "of the batch [A, B]. Change the pair and the controls in the sidebar, a method's own parameters "
            "on its card.")
pair, settings = sidebar_controls()
pair_row(pair, settings)
method_grid(pair, settings)
st.sidebar.caption(f"msda {msda.__version__} · page drawn in {time.perf_counter() - started:.2f} s")
