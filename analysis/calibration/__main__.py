"""python -m analysis.calibration: calibration of checkpoints before and after temperature scaling, written as
CSV, JSON and HTML (and, with --manifest, the manifest's ``calibration`` section)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from msda._checks import check_int
from msda._devices import check_device
from msda.training.outputs import OutputFolder, output_folder, run_cli

from .._cli import load_models
from ..corruptions import CORRUPTIONS
from ..report import write_report_set
from ..verdicts import INTERVAL_NOTE, N_BOOT, formatted
from .figures import confidence_histogram, reliability_figure, severity_figure
from .metrics import N_BINS
from .study import METRICS, calibration_study, method_table, severity_table

OUTCOMES_FILE = "calibration_outcomes.safetensors"
SECTION = "calibration"
DATA_CHOICES = ("shapes", "cifar10", "cifar100")
SHOWN = ["accuracy", "ece", "ece_ts", "nll", "nll_ts", "brier", "brier_ts", "mce", "mce_ts", "corrupted_accuracy",
         "corrupted_confidence", "corrupted_ece", "corrupted_ece_ts"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.calibration", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Calibration of checkpoints (ECE, MCE, NLL, Brier score) before and after temperature scaling "
                    "fitted on a calibration split disjoint from the test split; reliability diagrams; confidence "
                    "against accuracy on corrupted images. Writes calibration.csv, calibration.json, "
                    "calibration.html and the per-image outcomes to --out.")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="checkpoint files (.safetensors, .pt, .pth; quoted glob patterns are expanded)")
    p.add_argument("--arch", help="architecture, for checkpoints without metadata")
    p.add_argument("--num-classes", type=int, help="number of classes, for checkpoints without metadata")
    p.add_argument("--data", default="shapes", choices=DATA_CHOICES, help="test images from this dataset")
    p.add_argument("--root", help="dataset folder (cifar10/cifar100)")
    p.add_argument("--data-seed", type=int,
                   help="shapes: dataset seed (default: the checkpoints' data_seed when they agree, else 0)")
    p.add_argument("--n", type=int, default=2000, help="test images: the first n of the test split")
    p.add_argument("--n-calibration", type=int, default=1000,
                   help="calibration images: the next ones of the test split (images n … n + n_calibration − 1), "
                        "disjoint from the test images; the temperature is fitted on them")
    p.add_argument("--corrupted-n", type=int, default=200,
                   help="corrupted images: the first ones of the test images under every corruption × severity "
                        "(0: no corrupted images)")
    p.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS), choices=CORRUPTIONS, metavar="NAME",
                   help="corruptions rendered on the fly (analysis.corrupt)")
    p.add_argument("--severities", nargs="+", type=int, default=[1, 2, 3, 4, 5], metavar="S", help="severities 1 … 5")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruptions (as python -m analysis.robustness)")
    p.add_argument("--bins", type=int, default=N_BINS, help="equal-width confidence bins of the ECE and MCE")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap replicates of the per-method intervals")
    p.add_argument("--batch-size", type=int, default=256,
                   help="images per batch; the corrupted images depend on it (256 = the robustness study's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=Path("reports/calibration"), help="output folder")
    p.add_argument("--manifest", type=Path,
                   help=f"write the per-method rows and every run's figures into this manifest.json's top-level "
                        f"'{SECTION}' section")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Bad arguments end the program here (exit status 2), with the value and what is allowed."""
    try:
        check_int("--n", args.n, low=2)
        check_int("--n-calibration", args.n_calibration, low=1)
        check_int("--corrupted-n", args.corrupted_n, low=0, high=args.n)
        check_int("--bins", args.bins, low=1)
        check_int("--n-boot", args.n_boot, low=100)
        check_int("--batch-size", args.batch_size, low=1)
        for severity in args.severities:
            check_int("--severities", severity, low=1, high=5)
        if len(set(args.severities)) != len(args.severities) or len(set(args.corruptions)) != len(args.corruptions):
            raise ValueError("--corruptions and --severities must not repeat a value")
        if args.data != "shapes" and not args.root:
            raise ValueError(f"--data {args.data} needs --root, the folder of its test set")
        if args.manifest is not None and not args.manifest.is_file():
            raise ValueError(f"--manifest {args.manifest} is not a file; build it first with python -m "
                             "msda.training.manifest")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder")
        args.device = check_device(args.device)
    except ValueError as error:
        parser.error(str(error))


