"""The manifest of a folder of checkpoints: what each file is, its hash, and the figures measured on it.

    python -m msda.training.manifest checkpoints/ [--seeds checkpoints/seeds]
                                                  [--accuracy checkpoints/studies/accuracy.json]
                                                  [--robustness reports/robustness/robustness.json]
                                                  [--occlusion reports/occlusion/occlusion.json]

Writes ``<folder>/manifest.json`` (atomically): one entry per ``.safetensors`` file with its sha256, size,
method, recipe, the exact training command and the clean test accuracy stored in the checkpoint's metadata,
plus, when given, each model's rows of a robustness or occlusion report, and the commands that made those
reports. A report row belongs to an entry when it names the entry's file or a file with the same sha256 (a
shipped checkpoint is a copy of one seed's run, and the studies score every seed).

``--seeds`` names a folder of runs of the same recipe with several seeds (``<method>-s<seed>.safetensors``,
as ``python -m msda.training.sweep`` writes them): the manifest then lists, per method, every seed's clean
test accuracy with its file and hash, and their mean and sample sd (ddof 1), ordered by the mean.
``--accuracy`` names the ``accuracy.json`` of ``python -m analysis.accuracy`` (every run scored on a large test
split and a replication split): its figures replace the training-time ones in the per-method rows
(:func:`merge_accuracy`: ``accuracy_ci`` and ``vs_baseline`` per method). A report's per-method tables
(intervals and verdicts against ``none`` from ``analysis.stats.compare``, written when it scored several
methods) are copied under ``reports``; its per-item outcome file is copied to ``<folder>/studies/`` and named
there with its sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path

from .checkpoint import atomic_write, file_sha256, read_checkpoint_meta


def entry(path: Path) -> dict:
    meta = read_checkpoint_meta(path)
    if meta is None:
        raise ValueError(f"{path} has no msda metadata: only checkpoints written by msda.train go in a manifest")
    return {
        "file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size,
        "method": meta["method"], "method_params": meta.get("method_params", {}), "arch": meta["arch"],
        "dataset": meta["dataset"], "input_size": meta["input_size"], "recipe": meta["recipe"]["name"],
        "epochs": meta["epochs"], "seed": meta["seed"], "test_accuracy": meta["test_accuracy"],
        "test_images": meta["test_images"], "train_images": meta.get("train_images"),
        "command": meta["command"], **({"init": meta["init"]} if "init" in meta else {}),
    }


# Which tables of each report go into the manifest, per model.
_REPORT_TABLES = {"robustness": ("summary", "fgsm"), "occlusion": ("rows",)}


# Per-method tables (mean ± sd over seeds) a report writes when it scored several seeds of each method.
_METHOD_TABLES = {"robustness": "methods", "occlusion": "methods"}


def seed_table(folder: Path) -> dict:
    """Every run in `folder`, grouped by method: each seed's file, hash and clean test accuracy, and the mean
    and sample sd (ddof 1; None with one seed) over seeds. Methods ordered by the mean, best first."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors files in {folder}")
    runs: dict[str, list[dict]] = {}
    recipes = set()
    for path in files:
        meta = read_checkpoint_meta(path)
        if meta is None:
            raise ValueError(f"{path} has no msda metadata: only checkpoints written by msda.train go in a manifest")
        recipes.add((meta["recipe"]["name"], meta["epochs"], meta.get("train_images"), meta["test_images"]))
        runs.setdefault(meta["method"], []).append({
            "seed": meta["seed"], "file": path.name, "sha256": file_sha256(path),
            "test_accuracy": meta["test_accuracy"], "command": meta["command"]})
    if len(recipes) != 1:
        raise ValueError(f"the runs in {folder} mix recipes (name, epochs, train, test images): {sorted(recipes)}; "
                         "a seed table compares one recipe")
    methods = []
    for method, items in runs.items():
        items.sort(key=lambda run: run["seed"])
        accuracies = [run["test_accuracy"] for run in items]
        methods.append({"method": method, "seeds": len(items), "runs": items,
                        "mean": statistics.fmean(accuracies),
                        "sd": statistics.stdev(accuracies) if len(accuracies) >= 2 else None})
    methods.sort(key=lambda row: (-row["mean"], row["method"]))
    (recipe, epochs, train_images, test_images), = recipes
    return {"folder": folder.name, "recipe": recipe, "epochs": epochs, "train_images": train_images,
            "test_images": test_images, "methods": methods}


