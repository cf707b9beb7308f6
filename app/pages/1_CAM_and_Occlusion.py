"""MSDA Lab — CAM & Occlusion: does a model latch on to an occluder? Side by side per checkpoint, the prediction
and the class activation map before and after a box is drawn over the image, the share of the CAM that falls
on the box, the same measured over a grid of places of the box as the occlusion study does (with CAM
faithfulness and a warning when the occluder can be read as an object), and the occlusion-sensitivity map. Everything is computed by :mod:`analysis`; this page holds
widgets, caching and display.
"""

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
from app.lib.cam_view import (  # noqa: E402
    OCCLUDERS,
    TARGETS,
    TOP_K,
    ModelView,
    OccluderBox,
    as_batch,
    as_pixels,
    PositionStudy,
    box_from_centre,
    cached_model_view,
    cached_position_study,
    cached_sensitivity,
    choose_cam_layers,
    percent,
    random_box,
    ratio,
    true_class_index,
)
from app.lib.checkpoints import LoadedModel, checkpoint_folder, choose_checkpoints  # noqa: E402
from app.lib.probe_image import ProbeImage, choose_probe_image  # noqa: E402
from analysis.untrusted import plotly_text

torch.set_num_threads(1)  # small batches; on a shared machine one thread does not fight other processes

CAM_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM", "eigencam": "Eigen-CAM",
             "eigengradcam": "Eigen-Grad-CAM", "layercam": "LayerCAM", "scorecam": "Score-CAM",
             "hirescam": "HiResCAM", "gradcam-elementwise": "Grad-CAM (element-wise)"}
COLUMNS = 3
PREVIEW_SIZE = 64  # the image preview when no model sets a size
SENSITIVITY_AUTO_SIZE = 64
"""Sensitivity maps are computed without asking while every model's input is at most this many pixels."""

st.set_page_config(page_title="MSDA Lab · CAM & Occlusion", layout="wide")
st.html("""<style>[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; }</style>""")


def _next_seed() -> None:
    st.session_state["cam:seed"] = (st.session_state.get("cam:seed", 0) + 1) % (2**31)


def occluder_controls() -> OccluderBox:
    from analysis import OCCLUDER_KINDS

    kind = st.selectbox("Occluder", OCCLUDER_KINDS, format_func=lambda name: OCCLUDERS.get(name, name),
                        key="cam:kind")
    placement = st.radio("Placement", ("sliders", "random"), horizontal=True, key="cam:placement")
    if placement == "sliders":
        side = st.slider("side (fraction of the image side)", 0.1, 0.8, 0.35, 0.01, key="cam:side")
        centre_x = st.slider("centre, left → right", 0.0, 1.0, 0.5, 0.01, key="cam:x")
        centre_y = st.slider("centre, top → bottom", 0.0, 1.0, 0.5, 0.01, key="cam:y")
        return box_from_centre(kind, centre_x, centre_y, side)
    area = st.slider("area (fraction of the image)", 0.02, 0.5, 0.12, 0.01, key="cam:area")
    if "cam:seed" not in st.session_state:
        st.session_state["cam:seed"] = 0
    seed_box, button_box = st.columns([3, 2], vertical_alignment="bottom")
    seed = int(seed_box.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="cam:seed"))
    button_box.button("new place", on_click=_next_seed, key="cam:resample")
    return random_box(kind, area, seed)


def sidebar() -> tuple[list[LoadedModel], list, str | None, ProbeImage, str, str, int, OccluderBox]:
    from analysis import CAM_METHODS

    with st.sidebar:
        st.header("Models")
        # The baseline, a hard-edged and a soft-edged mask: the comparison the page's question is about.
        models, failures, folder_note = choose_checkpoints("cam", prefer=("none", "cutmix", "smoothmix_s"))
        st.header("Image")
        image = choose_probe_image("cam")
        st.header("Explanation")
        method = st.selectbox("CAM method", list(CAM_METHODS), format_func=lambda name: CAM_NAMES.get(name, name),
                              key="cam:method")
        models = choose_cam_layers(models, "cam")
        target = st.radio("The CAMs explain", list(TARGETS), format_func=TARGETS.get, key="cam:target")
        k = st.slider("top-k classes", 1, TOP_K, 3, key="cam:k")
        st.header("Occluder")
        occluder = occluder_controls()
    return models, failures, folder_note, image, method, target, k, occluder


