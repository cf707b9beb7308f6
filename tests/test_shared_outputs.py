"""Output files on a shared machine (issue 22, points 6 and 7): a full disk ends every study and training in one
line naming the path and the free space and leaves the previous complete set untouched; two runs into one
--out never leave a mixed set (the second stops at once, naming the run that holds the folder). Regression tests
named after the faults they pin; the tmpfs tests mount a small file system and skip where mounting is not
permitted."""

from __future__ import annotations

import errno
import html
import json
import os
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from msda.models import build_model
from msda.training import checkpoint as checkpoint_module
from msda.training.checkpoint import save_checkpoint
from msda.training.outputs import COMPLETE_NAME, DiskFull, FolderBusy, output_folder, run_cli

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]


def tiny_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)  # test fixture: an untrained network
    meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3,
            "classes": CLASSES, "dataset": "shapes", "method": "none", "seed": 0}
    return save_checkpoint(folder / "none-s0.safetensors", build_model("resnet20", 10).state_dict(), meta)


def study(name: str, checkpoint: Path, out: Path, seed: int = 0) -> tuple:
    """(main, argv) of a tiny run of one of the four study command lines."""
    common = ["--device", "cpu", "--no-progress", "--out", str(out)]
    if name == "robustness":
        from analysis.robustness.__main__ import main
        return main, ["--checkpoint", str(checkpoint), "--data", "shapes-c", "--n", "8", "--corruptions", "fog",
                      "--severities", "1", "--fgsm-eps", "none", "--seed", str(seed), *common]
    if name == "occlusion":
        from analysis.occlusion.__main__ import main
        return main, ["--checkpoints", str(checkpoint), "--n", "4", "--n-boxes", "1", "--kinds", "solid",
                      "--examples", "0", "--seed", str(seed), *common]
    if name == "calibration":
        from analysis.calibration.__main__ import main
        return main, ["--checkpoints", str(checkpoint), "--n", "12", "--n-calibration", "8", "--corrupted-n", "4",
                      "--corruptions", "fog", "--severities", "1", "--n-boot", "100", "--seed", str(seed), *common]
    from analysis.attacks.__main__ import main
    return main, ["--checkpoints", str(checkpoint), "--n", "4", "--eps", "2/255", "--steps", "1", "--n-boot", "100",
                  "--seed", str(seed), *common]


