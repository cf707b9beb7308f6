"""Regression tests for issue 13's command-line tracebacks outside msda.train: msda.bench and
msda.bench_train refuse bad counts, devices and --json folders in one line before any work, and
analysis.occlusion refuses an --out that is a file."""

from __future__ import annotations

import pytest
import torch

from msda import bench, bench_train


@pytest.fixture
def no_benchmark_runs(monkeypatch):
    """A refusal comes before any timing: the timed parts of both benchmarks fail the test if reached."""
    def timed(*args, **kwargs):
        raise AssertionError("a benchmark ran before the arguments were refused")

    monkeypatch.setattr(bench, "resnet50_step_seconds", timed)
    monkeypatch.setattr(bench, "interleaved_medians", timed)
    monkeypatch.setattr(bench_train._Run, "seconds", timed)


def exits_with_message(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,message", [
    (["--batch", "0"], "--batch must be at least 2, got 0"),
    (["--size", "0"], "--size must be at least 8, got 0"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--num-classes", "0"], "--num-classes must be at least 1, got 0"),
    (["--model-steps", "-1"], "--model-steps must be at least 0, got -1"),
    (["--device", "banana"], "--device must be one of cpu, cuda, mps"),
    (["--json", "/no/such/folder/out.json"], "--json /no/such/folder/out.json: the folder /no/such/folder does not exist"),
])
def test_bench_bad_arguments_are_one_line(capsys, no_benchmark_runs, argv, message):
    assert message in exits_with_message(capsys, bench.main, argv)


@pytest.mark.parametrize("argv,message", [
    (["--batch", "0"], "--batch must be at least 1, got 0"),
    (["--steps", "0"], "--steps must be at least 1, got 0"),
    (["--rounds", "0"], "--rounds must be at least 1, got 0"),
    (["--device", "banana"], "--device must be one of cpu, cuda, mps"),
    (["--json", "/no/such/folder/out.json"], "the folder /no/such/folder does not exist"),
    (["--arch", "resnet9000"], "--arch must be one of msda.models.list_models() (ours: resnet20"),
    (["--data", "shapes", "--size", "16", "--train-size", "4", "--batch", "8", "--methods"],
     "--train-size 4 is smaller than one batch (8)"),
])
def test_bench_train_bad_arguments_are_one_line(capsys, no_benchmark_runs, argv, message):
    assert message in exits_with_message(capsys, bench_train.main, argv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_cuda_without_a_gpu_is_one_line(capsys, no_benchmark_runs):
    assert "no usable CUDA GPU" in exits_with_message(capsys, bench.main, ["--device", "cuda"])


def test_bench_json_is_written_atomically(tmp_path):
    out = tmp_path / "bench.json"
    result = bench.main(["--batch", "4", "--size", "16", "--repeats", "1", "--model-steps", "0", "--methods",
                         "mixup", "--num-classes", "10", "--json", str(out)])
    assert out.exists() and result["batch"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_occlusion_out_that_is_a_file_is_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    existing = tmp_path / "occlusion.csv"
    existing.write_text("not a folder")
    done = subprocess.run([sys.executable, "-m", "analysis.occlusion", "--checkpoints", "none.safetensors",
                           "--out", str(existing)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is a file; give a folder" in done.stderr


@pytest.mark.parametrize("kind", ["file", "below-a-file"])
def test_occlusion_out_is_checked_before_anything_is_loaded(tmp_path, kind):
    from analysis.occlusion.__main__ import main

    (tmp_path / "out").write_text("")
    out = tmp_path / "out" if kind == "file" else tmp_path / "out" / "reports"
    # the checkpoint does not exist either: the --out message proves --out was checked first
    with pytest.raises(ValueError, match="is a file; give a folder" if kind == "file" else "so no folder can be made"):
        main(["--checkpoints", str(tmp_path / "missing.safetensors"), "--out", str(out)])
