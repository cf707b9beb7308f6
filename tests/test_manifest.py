"""python -m msda.training.manifest: entries, the per-seed table, and report rows matched by file hash."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest

from msda.training import manifest
from msda.training.checkpoint import save_checkpoint
from tests.test_app_checkpoint_files import meta, random_state


def write_run(folder, method, seed, accuracy, *, recipe="scratch"):
    folder.mkdir(parents=True, exist_ok=True)
    info = {**meta(method), "seed": seed, "test_accuracy": accuracy, "recipe": {"name": recipe},
            "command": f"python -m msda.train --method {method} --seed {seed}"}
    return save_checkpoint(folder / f"{method}-s{seed}.safetensors", random_state(seed=seed), info)


@pytest.fixture
def seeds(tmp_path):
    folder = tmp_path / "seeds"
    accuracies = {"none": [0.90, 0.91, 0.89], "mixup": [0.95, 0.93, 0.94], "cutmix": [0.92]}
    for method, values in accuracies.items():
        for seed, accuracy in enumerate(values):
            write_run(folder, method, seed, accuracy)
    return folder, accuracies


def test_seed_table_lists_every_seed_and_orders_methods_by_mean(seeds):
    folder, accuracies = seeds
    table = manifest.seed_table(folder)
    assert [row["method"] for row in table["methods"]] == ["mixup", "cutmix", "none"]
    for row in table["methods"]:
        values = accuracies[row["method"]]
        assert [run["test_accuracy"] for run in row["runs"]] == values
        assert [run["seed"] for run in row["runs"]] == list(range(len(values)))
        assert row["mean"] == pytest.approx(statistics.fmean(values))
        assert row["sd"] == (pytest.approx(statistics.stdev(values)) if len(values) > 1 else None)
    assert table["recipe"] == "scratch" and table["folder"] == "seeds"


def test_seed_table_refuses_mixed_recipes_and_empty_folders(seeds, tmp_path):
    folder, _ = seeds
    write_run(folder, "fmix", 0, 0.5, recipe="other")
    with pytest.raises(ValueError, match="mix recipes"):
        manifest.seed_table(folder)
    with pytest.raises(ValueError, match="no .safetensors"):
        manifest.seed_table(tmp_path / "empty")


def test_report_rows_follow_the_file_hash_of_a_shipped_copy(seeds, tmp_path, monkeypatch):
    folder, _ = seeds
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(folder / "mixup-s0.safetensors", shipped / "mixup.safetensors")
    monkeypatch.chdir(tmp_path)  # report rows name checkpoints relative to where the study ran
    report = {"command": "python -m analysis.occlusion ...",
              "rows": [{"model": f"mixup-s{seed}", "checkpoint": f"seeds/mixup-s{seed}.safetensors",
                        "kind": "solid", "latching": seed} for seed in range(3)],
              "methods": [{"method": "mixup", "kind": "solid", "latching_mean": 1.0, "latching_ci_low": 0.9,
                           "latching_ci_high": 1.1, "latching_vs_none": "better"}],
              "interval": "95 % paired bootstrap intervals", "outcomes": "occlusion_outcomes.safetensors"}
    (tmp_path / "occlusion.json").write_text(json.dumps(report))
    built = manifest.build(shipped, seeds=folder, occlusion=tmp_path / "occlusion.json")
    (entry,) = built["checkpoints"]
    assert [row["model"] for row in entry["occlusion"]["rows"]] == ["mixup-s0"]  # seed 0 only: the copy
    assert built["reports"]["occlusion"]["methods"] == report["methods"]
    assert built["reports"]["occlusion"]["interval"] == report["interval"]
    assert built["reports"]["occlusion"]["outcomes"]["sha256"] is None  # named, not there
    (tmp_path / "occlusion_outcomes.safetensors").write_bytes(b"outcomes")
    copied = manifest.build(shipped, occlusion=tmp_path / "occlusion.json")["reports"]["occlusion"]["outcomes"]
    assert copied["file"] == "studies/occlusion_outcomes.safetensors"  # in the repository, beside the manifest
    assert (shipped / copied["file"]).read_bytes() == b"outcomes" and len(copied["sha256"]) == 64
    assert built["seeds"]["methods"][0]["method"] == "mixup"
    # The robustness report names each model's file in its "checkpoints" map, not in the rows.
    robustness = {"command": "python -m analysis.robustness ...",
                  "checkpoints": {f"mixup-s{seed}": {"path": f"seeds/mixup-s{seed}.safetensors"} for seed in range(3)},
                  "summary": [{"model": f"mixup-s{seed}", "clean_error": seed / 10} for seed in range(3)],
                  "fgsm": [{"model": f"mixup-s{seed}", "eps": 0.0, "accuracy": 1 - seed / 10} for seed in range(3)]}
    (tmp_path / "robustness.json").write_text(json.dumps(robustness))
    (entry,) = manifest.build(shipped, robustness=tmp_path / "robustness.json")["checkpoints"]
    assert [row["model"] for row in entry["robustness"]["summary"]] == ["mixup-s0"]
    assert [row["accuracy"] for row in entry["robustness"]["fgsm"]] == [1.0]


def test_cli_writes_the_manifest_with_seeds(seeds, tmp_path, capsys):
    folder, _ = seeds
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(folder / "none-s0.safetensors", shipped / "none.safetensors")
    manifest.main([str(shipped), "--seeds", str(folder)])
    written = json.loads((shipped / "manifest.json").read_text())
    assert written["seeds"]["methods"][-1]["method"] == "none"
    out = capsys.readouterr().out
    assert "--seeds" in written["command"] and "1 checkpoints" in out
    assert "| `mixup` | 95.00 | 93.00 | 94.00 | 94.00 ± 1.00 | +4.00 |" in out
    assert "| `cutmix` | 92.00 |  |  | 92.00 | +2.00 |" in out


def test_a_rebuild_keeps_the_studies_own_sections_and_ships_their_outcome_files(seeds, tmp_path):
    folder, _ = seeds
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(folder / "none-s0.safetensors", shipped / "none.safetensors")
    outcomes = tmp_path / "reports" / "calibration_outcomes.safetensors"  # a report folder the repository ignores
    outcomes.parent.mkdir()
    outcomes.write_bytes(b"per-item outcomes")
    (shipped / "manifest.json").write_text(json.dumps(
        {"calibration": {"command": "python -m analysis.calibration", "outcomes": {"file": str(outcomes)}}}))
    manifest.main([str(shipped), "--seeds", str(folder)])
    written = json.loads((shipped / "manifest.json").read_text())
    assert written["calibration"]["command"] == "python -m analysis.calibration" and "seeds" in written
    assert written["calibration"]["outcomes"]["file"] == "studies/calibration_outcomes.safetensors"
    assert (shipped / "studies" / "calibration_outcomes.safetensors").read_bytes() == b"per-item outcomes"
