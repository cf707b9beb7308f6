"""The manifest of a folder of checkpoints: what each file is, its hash, and the figures measured on it.

    python -m msda.training.manifest checkpoints/ [--robustness reports/robustness/robustness.json]
                                                  [--occlusion reports/occlusion/occlusion.json]

Writes ``<folder>/manifest.json`` (atomically): one entry per ``.safetensors`` file with its sha256, size,
method, recipe, the exact training command and the clean test accuracy stored in the checkpoint's metadata,
plus, when given, each model's rows of a robustness or occlusion report (matched by file name), and the
commands that made those reports.
"""

from __future__ import annotations

import argparse
import json
import shlex
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


def build(folder: Path, *, robustness: Path | None = None, occlusion: Path | None = None,
          command: str = "") -> dict:
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
        for item in entries:
            model = Path(item["file"]).stem
            tables = {table: [row for row in report.get(table, []) if row.get("model") == model]
                      for table in _REPORT_TABLES[name]}
            if any(tables.values()):
                item[name] = tables
    return {"checkpoints": entries, "reports": reports, "command": command}


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m msda.training.manifest", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--robustness", type=Path, help="a robustness.json written by python -m analysis.robustness")
    parser.add_argument("--occlusion", type=Path, help="an occlusion.json written by python -m analysis.occlusion")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.folder, robustness=args.robustness, occlusion=args.occlusion,
                         command=shlex.join(["python", "-m", "msda.training.manifest", *argv]))
    except ValueError as error:
        parser.error(str(error))
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(args.folder / "manifest.json", lambda tmp: Path(tmp).write_text(text))
    print(f"{args.folder / 'manifest.json'}: {len(manifest['checkpoints'])} checkpoints")
    return manifest


if __name__ == "__main__":
    main()