def merge_accuracy(seeds: dict, report: dict) -> dict:
    """The seed table `seeds` with the figures of ``python -m analysis.accuracy``'s report: ``test_images``
    (the test split's size), ``test_data_seed``, ``training_test_images`` (what the runs' metadata scored),
    ``replication`` ({data_seed, test_images}), ``interval`` (what the intervals mean); per run ``accuracy`` and
    ``replication_accuracy`` (matched by sha256; ``test_accuracy`` stays the training-time figure); per method
    ``mean``/``sd`` over the runs' new accuracies, ``accuracy_ci`` [low, high] and ``vs_baseline`` {method,
    diff, ci, p (Holm-adjusted), verdict, replicated}. Methods re-ordered by the new mean. ValueError when a
    run of the table is not in the report (score it first)."""
    runs = {run["sha256"]: run for run in report["runs"]}
    rows = {row["method"]: row for row in report["methods"]}
    baseline = report.get("baseline", "none")
    out = {**seeds, "training_test_images": seeds.get("training_test_images", seeds.get("test_images")),
           "test_images": report["test"]["test_images"], "test_data_seed": report["test"]["data_seed"],
           "replication": {"data_seed": report["replication"]["data_seed"],
                           "test_images": report["replication"]["test_images"]},
           "interval": report.get("interval", ""), "accuracy_command": report.get("command", "")}
    methods = []
    for row in seeds["methods"]:
        scored = []
        for run in row["runs"]:
            if run["sha256"] not in runs:
                raise ValueError(f"{run['file']} (sha256 {run['sha256'][:12]}…) is not in the accuracy report; "
                                 "run python -m analysis.accuracy on the seed folder again")
            scored.append({**run, "accuracy": runs[run["sha256"]]["accuracy"],
                           "replication_accuracy": runs[run["sha256"]]["replication_accuracy"]})
        accuracies = [run["accuracy"] for run in scored]
        result = rows[row["method"]]
        merged = {**row, "runs": scored, "mean": statistics.fmean(accuracies),
                  "sd": statistics.stdev(accuracies) if len(accuracies) >= 2 else None,
                  "accuracy_ci": [result["ci_low"], result["ci_high"]],
                  "replication_mean": result.get("rep_mean")}
        merged.pop("vs_baseline", None)
        if result["verdict"] not in (None, "baseline"):
            merged["vs_baseline"] = {"method": baseline, "diff": result["diff"],
                                     "ci": [result["diff_ci_low"], result["diff_ci_high"]], "p": result["p_holm"],
                                     "verdict": result["verdict"], "replicated": bool(result["replicated"]),
                                     "replication": {"diff": result["rep_diff"],
                                                     "ci": [result["rep_diff_ci_low"], result["rep_diff_ci_high"]],
                                                     "p": result["rep_p_holm"], "verdict": result["rep_verdict"]}}
        methods.append(merged)
    methods.sort(key=lambda row: (-row["mean"], row["method"]))
    return {**out, "methods": methods}


def write_manifest(path: Path, manifest: dict) -> Path:
    """`manifest` as indented JSON at `path`, atomically."""
    text = json.dumps(manifest, indent=2) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _outcome_file(report_path: Path, report: dict, folder: Path) -> dict | None:
    """The per-item outcome file a report names (next to it), copied to ``<folder>/studies/`` so every verdict
    can be recomputed from the repository (:func:`ship_outcomes`); None when the report names none."""
    name = report.get("outcomes")
    if not isinstance(name, str) or not name:
        return None
    return ship_outcomes(Path(report_path).parent / Path(name).name, folder)


