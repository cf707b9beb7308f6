"""The sweep runner: every (method, seed) as a one-thread msda.train subprocess, finished runs skipped,
interrupted ones resumed, results written as runs end."""

from __future__ import annotations

import json

import pytest

from msda.training import sweep

TINY = ["--methods", "none", "mixup", "--seeds", "0", "--epochs", "1", "--train-size", "64", "--test-size", "32",
        "--size", "16", "--jobs", "2", "--poll", "0.1", "--quiet"]


def test_a_tiny_sweep_trains_every_run_writes_results_and_skips_finished_runs(tmp_path):
    out = tmp_path / "sweep"
    runs = sweep.main(["--out", str(out), *TINY])
    assert [(run.method, run.seed, run.status) for run in runs] == [("none", 0, "done"), ("mixup", 0, "done")]
    document = json.loads((out / "results.json").read_text())
    rows = {row["method"]: row for row in document["runs"]}
    for method in ("none", "mixup"):
        assert (out / f"{method}-s0.safetensors").is_file() and (out / f"{method}-s0.log").is_file()
        assert rows[method]["status"] == "done" and rows[method]["epochs"] == 1
        assert 0.0 <= rows[method]["test_acc"] <= 1.0
    log = (out / "none-s0.log").read_text()
    assert "--recipe shapes-scratch" in log and "--seed 0" in log and "--resume" not in log
    assert [item["method"] for item in document["summary"]] == sorted(
        ("none", "mixup"), key=lambda m: (-rows[m]["test_acc"], m))
    assert (out / "results.csv").read_text().splitlines()[0].startswith("method,seed,status,test_acc")

    # A second call finds both runs finished and starts nothing.
    stamp = (out / "none-s0.safetensors").stat().st_mtime_ns
    again = sweep.main(["--out", str(out), *TINY])
    assert all(run.status == "done" and run.process is None for run in again)
    assert (out / "none-s0.safetensors").stat().st_mtime_ns == stamp

    # The same folder with another recipe would mix two sweeps: refused.
    with pytest.raises(ValueError, match="was not trained by this sweep"):
        sweep.plan(out, ["none"], [0], resume=False, recipe="shapes")


def test_an_interrupted_run_is_resumed_only_with_resume(tmp_path):
    (tmp_path / "cutmix-s1.safetensors.state.pt").write_bytes(b"state")
    with pytest.raises(ValueError, match=r"1 run\(s\) .* were interrupted \(cutmix-s1\); pass --resume"):
        sweep.plan(tmp_path, ["none", "cutmix"], [1], resume=False)
    runs = sweep.plan(tmp_path, ["none", "cutmix"], [1], resume=True)
    args = sweep.parse_args(["--out", str(tmp_path), "--methods", "none", "cutmix", "--seeds", "1"])
    none, cutmix = (sweep.train_command(run, args) for run in runs)
    assert "--resume" in cutmix and "--resume" not in none
    assert none[none.index("--seed") + 1] == "1" and none[none.index("--recipe") + 1] == "shapes-scratch"


def test_hardmix_runs_with_forward_hardness_and_all_means_none_plus_every_method(tmp_path):
    import msda

    args = sweep.parse_args(["--out", str(tmp_path), "--methods", "all"])
    assert args.methods == ["none", *msda.METHODS]
    command = sweep.train_command(sweep.Run("hardmix", 2, tmp_path / "hardmix-s2.safetensors"), args)
    assert command[command.index("--hardness") + 1] == "forward"


def test_the_summary_is_ordered_by_mean_accuracy_of_finished_seeds():
    rows = [{"method": "a", "seed": 0, "status": "done", "test_acc": 0.5},
            {"method": "a", "seed": 1, "status": "done", "test_acc": 0.7},
            {"method": "b", "seed": 0, "status": "done", "test_acc": 0.8},
            {"method": "b", "seed": 1, "status": "failed", "test_acc": 0.1},
            {"method": "c", "seed": 0, "status": "pending", "test_acc": None}]
    table = sweep.summary(rows)
    assert [item["method"] for item in table] == ["b", "a", "c"]
    assert table[0]["mean"] == 0.8 and table[0]["sd"] is None and table[0]["seeds"] == [0]
    assert table[1]["mean"] == pytest.approx(0.6) and table[1]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert table[2]["mean"] is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--methods", "cutmux"], "unknown method 'cutmux'"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--seeds", "0", "0"], "--seeds must be distinct"),
])
def test_bad_arguments_exit_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        sweep.parse_args(["--out", str(tmp_path), *argv])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_leaving_chance_means_three_binomial_sigmas_above_one_in_k():
    assert sweep.chance_threshold(10, 2000) == pytest.approx(0.1 + 3 * (0.09 / 2000) ** 0.5)
    assert round(sweep.chance_threshold(10, 2000), 4) == 0.1201