def image_row(image: ProbeImage, occluder: OccluderBox, models: list[LoadedModel]) -> None:
    from analysis import occlude

    size = max((loaded.size for loaded in models), default=PREVIEW_SIZE)
    pixels = image.pixels(size)
    box = occluder.pixels(size)
    occluded = as_pixels(occlude(as_batch(pixels), box, kind=occluder.kind))
    left, right = st.columns([1.1, 1.4], gap="large")
    with left:
        # Short panel titles: two long ones collide when the column is narrow; the text beside names the occluder.
        spec = model_figures.images_spec([(pixels, "image", None), (occluded, "occluded", None)],
                                         height=250)
        st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None, key="cam:preview")
        truth = f" · true class **{image.true_class}**" if image.true_class else ""
        st.caption(f"{image.source}: {image.history(size)}{truth}")
    with right:
        x0, y0, x1, y1 = (int(v) for v in box[0])
        region = "the box and its border" if occluder.kind == "solid" else (
            "its border" if occluder.kind == "frame" else "the box")
        st.markdown(
            f"**Occluder:** {OCCLUDERS[occluder.kind]}, {x1 - x0} × {y1 - y0} px at ({x0}, {y0}) of {size} px "
            f"(the same place, as a fraction of the side, for every model).\n\n"
            f"**CAM on the occluder** = the share of the CAM's energy on the pixels the occluder changes "
            f"({region}). **Latching** = that share ÷ the share of the image those pixels cover: 1 means the "
            "CAM ignores the occluder, above 1 that it is drawn to it — the *latching on* of SmoothMix "
            "(Lee et al., CVPRW 2020), measured as in `python -m analysis.occlusion`. The *before* value is the "
            "clean image's CAM over the same pixels: a box on the object scores above 1 for any model.")


def model_card(index: int, loaded: LoadedModel, view: ModelView | str, k: int,
               study: PositionStudy | str | None = None) -> None:
    with st.container(border=True, key=f"model-{index}"):
        st.markdown(f"### {loaded.name}")
        st.caption(loaded.describe())
        if loaded.warning:
            st.warning(loaded.warning)
        if isinstance(view, str):
            st.error(view)
            return
        (before, p_before), (after, p_after) = view.predicted_clean, view.predicted_occluded
        changed = "the prediction **changed**" if before != after else "same class"
        st.markdown(f"prediction: **{before}** {p_before:.2f} → occluded: **{after}** {p_after:.2f} ({changed})")
        panels = [(view.image, view.cam_clean, "before", view.box),
                  (view.occluded, view.cam_occluded, "after", view.box)]
        st.plotly_chart(figures.figure(model_figures.overlay_spec(panels)), config=figures.CHART_CONFIG,
                        theme=None, key=f"cam:overlay:{index}")
        explained = (f"**{view.explained_clean}**" if view.explained_clean == view.explained_occluded
                     else f"**{view.explained_clean}** (before) and **{view.explained_occluded}** (after)")
        st.markdown(f"CAM of {explained} on the occluder: **{percent(view.share_clean)}** before → "
                    f"**{percent(view.share_occluded)}** after (the occluder covers {view.area:.0%} of the "
                    f"image) · latching {ratio(view.latching_clean)} → **{ratio(view.latching)}**")
        if isinstance(study, PositionStudy):
            flips = ", ".join(f"{name} {count}×" for name, count in study.flips_to[:3])
            st.markdown(f"**Over {study.positions} places** of this box (as `python -m analysis.occlusion` "
                        f"measures it; CAM of **{study.explained}**): latching {ratio(study.latching_clean)} → "
                        f"**{ratio(study.latching)}** · prediction flips at **{study.flip_rate:.0%}** of them"
                        + (f" (to {flips})" if flips else "")
                        + f" · CAM faithfulness {study.faithfulness:+.2f} (clean {study.faithfulness_clean:+.2f})",
                        help="Faithfulness: p(class | image × CAM) − p(class | image), the grad-cam package's "
                             "CamMultImageConfidenceChange; near 0 or above = the model acts on what the CAM "
                             "shows, negative = the CAM points elsewhere.")
            if study.warning:
                st.warning(study.warning)
        elif isinstance(study, str):
            st.caption(study)
        st.plotly_chart(figures.figure(model_figures.topk_spec(view.top_clean[:k], view.top_occluded[:k],
                                                               height=70 + 60 * k)),
                        config=figures.CHART_CONFIG, theme=None, key=f"cam:topk:{index}")
        if view.note:
            st.caption(view.note)


def model_grid(models: list[LoadedModel], image: ProbeImage, occluder: OccluderBox, method: str, target: str,
               k: int) -> None:
    for start in range(0, len(models), COLUMNS):
        for offset, (column, loaded) in enumerate(zip(st.columns(COLUMNS, gap="small"),
                                                      models[start:start + COLUMNS])):
            pixels = image.pixels(loaded.size)
            true_index = true_class_index(loaded, image.true_class)
            view = cached_model_view(loaded.key, image.key, occluder, method, target, true_index, loaded, pixels)
            study = None
            if not isinstance(view, str):
                study = cached_position_study(loaded.key, image.key, occluder, method, true_index, loaded, pixels)
            with column:
                model_card(start + offset, loaded, view, k, study)