def ship_outcomes(source: str | os.PathLike, folder: str | os.PathLike) -> dict:
    """A study's per-item outcome file copied (atomically) to ``<folder>/studies/`` — the manifest's folder, which
    the repository keeps, where ``reports/`` is not: {file (relative to `folder`), sha256, source}; file and
    sha256 None when `source` is missing."""
    import shutil

    source, folder = Path(source), Path(folder)
    if not source.is_file():
        return {"file": None, "sha256": None, "source": str(source)}
    target = folder / "studies" / source.name
    if source.resolve() != target.resolve():
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    return {"file": str(target.relative_to(folder)), "sha256": file_sha256(target), "source": str(source)}


def _row_path(report: dict, row: dict) -> str | None:
    """The checkpoint file a report row scored: the row's own ``checkpoint``/``path``, else the report's
    ``checkpoints`` map (model → metadata with ``path``, as the robustness report keeps it)."""
    path = row.get("checkpoint") or row.get("path")
    if path is None:
        info = (report.get("checkpoints") or {}).get(row.get("model"))
        path = info.get("path") if isinstance(info, dict) else None
    return str(path) if path else None


def _row_file_hashes(report: dict, tables) -> dict[str, str]:
    """sha256 of every checkpoint a report's rows name (path as written, relative to the working directory)."""
    hashes = {}
    for table in tables:
        for row in report.get(table, []):
            path = _row_path(report, row)
            if path and path not in hashes and Path(path).is_file():
                hashes[path] = file_sha256(Path(path))
    return hashes


def build(folder: Path, *, seeds: Path | None = None, robustness: Path | None = None,
          occlusion: Path | None = None, accuracy: Path | None = None, command: str = "") -> dict:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors files in {folder}")
    entries = [entry(path) for path in files]
    reports = {}
    for name, path in (("robustness", robustness), ("occlusion", occlusion)):
        if path is None:
            continue
        report = json.loads(Path(path).read_text())
        reports[name] = {"command": report.get("command", ""), "file": str(path)}
        if report.get(_METHOD_TABLES[name]):
            reports[name]["methods"] = report[_METHOD_TABLES[name]]
            reports[name]["interval"] = report.get("interval", "")
        outcomes = _outcome_file(path, report, folder)
        if outcomes is not None:
            reports[name]["outcomes"] = outcomes
        hashes = _row_file_hashes(report, _REPORT_TABLES[name])
        for item in entries:
            model = Path(item["file"]).stem

            def belongs(row: dict) -> bool:
                path = _row_path(report, row)
                return hashes.get(path) == item["sha256"] if path in hashes else row.get("model") == model

            tables = {table: [row for row in report.get(table, []) if belongs(row)]
                      for table in _REPORT_TABLES[name]}
            if any(tables.values()):
                item[name] = tables
    manifest = {"checkpoints": entries}
    if seeds is not None:
        manifest["seeds"] = seed_table(seeds)
        if accuracy is not None:
            manifest["seeds"] = merge_accuracy(manifest["seeds"], json.loads(Path(accuracy).read_text()))
    elif accuracy is not None:
        raise ValueError("--accuracy needs --seeds: the accuracy report's figures go into the seed table")
    return {**manifest, "reports": reports, "command": command}


