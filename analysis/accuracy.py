"""Clean accuracy of every seed run, on a large test split and on an independent replication split, with
paired intervals and verdicts against ``none``.

    python -m analysis.accuracy checkpoints/seeds --n 10000 --replication-data-seed 1 \\
        --out checkpoints/studies --manifest checkpoints/manifest.json

Every ``.safetensors`` run in the folder (grouped by the method in its metadata; any number of seeds per
method) is scored on two shapes test splits of the version its classes name:

* the **test split**: the first ``--n`` test images of the checkpoints' own data seed (the split they were
  evaluated on during training, extended from its first 2 000 images);
* the **replication split**: the first ``--n`` test images of ``--replication-data-seed``, a data seed no
  checkpoint was trained on — an independent draw of the same distribution.

Per model and split it keeps, per image, whether the top-1 prediction was right (bit-packed) and the softmax
probability of the predicted class (float16), in ``<out>/accuracy_outcomes.safetensors``
(:mod:`analysis.outcomes`), under the checkpoint's sha256 with metrics ``<split id>/correct`` and
``<split id>/confidence``; a split id names the version, data seed and n (``shapes-v2-seed0-n10000``). The file
is the cache: a checkpoint whose hash already has both splits is not run again (adding runs scores only
them), and it is rewritten atomically after every model (an interrupted run resumes).

Then, per split, :func:`analysis.stats.compare` on the ``[seeds, images]`` correctness of each method (paired:
the same images for every method; seeds and images resampled), and a verdict *replicates* when the two splits
give the same one. ``<out>/accuracy.json`` holds the settings, every run's two accuracies and the per-method
rows; with ``--manifest`` they are written into the manifest's ``seeds`` section
(:func:`msda.training.manifest.merge_accuracy`). The Markdown table for the README is printed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from msda._checks import check_int
from msda.training.checkpoint import file_sha256, read_checkpoint_meta

from .outcomes import load_outcomes, save_outcomes
from .report import write_json
from .verdicts import INTERVAL_NOTE, N_BOOT, by_method, ci_text, verdict_table, with_replication

__all__ = ["accuracy_table", "format_table", "main", "score_runs", "split_id"]

OUTCOMES_FILE = "accuracy_outcomes.safetensors"
REPORT_FILE = "accuracy.json"


def report_file(baseline: str) -> str:
    """accuracy.json against ``none`` (the one the manifest cites); accuracy_vs_<baseline>.json against another
    method, so comparing with another baseline from the cache never replaces the manifest's report."""
    return REPORT_FILE if baseline == "none" else f"accuracy_vs_{baseline}.json"


def split_id(version: int, data_seed: int, n: int) -> str:
    """The name of a shapes test split in the outcomes file: ``shapes-v<version>-seed<data seed>-n<n>``."""
    return f"shapes-v{version}-seed{data_seed}-n{n}"


