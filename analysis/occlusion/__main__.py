"""python -m analysis.occlusion: run the occlusion study on checkpoints and write CSV, JSON and HTML."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from msda._checks import check_int, check_real
from msda._devices import check_device
from msda.data import DATASETS
from msda.training.outputs import OutputFolder, output_folder, run_cli

from .._cli import load_models
from ..cam import CAM_METHODS, cam, evaluation_mode
from ..report import interval_figure, write_report_set
from ..untrusted import plotly_text
from ..verdicts import INTERVAL_NOTE, formatted, method_table, wants_method_table
from .class_shapes import MATCH_IOU, occluder_class_iou
from .occluders import OCCLUDER_KINDS, occlude, sample_boxes
from .study import HIGHER_IS_BETTER, STUDY_METRICS, _ring, metric_cells, occlusion_study

OUTCOMES_FILE = "occlusion_outcomes.safetensors"

# ----------------------------------------------------------------------------------------------- the CLI


def _check_out(out: Path) -> None:
    """--out must be a folder, or a path where one can be made: not a file, nor below one."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (occlusion.csv, .json and .html are written into it)")
    existing = next(parent for parent in (out, *out.absolute().parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, so no folder can be made below it")
    if not os.access(existing, os.W_OK):
        raise ValueError(f"--out {out}: {existing} is not writable")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.occlusion", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Occlude test images with boxes and measure, per checkpoint and occluder kind, accuracy, "
                    "confidence, prediction flips and whether the CAM latches on to the occluder. Writes "
                    "occlusion.csv, occlusion.json and occlusion.html to --out.")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="checkpoint files (.safetensors, .pt, .pth; quoted glob patterns are expanded)")
    p.add_argument("--arch", help="architecture, for checkpoints without metadata")
    p.add_argument("--num-classes", type=int, help="number of classes, for checkpoints without metadata")
    p.add_argument("--data", default="shapes", choices=DATASETS, help="test images from this dataset")
    p.add_argument("--root", help="dataset folder (cifar10/cifar100/imagefolder)")
    p.add_argument("--n", type=int, default=1000, help="number of test images (the first n of the test split)")
    p.add_argument("--data-seed", type=int,
                   help="shapes: dataset seed (default: the checkpoints' data_seed when they agree, else 0)")
    p.add_argument("--replication-data-seed", type=int,
                   help="shapes: run the study again on the test split of this data seed (one no checkpoint was "
                        "trained on) and say, per metric, whether each verdict against none replicates there")
    p.add_argument("--out", type=Path, default=Path("reports/occlusion"), help="output folder")
    p.add_argument("--cam", default="gradcam", choices=tuple(CAM_METHODS), help="CAM method")
    p.add_argument("--cam-target", default="label", choices=("label", "predicted"), help="class the CAM explains")
    p.add_argument("--kinds", nargs="+", default=["solid", "translucent", "smooth"], choices=OCCLUDER_KINDS)
    p.add_argument("--n-boxes", type=int, default=4, help="occluded copies per image and kind")
    p.add_argument("--box-frac", type=float, default=0.1, help="box area as a fraction of the image")
    p.add_argument("--fill", type=float, help="occluder grey level in [0, 1] (default 0.5)")
    p.add_argument("--border", type=float, help="ring width in pixels of solid/frame (default min(H, W) / 16)")
    p.add_argument("--examples", type=int, default=4, help="example images shown with CAM overlays")
    p.add_argument("--batch-size", type=int, default=256, help="occluded images per forward/CAM pass")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the box generator")
    p.add_argument("--allow-class-shaped-occluders", action="store_true",
                   help="run an occluder kind whose silhouette matches a class of the checkpoints' shapes version "
                        f"(IoU ≥ {MATCH_IOU}) instead of refusing it; the table flags it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the study from the command line; returns ``{"table": DataFrame, "files": {kind: Path}}``."""
    args = build_parser().parse_args(argv)
    _check_out(args.out)  # before the study, not after minutes of it
    check_int("--n", args.n, low=1)
    check_int("--n-boxes", args.n_boxes, low=1)
    check_real("--box-frac", args.box_frac, low=0.0, high=1.0, low_open=True)
    check_int("--examples", args.examples, low=0)
    check_int("--batch-size", args.batch_size, low=1)
    device = check_device(args.device)
    if args.replication_data_seed is not None and args.data != "shapes":
        raise ValueError(f"--replication-data-seed needs --data shapes (a generated test split), got --data {args.data}")
    command = "python -m analysis.occlusion " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    with output_folder(args.out, command=command) as folder:  # one run per folder, from start to end
        return _study(args, command, device, folder)


def _study(args, command: str, device: torch.device, folder: OutputFolder) -> dict:
    started = time.perf_counter()
    loaded = load_models(args.checkpoints, "--checkpoints", arch=args.arch, num_classes=args.num_classes,
                         device=device)
    metas = [meta for _, meta in loaded.values()]
    _check_replication_seed(args, metas)
    images, labels, masks, classes = _test_images(args, metas)
    if len(classes) != metas[0]["num_classes"]:
        raise ValueError(f"the checkpoints have {metas[0]['num_classes']} classes, {args.data} has {len(classes)}")
    shape_match = _check_occluder_shapes(args, metas[0].get("classes") or classes, images.shape[-1])

    images, labels = images.to(device), labels.to(device)
    masks = None if masks is None else masks.to(device)
    generator = torch.Generator().manual_seed(args.seed)
    height, width = images.shape[-2:]
    boxes = sample_boxes(len(labels) * args.n_boxes, height, width, box_frac=args.box_frac, generator=generator)
    boxes = boxes.view(len(labels), args.n_boxes, 4).to(device)
    models = {name: model for name, (model, _) in loaded.items()}
    options = dict(kinds=args.kinds, boxes=boxes, cam_method=args.cam, cam_target=args.cam_target, fill=args.fill,
                   border=args.border, batch_size=args.batch_size, progress=not args.no_progress)
    outcomes: dict = {}
    table = occlusion_study(models, images, labels, masks=masks, outcomes=outcomes, **options)
    replication = _replication(args, metas, models, options)
    table.insert(1, "method", [loaded[name][1].get("method") for name in table["model"]])
    table.insert(2, "seed", [loaded[name][1].get("seed") for name in table["model"]])
    for column, key in (("arch", "arch"), ("test_accuracy", "test_accuracy"), ("checkpoint", "path")):
        table[column] = [loaded[name][1].get(key) for name in table["model"]]
    table["occluder_closest_class"] = [shape_match.get(kind, (None, float("nan")))[0] for kind in table["kind"]]
    table["occluder_class_iou"] = [shape_match.get(kind, (None, float("nan")))[1] for kind in table["kind"]]
    metrics = [key for key in STUDY_METRICS if key in table.columns and key != "occluder_area"]
    methods_of = {name: meta.get("method") for name, (_, meta) in loaded.items()}
    seeds_of = {name: meta.get("seed") for name, (_, meta) in loaded.items()}
    per_method = None
    if wants_method_table(methods_of):
        per_method = method_table(metric_cells(outcomes, args.kinds), methods=methods_of, seeds=seeds_of,
                                  higher_is_better=HIGHER_IS_BETTER, by=("kind",),
                                  replication=None if replication is None else metric_cells(replication, args.kinds))
    stored = {name: dict(values) for name, values in outcomes.items()}
    for name, values in (replication or {}).items():
        stored[name].update({f"replication/{key}": value for key, value in values.items()})

    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    settings["checkpoints"] = [str(meta["path"]) for _, meta in loaded.values()]
    summary = {"command": command, "settings": settings, "seconds": time.perf_counter() - started,
               "metrics": STUDY_METRICS,
               "outcomes": OUTCOMES_FILE, "higher_is_better": HIGHER_IS_BETTER,
               "replication": None if replication is None else {"data_seed": args.replication_data_seed,
                                                                "images": len(labels)},
               "occluder_class_match": {"rule": f"best silhouette IoU with a class over rotations and scales "
                                                f"0.8–1.2; refused at ≥ {MATCH_IOU}",
                                        "kinds": {kind: {"class": name, "iou": iou}
                                                  for kind, (name, iou) in shape_match.items()}},
               "checkpoints": {name: {key: meta.get(key) for key in ("path", "arch", "method", "dataset", "epochs",
                                                                     "test_accuracy", "layout")}
                               for name, (_, meta) in loaded.items()}}
    sections = [
        ("Settings", f"{command}\n\n{len(labels)} test images of {args.data}, {args.n_boxes} boxes each "
                     f"({args.box_frac:g} of the image), kinds {', '.join(args.kinds)}, CAM {args.cam} of the "
                     f"{'true' if args.cam_target == 'label' else 'predicted'} class, device {device}."),
        ("Metrics", "\n".join(f"{key}: {text}" for key, text in STUDY_METRICS.items() if key in table.columns)),
        ("Results", table),
    ]
    if per_method is not None:
        summary.update(interval=INTERVAL_NOTE, methods=per_method)
        sections += [("Per method: 95 % intervals and verdicts against none",
                      f"Each method's checkpoints are its seeds; an item is a test image (its occluded copies "
                      f"averaged). {INTERVAL_NOTE} \"Better\" follows each metric's direction: "
                      + ", ".join(f"{m} {'higher' if up else 'lower'}" for m, up in HIGHER_IS_BETTER.items()
                                  if m in metrics) + ". Per-item outcomes: " + OUTCOMES_FILE + "."),
                     ("Per method", formatted(per_method, metrics, by=("method", "kind"))),
                     ("Per method: intervals", interval_figure(per_method, metrics, group="kind"))]

    def with_figures():  # built after the tables are written: a figure error never loses the study
        figures = [("Per metric", _metric_figure(table))]
        if args.examples:
            figures += _example_figures(models, images[:args.examples], labels[:args.examples],
                                        boxes[:args.examples, 0], args.kinds, classes, cam_method=args.cam,
                                        cam_target=args.cam_target, fill=args.fill, border=args.border)
        return sections + figures

    files = write_report_set(folder, "occlusion", table=table, summary=summary,
                             title="Occlusion study: do models latch on to occluders?", sections=with_figures,
                             outcomes_file=OUTCOMES_FILE, outcomes=stored, methods=per_method)
    shown = ["model", "kind", "clean_accuracy", "occluded_accuracy", "true_prob_drop", "flip_rate", "latching",
             "latching_clean"] + [c for c in ("localisation", "pointing") if c in table.columns]
    shown.insert(shown.index("latching_clean") + 1, "faithfulness")
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if per_method is not None:
        print(f"\nper method: {INTERVAL_NOTE}")
        print(formatted(per_method, ["occluded_accuracy", "flip_rate", "latching", "faithfulness"],
                        by=("method", "kind")).to_string(index=False))
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return {"table": table, "files": files, "methods": per_method}


def _check_replication_seed(args, metas) -> None:
    """--replication-data-seed must name a split no checkpoint was trained or tested on."""
    if args.replication_data_seed is None:
        return
    used = {meta.get("data_seed", 0) for meta in metas} | ({args.data_seed} - {None})
    if args.replication_data_seed in used:
        raise ValueError(f"--replication-data-seed {args.replication_data_seed} is a data seed the checkpoints were "
                         f"trained or tested on; pick another (e.g. {max(used) + 1})")


def _replication(args, metas, models, options) -> dict | None:
    """The study's per-item outcomes on the replication split (--replication-data-seed), or None."""
    if args.replication_data_seed is None:
        return None
    from argparse import Namespace

    images, labels, masks, _ = _test_images(Namespace(**{**vars(args), "data_seed": args.replication_data_seed}),
                                            metas)
    device = options["boxes"].device
    outcomes: dict = {}
    occlusion_study(models, images.to(device), labels.to(device), masks=masks.to(device), outcomes=outcomes,
                    **options)
    return outcomes


def _check_occluder_shapes(args, classes, size: int) -> dict[str, tuple[str, float]]:
    """kind → (closest class, its IoU) for shapes checkpoints; refuses a kind that matches a class (a model
    that predicts that class would be right to look at the occluder) unless --allow-class-shaped-occluders."""
    matches = {}
    for kind in args.kinds:
        ious = occluder_class_iou(kind, classes, size=size, box_frac=args.box_frac, border=args.border)
        if not ious:
            continue
        closest = max(ious, key=ious.get)
        matches[kind] = (closest, ious[closest])
        if ious[closest] >= MATCH_IOU and not args.allow_class_shaped_occluders:
            raise ValueError(f"--kinds {kind}: the occluder's silhouette matches the class {closest!r} of these "
                             f"checkpoints (IoU {ious[closest]:.2f} ≥ {MATCH_IOU}), so latching on to it is no fault; "
                             "choose another kind, checkpoints of shapes version 2, or pass "
                             "--allow-class-shaped-occluders")
    return matches


def _test_images(args, metas: list[dict]) -> tuple[Tensor, Tensor, Tensor | None, list[str]]:
    """(images [n, 3, S, S] in [0, 1], labels [n], object masks [n, 1, S, S] or None, class names), on the CPU."""
    from msda.data import load_dataset

    n = args.n
    size = metas[0]["input_size"]
    if args.data == "shapes":
        from msda.data import Shapes

        from ..shapes_version import shapes_version

        seeds = {meta.get("data_seed") for meta in metas}
        seed = args.data_seed if args.data_seed is not None else (seeds.pop() if len(seeds) == 1 else None) or 0
        dataset = Shapes("test", n=n, size=size, seed=seed,
                         version=shapes_version(meta.get("classes") for meta in metas))
        images, labels, masks = dataset.render(torch.arange(n))
        return images, labels, masks, list(dataset.classes)
    size = size if args.data == "imagefolder" else None
    dataset = load_dataset(args.data, "test", root=args.root, size=size)
    if n > len(dataset):
        raise ValueError(f"--n must be at most {len(dataset)} for {args.data}'s test split, got {n}")
    if hasattr(dataset, "as_tensors"):
        images, labels = dataset.as_tensors()
        return images[:n].float() / 255.0, labels[:n].long(), None, list(dataset.classes)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=64)
    batches = list(loader)
    return (torch.cat([x for x, _ in batches]), torch.cat([torch.as_tensor(y) for _, y in batches]).long(), None,
            list(dataset.classes))