@st.fragment
def sensitivity_section(models: list[LoadedModel], image: ProbeImage, target: str) -> None:
    st.subheader("Occlusion sensitivity")
    st.markdown("A grey window slides over the image; each pixel shows how much the class's probability drops, "
                "on average, when a window covers it (Zeiler & Fergus, ECCV 2014). **Red**: the model needs this "
                "part; **blue**: covering it *raises* the probability. One scale for all models.")
    left, right, switch = st.columns([1, 1, 1], vertical_alignment="bottom")
    window = left.slider("window (fraction of the side)", 0.1, 0.5, 0.25, 0.05, key="cam:window")
    stride = right.slider("stride (fraction of the side)", 0.03, 0.25, 0.09, 0.01, key="cam:stride")
    large = [loaded.name for loaded in models if loaded.size > SENSITIVITY_AUTO_SIZE]
    if not switch.toggle("compute the maps", value=not large, key="cam:sensitivity",
                         help="One forward pass per window position: quick at 32 px, tens of seconds for large "
                              "models at 224 px on a CPU."):
        reason = f" ({', '.join(large)}: images over {SENSITIVITY_AUTO_SIZE} px)" if large else ""
        st.caption(f"Switch on “compute the maps” to draw them{reason}.")
        return
    views, panels = [], []
    for loaded in models:
        index = true_class_index(loaded, image.true_class) if target == "true" else None
        view = cached_sensitivity(loaded.key, image.key, window, stride, index, loaded, image.pixels(loaded.size))
        if isinstance(view, str):
            st.error(view)
            continue
        views.append((loaded, view))
        panels.append((image.pixels(loaded.size), view.heat,
                       plotly_text(f"{loaded.name} · p({view.class_name})")))  # file-controlled text
    if not panels:
        return
    limit = max(float(abs(view.heat).max()) for _, view in views)
    for start in range(0, len(panels), COLUMNS + 1):
        part = panels[start:start + COLUMNS + 1]
        spec = model_figures.sensitivity_spec(part, limit, height=300)
        st.plotly_chart(figures.figure(spec), config=figures.CHART_CONFIG, theme=None, key=f"cam:sensitivity:{start}")
    sizes = ", ".join(f"{loaded.name}: {view.window} px window, {view.stride} px stride"
                      for loaded, view in views)
    st.caption(f"{sizes}. The class is each model's clean prediction"
               + (" (the true class where known)." if target == "true" else "."))


def shipped_section() -> None:
    """The occlusion study of every shipped seed, from the manifest: what one image cannot show."""
    from app.lib.shipped_studies import Column, interval_chart, shipped_study, study_table

    study = shipped_study(checkpoint_folder(), "occlusion")
    if study is None:
        return
    with st.expander("The occlusion study of the shipped checkpoints (every seed)", expanded=False):
        kinds = list(dict.fromkeys(row.get("kind") for row in study.methods if row.get("kind")))  # as studied
        kind = st.radio("Occluder", kinds, horizontal=True, key="cam:study-kind")
        columns = [Column("occluded acc %", "occluded_accuracy"), Column("flips %", "flip_rate"),
                   Column("latching", "latching", 1, 2), Column("latching, no occluder", "latching_clean", 1, 2),
                   Column("faithfulness", "faithfulness", 1, 3)]
        st.dataframe(study_table(study, columns, where={"kind": kind}, order_by="latching", verdict_of="latching"),
                     hide_index=True)
        left, right = st.columns(2)
        for place, column in ((left, columns[0]), (right, columns[2])):
            place.plotly_chart(interval_chart(study, column, where={"kind": kind}, order_by="latching",
                                              title=f"{column.header}, {kind} occluder"),
                               config=figures.CHART_CONFIG, theme=None, key=f"cam:study:{column.key}")
        st.caption("Mean [95 % interval], ordered by latching; *vs none* is the verdict on latching (lower = the "
                   "CAM is less drawn to the occluder = better). Faithfulness: the grad-cam package's confidence "
                   "change when the image is multiplied by its CAM (higher = the map keeps what the class needs). "
                   f"{study.interval} `{study.command}`")


started = time.perf_counter()
st.title("CAM & Occlusion")
st.markdown("Does a model **latch on** to an occluder? Each card is one checkpoint on the same image: its "
            "prediction and class activation map (CAM) before and after the occluder is drawn, and how much of "
            "the CAM falls on the occluder. Models trained with hard-edged masks (CutMix) are said to be drawn "
            "to strong edges; soft masks (SmoothMix) less so.")
models, failures, folder_note, image, method, target, k, occluder = sidebar()
for failure in failures:
    st.error(failure.message)
if image.error:
    st.error(image.error)
if image.warning:
    st.warning(image.warning)
image_row(image, occluder, models)
if not models:
    st.info(folder_note or "Choose checkpoints in the sidebar, or upload one.")
else:
    if folder_note:
        st.caption(folder_note)
    st.caption(f"CAMs: {CAM_NAMES.get(method, method)} at each model's last convolutional stage, one colour scale "
               "(0 = ignored, 1 = the most-used pixel of that image), drawn over the image in grey; the dashed box "
               "is the occluder.")
    model_grid(models, image, occluder, method, target, k)
    sensitivity_section(models, image, target)
shipped_section()
st.sidebar.caption(f"page drawn in {time.perf_counter() - started:.2f} s")