def _splits(args, metas) -> tuple[tuple, tuple, int | None]:
    """((test images, labels), (calibration images, labels), data seed): the first n images of the test split,
    then the next n_calibration — disjoint by construction, both uint8 on the CPU."""
    total = args.n + args.n_calibration
    if args.data == "shapes":
        from msda.data import Shapes

        from ..shapes_version import shapes_version

        seeds = {meta.get("data_seed") for meta in metas}
        seed = args.data_seed if args.data_seed is not None else (seeds.pop() if len(seeds) == 1 else None) or 0
        images, labels = Shapes("test", n=total, size=metas[0]["input_size"], seed=seed,
                                version=shapes_version(meta.get("classes") for meta in metas)).as_tensors()
    else:
        from msda.data import load_dataset

        seed = None
        images, labels = load_dataset(args.data, "test", root=args.root).as_tensors()
        if total > len(labels):
            raise ValueError(f"--n + --n-calibration must be at most {len(labels)} for {args.data}'s test split, "
                             f"got {total}")
    labels = labels.long()
    return (images[:args.n], labels[:args.n]), (images[args.n:total], labels[args.n:total]), seed


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the study; returns ``{"table", "methods", "severity", "files"}``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    command = "python -m analysis.calibration " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    with output_folder(args.out, command=command) as folder:  # one run per folder, from start to end
        return _study(args, command, folder)


