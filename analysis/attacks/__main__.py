"""python -m analysis.attacks: clean, FGSM and PGD accuracy of checkpoints, per model and per method (intervals
and verdicts against none), written as CSV, JSON and HTML, the per-image outcomes, and with --manifest the
manifest's ``attacks`` section."""

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
from ..report import write_report_set
from ..untrusted import plotly_text
from ..verdicts import INTERVAL_NOTE, N_BOOT, formatted, method_table, wants_method_table
from .study import AttackSettings, attack_outcomes, cells, long_table, parse_eps, settings_record

OUTCOMES_FILE = "attacks_outcomes.safetensors"
SECTION = "attacks"
DEFAULT_EPS = "1/255,2/255,4/255,8/255"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.attacks", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Accuracy of checkpoints under FGSM and L∞ PGD (Madry et al. 2018) on the shapes test split; "
                    "writes attacks.csv, attacks.json, attacks.html and the per-image outcomes to --out.")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="checkpoint files (.safetensors, .pt, .pth; quoted glob patterns are expanded)")
    p.add_argument("--arch", help="architecture, for checkpoints without metadata")
    p.add_argument("--num-classes", type=int, help="number of classes, for checkpoints without metadata")
    p.add_argument("--data-seed", type=int,
                   help="shapes dataset seed (default: the checkpoints' data_seed when they agree, else 0)")
    p.add_argument("--n", type=int, default=300, help="test images: the first n of the shapes test split")
    p.add_argument("--eps", default=DEFAULT_EPS, help="comma-separated L∞ budgets on the [0, 1] scale, fractions allowed")
    p.add_argument("--steps", type=int, default=10, help="PGD steps per restart (0 = no attack)")
    p.add_argument("--step-size", type=float, default=0.25, help="PGD step size α as a fraction of ε")
    p.add_argument("--restarts", type=int, default=1, help="PGD restarts (more than 1 needs the random start)")
    p.add_argument("--no-random-start", action="store_true", help="start PGD at the image, not in the ε-ball")
    p.add_argument("--seed", type=int, default=0, help="seed of the PGD random starts")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap replicates of the per-method intervals")
    p.add_argument("--batch-size", type=int, default=250, help="images per batch (the random starts depend on it)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=Path("reports/attacks"), help="output folder")
    p.add_argument("--manifest", type=Path,
                   help=f"write the per-method rows into this manifest.json's top-level '{SECTION}' section")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the study; returns ``{"table", "methods", "files", "settings"}``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_int("--n", args.n, low=2)
        check_int("--n-boot", args.n_boot, low=100)
        check_int("--batch-size", args.batch_size, low=1)
        settings = AttackSettings(eps=parse_eps(args.eps), steps=args.steps, step_fraction=args.step_size,
                                  restarts=args.restarts, random_start=not args.no_random_start, seed=args.seed)
        if args.manifest is not None and not args.manifest.is_file():
            raise ValueError(f"--manifest {args.manifest} is not a file; build it first with python -m "
                             "msda.training.manifest")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder")
        device = check_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    command = "python -m analysis.attacks " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    with output_folder(args.out, command=command) as folder:  # one run per folder, from start to end
        return _study(args, command, settings, device, folder)


def _study(args, command: str, settings: AttackSettings, device, folder: OutputFolder) -> dict:
    from msda.data import Shapes

    from ..shapes_version import shapes_version

    start = time.perf_counter()
    loaded = load_models(args.checkpoints, "--checkpoints", arch=args.arch, num_classes=args.num_classes,
                         device=device)
    metas = {name: meta for name, (_, meta) in loaded.items()}
    seeds = {meta.get("data_seed") for meta in metas.values()}
    data_seed = args.data_seed if args.data_seed is not None else (seeds.pop() if len(seeds) == 1 else None) or 0
    images, labels = Shapes("test", n=args.n, size=next(iter(metas.values()))["input_size"], seed=data_seed,
                            version=shapes_version(meta.get("classes") for meta in metas.values())).as_tensors()
    timings: dict = {}
    outcomes = attack_outcomes({name: model for name, (model, _) in loaded.items()}, images.to(device),
                               labels.to(device), settings, batch_size=args.batch_size,
                               progress=not args.no_progress, timings=timings,
                               num_classes=next(iter(metas.values()))["num_classes"])
    elapsed = time.perf_counter() - start
    table = long_table(outcomes, settings, metas)
    methods_of = {name: meta.get("method") for name, meta in metas.items()}
    seeds_of = {name: meta.get("seed") for name, meta in metas.items()}
    methods = None
    if wants_method_table(methods_of):
        methods = method_table(cells(outcomes, settings), methods=methods_of, seeds=seeds_of,
                               higher_is_better={"accuracy": True}, by=("attack", "eps"), n_boot=args.n_boot)
        # the seeds' spread, described beside the intervals (sample sd of the per-model accuracies, ddof 1)
        spread = table.groupby(["method", "attack", "eps_label"])["accuracy"].std()
        methods["accuracy_sd"] = [spread.get((m, a, e)) for m, a, e in zip(methods["method"], methods["attack"],
                                                                            methods["eps"])]
    record = settings_record(settings)
    summary = {"command": command, "attack": record, "data": {"name": "shapes", "data_seed": data_seed,
                                                              "test_images": args.n},
               "seconds": elapsed, "cpu_seconds_per_model": timings, "interval": INTERVAL_NOTE,
               "outcomes": OUTCOMES_FILE, "methods": methods,
               "checkpoints": {name: str(meta["path"]) for name, meta in metas.items()}}
    sections = [("Settings", f"{command}\n\n{args.n} test images of shapes (data seed {data_seed}). "
                             f"{settings.describe()}. Device {device}; {elapsed:.0f} s."),
                ("Per model", table.pivot_table(index=["model", "method", "seed"], columns=["attack", "eps_label"],
                                                values="accuracy", sort=False).reset_index()
                 .pipe(lambda t: t.set_axis([" ".join(str(p) for p in c if p).strip() if isinstance(c, tuple) else c
                                             for c in t.columns], axis=1)))]
    if methods is not None:
        sections += [("Per method: accuracy with 95 % intervals and verdicts against none",
                      f"{settings.describe()}. Each method's checkpoints are its seeds; an item is a test image; "
                      f"each attack × ε is its own family. {INTERVAL_NOTE}"),
                     ("Per method", formatted(methods, ["accuracy"], by=("method", "attack", "eps"), digits=4))]

    def with_figures():
        return sections + [("Accuracy against ε", _figure(table, settings))]

    files = write_report_set(folder, "attacks", table=table, summary=summary, title="FGSM and PGD",
                             sections=with_figures, outcomes_file=OUTCOMES_FILE, outcomes=outcomes, methods=methods)
    if args.manifest is not None:
        files["manifest"] = write_section(args.manifest, summary, table, out=args.out)
    print(settings.describe())
    print(table.pivot_table(index="model", columns=["attack", "eps_label"], values="accuracy", sort=False)
          .to_string(float_format=lambda v: f"{v:.3f}"))
    if methods is not None:
        print(f"\nper method: {INTERVAL_NOTE}")
        print(formatted(methods, ["accuracy"], by=("method", "attack", "eps"), digits=4).to_string(index=False))
    for kind, path in files.items():
        print(f"{kind}: {path}")
    per_model = sorted(timings.values())
    print(f"{len(loaded)} models, {elapsed:.0f} s; CPU time per model: median {per_model[len(per_model) // 2]:.1f} s",
          file=sys.stderr)
    return {"table": table, "methods": methods, "files": files, "settings": settings}


def _figure(table, settings: AttackSettings):
    """Accuracy against ε, FGSM dotted and PGD solid, one colour per model."""
    import plotly.express as px
    import plotly.graph_objects as go

    figure = go.Figure()
    palette = px.colors.qualitative.Plotly + px.colors.qualitative.Dark24
    for number, (model, part) in enumerate(table.groupby("model", sort=False)):
        clean = part[part["attack"] == "clean"]["accuracy"].iloc[0]
        for kind, dash in (("fgsm", "dot"), ("pgd", "solid")):
            rows = part[part["attack"] == kind]
            figure.add_scatter(x=[0.0, *(255 * rows["eps"])], y=[clean, *rows["accuracy"]], mode="lines+markers",
                               name=plotly_text(f"{model} {kind.upper()}"), legendgroup=model,
                               line=dict(dash=dash, color=palette[number % len(palette)]))
    figure.update_layout(xaxis_title="ε × 255", yaxis_title="accuracy", yaxis_tickformat=".0%", height=450,
                         title=settings.describe(), title_font_size=11)
    return figure


def write_section(manifest_path: Path, summary: dict, table, *, out: Path) -> Path:
    """The study in ``manifest.json``'s top-level ``attacks`` section (the rest of the file left as it is, re-read
    just before the write): command, attack settings, interval, per-method rows, every run's accuracies."""
    from msda.training.checkpoint import file_sha256
    from msda.training.manifest import ship_outcomes, write_manifest

    from ..report import to_jsonable

    runs = []
    for model, part in table.groupby("model", sort=False):
        path = Path(summary["checkpoints"][model])
        runs.append({"model": model, "method": part["method"].iloc[0], "seed": part["seed"].iloc[0],
                     "file": path.name, "sha256": file_sha256(path) if path.is_file() else None,
                     "accuracy": {f"{row['attack']} {row['eps_label']}" if row["attack"] != "clean" else "clean":
                                  row["accuracy"] for row in part.to_dict("records")}})
    section = {"command": summary["command"], "attack": summary["attack"], "data": summary["data"],
               "interval": summary["interval"], "methods": summary["methods"], "runs": runs,
               "outcomes": ship_outcomes(out / OUTCOMES_FILE, manifest_path.parent)}
    manifest = json.loads(manifest_path.read_text())
    manifest[SECTION] = to_jsonable(section)
    return write_manifest(manifest_path, manifest)


if __name__ == "__main__":
    run_cli(main)
