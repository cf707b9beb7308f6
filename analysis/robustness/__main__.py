"""python -m analysis.robustness: corruption and FGSM robustness of checkpoints, written as CSV, JSON and HTML.

Under ``torchrun --nproc_per_node N -m analysis.robustness …`` every rank evaluates a disjoint shard of the
images, the integer counts are summed over the ranks, and rank 0 writes the report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import torch

from msda.training import distributed
from msda.training.outputs import OutputFolder, output_folder, run_cli

from ..corruptions import CORRUPTIONS
from ..corruptions._params import PROFILES
from .._cli import load_models
from ..report import interval_figure, write_report_set
from ..verdicts import formatted
from .data import (DATA_CHOICES, SHAPES_DEFAULT_N, STORED, RobustnessData, build_report, checkpoint_info,
                   prepare_data)
from .evaluate import DEFAULT_SEVERITIES, evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curves
from .figures import error_heatmaps, fgsm_figure, summary_bars
from .tables import item_outcomes

DEFAULT_EPS = "1/255,2/255,4/255,8/255"
OUTCOMES_FILE = "robustness_outcomes.safetensors"
_NEEDS_ROOT = {"cifar10+corrupt", "cifar100+corrupt", "imagefolder+corrupt", *STORED}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.robustness", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Top-1 error of checkpoints under the common corruptions of Hendrycks & Dietterich (ICLR "
                    "2019) — stored CIFAR-10-C/100-C/ImageNet-C or any dataset corrupted on the fly — and "
                    "accuracy under FGSM (Goodfellow et al. 2015). Writes robustness.csv, robustness.json and "
                    "robustness.html to --out.")
    p.add_argument("--checkpoint", dest="checkpoints", action="extend", nargs="+", required=True, metavar="PATH",
                   help="checkpoint file(s) (.safetensors, .pt, .pth; quoted glob patterns are expanded); repeat "
                        "the option or list several")
    p.add_argument("--arch", help="architecture, for checkpoints without metadata")
    p.add_argument("--num-classes", type=int, help="number of classes, for checkpoints without metadata")
    p.add_argument("--data", default="shapes-c", metavar="DATA",
                   help=f"one of {', '.join(DATA_CHOICES)} (shapes-c = shapes+corrupt: the shapes test split "
                        "of the checkpoints' data seed)")
    p.add_argument("--root", help="dataset folder: CIFAR-10/100 (+corrupt), an ImageNet-style folder "
                                  "(imagefolder+corrupt), or the CIFAR-10-C / CIFAR-100-C / ImageNet-C folder")
    p.add_argument("--clean-root", help="cifar10-c/cifar100-c/imagenet-c: the clean test set (the CIFAR folder, or "
                                        "an ImageNet folder with val/) for the clean error, relative mCE and FGSM")
    p.add_argument("--corruptions", nargs="+", metavar="NAME",
                   help="corruptions to evaluate (default: all 19, or those present in --root for stored sets)")
    p.add_argument("--severities", nargs="+", type=int, default=list(DEFAULT_SEVERITIES), metavar="S",
                   help="severities 1 … 5")
    p.add_argument("--fgsm-eps", metavar="EPS",
                   help=f"comma-separated FGSM steps on the [0, 1] scale, fractions allowed; 'none' skips FGSM "
                        f"(default {DEFAULT_EPS} when clean images are available); ε = 0 is always added")
    p.add_argument("--pgd-eps", metavar="EPS",
                   help="comma-separated L∞ budgets of PGD (Madry et al. 2018) on the clean images, beside FGSM, e.g. "
                        f"{DEFAULT_EPS}; default: no PGD (on-the-fly data, one process)")
    p.add_argument("--pgd-steps", type=int, default=10, help="PGD steps per restart")
    p.add_argument("--pgd-step-size", type=float, default=0.25, help="PGD step size α as a fraction of ε")
    p.add_argument("--pgd-restarts", type=int, default=1, help="PGD restarts (more than 1 needs the random start)")
    p.add_argument("--pgd-no-random-start", action="store_true", help="start PGD at the image, not in the ε-ball")
    p.add_argument("--pgd-seed", type=int, default=0, help="seed of the PGD random starts")
    p.add_argument("--n", "--n-images", dest="n", type=int,
                   help=f"number of test images (shapes: default {SHAPES_DEFAULT_N}; others: all; folders take evenly "
                        "spaced images). Under torchrun write --n-images: torchrun's own parser rejects --n as an "
                        "ambiguous abbreviation of its options")
    p.add_argument("--data-seed", type=int,
                   help="shapes: dataset seed (default: the checkpoints' data_seed when they agree, else 0)")
    p.add_argument("--replication-data-seed", type=int,
                   help="shapes-c: run again on the test split of this data seed (one no checkpoint was trained on) "
                        "and say, per metric, whether each verdict against none replicates there")
    p.add_argument("--batch-size", type=int, default=256,
                   help="images per batch; on-the-fly corruptions are seeded per batch, so keep it to compare runs")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where images are corrupted and classified (under torchrun, cuda means each rank's GPU)")
    p.add_argument("--seed", type=int, default=0, help="seed of the on-the-fly corruptions' random draws")
    p.add_argument("--profile", default="auto", choices=PROFILES,
                   help="corruption parameters: cifar, imagenet, or auto (by image size)")
    p.add_argument("--frost-dir", help="frost: a folder of frost images instead of the procedural textures")
    p.add_argument("--workers", type=int,
                   help="data-loading processes (default 4 for image folders, 0 otherwise)")
    p.add_argument("--out", type=Path, default=Path("reports/robustness"), help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the evaluation from the command line; returns ``{"summary": DataFrame, "table": DataFrame,
    "files": {kind: Path}}`` on rank 0 (an empty dict on the other ranks)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    rank, world_size, device = distributed.setup(torch.device(args.device))
    command = "python -m analysis.robustness " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        if rank != 0:  # rank 0 alone writes, and holds --out for the whole run
            return _run(args, command, rank, world_size, device, None)
        with output_folder(args.out, command=command) as folder:
            return _run(args, command, rank, world_size, device, folder)
    finally:
        distributed.teardown()


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Bad arguments end the program here (exit status 2) with a message naming the value and the allowed ones."""
    if args.data not in DATA_CHOICES:
        parser.error(f"--data must be one of {', '.join(DATA_CHOICES)}; got {args.data!r}")
    for name in args.corruptions or ():
        if name not in CORRUPTIONS:
            parser.error(f"--corruptions: unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)}")
    if args.corruptions and len(set(args.corruptions)) != len(args.corruptions):
        parser.error(f"--corruptions lists a corruption twice: {' '.join(args.corruptions)}")
    for severity in args.severities:
        if not 1 <= severity <= 5:
            parser.error(f"--severities must be integers in 1 … 5; got {severity}")
    if len(set(args.severities)) != len(args.severities):
        parser.error(f"--severities lists a severity twice: {' '.join(map(str, args.severities))}")
    if args.data in _NEEDS_ROOT and not args.root:
        parser.error(f"--data {args.data} needs --root, the folder that holds its files")
    if args.data not in _NEEDS_ROOT and args.root:
        parser.error(f"--data {args.data} is generated and reads no files; drop --root {args.root}")
    if args.replication_data_seed is not None and args.data != "shapes-c":
        parser.error(f"--replication-data-seed needs --data shapes-c (a generated test split), got --data {args.data}")
    if args.clean_root and args.data not in STORED:
        parser.error(f"--clean-root only applies to {', '.join(STORED)} (the clean images of --data {args.data} "
                     "are its own test split)")
    for option, value, low in (("--n", args.n, 1), ("--batch-size", args.batch_size, 1),
                               ("--workers", args.workers, 0)):
        if value is not None and value < low:
            parser.error(f"{option} must be at least {low}, got {value}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available (use --device cpu)")
    try:
        torch.device(args.device)
    except (RuntimeError, TypeError):
        parser.error(f"--device must be like cpu, cuda or cuda:1; got {args.device!r}")
    try:
        args.eps = _parse_eps(args.fgsm_eps)
        args.pgd = _pgd_settings(args)
    except ValueError as error:
        parser.error(str(error))


