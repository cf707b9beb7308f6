"""python -m analysis.accuracy: every seed run scored on a test split and a replication split, per-item
outcomes cached by checkpoint hash, compare() verdicts written into the manifest's seed table."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest
import torch

import analysis
from analysis import accuracy
from analysis.outcomes import load_outcomes
from msda.training import manifest
from tests.test_manifest import write_run

N = 24


@pytest.fixture
def folders(tmp_path):
    seeds = tmp_path / "checkpoints" / "seeds"
    for method, count in (("none", 2), ("mixup", 2), ("cutmix", 1)):
        for seed in range(count):
            write_run(seeds, method, seed, 0.5)
    shipped = tmp_path / "checkpoints"
    shutil.copy(seeds / "none-s0.safetensors", shipped / "none.safetensors")
    manifest.main([str(shipped), "--seeds", str(seeds)])
    return shipped, seeds, tmp_path / "studies"


def run(seeds, out, *extra):
    return accuracy.main([str(seeds), "--n", str(N), "--out", str(out), "--n-boot", "200", *extra])


def test_scores_both_splits_keeps_outcomes_and_writes_the_manifest(folders, capsys):
    shipped, seeds, out = folders
    report = run(seeds, out, "--manifest", str(shipped / "manifest.json"))
    assert report["test"] == {"split": "shapes-v2-seed0-n24", "data_seed": 0, "test_images": N}
    assert report["replication"]["data_seed"] == 1
    table = load_outcomes(out / accuracy.OUTCOMES_FILE)
    assert set(table) == {r["sha256"] for r in report["runs"]} and len(table) == 5
    for entry in report["runs"]:
        stored = table[entry["sha256"]]
        assert stored["shapes-v2-seed0-n24/correct"].dtype == torch.bool
        assert stored["shapes-v2-seed0-n24/correct"].shape == (N,) == stored["shapes-v2-seed1-n24/confidence"].shape
        assert entry["accuracy"] == pytest.approx(stored["shapes-v2-seed0-n24/correct"].double().mean().item())
    written = json.loads((shipped / "manifest.json").read_text())["seeds"]
    assert written["test_images"] == N and written["training_test_images"] == 0
    assert written["replication"] == {"data_seed": 1, "test_images": N}
    by_method = {row["method"]: row for row in written["methods"]}
    assert "vs_baseline" not in by_method["none"]
    for method in ("mixup", "cutmix"):
        row = by_method[method]
        low, high = row["accuracy_ci"]
        assert low <= row["mean"] <= high
        versus = row["vs_baseline"]
        assert versus["method"] == "none" and set(versus) >= {"diff", "ci", "p", "verdict", "replicated"}
        assert versus["diff"] == pytest.approx(row["mean"] - by_method["none"]["mean"])
        assert versus["ci"][0] <= versus["diff"] <= versus["ci"][1] and isinstance(versus["replicated"], bool)
        assert row["mean"] == pytest.approx(statistics.fmean(r["accuracy"] for r in row["runs"]))
    assert [row["mean"] for row in written["methods"]] == sorted((r["mean"] for r in written["methods"]), reverse=True)
    printed = capsys.readouterr().out
    assert "| method | seeds | accuracy [95 % CI] |" in printed and "| `cutmix` | 1 |" in printed
    assert "beyond the spread" not in printed


def test_cached_runs_are_not_scored_again_and_new_runs_are(folders, monkeypatch):
    _, seeds, out = folders
    run(seeds, out)
    loaded = []
    real = analysis.load_checkpoint
    monkeypatch.setattr(analysis, "load_checkpoint", lambda path, **kw: (loaded.append(path.name), real(path, **kw))[1])
    run(seeds, out)
    assert loaded == []
    write_run(seeds, "cutmix", 1, 0.5)
    report = run(seeds, out)
    assert loaded == ["cutmix-s1.safetensors"]
    assert {row["method"]: row["seeds"] for row in report["methods"].to_dict("records")}["cutmix"] == 2


def test_manifest_rebuild_keeps_the_figures_with_accuracy(folders):
    shipped, seeds, out = folders
    run(seeds, out)
    built = manifest.build(shipped, seeds=seeds, accuracy=out / accuracy.REPORT_FILE)
    assert all("accuracy_ci" in row for row in built["seeds"]["methods"])
    assert "95 % CI" in manifest.format_seed_table(built["seeds"])
    write_run(seeds, "fmix", 0, 0.5)  # a run the report has not scored
    with pytest.raises(ValueError, match="fmix-s0.safetensors .* is not in the accuracy report"):
        manifest.build(shipped, seeds=seeds, accuracy=out / accuracy.REPORT_FILE)


@pytest.mark.parametrize("extra, message", [
    (("--replication-data-seed", "0"), "--replication-data-seed 0 is a data seed the runs were trained or tested on"),
    (("--baseline", "gridmix"), "--baseline 'gridmix' has no run"),
    (("--baseline", "cutmix", "--manifest", "manifest.json"), "--manifest takes the comparison with none"),
    (("--n", "1"), "--n must be"),
])
def test_bad_arguments_exit_with_one_line(folders, extra, message, capsys):
    _, seeds, out = folders
    with pytest.raises(SystemExit) as exit_info:
        run(seeds, out, *extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_another_baseline_writes_its_own_report_and_leaves_the_manifests_alone(folders, capsys):
    shipped, seeds, out = folders
    run(seeds, out)
    cited = (out / accuracy.REPORT_FILE).read_bytes()
    run(seeds, out, "--baseline", "cutmix")  # from the cache: no model is scored again
    assert (out / accuracy.REPORT_FILE).read_bytes() == cited
    assert json.loads((out / "accuracy_vs_cutmix.json").read_text())["baseline"] == "cutmix"
    assert "− cutmix [95 % CI]" in capsys.readouterr().out
