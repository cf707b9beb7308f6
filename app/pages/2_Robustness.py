"""MSDA Lab — Robustness: top-1 error of checkpoints under the common corruptions of Hendrycks & Dietterich
(ICLR 2019), on the bundled shapes data corrupted on the fly or on stored CIFAR-10-C / CIFAR-100-C /
ImageNet-C, run in the background with progress; heatmaps, a per-model summary and downloads. The evaluation,
tables and figures are :mod:`analysis.robustness`'s; this page holds widgets, the run's thread and display.
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

from app.lib import figures  # noqa: E402
from app.lib.calibration_view import attacks_section, calibration_section, chosen_models_calibration  # noqa: E402
from app.lib.checkpoints import LoadedModel, checkpoint_folder, choose_checkpoints  # noqa: E402
from app.lib.robustness_runs import (  # noqa: E402
    SOURCES,
    RobustnessRun,
    RunRequest,
    Shown,
    new_owner,
    read_results,
    report_csv,
    report_json,
    server_queue,
    start_run,
)

torch.set_num_threads(1)  # a shared machine: one core for the evaluation, the rest for everyone else

RUN = "rob:run"
OWNER = "rob:owner"  # this session's key to its runs: kept server-side in its state, never shown or put in the address
POLL_SECONDS = 0.5
PRESETS = {"one per group": ("gaussian_noise", "defocus_blur", "fog", "contrast", "saturate"),
           "15 benchmark": None, "all 19": None, "none": ()}
TEMPLATE = "plotly_white"
FONT = {"size": 15}  # legible on a projector
MAX_LABELLED_CELLS = 30  # up to this many cells per model, each shows its error as text
SUMMARY_NAMES = {"model": "model", "method": "method", "clean_error": "clean error",
                 "corrupted_accuracy": "mean corrupted accuracy", "mean_corrupted_accuracy_15": "… 15 benchmark",
                 "mean_corrupted_accuracy_19": "… all 19", "mce": "mCE", "relative_mce": "relative mCE"}

st.set_page_config(page_title="MSDA Lab · Robustness", layout="wide")
st.html("""<style>[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; }</style>""")


def shipped_section() -> None:
    """What the project measured on the shipped checkpoints (every seed), from the manifest: a starting point."""
    from app.lib.shipped_studies import Column, interval_chart, shipped_study, study_table

    study = shipped_study(checkpoint_folder(), "robustness")
    if study is None:
        return
    columns = [Column("clean error %", "clean_error"), Column("corrupted (15) %", "mean_corrupted_accuracy_15"),
               Column("corrupted (19) %", "mean_corrupted_accuracy_19"), Column("FGSM 2/255 %", "fgsm_2_255"),
               Column("FGSM 8/255 %", "fgsm_8_255")]
    st.subheader("The shipped checkpoints, as the project measured them")
    st.markdown("Every seed of every method (the checkpoints here are seed 0): mean [95 % interval], ordered by "
                "the mean corrupted accuracy over the 15 benchmark corruptions. *vs none* is the verdict on that "
                "column from a paired comparison with `none` on the same images.")
    st.dataframe(study_table(study, columns, order_by="mean_corrupted_accuracy_15",
                             verdict_of="mean_corrupted_accuracy_15"), hide_index=True)
    st.plotly_chart(interval_chart(study, columns[1], order_by="mean_corrupted_accuracy_15",
                                   title="Mean corrupted accuracy (15 benchmark corruptions), 95 % intervals"),
                    theme=None, key="rob:shipped:chart")
    st.caption(f"{study.interval} `{study.command}`")


def _group_key(group: str) -> str:
    return f"rob:corruptions:{group}"


def _apply_preset(preset: str) -> None:
    from analysis import BENCHMARK_CORRUPTIONS, CORRUPTION_GROUPS, CORRUPTIONS

    chosen = {"15 benchmark": BENCHMARK_CORRUPTIONS, "all 19": CORRUPTIONS}.get(preset, PRESETS[preset])
    for group, names in CORRUPTION_GROUPS.items():
        st.session_state[_group_key(group)] = [name for name in names if name in chosen]


def corruption_picker() -> tuple[str, ...]:
    from analysis import CORRUPTION_GROUPS

    st.caption("Quick picks")
    for column, preset in zip(st.columns(2) + st.columns(2), PRESETS):
        column.button(preset, on_click=_apply_preset, args=(preset,), key=f"rob:preset:{preset}",
                      width="stretch")
    chosen: list[str] = []
    for group, names in CORRUPTION_GROUPS.items():
        if _group_key(group) not in st.session_state:
            st.session_state[_group_key(group)] = [name for name in names if name in PRESETS["one per group"]]
        chosen += st.multiselect(group, names, key=_group_key(group), format_func=lambda n: n.replace("_", " "))
    return tuple(chosen)


def sidebar() -> tuple[list[LoadedModel], list, str | None, RunRequest, bool]:
    with st.sidebar:
        st.header("Models")
        models, failures, folder_note = choose_checkpoints("rob", prefer=("none", "mixup", "cutmix"))
        st.header("Data")
        source = st.radio("Corrupted images", list(SOURCES), format_func=SOURCES.get, key="rob:source")
        root = clean_root = ""
        if source != "shapes":
            layout = "<corruption>.npy + labels.npy" if source == "cifar-c" else "<corruption>/<severity>/<wnid>/*.JPEG"
            root = st.text_input("Folder on this machine", key="rob:root", placeholder="/data/CIFAR-10-C",
                                 help=f"The folder holding {layout}.")
            clean_root = st.text_input("Clean test set folder (optional)", key="rob:clean_root",
                                       help="CIFAR: the folder with the CIFAR python batches; ImageNet: a folder "
                                            "with val/<wnid>/*.JPEG. Gives the clean error (and relative mCE).")
        n = int(st.number_input("Images per cell", min_value=8, max_value=10000, value=256, step=8, key="rob:n",
                                help="Shapes: the first n test images; stored sets: n images per corruption and "
                                     "severity."))
        st.header("Corruptions")
        corruptions = corruption_picker()
        severities = tuple(st.multiselect("Severities", [1, 2, 3, 4, 5], default=[1, 3, 5], key="rob:severities"))
        seed = int(st.number_input("seed of the corruptions", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                   key="rob:seed"))
        fgsm = st.toggle("also FGSM (ε up to 8/255)", value=False, key="rob:fgsm",
                         help="Accuracy under the Fast Gradient Sign Method (Goodfellow et al., ICLR 2015) on the "
                              "clean images.")
        cells = len(corruptions) * len(severities)
        st.caption(f"{cells} cell{'s' if cells != 1 else ''} × {n} images × {len(models)} model"
                   f"{'s' if len(models) != 1 else ''}.")
        run = st.session_state.get(RUN)
        clicked = st.button("Run", type="primary", key="rob:start", width="stretch",
                            disabled=run is not None and run.active)
        queue = server_queue(st.session_state[OWNER])
        if queue.busy:
            st.caption(f"The server is busy: {queue.others} run{'s' if queue.others != 1 else ''} of other "
                       f"sessions {'are' if queue.others != 1 else 'is'} waiting or running. A new run waits its "
                       "turn.")
    request = RunRequest(source=source, corruptions=corruptions, severities=severities, n=n, seed=seed, fgsm=fgsm,
                         root=root, clean_root=clean_root)
    return models, failures, folder_note, request, clicked


def progress_panel() -> None:
    """The run's progress, polled every half second while it runs; a full redraw when it ends."""
    run: RobustnessRun | None = st.session_state.get(RUN)
    if run is None:
        return

    @st.fragment(run_every=POLL_SECONDS if run.active else None)
    def panel() -> None:
        current: RobustnessRun = st.session_state[RUN]
        if current.active:
            elapsed = time.monotonic() - current.started
            st.progress(current.done / max(current.total, 1),
                        text=f"{current.status}: {current.message} — step {current.done + 1} of {current.total}, "
                             f"{elapsed:.0f} s")
            st.button("Cancel", on_click=current.cancel, key="rob:cancel")
            return
        if not st.session_state.get("rob:redrawn"):
            st.session_state["rob:redrawn"] = True
            st.rerun()  # the whole page, to show the results
        if current.status == "done":
            st.success(f"Run finished: {current.message}.")
        elif current.status == "cancelled":
            st.warning(f"Run {current.message}." + ("" if current.shown is not None else " Nothing to show."))
        else:
            st.error(f"The run failed: {current.error}")

    panel()


