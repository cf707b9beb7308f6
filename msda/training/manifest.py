"""The manifest of a folder of checkpoints: what each file is, its hash, and the figures measured on it.

    python -m msda.training.manifest checkpoints/ [--seeds checkpoints/seeds]
                                                  [--robustness reports/robustness/robustness.json]
                                                  [--occlusion reports/occlusion/occlusion.json]

Writes ``<folder>/manifest.json`` (atomically): one entry per ``.safetensors`` file with its sha256, size,
method, recipe, the exact training command and the clean test accuracy stored in the checkpoint's metadata,
plus, when given, each model's rows of a robustness or occlusion report, and the commands that made those
reports. A report row belongs to an entry when it names the entry's file or a file with the same sha256 (a
shipped checkpoint is a copy of one seed's run, and the studies score every seed).

``--seeds`` names a folder of runs of the same recipe with several seeds (``<method>-s<seed>.safetensors``,
as ``python -m msda.training.sweep`` writes them): the manifest then lists, per method, every seed's clean
test accuracy with its file and hash, and their mean and sample sd (ddof 1), ordered by the mean. A report's
per-method tables (mean ± sd over seeds, written when it scored several seeds) are copied under ``reports``.
"""

from __future__ import annotations

import argparse
import json
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
          occlusion: Path | None = None, command: str = "") -> dict:
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
            reports[name]["spread_rule"] = report.get("spread_rule", "")
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
    return {**manifest, "reports": reports, "command": command}


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m msda.training.manifest", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seeds", type=Path, help="a folder of runs with several seeds per method "
                        "(<method>-s<seed>.safetensors): every seed's accuracy and the mean ± sd per method")
    parser.add_argument("--robustness", type=Path, help="a robustness.json written by python -m analysis.robustness")
    parser.add_argument("--occlusion", type=Path, help="an occlusion.json written by python -m analysis.occlusion")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.folder, seeds=args.seeds, robustness=args.robustness, occlusion=args.occlusion,
                         command=shlex.join(["python", "-m", "msda.training.manifest", *argv]))
    except ValueError as error:
        parser.error(str(error))
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(args.folder / "manifest.json", lambda tmp: Path(tmp).write_text(text))
    print(f"{args.folder / 'manifest.json'}: {len(manifest['checkpoints'])} checkpoints")
    if "seeds" in manifest:
        print(format_seed_table(manifest["seeds"]))
    return manifest


def format_seed_table(table: dict) -> str:
    """The per-seed table as Markdown: one row per method (ordered by the mean), every seed's clean test
    accuracy, mean ± sd, and the mean's gap to ``none``'s, in points."""
    methods = table["methods"]
    seeds = sorted({run["seed"] for row in methods for run in row["runs"]})
    base = next((row["mean"] for row in methods if row["method"] == "none"), None)
    lines = [f"clean test accuracy, {table['recipe']} ({table['epochs']} epochs, {table['train_images']} training "
             f"and {table['test_images']} test images), % — {table['folder']}/",
             "",
             "| method | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean ± sd | mean − none |",
             "|---|" + "---:|" * (len(seeds) + 2)]
    for row in methods:
        by_seed = {run["seed"]: run["test_accuracy"] for run in row["runs"]}
        cells = [f"{100 * by_seed[seed]:.2f}" if seed in by_seed else "" for seed in seeds]
        spread = "" if row["sd"] is None else f" ± {100 * row['sd']:.2f}"
        gap = "" if base is None else f"{100 * (row['mean'] - base):+.2f}"
        lines.append(f"| `{row['method']}` | " + " | ".join(cells) + f" | {100 * row['mean']:.2f}{spread} | {gap} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