OWN_SECTIONS = ("calibration", "attacks")
"""Top-level manifest sections written by their own studies, kept when the manifest is rebuilt."""


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m msda.training.manifest", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seeds", type=Path, help="a folder of runs with several seeds per method "
                        "(<method>-s<seed>.safetensors): every seed's accuracy and the mean ± sd per method")
    parser.add_argument("--accuracy", type=Path, help="an accuracy.json written by python -m analysis.accuracy "
                        "(every seed run on a large test split and a replication split)")
    parser.add_argument("--robustness", type=Path, help="a robustness.json written by python -m analysis.robustness")
    parser.add_argument("--occlusion", type=Path, help="an occlusion.json written by python -m analysis.occlusion")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.folder, seeds=args.seeds, robustness=args.robustness, occlusion=args.occlusion,
                         accuracy=args.accuracy, command=shlex.join(["python", "-m", "msda.training.manifest", *argv]))
    except ValueError as error:
        parser.error(str(error))
    # Sections other studies write into the manifest themselves (python -m analysis.calibration / analysis.attacks
    # --manifest) survive a rebuild of the rest.
    previous = args.folder / "manifest.json"
    if previous.is_file():
        try:
            kept = json.loads(previous.read_text())
        except (OSError, ValueError):
            kept = {}
        manifest.update({key: kept[key] for key in OWN_SECTIONS if key in kept and key not in manifest})
    for key in OWN_SECTIONS:  # a section written before its outcome file was shipped: ship it now
        outcomes = manifest.get(key, {}).get("outcomes") if isinstance(manifest.get(key), dict) else None
        if isinstance(outcomes, dict) and isinstance(outcomes.get("file"), str) and "source" not in outcomes:
            manifest[key]["outcomes"] = ship_outcomes(outcomes["file"], args.folder)
    write_manifest(args.folder / "manifest.json", manifest)
    print(f"{args.folder / 'manifest.json'}: {len(manifest['checkpoints'])} checkpoints")
    if "seeds" in manifest:
        print(format_seed_table(manifest["seeds"]))
    return manifest


def format_seed_table(table: dict) -> str:
    """The per-seed table as Markdown: one row per method (ordered by the mean), every seed's clean test
    accuracy, mean ± sd, and the mean's gap to ``none``'s, in points. With the figures of
    :func:`merge_accuracy`: the seeds' accuracies on the large test split, the mean's 95 % interval, the
    difference to the baseline with its interval, the verdict and whether the replication split gave the same."""
    methods = table["methods"]
    scored = all("accuracy_ci" in row for row in methods)
    key = "accuracy" if scored else "test_accuracy"
    seeds = sorted({run["seed"] for row in methods for run in row["runs"]})
    base = next((row["mean"] for row in methods if row["method"] == "none"), None)
    head = (f"clean test accuracy, {table['recipe']} ({table['epochs']} epochs, {table['train_images']} training "
            f"and {table['test_images']} test images), % — {table['folder']}/")
    if scored:
        replication = table["replication"]
        head += (f"; replication: {replication['test_images']} test images of data seed {replication['data_seed']}. "
                 + table.get("interval", ""))
    columns = ["mean ± sd", "mean − none"] + (["95 % CI", "− none [95 % CI]", "verdict", "replicated"] if scored else [])
    lines = [head, "", "| method | " + " | ".join(f"seed {seed}" for seed in seeds) + " | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * (len(seeds) + 3 + (1 if scored else -1)) + ("---|---|" if scored else "")]
    for row in methods:
        by_seed = {run["seed"]: run[key] for run in row["runs"]}
        cells = [f"{100 * by_seed[seed]:.2f}" if seed in by_seed else "" for seed in seeds]
        spread = "" if row["sd"] is None else f" ± {100 * row['sd']:.2f}"
        gap = "" if base is None else f"{100 * (row['mean'] - base):+.2f}"
        cells += [f"{100 * row['mean']:.2f}{spread}", gap]
        if scored:
            low, high = row["accuracy_ci"]
            cells.append(f"[{100 * low:.2f}, {100 * high:.2f}]")
            versus = row.get("vs_baseline")
            if versus is None:
                cells += ["", "baseline", ""]
            else:
                cells += [f"{100 * versus['diff']:+.2f} [{100 * versus['ci'][0]:+.2f}, {100 * versus['ci'][1]:+.2f}]",
                          versus["verdict"], "yes" if versus["replicated"] else "**no**"]
        lines.append(f"| `{row['method']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