def _pgd_settings(args):
    """The PGD attack of --pgd-* (analysis.attacks.AttackSettings), or None without --pgd-eps."""
    if args.pgd_eps is None or args.pgd_eps.strip().lower() == "none":
        return None
    from ..attacks import AttackSettings, parse_eps

    try:
        return AttackSettings(eps=parse_eps(args.pgd_eps), steps=args.pgd_steps, step_fraction=args.pgd_step_size,
                              restarts=args.pgd_restarts, random_start=not args.pgd_no_random_start, seed=args.pgd_seed)
    except ValueError as error:
        raise ValueError(f"--pgd-*: {error}") from None


def _parse_eps(text: str | None) -> tuple[float, ...] | None:
    """'2/255,1/255' → (0.0, 1/255, 2/255) (sorted, 0 added); 'none' → (); None → None (the default,
    decided later)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    values = []
    for token in text.split(","):
        try:
            value = float(Fraction(token.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"--fgsm-eps: {token.strip()!r} is not a number or fraction like 8/255 "
                             f"(expected e.g. {DEFAULT_EPS}, or none)") from None
        if not 0 <= value <= 1:
            raise ValueError(f"--fgsm-eps: ε must be in [0, 1] on the pixel scale, got {token.strip()}")
        values.append(value)
    return tuple(sorted({0.0, *values}))


# ----------------------------------------------------------------------------------------------- the run


def _run(args, command: str, rank: int, world_size: int, device: torch.device, folder: OutputFolder | None) -> dict:
    started = time.perf_counter()
    loaded = load_models(args.checkpoints, "--checkpoint", arch=args.arch, num_classes=args.num_classes,
                         device=device)
    metas = [meta for _, meta in loaded.values()]
    data = prepare_data(args.data, metas, root=args.root, clean_root=args.clean_root, corruptions=args.corruptions,
                        severities=args.severities, n=args.n, data_seed=args.data_seed)
    if rank == 0:
        for note in data.notes:
            print(note, file=sys.stderr)
    models = {name: model for name, (model, _) in loaded.items()}
    eps = args.eps if args.eps is not None else (() if data.clean is None else _parse_eps(DEFAULT_EPS))
    if eps and data.clean is None:
        raise ValueError(f"FGSM needs clean images: pass --clean-root with --data {args.data}, or --fgsm-eps none")
    workers = args.workers if args.workers is not None else (
        min(4, os.cpu_count() or 1) if args.data in ("imagefolder+corrupt", "imagenet-c") else 0)
    progress = not args.no_progress and rank == 0
    common = dict(device=device, batch_size=args.batch_size, shard=(rank, world_size), workers=workers,
                  progress=progress)
    replication = None
    if args.replication_data_seed is not None:
        used = {meta.get("data_seed", 0) for meta in metas} | {data.data_seed}
        if args.replication_data_seed in used:
            raise ValueError(f"--replication-data-seed {args.replication_data_seed} is a data seed the checkpoints "
                             f"were trained or tested on; pick another (e.g. {max(s for s in used if s is not None) + 1})")
        replication = prepare_data(args.data, metas, corruptions=args.corruptions, severities=args.severities,
                                   n=args.n, data_seed=args.replication_data_seed)

    if args.pgd is not None and (world_size > 1 or not isinstance(data.clean, torch.Tensor)):
        raise ValueError("--pgd-eps runs in one process on generated or in-memory clean images (shapes-c, "
                         "cifar10+corrupt, cifar100+corrupt); drop torchrun or --pgd-eps")
    results, curves = _evaluate(args, models, data, eps, common)
    replicated = None if replication is None else _evaluate(args, models, replication, eps, common)
    attacked = None
    if args.pgd is not None:
        from ..attacks import attack_outcomes

        attacked = attack_outcomes(models, data.clean.to(device), data.labels.to(device), args.pgd,
                                   batch_size=args.batch_size, progress=progress, num_classes=data.num_classes)
    if rank != 0:
        return {}
    return _write(args, command, folder, loaded, data, results, curves, world_size, device, replicated, attacked,
                  seconds=time.perf_counter() - started)


def _evaluate(args, models, data: RobustnessData, eps, common) -> tuple:
    """(results, FGSM curves) of every model on `data`, summed over the ranks, with per-item outcomes
    (on-the-fly corruptions; stored sets keep counts only)."""
    if data.stored is None:
        results = evaluate_corruptions(models, data.clean, data.labels, corruptions=data.corruptions,
                                       severities=data.severities, generator_seed=args.seed, profile=args.profile,
                                       frost_dir=args.frost_dir, keep_items=True, **common)
    else:
        results = evaluate_corrupted_datasets(models, data.stored, clean=data.clean, **common)
    results = results.reduced(distributed.all_sum)
    curves = {}
    if eps:
        curves = fgsm_curves(models, data.clean, data.labels, eps=eps, keep_items=data.stored is None, **common)
        curves = {name: curve.reduced(distributed.all_sum) for name, curve in curves.items()}
    return results, curves


def _write(args, command: str, folder: OutputFolder, loaded, data: RobustnessData, results, curves, world_size: int,
           device, replicated: tuple | None = None, attacked: dict | None = None, seconds: float | None = None) -> dict:
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    settings["checkpoints"] = [str(meta["path"]) for _, meta in loaded.values()]
    settings.pop("pgd", None)  # the attack's settings are the report's pgd_attack
    images = int(results.total.max()) if results.total.numel() else 0
    data_info = {"name": args.data, "description": data.description, "images_per_cell": images,
                 "clean_images": int(results.clean_total), "corruptions": list(results.corruptions),
                 "severities": list(results.severities), "data_seed": data.data_seed,
                 "corruption_seed": args.seed if data.stored is None else None}
    report = build_report(results, curves, alexnet=data.alexnet, data=data_info,
                          checkpoints=checkpoint_info({name: meta for name, (_, meta) in loaded.items()}),
                          settings=settings, command=command, written_by="python -m analysis.robustness",
                          replication=replicated)
    outcomes = item_outcomes(results, curves)
    for name, values in (item_outcomes(*replicated) if replicated is not None else {}).items():
        outcomes.setdefault(name, {}).update({f"replication/{key}": value for key, value in values.items()})
    pgd_rows = None
    if attacked is not None:
        pgd_rows = _add_pgd(report, outcomes, attacked, args.pgd, loaded)
    if outcomes:
        report["outcomes"] = OUTCOMES_FILE
        report["outcome_layout"] = {"clean/correct": "[images]", "corruptions/correct": "[corruptions, severities, "
                                    "images] in data.corruptions × data.severities order",
                                    "fgsm/correct": "[ε, images] in the fgsm rows' ε order",
                                    "replication/…": "the same on the replication split",
                                    **({"pgd/correct": "[ε, images] in pgd_attack.eps order"} if attacked else {})}
    if replicated is not None:
        report["replication"] = {"data_seed": args.replication_data_seed,
                                 "images": int(replicated[0].clean_total)}
    report["world_size"] = world_size
    report["seconds"] = seconds  # the run's wall time from loading the models to the tables, for the README
    summary, table = report["summary"], report.pop("rows")
    fgsm_rows = report.get("fgsm")
    methods = report.get("methods")

    def build_sections():  # after the tables are written: a figure error never loses the run
        sections = [
            ("Settings", f"{command}\n\n{data.description}; {len(results.corruptions)} corruption(s) × severities "
                         f"{', '.join(map(str, results.severities))}; {images} images per cell, "
                         f"{int(results.clean_total)} clean; device {device}"
                         + (f", {world_size} processes" if world_size > 1 else "") + "."),
            ("Summary", summary),
            ("Columns", "\n".join(f"{key}: {text}" for key, text in report["columns"].items())),
            ("Top-1 error per corruption and severity (one colour scale)", error_heatmaps(results)),
            ("Clean and mean corrupted error" + (", mCE" if data.alexnet else ""), summary_bars(summary)),
        ]
        if methods is not None:
            metrics = [column.removesuffix("_mean") for column in methods.columns if column.endswith("_mean")]
            sections += [("Per method: 95 % intervals and verdicts against none",
                          f"Each method's checkpoints are its seeds; an item is a test image. {report['interval']} "
                          f"The clean error is better lower, every accuracy higher. Per-item outcomes: "
                          f"{OUTCOMES_FILE}."), ("Per method", formatted(methods, metrics)),
                         ("Per method: intervals", interval_figure(
                             methods, [m for m in metrics if m.removeprefix("accuracy_") not in CORRUPTIONS], columns=3))]
        if fgsm_rows is not None:
            sections += [("FGSM: accuracy against ε (Goodfellow et al. 2015; [0, 1] pixel scale, clamped)",
                          fgsm_figure(curves)), ("FGSM", fgsm_rows)]
        if pgd_rows is not None:
            sections += [(f"PGD beside FGSM — {report['pgd_attack']['description']}", pgd_rows)]
        return sections

    files = write_report_set(folder, "robustness", table=table, summary=report,
                             title="Robustness: common corruptions and FGSM", sections=build_sections,
                             outcomes_file=OUTCOMES_FILE, outcomes=outcomes, methods=methods)
    shown = [column for column in ("model", "method", "clean_error", "corrupted_accuracy",
                                   "mean_corrupted_accuracy_15", "mean_corrupted_accuracy_19", "mce", "relative_mce")
             if column in summary.columns]
    print(summary[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if fgsm_rows is not None:
        print(fgsm_rows.pivot(index="model", columns="eps_255", values="accuracy")
              .rename(columns=lambda v: f"ε={v:g}/255").to_string(float_format=lambda v: f"{v:.4f}"))
    if methods is not None:
        metrics = [m for m in ("clean_error", "corrupted_accuracy", "mean_corrupted_accuracy_15") if f"{m}_mean" in methods]
        print(f"\nper method: {report['interval']}")
        print(formatted(methods, metrics, digits=4).to_string(index=False))
    if pgd_rows is not None:
        print(f"\n{report['pgd_attack']['description']}")
        print(pgd_rows.pivot_table(index="model", columns=["attack", "eps_label"], values="accuracy", sort=False)
              .to_string(float_format=lambda v: f"{v:.4f}"))
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return {"summary": summary, "table": table, "files": files, "methods": report.get("methods")}


def _add_pgd(report: dict, outcomes: dict, attacked: dict, settings, loaded) -> object:
    """PGD into the report: ``pgd_attack`` (the settings), ``pgd`` (per model × attack × ε accuracy), the
    ``pgd_<ε·255>_255`` columns of the per-method table (intervals and verdicts against none) and every image's
    ``pgd/correct`` and ``pgd/confidence`` [ε, images] in the outcomes. Returns the rows."""
    from ..attacks.study import long_table, pgd_method_columns, settings_record

    metas = {name: meta for name, (_, meta) in loaded.items()}
    rows = long_table(attacked, settings, metas)
    report["pgd_attack"] = settings_record(settings)
    report["pgd"] = rows
    for name, values in attacked.items():
        outcomes.setdefault(name, {}).update({key: values[key] for key in ("pgd/correct", "pgd/confidence")})
    methods = report.get("methods")
    if methods is not None:
        columns = pgd_method_columns(attacked, settings, methods={n: m.get("method") for n, m in metas.items()},
                                     seeds={n: m.get("seed") for n, m in metas.items()})
        extra = columns.drop(columns=[c for c in ("seeds", "seed_list") if c in columns.columns])
        report["methods"] = methods.merge(extra, on="method", how="left")
    return rows


if __name__ == "__main__":
    run_cli(main)