STUDIES = ("robustness", "occlusion", "calibration", "attacks")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every entry of the folder (hidden ones too) with its bytes."""
    return {path.name: path.read_bytes() if path.is_file() else b"<folder>" for path in sorted(folder.iterdir())}


def one_line_error(main, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        run_cli(main, argv)
    message = stop.value.code
    assert isinstance(message, str) and "\n" not in message, message
    return message


@contextmanager
def small_tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip() or done.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until `leave` bytes are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as handle:
        handle.truncate(0)
        handle.write(b"\0" * max(0, free - leave))


# ----------------------------------------------------------------------------------------------- point 6


def test_full_disk_on_a_small_tmpfs_gives_one_line_and_leaves_the_previous_set_intact(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path)
    with small_tmpfs(tmp_path / "disk", "24m") as disk:
        out = disk / "report"
        main, argv = study("robustness", checkpoint, out, seed=0)
        run_cli(main, argv)
        before = snapshot(out)
        assert sorted(before) == ["robustness.csv", "robustness.html", "robustness.json",
                                  "robustness_outcomes.safetensors"]
        fill(disk, leave=1 << 20)  # room for the new CSV, JSON and outcomes; not for the 4 MB HTML beside them
        main, argv = study("robustness", checkpoint, out, seed=1)
        message = one_line_error(main, argv)
        assert message.startswith("error: no space left on the device while writing ")
        assert "robustness.html" in message and "free on its file system" in message
        assert snapshot(out) == before  # the previous set, byte for byte, and nothing beside it


def test_full_disk_in_training_on_a_small_tmpfs_gives_one_line_and_keeps_the_previous_run(tmp_path):
    from msda import train as train_cli

    tiny = ["--data", "shapes", "--train-size", "64", "--test-size", "32", "--size", "16", "--arch", "resnet20",
            "--batch-size", "32", "--no-progress", "--device", "cpu", "--method", "none", "--epochs", "1"]
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        out = disk / "model.safetensors"
        train_cli.main([*tiny, "--out", str(out)])
        before = snapshot(disk)
        assert sorted(before) == ["model.metrics.csv", "model.metrics.jsonl", "model.safetensors"]
        fill(disk, leave=64 << 10)  # the metrics fit, the resume state (torch.save) does not
        with pytest.raises(SystemExit) as stop:
            train_cli.main([*tiny, "--seed", "1", "--out", str(out)])
        message = str(stop.value.code)
        assert "\n" not in message and "inline_container" not in message
        assert message.startswith("error: no space left on the device while writing ")
        assert "model.safetensors.state.pt" in message and "free on its file system" in message
        after = snapshot(disk)
        assert {name: after[name] for name in before} == before  # checkpoint and its metrics untouched
        assert not [name for name in after if name.endswith(".tmp")]


@pytest.mark.parametrize("name", STUDIES)
def test_full_disk_while_writing_the_html_keeps_the_previous_set_of_every_study(name, tmp_path, monkeypatch):
    checkpoint = tiny_checkpoint(tmp_path)
    out = tmp_path / "report"
    main, argv = study(name, checkpoint, out, seed=0)
    run_cli(main, argv)
    before = snapshot(out)
    assert f"{name}.html" in before and f"{name}.csv" in before and not any(n.startswith(".") for n in before)

    real = checkpoint_module.atomic_write

    def html_on_a_full_disk(path, write):
        if str(path).endswith(".html"):
            def write(tmp):  # noqa: F811 — the HTML's bytes hit a full disk
                Path(tmp).write_bytes(b"<!DOCTYPE html> half")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr("analysis.report.atomic_write", html_on_a_full_disk)
    main, argv = study(name, checkpoint, out, seed=1)
    message = one_line_error(main, argv)
    assert message.startswith("error: no space left on the device while writing ") and f"{name}.html" in message
    assert "free on its file system" in message
    assert snapshot(out) == before


def test_full_disk_while_saving_a_checkpoint_keeps_the_previous_checkpoint_and_metrics(tmp_path, capsys,
                                                                                       monkeypatch):
    from msda import train as train_cli

    tiny = ["--data", "shapes", "--train-size", "64", "--test-size", "32", "--size", "16", "--arch", "resnet20",
            "--batch-size", "32", "--no-progress", "--device", "cpu", "--method", "none", "--epochs", "1"]
    out = tmp_path / "model.safetensors"
    train_cli.main([*tiny, "--out", str(out)])
    before = snapshot(tmp_path)

    real = checkpoint_module.atomic_write

    def checkpoint_over_quota(path, write):
        if str(path).endswith(".safetensors"):
            def write(tmp):  # noqa: F811 — the checkpoint's bytes exceed the quota
                raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real(path, write)

    monkeypatch.setattr(checkpoint_module, "atomic_write", checkpoint_over_quota)
    with pytest.raises(SystemExit) as stop:
        train_cli.main([*tiny, "--seed", "1", "--out", str(out)])
    message = str(stop.value.code)
    assert message.startswith("error: disk quota exceeded while writing ") and "model.safetensors " in message
    after = snapshot(tmp_path)
    assert {name: after[name] for name in before} == before  # the previous checkpoint and its metrics
    # the new run's progress and its resume state (--resume finishes it) sit beside them under their own names
    assert sorted(set(after) - set(before)) == ["model.metrics.partial.csv", "model.metrics.partial.jsonl",
                                                "model.safetensors.state.pt"]


def test_disk_full_names_the_path_and_the_free_space(tmp_path):
    error = DiskFull(tmp_path / "not yet" / "robustness.csv", OSError(errno.ENOSPC, "No space left on device"))
    text = str(error)
    assert "\n" not in text and str(tmp_path / "not yet" / "robustness.csv") in text
    assert error.free is not None and error.errno == errno.ENOSPC
    assert any(unit in text for unit in ("KiB free", "MiB free", "GiB free", "TiB free", "bytes free"))


def test_a_figure_error_keeps_the_new_results_without_the_old_html(tmp_path):
    out = tmp_path / "report"
    with output_folder(out, command="first") as folder:
        with folder.report_set(("r.csv", "r.json", "r.html"), results=("r.csv", "r.json")) as staging:
            for name in ("r.csv", "r.json", "r.html"):
                (staging / name).write_text("first")
        with pytest.raises(RuntimeError, match="a plot failed"):
            with folder.report_set(("r.csv", "r.json", "r.html"), results=("r.csv", "r.json")) as staging:
                (staging / "r.csv").write_text("second")
                (staging / "r.json").write_text("second")
                raise RuntimeError("a plot failed")
    assert snapshot(out) == {"r.csv": b"second", "r.json": b"second"}  # never the first run's HTML beside them


def test_a_run_killed_while_moving_its_set_is_completed_by_the_next_one(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "r.csv").write_text("old")
    (out / "r.html").write_text("old")
    complete = out / ".staging-0123456789abcdef"
    complete.mkdir()
    (complete / "r.html").write_text("new")  # r.csv was moved already when the run was killed
    (complete / COMPLETE_NAME).write_text(json.dumps({"members": ["r.csv", "r.html", "r.json"],
                                                      "written": ["r.csv", "r.html"]}))
    (out / "r.csv").write_text("new")
    unfinished = out / ".staging-fedcba9876543210"
    unfinished.mkdir()
    (unfinished / "r.csv").write_text("never finished")
    with output_folder(out, command="next"):
        assert snapshot(out) == {".lock": (out / ".lock").read_bytes(), "r.csv": b"new", "r.html": b"new"}
    assert snapshot(out) == {"r.csv": b"new", "r.html": b"new"}


# ----------------------------------------------------------------------------------------------- point 7


def test_two_runs_into_one_out_never_leave_a_mixed_set(tmp_path, monkeypatch):
    """The issue's race: two robustness runs started 0.3 s apart into one --out (two writers, each a whole
    command line in its own thread). One finishes; the other stops at once with one line naming the run that
    holds the folder; the set on disk is the finisher's, whole."""
    import analysis.robustness.__main__ as robustness_cli

    checkpoint = tiny_checkpoint(tmp_path)
    out = tmp_path / "report"
    outcomes: dict[int, object] = {}
    second_tried = threading.Event()
    evaluate = robustness_cli._evaluate

    def slow_first_evaluation(*args, **kwargs):  # the first run is still evaluating when the second starts
        if threading.current_thread().name == "run-0":
            second_tried.wait(30)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(robustness_cli, "_evaluate", slow_first_evaluation)

    def run(seed: int) -> None:
        main, argv = study("robustness", checkpoint, out, seed=seed)
        try:
            run_cli(main, argv)
            outcomes[seed] = 0
        except SystemExit as stop:
            outcomes[seed] = stop.code
        finally:
            if seed == 1:
                second_tried.set()

    threads = []
    for seed in (0, 1):
        threads.append(threading.Thread(target=run, args=(seed,), name=f"run-{seed}"))
        threads[-1].start()
        time.sleep(0.3)
    for thread in threads:
        thread.join(120)
    assert outcomes[0] == 0, outcomes  # the first holds the folder from its start
    line = outcomes[1]
    assert isinstance(line, str) and "\n" not in line, line
    assert line.startswith(f"error: --out {out} is in use by another run (pid {os.getpid()} on ")
    assert "python -m analysis.robustness --checkpoint" in line and "--seed 0" in line
    report = json.loads((out / "robustness.json").read_text())
    assert report["settings"]["seed"] == 0
    assert html.escape(report["command"]) in (out / "robustness.html").read_text()  # the HTML of the same run
    assert sorted(p.name for p in out.iterdir()) == ["robustness.csv", "robustness.html", "robustness.json",
                                                     "robustness_outcomes.safetensors"]


@pytest.mark.parametrize("name", STUDIES)
def test_a_second_run_into_a_held_out_stops_at_once_naming_the_holder(name, tmp_path):
    checkpoint = tiny_checkpoint(tmp_path)
    out = tmp_path / "report"
    main, argv = study(name, checkpoint, out)
    with output_folder(out, command="python -m analysis.robustness --out report (the first run)"):
        before = snapshot(out)
        started = time.perf_counter()
        message = one_line_error(main, argv)
        assert time.perf_counter() - started < 5  # before loading data or models, not after the study
        assert message.startswith(f"error: --out {out} is in use by another run (pid {os.getpid()} on ")
        assert "(the first run)" in message and "wait for it to finish or choose another --out" in message
        assert snapshot(out) == before
    assert not (out / ".lock").exists()  # released


def test_the_lock_is_taken_again_after_its_holder_lets_go(tmp_path):
    out = tmp_path / "report"
    with output_folder(out, command="first"):
        with pytest.raises(FolderBusy, match=r"pid \d+ on .*started .*: first"):
            with output_folder(out, command="second"):
                pass
    with output_folder(out, command="third"):
        assert json.loads((out / ".lock").read_text())["command"] == "third"