def _metric_figure(table):
    """Bar charts: one panel per metric, bars per occluder kind, one colour per model."""
    import plotly.express as px
    from plotly.subplots import make_subplots

    metrics = [key for key in STUDY_METRICS if key in table.columns and key != "occluder_area"]
    columns = 2
    rows = math.ceil(len(metrics) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=metrics, vertical_spacing=0.35 / rows)
    palette = px.colors.qualitative.Plotly
    for index, metric in enumerate(metrics):
        row, col = index // columns + 1, index % columns + 1
        for number, (name, part) in enumerate(table.groupby("model", sort=False)):
            name = plotly_text(name)  # checkpoint file names
            figure.add_bar(x=part["kind"], y=part[metric], name=name, legendgroup=name, showlegend=index == 0,
                           marker_color=palette[number % len(palette)], row=row, col=col,
                           hovertemplate=f"{name}<br>%{{x}}: %{{y:.3f}}<extra>{metric}</extra>")
        if metric.startswith("latching") or metric.startswith("localisation"):
            figure.add_hline(y=1.0, line_dash="dot", line_color="grey", row=row, col=col)
    figure.update_layout(barmode="group", height=300 * rows, margin=dict(t=60, b=30))
    return figure


def _example_figures(models, images, labels, boxes, kinds, classes, *, cam_method, cam_target, fill, border):
    """Per example: the clean and occluded images, then each model's CAM overlaid on each of them."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sections = []
    variants = [("clean", images)] + [(kind, occlude(images, boxes, kind=kind, fill=fill, border=_ring(kind, border)))
                                      for kind in kinds]
    overlays = {}
    for name, model in models.items():
        for variant, batch in variants:
            with torch.no_grad(), evaluation_mode(model):
                probs = F.softmax(model(batch).float(), dim=1)
            targets = labels if cam_target == "label" else probs.argmax(1)
            overlays[name, variant] = (_overlay(batch, cam(model, batch, method=cam_method, targets=targets)),
                                       probs.gather(1, labels[:, None])[:, 0], probs.argmax(1))
    for index in range(images.shape[0]):
        titles = [variant for variant, _ in variants]
        for name in models:
            for variant, _ in variants:
                _, true_p, pred = overlays[name, variant]
                wrong = "" if int(pred[index]) == int(labels[index]) else f" → {classes[int(pred[index])]}"
                true_class = classes[int(labels[index])]
                titles.append(plotly_text(f"{name}: p({true_class})={float(true_p[index]):.2f}{wrong}"))
        rows = 1 + len(models)
        # plotly refuses a spacing above 1 / (rows − 1): with dozens of models (every seed) the rows get closer.
        figure = make_subplots(rows=rows, cols=len(variants), subplot_titles=titles, horizontal_spacing=0.02,
                               vertical_spacing=min(0.04, 0.5 / rows))
        for col, (variant, batch) in enumerate(variants, start=1):
            figure.add_trace(go.Image(z=_to_uint8(batch[index]), hoverinfo="skip"), row=1, col=col)
            for row, name in enumerate(models, start=2):
                figure.add_trace(go.Image(z=_to_uint8(overlays[name, variant][0][index]), hoverinfo="skip"),
                                 row=row, col=col)
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
        figure.update_annotations(font_size=10)
        figure.update_layout(height=190 * (1 + len(models)), width=200 * len(variants) + 80,
                             margin=dict(l=10, r=10, t=40, b=10))
        sections.append((f"Example {index + 1}: {classes[int(labels[index])]} (first row: the images; then "
                         f"{cam_method} overlays per model)", figure))
    return sections


def _overlay(images: Tensor, maps: Tensor) -> Tensor:
    """Half image, half jet-coloured map: [B, 3, H, W] in [0, 1]."""
    value = maps[:, None]
    heat = torch.cat([(1.5 - (4 * value - shift).abs()).clamp(0, 1) for shift in (3.0, 2.0, 1.0)], dim=1)
    return 0.5 * images[:, :3] + 0.5 * heat


def _to_uint8(image: Tensor):
    """[3, H, W] in [0, 1] → numpy uint8 [H, W, 3] for plotly (presentation only)."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


if __name__ == "__main__":
    run_cli(main)