def summary_table(shown: Shown):
    """The report's summary (method, seed and arch from the checkpoints' metadata) and the columns worth showing."""
    summary = shown.report["summary"]
    columns = [column for column in summary.columns
               if column in ("model", "method") or (column != "arch" and summary[column].notna().any())]
    return summary, summary[columns]


def results_section(shown: Shown) -> None:
    from analysis.robustness import error_heatmaps, fgsm_figure, summary_bars

    results = shown.results
    st.subheader("Results")
    st.markdown(f"From {shown.origin}: {shown.description}; {len(results.models)} model"
                f"{'s' if len(results.models) > 1 else ''}, {len(results.corruptions)} corruption"
                f"{'s' if len(results.corruptions) > 1 else ''} × severities "
                f"{', '.join(map(str, results.severities))}, {int(results.total.max())} images per cell, "
                f"{int(results.clean_total)} clean.")
    summary, shown_columns = summary_table(shown)
    config = {column: st.column_config.NumberColumn(SUMMARY_NAMES.get(column, column.replace("_", " ")),
                                                    format="percent" if "mce" not in column else "%.3f")
              for column in shown_columns.columns if column not in ("model", "method", "seed")}
    if "seed" in shown_columns.columns:
        config["seed"] = st.column_config.NumberColumn("seed", format="%d")
    st.dataframe(shown_columns, hide_index=True, column_config=config, key="rob:summary")
    notes = [("Errors and accuracies are top-1, over the images of each cell; means weight every (corruption, "
              "severity) cell equally.")]
    if not shown.alexnet:
        notes.append("mCE is defined for ImageNet-C only (errors normalised by AlexNet's).")
    elif summary["mce"].isna().all():
        notes.append("mCE needs the 15 benchmark corruptions at all 5 severities.")
    st.caption(" ".join(notes))
    methods = shown.report.get("methods")
    if methods is not None:
        from analysis.corruptions import CORRUPTIONS
        from analysis.report import interval_figure
        from analysis.verdicts import formatted

        metrics = [column.removesuffix("_mean") for column in methods.columns if column.endswith("_mean")]
        st.markdown("**Per method** — mean [95 % interval] over the seeds and images of each method, and the "
                    "verdict against `none`")
        st.dataframe(formatted(methods, metrics, digits=3), hide_index=True, key="rob:methods")
        headline = [m for m in metrics if m.removeprefix("accuracy_") not in CORRUPTIONS][:6]
        chart = interval_figure(methods, headline, columns=3)
        chart.update_layout(template=TEMPLATE)
        st.plotly_chart(chart, theme=None, key="rob:methods:chart")
        st.caption(shown.report.get("interval", ""))
    elif "method" in summary.columns and summary["method"].dropna().nunique() >= 2:
        st.caption("Per-method intervals and verdicts need every image's outcome, which a reloaded file does not "
                   "carry: run the study here, or read the command line's robustness_methods.csv.")

    heatmaps = error_heatmaps(results)
    if len(results.corruptions) * len(results.severities) <= MAX_LABELLED_CELLS:
        heatmaps.update_traces(texttemplate="%{z:.0%}", textfont={"size": 14})
    heatmaps.update_layout(template=TEMPLATE, font=FONT,
                           title={"text": "Top-1 error per corruption and severity (one colour scale for all "
                                          "models)", "x": 0})
    st.plotly_chart(heatmaps, config=figures.CHART_CONFIG, theme=None, key="rob:heatmaps")
    bars = summary_bars(summary)
    bars.update_layout(template=TEMPLATE, font=FONT, legend={"orientation": "h", "y": -0.15},
                       colorway=list(figures.CURVE_COLOURS))
    st.plotly_chart(bars, config=figures.CHART_CONFIG, theme=None, key="rob:bars")
    if shown.curves:
        curve_figure = fgsm_figure(shown.curves)
        curve_figure.update_layout(template=TEMPLATE, font=FONT, colorway=list(figures.CURVE_COLOURS),
                                   title={"text": "FGSM: accuracy against ε", "x": 0})
        st.plotly_chart(curve_figure, config=figures.CHART_CONFIG, theme=None, key="rob:fgsm_chart")
    left, right, _ = st.columns([1, 1, 2])
    left.download_button("Results (JSON)", data=lambda: report_json(shown.report), file_name="robustness.json",
                         mime="application/json", on_click="ignore", key="rob:download_json", width="stretch")
    right.download_button("Long table (CSV)", data=lambda: report_csv(shown.report), file_name="robustness.csv",
                          mime="text/csv", on_click="ignore", key="rob:download_csv", width="stretch")
    st.caption("The JSON has the layout `python -m analysis.robustness` writes; either file can be reloaded above.")


