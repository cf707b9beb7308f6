"""The Robustness page's calibration and PGD sections: the shipped studies from the manifest's ``calibration`` and
``attacks`` sections (written by ``python -m analysis.calibration`` / ``python -m analysis.attacks --manifest``),
and the chosen models' calibration computed on a few shapes test images. Widgets and display only: the
numbers come from :mod:`analysis.calibration` and :mod:`analysis.attacks`, the verdicts from
:func:`analysis.stats.compare` as the manifest records them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from .checkpoints import load_manifest
from .shipped_studies import Column, ShippedStudy, interval_chart, study_table

__all__ = ["attacks_section", "calibration_section", "chosen_models_calibration", "shipped_section_of"]

TEMPLATE = "plotly_white"
CALIBRATION_COLUMNS = [Column("ECE %", "ece"), Column("ECE, T-scaled %", "ece_ts"),
                       Column("NLL", "nll", scale=1.0, digits=3), Column("NLL, T-scaled", "nll_ts", scale=1.0, digits=3),
                       Column("Brier", "brier", scale=1.0, digits=3),
                       Column("Brier, T-scaled", "brier_ts", scale=1.0, digits=3),
                       Column("corrupted ECE %", "corrupted_ece"), Column("corrupted ECE, T-scaled %", "corrupted_ece_ts")]
LIVE_TEST, LIVE_CALIBRATION = 1000, 500


def shipped_section_of(folder: Path, name: str) -> tuple[ShippedStudy, dict] | None:
    """(the study as :class:`ShippedStudy`, the raw section) of the manifest's top-level `name` section
    ("calibration" or "attacks"), or None when it has no per-method rows with intervals."""
    manifest, _ = load_manifest(folder)
    section = manifest.get(name) if isinstance(manifest, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("methods"), list):
        return None
    rows = [row for row in section["methods"] if isinstance(row, dict)]
    if not any(key.endswith("_ci_low") for row in rows for key in row):
        return None
    return ShippedStudy(command=str(section.get("command", "")), methods=rows,
                        interval=str(section.get("interval", ""))), section


def calibration_section(folder: Path) -> None:
    """The shipped calibration study: ECE, NLL and Brier before and after temperature scaling per method (95 %
    intervals, verdicts against none), reliability diagrams of the chosen methods, confidence against accuracy
    across severities."""
    from analysis.calibration import reliability_figure, severity_figure

    found = shipped_section_of(folder, "calibration")
    if found is None:
        return
    study, section = found
    settings = section.get("settings") or {}
    st.subheader("Calibration of the shipped checkpoints")
    st.markdown(
        f"Every seed of every method on {settings.get('test_images', '?')} test images; the temperature T of each "
        f"model is fitted on {settings.get('calibration_images', '?')} other test-split images (L-BFGS on the NLL) and "
        "every metric is shown before and after it. ECE: 15 equal-width bins; lower is better for every column. "
        "*vs none* is the verdict on the ECE after temperature scaling.")
    st.dataframe(study_table(study, CALIBRATION_COLUMNS, order_by=None, verdict_of="ece_ts"), hide_index=True,
                 key="rob:cal:table")
    methods = [row.get("method") for row in study.methods]
    verdicts = {row.get("method"): row.get("ece_vs_none") for row in study.methods}
    st.caption("ECE before temperature scaling, vs none: " + ", ".join(
        f"{method} {verdicts[method]}" for method in methods if verdicts.get(method) not in (None, "baseline")))
    default = [m for m in ("none", "mixup", "cutmix") if m in methods] or methods[:3]
    chosen = st.multiselect("Methods in the reliability diagram", methods, default=default, key="rob:cal:methods")
    reliability = section.get("reliability") or {}
    shown = {method: reliability[method] for method in chosen if method in reliability}
    if shown:
        figure = reliability_figure(shown)
        figure.update_layout(template=TEMPLATE, title={"text": "Reliability (all seeds pooled)", "x": 0})
        st.plotly_chart(figure, theme=None, key="rob:cal:reliability")
    severity = section.get("severity") or []
    if severity:
        import pandas as pd

        frame = pd.DataFrame(severity)
        frame = frame[frame["method"].isin(chosen)]
        if not frame.empty:
            figure = severity_figure(frame)
            figure.update_layout(template=TEMPLATE, title={"text": "Confidence against accuracy on corrupted images",
                                                           "x": 0})
            st.plotly_chart(figure, theme=None, key="rob:cal:severity")
    st.plotly_chart(interval_chart(study, Column("ECE after temperature scaling %", "ece_ts"),
                                   title="ECE after temperature scaling, 95 % intervals"), theme=None,
                    key="rob:cal:chart")
    st.caption(f"{study.interval} `{study.command}`")


def attacks_section(folder: Path) -> None:
    """The shipped FGSM and PGD study: clean, FGSM and PGD accuracy per method and ε with intervals and verdicts,
    the attack's settings above the table."""
    found = shipped_section_of(folder, "attacks")
    if found is None:
        return
    study, section = found
    attack = section.get("attack") or {}
    labels = attack.get("eps_labels") or []
    rows: dict[str, dict[str, Any]] = {}
    for row in study.methods:  # one row per method × attack × ε in the manifest: one line per method here
        method = row.get("method")
        key = "clean" if row.get("attack") == "clean" else f"{row.get('attack')}_{row.get('eps')}"
        line = rows.setdefault(method, {"method": method, "seeds": row.get("seeds")})
        for part in ("mean", "ci_low", "ci_high", "vs_none"):
            line[f"{key}_{part}"] = row.get(f"accuracy_{part}")
    columns = [Column("clean %", "clean")]
    for label in labels:
        columns += [Column(f"FGSM {label} %", f"fgsm_{label}"), Column(f"PGD {label} %", f"pgd_{label}")]
    flat = ShippedStudy(command=study.command, methods=list(rows.values()), interval=study.interval)
    strongest = f"pgd_{labels[-1]}" if labels else "clean"
    st.subheader("FGSM and PGD on the shipped checkpoints")
    st.markdown(f"**Attack:** {attack.get('description', '')}. Accuracy in %, mean [95 % interval] over seeds and "
                f"{(section.get('data') or {}).get('test_images', '?')} test images; *vs none* is the verdict on "
                f"{'PGD ' + labels[-1] if labels else 'clean accuracy'}.")
    st.dataframe(study_table(flat, columns, order_by=strongest, verdict_of=strongest), hide_index=True,
                 key="rob:pgd:table")
    st.caption(f"{study.interval} `{study.command}`")


