"""The training CLI on tiny shapes data: checkpoints, metrics, resume, HardMix hardness, torchrun."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from msda import train as train_cli
from msda.training import loop
from msda.training.checkpoint import read_checkpoint_meta

TINY = ["--data", "shapes", "--train-size", "192", "--test-size", "96", "--size", "16", "--arch", "resnet20",
        "--batch-size", "32", "--no-progress", "--device", "cpu"]


def run(tmp_path: Path, *extra: str, name: str = "model") -> tuple[dict, Path]:
    out = tmp_path / f"{name}.safetensors"
    result = train_cli.main([*TINY, "--out", str(out), *extra])
    return result, out


def test_training_writes_checkpoint_metadata_and_metrics(tmp_path):
    result, out = run(tmp_path, "--method", "cutmix", "--epochs", "2")
    meta = read_checkpoint_meta(out)
    assert meta["arch"] == "resnet20" and meta["method"] == "cutmix" and meta["num_classes"] == 10
    assert meta["classes"][:2] == ["circle", "triangle"] and meta["input_size"] == 16
    assert meta["dataset_version"] == 2  # which shapes design the model saw
    assert len(meta["mean"]) == len(meta["std"]) == 3 and meta["epochs"] == 2 and meta["seed"] == 0
    assert meta["test_accuracy"] == result["test_acc"] and meta["test_images"] == 96
    assert meta["command"].startswith("python -m msda.train --data shapes")
    weights = load_file(out)
    assert "fc.weight" in weights and weights["fc.weight"].shape == (10, 64)
    rows = [json.loads(line) for line in out.with_name("model.metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["test_acc"] <= 1 for r in rows)
    assert out.with_name("model.metrics.csv").read_text().startswith("epoch,lr,train_loss")


def test_init_starts_from_the_given_weights_and_records_them(tmp_path):
    _, base = run(tmp_path, "--method", "none", "--epochs", "1", name="base")
    # lr 0 and no weight decay: the weights cannot move, so the new checkpoint holds exactly the initial ones.
    _, out = run(tmp_path, "--method", "cutmix", "--epochs", "1", "--lr", "0", "--weight-decay", "0",
                 "--init", str(base), name="tuned")
    before, after = load_file(base), load_file(out)
    conv = [name for name in before if name.endswith("conv1.weight")]
    assert conv and all(torch.equal(before[name], after[name]) for name in conv)
    meta = read_checkpoint_meta(out)
    assert meta["init"]["file"] == "base.safetensors" and meta["init"]["method"] == "none"
    assert meta["init"]["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    # A different seed without --init starts elsewhere.
    _, fresh = run(tmp_path, "--method", "cutmix", "--epochs", "1", "--lr", "0", "--weight-decay", "0",
                   "--seed", "1", name="fresh")
    assert not all(torch.equal(before[name], load_file(fresh)[name]) for name in conv)


@pytest.mark.parametrize("init,message", [("missing.safetensors", "existing .safetensors"),
                                          ("other-size", "input_size 32 (this run: 16)")])
def test_init_that_does_not_fit_is_refused(tmp_path, capsys, init, message):
    if init == "other-size":
        out = tmp_path / "big.safetensors"
        train_cli.main([a if a != "16" else "32" for a in TINY] + ["--epochs", "1", "--method", "none",
                                                                   "--out", str(out)])
        init = str(out)
    with pytest.raises(SystemExit):
        run(tmp_path, "--method", "mixup", "--epochs", "1", "--init", init)
    assert message in capsys.readouterr().err


def test_no_stray_temporary_files(tmp_path):
    run(tmp_path, "--method", "none", "--epochs", "1")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("method,extra", [("mixup", []), ("hardmix", ["--hardness", "forward"]),
                                          ("hardmix", ["--hardness", "memory"]),
                                          ("hardmix", ["--hardness", "memory", "--param", "hardness='loss'"])])
def test_resume_after_ctrl_c_is_bit_for_bit(tmp_path, monkeypatch, method, extra):
    args = ["--method", method, "--epochs", "3", *extra]
    _, straight = run(tmp_path, *args, name="straight")

    original = loop.Trainer.train_step
    calls = {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 9:  # Ctrl-C mid-way through the second epoch (6 steps per epoch)
            signal.raise_signal(signal.SIGINT)
        return original(self, *a, **k)

    monkeypatch.setattr(loop.Trainer, "train_step", interrupted)
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, *args, name="resumed")
    assert stop.value.code == 130
    state = tmp_path / "resumed.safetensors.state.pt"
    assert state.exists() and not (tmp_path / "resumed.safetensors").exists()
    monkeypatch.setattr(loop.Trainer, "train_step", original)
    run(tmp_path, *args, "--resume", name="resumed")

    a, b = load_file(straight), load_file(tmp_path / "resumed.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert timeless_rows(tmp_path / "straight.metrics.jsonl") == timeless_rows(tmp_path / "resumed.metrics.jsonl")


def timeless_rows(path: Path) -> list[dict]:
    """The metric rows without the wall-clock columns."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("images_per_s", "epoch_s")} for row in rows]


def test_resume_refuses_different_settings(tmp_path, monkeypatch, capsys):
    def stop(self, *a, **k):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(loop.Trainer, "train_step", stop)
    with pytest.raises(SystemExit):
        run(tmp_path, "--method", "mixup", "--epochs", "2")
    monkeypatch.undo()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run(tmp_path, "--method", "cutmix", "--epochs", "2", "--resume")
    assert "the saved run differs in method: 'mixup' → 'cutmix'" in capsys.readouterr().err


def test_resume_without_state_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(tmp_path, "--method", "mixup", "--epochs", "1", "--resume")
    assert re.search("no resume state at .*nothing to resume", capsys.readouterr().err)


@pytest.mark.parametrize("args,message", [
    (["--method", "cutmix", "--epochs", "1", "--param", "sigma=0.2"], "cutmix got unknown parameter"),
    (["--method", "none", "--epochs", "1", "--param", "decay=2"], "given with --method none"),
    (["--method", "agmix", "--epochs", "1", "--param", "q=1.5"], r"agmix: q must be in \(-1, 1\)"),
    (["--method", "mixup", "--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_arguments_exit_with_a_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, *args)
    assert stop.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_out_must_be_safetensors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_cli.main([*TINY, "--method", "none", "--epochs", "1", "--out", str(tmp_path / "model.pt")])
    assert "--out must end in .safetensors" in capsys.readouterr().err


def test_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "msda.train", *TINY, "--method", "cutmix", "--epochs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    meta = read_checkpoint_meta(out)
    assert meta["test_images"] == 96  # evaluation sharded over the ranks, then summed
    rows = out.with_name("ddp.metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # rank 0 alone writes
