"""Regression tests for issue 13 in the training CLI: D1 (Ctrl-C on the last step of an epoch), D2
(--eval-every 0), D3 (temporary files left by killed writes), W2 (settings no run can learn with, a loss turning
non-finite) and the command-line tracebacks (--device, --init, --resume with a foreign state)."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from msda import train as train_cli
from msda.training import loop
from msda.training.checkpoint import FORMAT

TINY = ["--data", "shapes", "--train-size", "96", "--test-size", "32", "--size", "16", "--arch", "resnet20",
        "--batch-size", "32", "--no-progress", "--device", "cpu"]
STEPS_PER_EPOCH = 3  # 96 images in batches of 32


def run(tmp_path: Path, *extra: str, name: str = "model") -> tuple[dict, Path]:
    out = tmp_path / f"{name}.safetensors"
    return train_cli.main([*TINY, "--out", str(out), *extra]), out


def timeless_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("images_per_s", "epoch_s")} for row in rows]


def exits_with(capsys, *argv_tail, tmp_path, code=2, name="model") -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, *argv_tail, name=name)
    assert stop.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    _, out = run(folder, "--method", "mixup", "--epochs", "2", name="straight")
    return out


# D1: the step positions of a 2-epoch run of 3 steps: the first, a middle one, the last of the first epoch and
# the last of the run (before D1 the last-step ones saved step == steps_per_epoch and every --resume died).
@pytest.mark.parametrize("interrupt_at", [1, 2, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH])
def test_D1_ctrl_c_at_any_step_of_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, straight, interrupt_at):
    original = loop.Trainer.train_step
    calls = {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            signal.raise_signal(signal.SIGINT)
        return original(self, *a, **k)

    monkeypatch.setattr(loop.Trainer, "train_step", interrupted)
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, "--method", "mixup", "--epochs", "2", name="resumed")
    assert stop.value.code == 130
    state = torch.load(tmp_path / "resumed.safetensors.state.pt", weights_only=True)
    assert state["epoch"] * STEPS_PER_EPOCH + state["step"] == interrupt_at and state["step"] >= 1
    monkeypatch.setattr(loop.Trainer, "train_step", original)
    run(tmp_path, "--method", "mixup", "--epochs", "2", "--resume", name="resumed")

    a, b = load_file(straight), load_file(tmp_path / "resumed.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert timeless_rows(straight.with_name("straight.metrics.jsonl")) == \
        timeless_rows(tmp_path / "resumed.metrics.jsonl")


def test_D2_eval_every_zero_is_refused_before_training(tmp_path, capsys):
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--eval-every", "0", tmp_path=tmp_path)
    assert "--eval-every must be at least 1, got 0" in err


def test_D3_temporary_files_of_killed_writes_are_removed_on_the_next_start(tmp_path):
    ours = [tmp_path / ".model.safetensors.a1b2c3d4.tmp", tmp_path / ".model.safetensors.state.pt.x_9yz0k1.tmp",
            tmp_path / ".model.metrics.jsonl.abcdefgh.tmp", tmp_path / ".model.metrics.csv.abcdefgh.tmp"]
    others = [tmp_path / ".other.safetensors.a1b2c3d4.tmp", tmp_path / ".model.safetensors.not-ours.tmp",
              tmp_path / ".model.safetensors.a1b2c3d4.tmp.keep", tmp_path / "model.safetensors.a1b2c3d4.tmp"]
    for path in ours + others:
        path.write_bytes(b"\0" * 1024)
    run(tmp_path, "--method", "none", "--epochs", "1")
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in others)


def test_D3_a_write_killed_with_sigkill_leaves_nothing_after_the_next_start(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "model.safetensors"
    killed_mid_write = (
        "import os, signal, sys; from msda.training.checkpoint import atomic_write\n"
        "def write(tmp):\n"
        "    open(tmp, 'wb').write(b'half a checkpoint')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"atomic_write({str(out)!r}, write)\n")
    done = subprocess.run([sys.executable, "-c", killed_mid_write], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".model.safetensors.") and left[0].endswith(".tmp"), left
    run(tmp_path, "--method", "none", "--epochs", "1")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("flag,value,message", [
    ("--lr", "nan", r"--lr must be a number in \[0, 10\], got nan"),
    ("--lr", "1e30", r"--lr must be a number in \[0, 10\], got 1e\+30"),
    ("--momentum", "5", r"--momentum must be a number in \[0, 1\), got 5"),
    ("--weight-decay", "-1", r"--weight-decay must be a number in \[0, 1\], got -1"),
    ("--warmup-epochs", "-5", r"--warmup-epochs must be a number in \[0, 1\] \(at most --epochs\), got -5"),
    ("--label-smoothing", "inf", r"--label-smoothing must be in \[0, 1\), got inf"),
    ("--workers", "-1", r"--workers must be at least 0, got -1"),
])
def test_W2_settings_no_run_can_learn_with_are_refused_in_one_line(tmp_path, capsys, flag, value, message):
    err = exits_with(capsys, "--method", "none", "--epochs", "1", flag, value, tmp_path=tmp_path)
    assert re.search(message, err), err
    assert not list(tmp_path.iterdir())  # refused before any file is written


def test_W2_a_loss_turning_non_finite_stops_without_overwriting_the_good_files(tmp_path, capsys, monkeypatch):
    _, good = run(tmp_path, "--method", "none", "--epochs", "1")
    good_bytes = good.read_bytes()
    original = loop.Trainer.learning_rate

    def diverging(self, step):  # a rate that blows up in the second epoch
        return float("nan") if self.epoch == 1 else original(self, step)

    monkeypatch.setattr(loop.Trainer, "learning_rate", diverging)
    err = exits_with(capsys, "--method", "none", "--epochs", "2", tmp_path=tmp_path)
    assert "became NaN or infinite in epoch 2" in err and "the state saved before it is kept" in err
    assert good.read_bytes() == good_bytes  # the earlier checkpoint under the same name is untouched
    state = torch.load(tmp_path / "model.safetensors.state.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values()
                                       if t.is_floating_point())


def test_cli_device_banana_is_one_line(tmp_path, capsys):
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--device", "banana", tmp_path=tmp_path)
    assert "--device must be one of cpu, cuda, mps" in err and "'banana'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cli_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--device", "cuda", tmp_path=tmp_path)
    assert "no usable CUDA GPU; use --device cpu" in err


def _checkpoint_with_meta(path: Path, msda_text: str) -> Path:
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": FORMAT, "msda": msda_text})
    return path


@pytest.mark.parametrize("kind,message", [
    ("truncated", "is not a readable .safetensors file"),
    ("nested", "nested too deeply|nested more than 32 levels"),
    ("list", "must be a JSON object, got list"),
    ("wrong-weights", "its weights do not load into resnet20"),
])
def test_cli_init_of_a_damaged_or_nested_file_is_one_line(tmp_path, capsys, kind, message):
    if kind == "truncated":
        _, good = run(tmp_path, "--method", "none", "--epochs", "1", name="good")
        init = tmp_path / "truncated.safetensors"
        init.write_bytes(good.read_bytes()[:5000])
    elif kind == "nested":
        init = _checkpoint_with_meta(tmp_path / "nested.safetensors", "[" * 50_000 + "]" * 50_000)
    elif kind == "list":
        init = _checkpoint_with_meta(tmp_path / "list.safetensors", "[1, 2]")
    else:
        meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "dataset": "shapes"}
        init = _checkpoint_with_meta(tmp_path / "wrong.safetensors", json.dumps(meta))
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--init", str(init), tmp_path=tmp_path)
    assert re.search(message, err), err


@pytest.mark.parametrize("state,message", [
    ({"weights": torch.zeros(3)}, "not a resume state this program wrote"),
    ([1, 2, 3], "not a resume state this program wrote"),
    ({"fingerprint": {}}, "not a resume state this program wrote .it lacks"),
])
def test_cli_resume_with_a_state_it_did_not_write_is_one_line(tmp_path, capsys, state, message):
    torch.save(state, tmp_path / "model.safetensors.state.pt")
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--resume", tmp_path=tmp_path)
    assert re.search(message, err), err


def test_cli_resume_with_a_step_outside_the_run_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(loop.Trainer, "train_step", lambda self, *a, **k: signal.raise_signal(signal.SIGINT))
    with pytest.raises(SystemExit):
        run(tmp_path, "--method", "none", "--epochs", "1")
    monkeypatch.undo()
    path = tmp_path / "model.safetensors.state.pt"
    state = torch.load(path, weights_only=True)
    state["step"] = 99
    torch.save(state, path)
    err = exits_with(capsys, "--method", "none", "--epochs", "1", "--resume", tmp_path=tmp_path)
    assert "holds epoch 0, step 99, outside this run's 1 epochs of 3 steps" in err