@st.cache_data(show_spinner=False, max_entries=32)
def _calibrate(key: str, _model, num_classes: int, size: int, classes: tuple, data_seed: int) -> dict:
    """Reliability bins and metrics of one model on the first LIVE_TEST shapes test images, T fitted on the next
    LIVE_CALIBRATION (cached per checkpoint)."""
    from analysis.calibration import calibration_metrics, fit_temperature, item_outcomes, model_logits, reliability_bins
    from analysis.shapes_version import shapes_version
    from msda.data import Shapes

    images, labels = Shapes("test", n=LIVE_TEST + LIVE_CALIBRATION, size=size, seed=data_seed,
                            version=shapes_version([list(classes)] if classes else [])).as_tensors()
    logits = model_logits(_model, images, num_classes=num_classes)
    labels = labels.long()
    test, calibration = slice(0, LIVE_TEST), slice(LIVE_TEST, None)
    temperature = fit_temperature(logits[calibration], labels[calibration])
    out = {"temperature": temperature, "bins": {}}
    for key_, t in (("before", 1.0), ("after", temperature)):
        items = item_outcomes(logits[test], labels[test], temperature=t)
        out["bins"][key_] = reliability_bins(items["confidence"], items["correct"])
        out[key_] = calibration_metrics(logits[test], labels[test], temperature=t)
    return out


def chosen_models_calibration(models: list) -> None:
    """The chosen models' reliability diagrams and ECE/NLL/Brier before and after temperature scaling, computed
    here on shapes test images (models trained on shapes only)."""
    import pandas as pd

    from analysis.calibration import reliability_figure

    usable = [m for m in models if m.meta.get("dataset") == "shapes"]
    if not usable:
        return
    st.subheader("Calibration of the chosen models")
    if not st.toggle(f"compute it ({LIVE_TEST} test images, T fitted on {LIVE_CALIBRATION} others)", value=False,
                     key="rob:cal:live"):
        return
    results = {}
    for loaded in usable:
        with loaded.lock:
            results[loaded.name] = _calibrate(loaded.key, loaded.model, int(loaded.meta["num_classes"]), loaded.size,
                                              tuple(loaded.meta.get("classes") or ()),
                                              int(loaded.meta.get("data_seed", 0) or 0))
    rows = [{"model": name, "T": r["temperature"],
             **{f"{metric}{'' if key == 'before' else ' (T)'}": r[key][metric]
                for key in ("before", "after") for metric in ("ece", "nll", "brier")}, "accuracy": r["before"]["accuracy"]}
            for name, r in results.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="rob:cal:live_table")
    figure = reliability_figure({name: r["bins"] for name, r in results.items()})
    figure.update_layout(template=TEMPLATE)
    st.plotly_chart(figure, theme=None, key="rob:cal:live_reliability")
    st.caption("One model, one split: no interval here. The shipped study above compares methods over seeds.")
