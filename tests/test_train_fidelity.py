"""The training loop's side of the methods' fidelity to their papers: MiAMix's self-mixing partner is a
second, independent augmentation of the sample (miamix.md §3.2); Cutout fills with the dataset's mean."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import msda
from msda import train as train_cli
from msda.training import loop

TINY = ["--data", "shapes", "--train-size", "96", "--test-size", "32", "--size", "16", "--arch", "resnet20",
        "--batch-size", "32", "--no-progress", "--device", "cpu"]


def run(tmp_path: Path, *extra: str, name: str = "model") -> tuple[dict, Path]:
    out = tmp_path / f"{name}.safetensors"
    return train_cli.main([*TINY, "--out", str(out), *extra]), out


@pytest.fixture
def mixer_calls(monkeypatch):
    """The (images, images_b) each training step hands the Mixer."""
    calls = []
    original = msda.Mixer.__call__

    def spy(self, images, labels, **kwargs):
        calls.append((images.clone(), None if kwargs.get("images_b") is None else kwargs["images_b"].clone()))
        return original(self, images, labels, **kwargs)

    monkeypatch.setattr(msda.Mixer, "__call__", spy)
    return calls


def test_miamix_self_mix_partner_is_an_independent_second_augmentation(tmp_path, mixer_calls, monkeypatch):
    augmented = []  # (input, output) of every pass of the training augmentation
    original = loop.Trainer._augment

    def spy(self, images):
        out = original(self, images)
        augmented.append((images, out))
        return out

    monkeypatch.setattr(loop.Trainer, "_augment", spy)
    run(tmp_path, "--method", "miamix", "--epochs", "1", "--augment", "standard")
    assert len(mixer_calls) == 3 and len(augmented) == 6
    for step, (images, images_b) in enumerate(mixer_calls):
        (raw_a, view_a), (raw_b, view_b) = augmented[2 * step: 2 * step + 2]
        assert raw_a is raw_b  # both views come from the same un-augmented batch...
        assert torch.equal(images, view_a) and torch.equal(images_b, view_b)
        assert not torch.equal(images, images_b)  # ...through independent draws of the same pipeline


@pytest.mark.parametrize("method,extra", [("cutmix", ["--augment", "standard"]), ("miamix", ["--augment", "none"])])
def test_no_second_augmentation_where_it_is_not_used(tmp_path, mixer_calls, method, extra):
    run(tmp_path, "--method", method, "--epochs", "1", *extra)
    assert mixer_calls and all(images_b is None for _, images_b in mixer_calls)


def test_miamix_second_augmentation_resumes_bit_for_bit(tmp_path, monkeypatch):
    args = ["--method", "miamix", "--epochs", "2", "--augment", "standard"]
    _, straight = run(tmp_path, *args, name="straight")
    original = loop.Trainer.train_step
    calls = {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)
        return original(self, *a, **k)

    monkeypatch.setattr(loop.Trainer, "train_step", interrupted)
    with pytest.raises(SystemExit):
        run(tmp_path, *args, name="resumed")
    monkeypatch.setattr(loop.Trainer, "train_step", original)
    run(tmp_path, *args, "--resume", name="resumed")
    a, b = load_file(straight), load_file(tmp_path / "resumed.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cutout_fills_with_the_datasets_mean_colour(tmp_path, monkeypatch):
    from msda.training.checkpoint import read_checkpoint_meta

    seen = []
    original = msda.Mixer.__init__

    def spy(self, method, **kwargs):
        seen.append((method, kwargs.get("fill")))
        return original(self, method, **kwargs)

    monkeypatch.setattr(msda.Mixer, "__init__", spy)
    _, out = run(tmp_path, "--method", "cutout", "--epochs", "1")
    meta = read_checkpoint_meta(out)
    mean = tuple(meta["mean"])
    assert ("cutout", mean) in seen and len(mean) == 3 and all(0 < v < 1 for v in mean)
    assert tuple(meta["method_params"]["fill"]) == mean  # the checkpoint says what the squares held


def test_cutout_fill_given_on_the_command_line_wins(tmp_path, monkeypatch, mixer_calls):
    from msda.training.checkpoint import read_checkpoint_meta

    _, out = run(tmp_path, "--method", "cutout", "--epochs", "1", "--param", "fill=0.0")
    assert read_checkpoint_meta(out)["method_params"] == {"fill": 0.0}


def test_cutout_squares_hold_the_mean_colour_in_training(tmp_path, monkeypatch):
    outputs = []
    original = msda.Mixer.__call__

    def spy(self, images, labels, **kwargs):
        out = original(self, images, labels, **kwargs)
        outputs.append(out)
        return out

    monkeypatch.setattr(msda.Mixer, "__call__", spy)
    _, out = run(tmp_path, "--method", "cutout", "--epochs", "1")
    from msda.training.checkpoint import read_checkpoint_meta

    mean = torch.tensor(read_checkpoint_meta(out)["mean"])
    cut = outputs[0].mask[:, 0] < 0.5  # [B, H, W] inside the squares
    assert cut.any()
    filled = outputs[0].images.permute(0, 2, 3, 1)[cut]  # [pixels, 3]
    assert torch.allclose(filled, mean.expand_as(filled), atol=1e-6)