def _study(args, command: str, folder: OutputFolder) -> dict:
    start = time.perf_counter()
    loaded = load_models(args.checkpoints, "--checkpoints", arch=args.arch, num_classes=args.num_classes,
                         device=args.device)
    metas = {name: meta for name, (_, meta) in loaded.items()}
    num_classes = next(iter(metas.values()))["num_classes"]
    test, calibration, data_seed = _splits(args, list(metas.values()))
    test = tuple(t.to(args.device) for t in test)
    calibration = tuple(t.to(args.device) for t in calibration)
    study = calibration_study({name: model for name, (model, _) in loaded.items()}, test, calibration,
                              num_classes=num_classes, corruptions=args.corruptions, severities=args.severities,
                              corrupted_n=args.corrupted_n, n_bins=args.bins, batch_size=args.batch_size,
                              seed=args.seed, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    import pandas as pd

    table = pd.DataFrame(study["rows"])
    table.insert(1, "method", [metas[name].get("method") for name in table["model"]])
    table.insert(2, "seed", [metas[name].get("seed") for name in table["model"]])
    table["checkpoint"] = [str(metas[name]["path"]) for name in table["model"]]
    methods_of = {name: meta.get("method") for name, meta in metas.items()}
    seeds_of = {name: meta.get("seed") for name, meta in metas.items()}
    methods = None
    if len({m for m in methods_of.values() if m}) >= 2 or len(methods_of) > len(set(methods_of.values())):
        methods = method_table(study["outcomes"], methods=methods_of, seeds=seeds_of, n_boot=args.n_boot,
                               n_bins=args.bins)
        # the seeds' spread, described beside the intervals (sample sd, ddof 1): per-model values, not a test
        methods["temperature_mean"] = [table.loc[table["method"] == m, "temperature"].mean() for m in methods["method"]]
        for column in ("temperature", "accuracy", "ece", "ece_ts", "mce", "mce_ts", "nll", "nll_ts", "brier", "brier_ts"):
            methods[f"{column}_sd"] = [table.loc[table["method"] == m, column].std() for m in methods["method"]]
    severity = severity_table(study["corrupted"], methods_of)

    settings = {"data": args.data, "data_seed": data_seed, "test_images": args.n,
                "test_ids": f"test split images 0 … {args.n - 1}",
                "calibration_images": args.n_calibration,
                "calibration_ids": f"test split images {args.n} … {args.n + args.n_calibration - 1}",
                "corrupted_images": args.corrupted_n, "corruptions": list(args.corruptions),
                "severities": list(args.severities), "corruption_seed": args.seed, "batch_size": args.batch_size,
                "bins": args.bins, "n_boot": args.n_boot, "device": str(args.device),
                "checkpoints": [str(meta["path"]) for meta in metas.values()]}
    per_method_reliability = _pooled_reliability(study["reliability"], methods_of)
    summary = {"command": command, "settings": settings, "seconds": elapsed,
               "metrics": {key: text for key, (text, _) in METRICS.items()},
               "higher_is_better": {key: up for key, (_, up) in METRICS.items()},
               "interval": INTERVAL_NOTE, "outcomes": OUTCOMES_FILE,
               "methods": methods, "severity": severity, "corrupted": study["corrupted"],
               "reliability": study["reliability"], "method_reliability": per_method_reliability}
    cells = len(study["cells"])
    sections = [
        ("Settings", f"{command}\n\n{args.n} test images of {args.data} (data seed {data_seed}); temperature fitted "
                     f"on {args.n_calibration} other test-split images (L-BFGS on the NLL); {args.corrupted_n} "
                     f"images under {cells} corruption × severity cells; {args.bins} equal-width bins; "
                     f"device {args.device}; {elapsed:.0f} s."),
        ("Metrics", "\n".join(f"{key}: {text}" for key, (text, _) in METRICS.items())),
        ("Per model", table),
    ]
    if methods is not None:
        sections += [("Per method: 95 % intervals and verdicts against none",
                      f"Each method's checkpoints are its seeds; an item is a test image. {INTERVAL_NOTE} Lower is "
                      "better for ECE, MCE, NLL and Brier; confidence has no verdict. Per-image outcomes: "
                      f"{OUTCOMES_FILE}."), ("Per method", formatted(methods, SHOWN, by=("method",), digits=4))]

    def with_figures():  # after the tables are on disk: a figure error never loses the study
        shown = per_method_reliability if methods is not None else study["reliability"]
        figures = [("Reliability diagrams (marker size: share of images in the bin)", reliability_figure(shown)),
                   ("Confidence histograms", confidence_histogram(shown))]
        if not severity.empty:
            figures.append(("Confidence (solid) against accuracy (dotted) across severities", severity_figure(severity)))
        return sections + figures

    files = write_report_set(folder, "calibration", table=table, summary=summary, title="Calibration",
                             sections=with_figures, outcomes_file=OUTCOMES_FILE, outcomes=study["outcomes"],
                             methods=methods)
    if args.manifest is not None:
        files["manifest"] = write_section(args.manifest, summary, table, out=args.out)
    print(table[["model", "accuracy", "temperature", "ece", "ece_ts", "nll", "nll_ts", "brier", "brier_ts"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if methods is not None:
        print(f"\nper method: {INTERVAL_NOTE}")
        print(formatted(methods, ["ece", "ece_ts", "nll", "nll_ts", "brier", "brier_ts"], by=("method",),
                        digits=4).to_string(index=False))
    for kind, path in files.items():
        print(f"{kind}: {path}")
    print(f"{len(loaded)} models, {elapsed:.0f} s", file=sys.stderr)
    return {"table": table, "methods": methods, "severity": severity, "files": files}


def _pooled_reliability(reliability: dict, methods_of: dict) -> dict:
    """method → {"before"|"after": bins}: each bin's images of all the method's seeds together."""
    pooled: dict = {}
    for model, bins in reliability.items():
        method = methods_of.get(model) or model
        for key, part in bins.items():
            target = pooled.setdefault(method, {}).setdefault(key, {
                "low": part["low"], "high": part["high"], "count": [0] * len(part["count"]),
                "confidence_sum": [0.0] * len(part["count"]), "accuracy_sum": [0.0] * len(part["count"])})
            for k, count in enumerate(part["count"]):
                if count:
                    target["count"][k] += count
                    target["confidence_sum"][k] += count * part["confidence"][k]
                    target["accuracy_sum"][k] += count * part["accuracy"][k]
    for bins in pooled.values():
        for part in bins.values():
            counts = part["count"]
            part["confidence"] = [s / c if c else None for s, c in zip(part.pop("confidence_sum"), counts)]
            part["accuracy"] = [s / c if c else None for s, c in zip(part.pop("accuracy_sum"), counts)]
    return pooled


def write_section(manifest_path: Path, summary: dict, table, *, out: Path) -> Path:
    """Write the study into ``manifest.json``'s top-level ``calibration`` section (the rest of the file is left as
    it is, re-read just before the write): command, settings, interval, the per-method rows, every run's
    temperature and metrics (with the checkpoint's sha256), per-method reliability bins, the severity table and
    the outcome file's name and sha256."""
    from msda.training.checkpoint import file_sha256
    from msda.training.manifest import ship_outcomes, write_manifest

    from ..report import to_jsonable

    runs = []
    for row in table.to_dict("records"):
        path = Path(row["checkpoint"])
        runs.append({**{key: row[key] for key in ("model", "method", "seed", "temperature", "accuracy", "confidence",
                                                  "ece", "ece_ts", "mce", "mce_ts", "nll", "nll_ts", "brier",
                                                  "brier_ts", "confidence_ts") if key in row},
                     "file": path.name, "sha256": file_sha256(path) if path.is_file() else None})
    section = {"command": summary["command"], "settings": summary["settings"], "interval": summary["interval"],
               "metrics": summary["metrics"], "higher_is_better": summary["higher_is_better"],
               "methods": summary["methods"], "runs": runs, "reliability": summary["method_reliability"],
               "severity": summary["severity"],
               "outcomes": ship_outcomes(out / OUTCOMES_FILE, manifest_path.parent)}
    manifest = json.loads(manifest_path.read_text())
    manifest[SECTION] = to_jsonable(section)
    return write_manifest(manifest_path, manifest)


if __name__ == "__main__":
    run_cli(main)