def runs_of(folder: Path) -> list[dict]:
    """Every checkpoint in `folder` (not below it): file, sha256, method, seed, data seed, classes, sorted by
    method then seed. ValueError for an empty folder or a file without msda metadata."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors files in {folder}")
    runs = []
    for path in files:
        meta = read_checkpoint_meta(path)
        if meta is None or "method" not in meta:
            raise ValueError(f"{path} has no msda metadata (method, seed): only runs of msda.train can be scored")
        runs.append({"file": path.name, "path": path, "sha256": file_sha256(path), "method": meta["method"],
                     "seed": meta.get("seed"), "data_seed": meta.get("data_seed", 0), "classes": meta.get("classes"),
                     "input_size": meta.get("input_size", 32)})
    runs.sort(key=lambda run: (run["method"], -1 if run["seed"] is None else run["seed"], run["file"]))
    return runs


def score(model: torch.nn.Module, images: Tensor, labels: Tensor, *, batch_size: int) -> tuple[Tensor, Tensor]:
    """(correct bool [N], confidence float32 [N]: softmax probability of the predicted class) of one model on
    uint8 or [0, 1] images [N, 3, S, S]."""
    correct, confidence = [], []
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            batch = images[start:start + batch_size]
            batch = batch.float().div(255) if batch.dtype == torch.uint8 else batch.float()
            probs = model(batch).float().softmax(1)
            top, predicted = probs.max(1)
            correct.append(predicted == labels[start:start + batch_size])
            confidence.append(top)
    return torch.cat(correct), torch.cat(confidence)


def score_runs(runs: Sequence[dict], splits: Sequence[tuple[str, int]], *, n: int, version: int,
               outcomes_path: Path, batch_size: int = 500, device: str = "cpu", log=print) -> dict:
    """Score every run on every split not yet in `outcomes_path`, saving after each model.

    Args:
        runs: from :func:`runs_of`.
        splits: (split id, data seed) pairs.
        n: test images per split.
        version: shapes version of the images.
        outcomes_path: the outcomes file (read as the cache when it exists, rewritten atomically).

    Returns the outcome table, sha256 → {"<split id>/correct": bool [n], "<split id>/confidence": float [n]}.
    """
    import analysis
    from msda.data import Shapes

    table = load_outcomes(outcomes_path) if outcomes_path.is_file() else {}
    data: dict[str, tuple[Tensor, Tensor]] = {}
    size = runs[0]["input_size"]
    for run in runs:
        missing = [(name, seed) for name, seed in splits if f"{name}/correct" not in table.get(run["sha256"], {})]
        if not missing:
            continue
        start = time.perf_counter()
        model, _ = analysis.load_checkpoint(run["path"], device=device)
        for name, seed in missing:
            if name not in data:
                images, labels = Shapes("test", n=n, size=size, seed=seed, version=version).as_tensors()
                data[name] = (images.to(device), labels.to(device).long())
            correct, confidence = score(model, *data[name], batch_size=batch_size)
            table.setdefault(run["sha256"], {})[f"{name}/correct"] = correct.cpu()
            table[run["sha256"]][f"{name}/confidence"] = confidence.cpu()
        save_outcomes(outcomes_path, table)
        log(f"{run['file']}: {', '.join(name for name, _ in missing)} scored in {time.perf_counter() - start:.1f} s")
    return table


def accuracy_table(runs: Sequence[dict], table: dict, test: str, replication: str, *, baseline: str = "none",
                   n_boot: int = N_BOOT):
    """Per method: compare() of the test split's correctness with the replication split's verdict beside it
    (:func:`analysis.verdicts.with_replication`), rows ordered by the test split's mean, best first."""
    methods = {run["sha256"]: run["method"] for run in runs}
    seeds = {run["sha256"]: run["seed"] for run in runs}
    tables = []
    for name in (test, replication):
        outcomes = {run["sha256"]: table[run["sha256"]][f"{name}/correct"] for run in runs}
        tables.append(verdict_table(by_method(outcomes, methods, seeds), baseline=baseline, n_boot=n_boot))
    joined = with_replication(*tables)
    return joined.sort_values(["mean", "method"], ascending=[False, True], kind="stable").reset_index(drop=True)


