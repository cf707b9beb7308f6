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

import streamlit as st
import torch

import msda
from app.lib import export, figures, ladder, pictures
from app.lib.cards import Settings, method_card
from app.lib.focus import focus_view
from app.lib.grid_script import grid_script
from app.lib.miamix_view import METHOD as MIAMIX
from app.lib.miamix_view import miamix_section
from app.lib.pair import Pair, choose_image
from app.lib.priors import beta_prior_spec

# Every mix here is a batch of two small images: one thread is fastest, and on a shared machine it does not
# fight other processes for cores.
torch.set_num_threads(1)

WORKING_SIZES = (32, 64, 128, 224, 256)
DEFAULT_A, DEFAULT_B = 0, 1  # astronaut, cat
CARD_MIN_WIDTH = 330
"""px: the grid fits as many cards of at least this width as the page has room for (three at 1440 px with the
sidebar open, two at 1024 px with it open, one on a phone), so thumbnails stay at 150 px or more."""

st.set_page_config(page_title="MSDA Lab · Mask Explorer", layout="wide")
st.html(f"""<style>
[data-testid="stMainBlockContainer"] {{ padding-top: 1.5rem; padding-left: 2rem; padding-right: 2rem; }}
.st-key-cards {{ display: grid !important; grid-template-columns: repeat(auto-fill, minmax({CARD_MIN_WIDTH}px, 1fr));
  gap: 0.75rem; align-items: start; }}
.st-key-cards > * {{ min-width: 0; width: auto !important; }}
[class*="st-key-card-"] {{ min-width: 0; overflow-wrap: anywhere; }}
[class*="st-key-card-"] .katex {{ font-size: 1.05em; }}
[class*="st-key-card-"] h3 {{ padding-top: 0; }}
[class*="st-key-focus-"] [data-testid="stHorizontalBlock"] {{ flex-wrap: wrap; }}
[class*="st-key-focus-"] [data-testid="stColumn"] {{ min-width: 200px; }}
{pictures.STYLE}
[data-testid="stElementContainer"]:has(.msda-ladder), [data-testid="stElementContainer"]:has(> .st-key-grid-script)
  {{ display: none; }}
body.msda-scrubbing .msda-stale {{ opacity: 0.4; }}
[data-scrub] > .msda-now {{ display: none; }}
</style>""")
PRESENTATION_STYLE = """<style>
html { font-size: 20px; }
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"]
  { display: none !important; }
.st-key-cards { grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); }
</style>"""


def _next_seed() -> None:
    st.session_state.seed = (st.session_state.seed + 1) % (2**31)


def lam_controls(compact: bool) -> tuple[str, float, int]:
    """λ mode, λ and seed with the resample button: in the sidebar, or in one bar at the top (presentation)."""
    if "seed" not in st.session_state:
        st.session_state.seed = 0
    if compact:
        mode_box, lam_box, seed_box, button_box = st.columns([2.2, 3, 1.4, 1], vertical_alignment="bottom")
    else:
        mode_box = lam_box = st.container()
        seed_box, button_box = st.columns([3, 2], vertical_alignment="bottom")
    lam_mode = mode_box.radio("λ", ("pinned", "drawn from Beta(α, α)"), horizontal=True, key="lam_mode",
                              help="λ is the share of A the mix is asked for; each card shows what it got.")
    lam = lam_box.slider("requested λ", 0.0, 1.0, 0.6, 0.01, key="lam", disabled=lam_mode != "pinned")
    seed = int(seed_box.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="seed"))
    button_box.button("resample", on_click=_next_seed, help="Next seed: new random draws for every method.",
                      key="resample")
    return lam_mode, float(lam), seed


