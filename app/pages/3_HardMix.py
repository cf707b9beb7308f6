"""MSDA Lab — HardMix with a trained checkpoint: which samples of a batch the model gets wrong (the pool HardMix
draws its patches from) and the mixes ``msda.Mixer("hardmix")`` makes with the checkpoint's logits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from app.lib import figures, model_figures  # noqa: E402
from app.lib.checkpoints import checkpoint_folder, choose_checkpoints, list_shipped  # noqa: E402
from app.lib.hardmix_view import (  # noqa: E402
    BATCH_SEARCH,
    HardMixView,
    cached_first_batch,
    cached_hardmix_view,
    check_model,
)

torch.set_num_threads(1)

COLUMNS = 8
HARDNESS = {"misclassified": "misclassified samples (Alg. 1)", "loss": "highest-loss fraction of the batch"}

st.set_page_config(page_title="MSDA Lab · HardMix", layout="wide")
st.html("""<style>[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; }</style>""")


def _next_seed() -> None:
    st.session_state["hm:seed"] = (st.session_state.get("hm:seed", 0) + 1) % (2**31)


def _open_on_hardmix() -> None:
    """Preselect the shipped ``hardmix`` checkpoint the first time the page opens (the menu's first entry
    otherwise)."""
    if "hm:shipped" in st.session_state:
        return
    shipped, _ = list_shipped(checkpoint_folder())
    for entry in shipped:
        if entry.path.name == "hardmix.safetensors":
            st.session_state["hm:shipped"] = entry.label


def _open_on_a_batch_with_a_pool(models, size: int) -> str | None:
    """While the user has not picked a batch, open on the first batch with a misclassified sample (searched in
    order, so always the same one); returns what to say about it."""
    if not models or check_model(models[0]):
        return None
    loaded = models[0]
    found = cached_first_batch(loaded.key, size, loaded)
    chosen = st.session_state.get("hm:batch")
    if chosen is None or chosen == st.session_state.get("hm:auto_batch"):
        st.session_state["hm:batch"] = st.session_state["hm:auto_batch"] = found if found is not None else 0
    if found is None:
        return (f"None of batches 0–{BATCH_SEARCH - 1} (of {size}) holds a sample {loaded.name} misclassifies: its "
                "pool is empty on each of them.")
    if st.session_state["hm:batch"] == found:
        return (f"Opened on batch {found}: the first batch of {size} (searched from 0) in which {loaded.name} "
                "misclassifies a sample.")
    return None


def sidebar():
    with st.sidebar:
        st.header("Model")
        _open_on_hardmix()
        models, failures, folder_note = choose_checkpoints("hm", multiple=False)
        st.header("Batch")
        size = st.select_slider("batch size", [8, 16, 24, 32], value=16, key="hm:size")
        batch_note = _open_on_a_batch_with_a_pool(models, size)
        batch = int(st.number_input("batch number", min_value=0, max_value=999, step=1, key="hm:batch",
                                    help="Batch b holds test samples b·size … (b + 1)·size − 1 of the shapes "
                                         "dataset (the checkpoint's data seed, at its input size)."))
        if batch_note:
            st.caption(batch_note)
        st.header("HardMix")
        hardness = st.radio("hard pool", list(HARDNESS), format_func=HARDNESS.get, key="hm:hardness")
        top_frac = 0.5
        if hardness == "loss":
            top_frac = st.slider("fraction of the batch in the pool", 0.05, 1.0, 0.5, 0.05, key="hm:top_frac")
        if "hm:seed" not in st.session_state:
            st.session_state["hm:seed"] = 0
        seed_box, button_box = st.columns([3, 2], vertical_alignment="bottom")
        seed = int(seed_box.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="hm:seed"))
        button_box.button("resample", on_click=_next_seed, key="hm:resample",
                          help="Next seed: new partners from the pool, new boxes.")
    return models, failures, folder_note, size, batch, hardness, top_frac, seed


def show(view: HardMixView, hardness: str) -> None:
    pool = [i for i, hard in enumerate(view.hard) if hard]
    wrong = sum(t != p for t, p in zip(view.true, view.predicted))
    if hardness == "misclassified" and not wrong:
        st.markdown(f"**0 of {len(view.true)}** samples are misclassified: the pool is empty, so HardMix pairs "
                    "the samples at random (Alg. 1's fallback) — no patch comes from a pool. Try another batch.")
    elif hardness == "misclassified":
        st.markdown(f"**{wrong} of {len(view.true)}** samples are misclassified: they are the pool "
                    "(framed in vermilion), and every patch is cut from one of them.")
    else:
        wrong_in_pool = sum(view.true[i] != view.predicted[i] for i in pool)
        st.markdown(f"The pool is the **{len(pool)}** samples with the highest loss (framed in vermilion; "
                    f"{wrong_in_pool} of them misclassified, {wrong} in the batch); every patch is cut from one "
                    "of them.")
    if view.fallback and hardness != "misclassified":
        st.info("No sample is in the pool, so HardMix falls back to random partners (as Alg. 1 does).")
    # Two short lines per title: eight one-line titles run into each other on a 1024-px window.
    titles = [f"#{i} {true}<br>→ {pred}" if true != pred else f"#{i}<br>{true} ✓"
              for i, (true, pred) in enumerate(zip(view.true, view.predicted))]
    spec = model_figures.grid_spec(list(view.images), titles, columns=COLUMNS, highlighted=view.hard,
                                   title_height=40)
    st.markdown("**The batch** — title: true class → prediction (✓ when right)")
    st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None, key="hm:batch_grid")
    mixed_titles = [f"#{i} ← #{p}<br>λ {lam:.2f}" if p != i else f"#{i}<br>unmixed"
                    for i, (p, lam) in enumerate(zip(view.partner, view.lam))]
    from_pool = [view.hard[p] and p != i for i, p in enumerate(view.partner)]
    spec = model_figures.grid_spec(list(view.mixed), mixed_titles, columns=COLUMNS, highlighted=None,
                                   title_height=40)
    st.markdown("**The mixes** — `#i ← #p`: sample i with a box pasted from sample p; λ = i's share of the label "
                "(the mask's mean)")
    st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None, key="hm:mix_grid")
    if not view.fallback:
        st.caption(f"{sum(from_pool)} of {len(view.partner)} samples got their patch from the pool; a sample of "
                   "the pool may be paired with itself (no patch, label unchanged).")
    with st.expander("Per sample"):
        rows = [{"sample": i, "test index": index, "true": true, "predicted": pred, "confidence": conf,
                 "in the pool": hard, "partner": partner, "λ (own label weight)": lam,
                 "mixed label": label}
                for i, (index, true, pred, conf, hard, partner, lam, label) in enumerate(zip(
                    view.indices, view.true, view.predicted, view.confidence, view.hard, view.partner, view.lam,
                    view.label))]
        st.dataframe(rows, hide_index=True, key="hm:table",
                     column_config={"confidence": st.column_config.NumberColumn(format="%.2f"),
                                    "λ (own label weight)": st.column_config.NumberColumn(format="%.2f")})


started = time.perf_counter()
st.title("HardMix")
st.markdown("HardMix is CutMix whose patches come only from the samples the model currently gets wrong "
            "(hardmix.md, Alg. 1). Here the model is a trained checkpoint and the batch comes from the bundled "
            "shapes test split: the pool and the mixes are those `msda.Mixer(\"hardmix\")` makes from the "
            "checkpoint's logits.")
models, failures, folder_note, size, batch, hardness, top_frac, seed = sidebar()
for failure in failures:
    st.error(failure.message)
if not models:
    st.info(folder_note or "Choose a checkpoint in the sidebar, or upload one.")
else:
    loaded = models[0]
    st.markdown(f"**{loaded.name}** · {loaded.describe()}")
    if loaded.warning:
        st.warning(loaded.warning)
    problem = check_model(loaded)
    if problem:
        st.error(problem)
    else:
        view = cached_hardmix_view(loaded.key, batch, size, seed, hardness, top_frac, loaded)
        show(view, hardness)
st.sidebar.caption(f"page drawn in {time.perf_counter() - started:.2f} s")