def reloaded() -> Shown | None:
    upload = st.file_uploader("Reload results (robustness.json or .csv from this page or `python -m "
                              "analysis.robustness`)", type=["json", "csv"], key="rob:reload")
    if upload is None:
        return None
    try:
        return read_results(upload.getvalue(), upload.name)
    except ValueError as error:
        st.error(str(error))
        return None


def session_alive():
    """Whether this browser session is still connected (None outside a server, e.g. in tests): a run whose page
    is closed for a minute is cancelled, so nobody is left waiting behind a run nobody can see."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), context.session_id
    return lambda: runtime.is_active_session(session_id)


started = time.perf_counter()
if OWNER not in st.session_state:
    st.session_state[OWNER] = new_owner()
st.title("Robustness")
st.markdown("How much worse do the models get on corrupted images? Top-1 error under the common corruptions of "
            "Hendrycks & Dietterich (ICLR 2019) — noise, blur, weather, digital — at severities 1 (mild) to 5. "
            "Every model sees exactly the same corrupted images.")
models, failures, folder_note, request, clicked = sidebar()
for failure in failures:
    st.error(failure.message)
if folder_note:
    (st.info if not models else st.caption)(folder_note)
if clicked:
    try:
        st.session_state[RUN] = start_run(request, models, owner=st.session_state[OWNER], alive=session_alive())
        st.session_state["rob:redrawn"] = False
    except ValueError as error:
        st.error(f"The run was not started: {error}.")
run: RobustnessRun | None = st.session_state.get(RUN)
if run is not None:
    for note in run.notes:
        st.caption(note)
progress_panel()
shown = reloaded()
if shown is None and run is not None and run.status in ("done", "cancelled"):
    shown = run.shown
if shown is not None:
    results_section(shown)
elif run is None or not run.active:
    st.info("Choose checkpoints, corruptions and severities in the sidebar and press **Run**, or reload a results "
            "file.")
    shipped_section()
    attacks_section(checkpoint_folder())
    calibration_section(checkpoint_folder())
chosen_models_calibration(models)
st.sidebar.caption(f"page drawn in {time.perf_counter() - started:.2f} s")