def sidebar_controls(presentation: bool) -> tuple[Pair, Settings]:
    with st.sidebar:
        st.header("Images")
        size = st.select_slider("Working size (pixels)", WORKING_SIZES, value=224, key="size",
                                help="Both images are centre-cropped to a square and resized to this size.")
        image_a = choose_image("A", DEFAULT_A, size)
        image_b = choose_image("B", DEFAULT_B, size)
        st.header("Mixing")
        alpha = st.slider("α", 0.1, 5.0, 1.0, 0.1, key="alpha",
                          help="Concentration of the λ prior Beta(α, α); MiAMix: Dir(α, …, α, k·α).")
        if not presentation:
            lam_mode, lam, seed = lam_controls(compact=False)
            if lam_mode == "pinned":
                st.caption("With λ pinned, α only changes MiAMix (how its layers share 1 − λ) and the plot.")
    if presentation:
        with st.container(key="top-bar"):
            lam_mode, lam, seed = lam_controls(compact=True)
    settings = Settings(lam=lam if lam_mode == "pinned" else None, alpha=float(alpha), seed=seed)
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
            st.markdown(pictures.panels_html([pictures.panel_html(pictures.jpeg_uri(image.pixels), "", pair.size,
                                                                  alt=f"image {image.slot}")]),
                        unsafe_allow_html=True)
            st.caption(f"{role} · {image.source}: {image.history}")
    col_b.download_button("Pair (PNG)", data=lambda: export.pair_png(pair.a.pixels, pair.b.pixels),
                          file_name=export.PAIR_FILE.format(size=pair.size), mime="image/png", on_click="ignore",
                          key="pair:download", help="A and B at the working size: the exported code of an "
                          "uploaded pair reads this file.")
    with col_prior:
        st.plotly_chart(figures.figure(beta_prior_spec(settings.alpha, settings.lam)), config=figures.CHART_CONFIG,
                        theme=None, key="prior:beta")
        st.markdown(
            f'Masks: <span style="background:{figures.COLOUR_A};padding:0 6px">1 = A</span> '
            f'<span style="background:{figures.COLOUR_B};color:white;padding:0 6px">0 = B</span>, '
            "one scale on every card. **Effective λ** = mask mean = A's share of the label. "
            "**Edge sharpness**: the mask's slope across its boundary, per pixel (1 hard, 0 no edge). "
            "**Partner regions**: patches where B dominates.",
            unsafe_allow_html=True)


def method_grid(pair: Pair, settings: Settings) -> None:
    """Every card in one grid (as many columns as fit, see :data:`CARD_MIN_WIDTH`); the methods that need
    logits (HardMix) come last, then MiAMix, whose stages fill a full-width section under the grid."""
    infos = msda.methods_info()
    names = sorted((name for name in msda.METHODS if name != MIAMIX), key=lambda name: infos[name].needs_logits)
    grid = st.container(key="cards")
    side, below = st.container(), st.container()
    ladder.start_run()
    with grid:
        for name in names:
            method_card(name, pair, settings)
        miamix_section(pair, settings, side, below)
    grid_script()  # λ scrubs the cards in the browser; a click on a picture places a pinnable centre
    ladder.run_deferred()  # the cards' λ ladders, once every card is on the page


started, started_cpu = time.perf_counter(), time.thread_time()
st.session_state.runs = st.session_state.get("runs", 0) + 1  # the browser test counts the page's runs
header, toggles = st.columns([4, 1.6], vertical_alignment="bottom")
header.title("Mask Explorer")
presentation = toggles.toggle("presentation", key="presentation",
                              help="For teaching: no sidebar, λ and seed in a bar at the top, larger type.")
focus = toggles.toggle("focus view", key="focus", help="One to three methods side by side, large, with their "
                       "parameters beside the mask and a λ sweep that plays in the browser.")
if presentation:
    st.html(PRESENTATION_STYLE)
pair, settings = sidebar_controls(presentation)
if focus:
    focus_view(pair, settings)
else:
    where = "λ and the seed in the bar above" if presentation else "the pair and the controls in the sidebar"
    st.markdown(f"Every method of `msda` ({len(msda.METHODS)}) mixes **A** with **B**; each card shows sample A "
                f"of the batch [A, B]. Change {where}, a method's own parameters on its card.")
    pair_row(pair, settings)
    method_grid(pair, settings)
st.sidebar.caption(f"msda {msda.__version__} · run {st.session_state.runs} · page drawn in "
                   f"{time.perf_counter() - started:.2f} s (CPU {time.thread_time() - started_cpu:.2f} s)")