def format_table(methods, *, n: int, test_seed: int, replication_seed: int, baseline: str = "none") -> str:
    """The README's Markdown table: accuracy with its interval, the difference to `baseline` with its interval
    and verdict on the test split, the replication split's difference and verdict, and whether it replicated."""
    note = INTERVAL_NOTE.replace("`none`", f"`{baseline}`")
    lines = [f"clean test accuracy in % on {n} test images (data seed {test_seed}); replication: {n} test images "
             f"of data seed {replication_seed}. {note}", "",
             f"| method | seeds | accuracy [95 % CI] | − {baseline} [95 % CI] | verdict | replication: − {baseline} [95 % CI] "
             "| verdict | replicated |", "|---|---:|---:|---:|---|---:|---|---|"]
    for row in methods.to_dict("records"):
        base = row["verdict"] == "baseline"
        diff = "" if base else ci_text(row["diff"], row["diff_ci_low"], row["diff_ci_high"], scale=100, sign=True)
        rep = "" if base else ci_text(row["rep_diff"], row["rep_diff_ci_low"], row["rep_diff_ci_high"], scale=100,
                                      sign=True)
        replicated = "" if base else ("yes" if row["replicated"] else "**no**")
        lines.append(f"| `{row['method']}` | {row['seeds']} | {ci_text(row['mean'], row['ci_low'], row['ci_high'], scale=100)} "
                     f"| {diff} | {'' if base else row['verdict']} | {rep} | {'' if base else row['rep_verdict']} "
                     f"| {replicated} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.accuracy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("folder", type=Path, help="a folder of msda.train runs (<method>-s<seed>.safetensors)")
    p.add_argument("--n", type=int, default=10_000, help="test images per split")
    p.add_argument("--data-seed", type=int, help="the test split's data seed (default: the runs' own, which "
                   "must agree)")
    p.add_argument("--replication-data-seed", type=int, default=1,
                   help="the replication split's data seed: one no run was trained on")
    p.add_argument("--out", type=Path, default=Path("checkpoints/studies"),
                   help=f"folder of {REPORT_FILE} and {OUTCOMES_FILE} (the cache)")
    p.add_argument("--manifest", type=Path, help="write the per-method rows into this manifest.json's seeds section")
    p.add_argument("--baseline", default="none", help="the method every other is compared with")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap replicates")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", default="cpu")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Score, compare, write the report (and the manifest); returns the report."""
    from msda.training.manifest import merge_accuracy, write_manifest

    from .shapes_version import shapes_version

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_int("--n", args.n, low=2)
        check_int("--batch-size", args.batch_size, low=1)
        check_int("--n-boot", args.n_boot, low=100)
        runs = runs_of(args.folder)
        data_seeds = {run["data_seed"] for run in runs}
        if args.data_seed is None and len(data_seeds) > 1:
            raise ValueError(f"the runs were trained on data seeds {sorted(data_seeds)}; pick the test split's with "
                             "--data-seed")
        test_seed = args.data_seed if args.data_seed is not None else data_seeds.pop()
        if args.replication_data_seed in {run["data_seed"] for run in runs} | {test_seed}:
            raise ValueError(f"--replication-data-seed {args.replication_data_seed} is a data seed the runs were "
                             f"trained or tested on; pick another (e.g. {max(data_seeds | {test_seed}) + 1})")
        if args.baseline not in {run["method"] for run in runs}:
            raise ValueError(f"--baseline {args.baseline!r} has no run in {args.folder}")
        if args.manifest is not None and args.baseline != "none":
            raise ValueError(f"--manifest takes the comparison with none (the seed table's verdicts), not --baseline "
                             f"{args.baseline!r}; leave one of them out")
        if args.manifest is not None and not args.manifest.is_file():
            raise ValueError(f"--manifest {args.manifest} is not a file; build it first with "
                             "python -m msda.training.manifest")
        version = shapes_version(run["classes"] for run in runs)
    except ValueError as error:
        parser.error(str(error))
    test, replication = split_id(version, test_seed, args.n), split_id(version, args.replication_data_seed, args.n)
    start = time.perf_counter()
    table = score_runs(runs, [(test, test_seed), (replication, args.replication_data_seed)], n=args.n,
                       version=version, outcomes_path=args.out / OUTCOMES_FILE, batch_size=args.batch_size,
                       device=args.device, log=lambda text: print(text, file=sys.stderr))
    methods = accuracy_table(runs, table, test, replication, baseline=args.baseline, n_boot=args.n_boot)
    report = {
        "command": "python -m analysis.accuracy " + shlex.join(sys.argv[1:] if argv is None else list(argv)),
        "interval": INTERVAL_NOTE, "baseline": args.baseline, "n_boot": args.n_boot, "level": 0.95,
        "shapes_version": version, "outcomes": OUTCOMES_FILE,
        "test": {"split": test, "data_seed": test_seed, "test_images": args.n},
        "replication": {"split": replication, "data_seed": args.replication_data_seed, "test_images": args.n},
        "runs": [{"file": run["file"], "sha256": run["sha256"], "method": run["method"], "seed": run["seed"],
                  "accuracy": float(table[run["sha256"]][f"{test}/correct"].double().mean()),
                  "replication_accuracy": float(table[run["sha256"]][f"{replication}/correct"].double().mean())}
                 for run in runs],
        "methods": methods,
    }
    write_json(args.out / report_file(args.baseline), report)
    print(format_table(methods, n=args.n, test_seed=test_seed, replication_seed=args.replication_data_seed,
                       baseline=args.baseline))
    if args.manifest is not None:
        import json

        manifest = json.loads(args.manifest.read_text())
        if "seeds" not in manifest:
            parser.error(f"--manifest {args.manifest} has no seeds section; build it with --seeds first")
        manifest["seeds"] = merge_accuracy(manifest["seeds"], json.loads((args.out / REPORT_FILE).read_text()))
        write_manifest(args.manifest, manifest)
        print(f"{args.manifest}: seeds section updated", file=sys.stderr)
    print(f"{len(runs)} runs, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
