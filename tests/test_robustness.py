"""analysis.robustness: counts and metrics against hand computation, identical corrupted inputs for every model
and every rerun, FGSM curves, the CLI on shapes-c / CIFAR-10-C / ImageNet-C folders written by the tests, bad
arguments, torchrun sharding; and the JPEG corruption's PIL fallback."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

import analysis.robustness.evaluate as evaluate_module
from analysis.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTION_GROUPS, CORRUPTIONS, corrupt
from analysis.robust_metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, fgsm
from analysis.robustness import (alexnet_normalised, evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curve,
                                 fgsm_curves, long_table, summarise)
from analysis.robustness.__main__ import main
from msda.models import build_model
from msda.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
GROUP = {name: group for group, names in CORRUPTION_GROUPS.items() for name in names}


# ----------------------------------------------------------------------------------------------- fixtures


class CodeReader(nn.Module):
    """Right exactly for the images whose index (pixel [0, 0, 0] · 1024) is at least the number of wrong
    answers designed for the cell whose code (pixel [1, 0, 0] · 128; 0 = clean) the image carries."""

    def __init__(self, wrong_per_code: dict[int, int]) -> None:
        super().__init__()
        self.wrong = wrong_per_code

    def forward(self, images):
        index = (images[:, 0, 0, 0] * 1024).round().long()
        code = (images[:, 1, 0, 0] * 128).round().long()
        threshold = torch.tensor([self.wrong[int(c)] for c in code])
        labels = index % 2  # the labels the test gives: parity of the index
        predicted = torch.where(index < threshold, 1 - labels, labels)
        return nn.functional.one_hot(predicted, 2).float()


def code_of(name: str, severity: int) -> int:
    return CORRUPTIONS.index(name) * 5 + severity


def stamp_corruption(images, name, severity, *, profile, generator, frost_dir):
    """Stand-in for analysis.corrupt: writes the cell's code into pixel [1, 0, 0]."""
    out = images.clone()
    out[:, 1, 0, 0] = code_of(name, severity) / 128
    return out


def indexed_images(n: int, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.full((n, 3, size, size), 0.5)
    images[:, 0, 0, 0] = torch.arange(n) / 1024
    images[:, 1, 0, 0] = 0.0
    return images, torch.arange(n) % 2


class Recorder(nn.Module):
    """Keeps every batch it sees; predicts from the mean brightness of the first pixel row."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images):
        self.seen.append(images.detach().clone())
        brightness = images[:, :, 0].mean((1, 2)) * self.scale
        return torch.stack([brightness, 1 - brightness], 1)


def threshold_checkpoint(path: Path, *, size: int, classes: list[str], method: str = "none") -> Path:
    """A resnet20 checkpoint that predicts class 1 for images brighter than 0.5 and class 0 for darker ones
    (stem: a 3×3 mean filter into channel 0; every other conv zero, so the blocks pass it on; identity BNs)."""
    net = build_model("resnet20", len(classes))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
                module.weight.fill_(1.0)
                module.bias.zero_()
        net.conv1.weight[0].fill_(1 / 27)
        net.eval()
        net.fc.weight.zero_()
        net.fc.weight[1, 0] = 1.0
        net.fc.bias.fill_(-100.0)
        net.fc.bias[:2] = 0.0
        unit = net(torch.ones(1, 3, size, size))[0, 1]  # channel 0's pooled value for a white image
        net.fc.weight[1, 0] = 1 / unit
        net.fc.bias[1] = -0.5
    meta = {"arch": "resnet20", "num_classes": len(classes), "classes": classes, "input_size": size,
            "mean": [0.0] * 3, "std": [1.0] * 3, "dataset": "test", "method": method}
    return save_checkpoint(path, net.state_dict(), meta)


def random_checkpoints(folder: Path, size: int = 16) -> list[Path]:
    classes = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse", "crescent"]
    meta = {"arch": "resnet20", "num_classes": 10, "classes": classes, "input_size": size, "mean": [0.5] * 3,
            "std": [0.25] * 3, "dataset": "shapes", "data_seed": 3}
    paths = []
    for seed, method in ((0, "none"), (1, "cutmix")):
        torch.manual_seed(seed)  # test fixture: two different untrained networks
        paths.append(save_checkpoint(folder / f"{method}.safetensors", build_model("resnet20", 10).state_dict(),
                                     {**meta, "method": method}))
    return paths


def wrong_count(name: str, severity: int, n: int) -> int:
    """The designed number of wrong answers of a cell: (corruption index + severity) mod (n + 1)."""
    return (CORRUPTIONS.index(name) + severity) % (n + 1)


# ----------------------------------------------------------------------------------------------- metrics


def test_counts_and_metrics_by_hand(monkeypatch):
    monkeypatch.setattr(evaluate_module, "corrupt", stamp_corruption)
    n, clean_wrong = 10, 3
    wrong = {0: clean_wrong, **{code_of(c, s): wrong_count(c, s, n) for c in CORRUPTIONS for s in range(1, 6)}}
    images, labels = indexed_images(n)
    models = {"reader": CodeReader(wrong)}
    results = evaluate_corruptions(models, images, labels, batch_size=3)

    expected = torch.tensor([[wrong_count(c, s, n) for s in range(1, 6)] for c in CORRUPTIONS], dtype=torch.float64) / n
    assert torch.equal(results.total, torch.full((19, 5), n))
    assert torch.equal(results.errors()[0], expected)
    assert float(results.clean_errors()[0]) == clean_wrong / n

    row = summarise(results, alexnet=True).iloc[0]
    assert row["clean_error"] == pytest.approx(0.3)
    assert row["mean_corrupted_accuracy_15"] == pytest.approx(1 - float(expected[:15].mean()), abs=1e-12)
    assert row["mean_corrupted_accuracy_19"] == pytest.approx(1 - float(expected.mean()), abs=1e-12)
    for group, names in CORRUPTION_GROUPS.items():
        by_hand = 1 - float(expected[[CORRUPTIONS.index(name) for name in names]].mean())
        assert row[f"accuracy_{group}"] == pytest.approx(by_hand, abs=1e-12)
    # CE_c = Σ_s E_{s,c} / (5 · AlexNet's mean error), mCE their mean over the 15 benchmark corruptions.
    ce = {c: float(expected[k].sum()) / (5 * ALEXNET_ERRORS[c]) for k, c in enumerate(CORRUPTIONS)}
    relative = {c: (float(expected[k].sum()) - 5 * 0.3) / (5 * (ALEXNET_ERRORS[c] - ALEXNET_CLEAN_ERROR))
                for k, c in enumerate(CORRUPTIONS)}
    assert row["mce"] == pytest.approx(sum(ce[c] for c in BENCHMARK_CORRUPTIONS) / 15, abs=1e-12)
    assert row["relative_mce"] == pytest.approx(sum(relative[c] for c in BENCHMARK_CORRUPTIONS) / 15, abs=1e-12)
    details = alexnet_normalised(results)["reader"]
    assert details["ce"]["saturate"] == pytest.approx(ce["saturate"], abs=1e-12)

    # The shards of two ranks add up to the whole, count for count.
    halves = [evaluate_corruptions(models, images, labels, batch_size=3, shard=(rank, 2)) for rank in (0, 1)]
    assert torch.equal(halves[0].correct + halves[1].correct, results.correct)
    assert torch.equal(halves[0].total + halves[1].total, results.total)
    assert int(halves[0].clean_total) == 6 and int(halves[1].clean_total) == 4  # blocks 0, 2 | 1, 3

    table = long_table(results)
    assert len(table) == 1 + 19 * 5 and list(table.columns[:6]) == ["model", "kind", "corruption", "group",
                                                                   "severity", "eps"]
    fog = table[(table["corruption"] == "fog") & (table["severity"] == 2)].iloc[0]
    assert fog["group"] == "weather" and fog["error"] == pytest.approx(wrong_count("fog", 2, n) / n)


def test_subsets_leave_undefined_means_empty(monkeypatch):
    monkeypatch.setattr(evaluate_module, "corrupt", stamp_corruption)
    n = 6
    wrong = {0: 1, **{code_of(c, s): wrong_count(c, s, n) for c in CORRUPTIONS for s in range(1, 6)}}
    images, labels = indexed_images(n)
    results = evaluate_corruptions({"reader": CodeReader(wrong)}, images, labels, corruptions=["fog", "gaussian_noise"],
                                   severities=[5, 1], clean=False)
    assert results.corruptions == ("gaussian_noise", "fog") and results.severities == (1, 5)
    assert results.clean_errors() is None
    row = summarise(results, alexnet=True).iloc[0]
    assert math.isnan(row["clean_error"]) and math.isnan(row["mean_corrupted_accuracy_15"]) and math.isnan(row["mce"])
    by_hand = 1 - sum(wrong_count(c, s, n) for c in ("gaussian_noise", "fog") for s in (1, 5)) / (4 * n)
    assert row["corrupted_accuracy"] == pytest.approx(by_hand)


def test_stored_datasets_by_hand():
    """evaluate_corrupted_datasets on in-memory sets whose images carry their cell's code."""
    n = 7
    wrong = {0: 2, **{code_of(c, s): wrong_count(c, s, n) for c in CORRUPTIONS for s in range(1, 6)}}
    images, labels = indexed_images(n)
    datasets = {}
    for name in ("contrast", "snow"):
        for severity in (1, 2, 3, 4, 5):
            datasets[name, severity] = TensorDataset(stamp_corruption(images, name, severity, profile=None,
                                                                      generator=None, frost_dir=None), labels)
    results = evaluate_corrupted_datasets({"reader": CodeReader(wrong)}, datasets,
                                          clean=TensorDataset(images, labels), batch_size=4)
    assert results.corruptions == ("snow", "contrast")
    expected = torch.tensor([[wrong_count(c, s, n) / n for s in range(1, 6)] for c in ("snow", "contrast")],
                            dtype=torch.float64)
    assert torch.equal(results.errors()[0], expected)
    assert float(results.clean_errors()[0]) == 2 / n
    ce = alexnet_normalised(results)["reader"]["ce"]
    assert ce["snow"] == pytest.approx(float(expected[0].sum()) / (5 * ALEXNET_ERRORS["snow"]), abs=1e-12)
    with pytest.raises(ValueError, match="every corruption at every severity; missing contrast/5"):
        evaluate_corrupted_datasets({"reader": CodeReader(wrong)},
                                    {key: data for key, data in datasets.items() if key != ("contrast", 5)})


def test_every_model_sees_the_same_corrupted_images_and_reruns_repeat_them():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(7, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 2, (7,), generator=generator)
    cells = dict(corruptions=["gaussian_noise", "glass_blur", "spatter"], severities=[2, 5], batch_size=3)

    first, second = Recorder(), Recorder()
    evaluate_corruptions({"a": first, "b": second}, images, labels, generator_seed=11, **cells)
    assert len(first.seen) == 3 * (1 + 3 * 2)
    for mine, theirs in zip(first.seen, second.seen, strict=True):
        assert torch.equal(mine, theirs)

    rerun = Recorder()
    evaluate_corruptions({"a": rerun}, images, labels, generator_seed=11, **cells)
    assert all(torch.equal(a, b) for a, b in zip(first.seen, rerun.seen, strict=True))

    # A shard sees its blocks exactly as the whole run does (the seed follows the block, not the rank).
    shard = Recorder()
    evaluate_corruptions({"a": shard}, images, labels, generator_seed=11, shard=(1, 2), **cells)
    assert all(torch.equal(a, b) for a, b in zip(first.seen[7:14], shard.seen, strict=True))

    # Another seed draws other noise; the clean batches stay the same.
    other = Recorder()
    evaluate_corruptions({"a": other}, images, labels, generator_seed=12, **cells)
    assert torch.equal(first.seen[0], other.seen[0]) and not torch.equal(first.seen[1], other.seen[1])
    # The corrupted batch is the corruption itself, with the seed of its (corruption, severity, block).
    seed = evaluate_module.corruption_seed(11, "gaussian_noise", 2, 0)
    expected = corrupt(images[:3], "gaussian_noise", 2, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(first.seen[1], expected)


def test_a_dataloader_gives_the_same_counts_as_tensors():
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(1)
    images = torch.rand(10, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 2, (10,), generator=generator)
    cells = dict(corruptions=["shot_noise", "pixelate"], severities=[1, 4], generator_seed=5)
    from_tensors = evaluate_corruptions({"r": Recorder()}, images, labels, batch_size=4, **cells)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)  # batch k is block k
    from_loader = evaluate_corruptions({"r": Recorder()}, loader, **cells)
    assert torch.equal(from_loader.correct, from_tensors.correct)
    halves = [evaluate_corruptions({"r": Recorder()}, loader, shard=(rank, 2), **cells) for rank in (0, 1)]
    assert torch.equal(halves[0].correct + halves[1].correct, from_tensors.correct)
    with pytest.raises(ValueError, match="labels must be None when images is a dataset or a loader"):
        evaluate_corruptions({"r": Recorder()}, loader, labels, **cells)


def test_fgsm_curve_matches_the_single_step_attack():
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(3, 192, generator=generator) * 0.3)
    images = torch.rand(10, 3, 8, 8, generator=generator)
    labels = model(images).argmax(1)  # every clean prediction right
    eps = (0.0, 2 / 255, 8 / 255, 0.2)
    curve = fgsm_curve(model, images, labels, eps, batch_size=4)
    assert curve.eps == eps and int(curve.total) == 10
    by_hand = []
    for step in eps:
        attacked = torch.cat([fgsm(model, images[s:s + 4], labels[s:s + 4], step) for s in range(0, 10, 4)])
        by_hand.append(int((model(attacked).argmax(1) == labels).sum()))
    assert curve.correct.tolist() == by_hand
    assert by_hand[0] == 10 and by_hand[-1] < 10  # ε = 0 is the clean accuracy; a large step hurts
    assert all(p.requires_grad for p in model.parameters()) and model[1].weight.grad is None
    halves = [fgsm_curves({"m": model}, images, labels, eps=eps, batch_size=4, shard=(r, 2))["m"] for r in (0, 1)]
    assert torch.equal(halves[0].correct + halves[1].correct, curve.correct)


@pytest.mark.parametrize("call,message", [
    (lambda m, x, y: evaluate_corruptions(m, x, y, corruptions=["fogg"]), "corruption must be one of"),
    (lambda m, x, y: evaluate_corruptions(m, x, y, severities=[0, 1]), r"severity must be an integer in \[1, 5\]"),
    (lambda m, x, y: evaluate_corruptions(m, x, y[:3]), "labels must be an integer tensor of shape"),
    (lambda m, x, y: evaluate_corruptions(m, x, y, shard=(2, 2)), r"rank must be an integer in \[0, 1\]"),
    (lambda m, x, y: evaluate_corruptions({}, x, y), "models must be a non-empty dict"),
    (lambda m, x, y: fgsm_curves(m, x, y, eps=[-0.1]), r"eps must be in \[0"),
])
def test_bad_arguments_of_the_functions(call, message):
    images, labels = indexed_images(4)
    with pytest.raises(ValueError, match=message):
        call({"r": Recorder()}, images, labels)


# ----------------------------------------------------------------------------------------------- the CLI


def test_cli_shapes_c_writes_csv_json_html(tmp_path, capsys):
    random_checkpoints(tmp_path)
    out = tmp_path / "report"
    args = ["--checkpoint", str(tmp_path / "none.safetensors"), "--checkpoint", str(tmp_path / "cutmix.safetensors"),
            "--data", "shapes-c", "--n", "10", "--corruptions", "zoom_blur", "gaussian_noise", "--severities", "1", "5",
            "--fgsm-eps", "8/255,2/255", "--batch-size", "4", "--device", "cpu", "--no-progress", "--out", str(out)]
    result = main(args)
    assert sorted(p.name for p in out.iterdir()) == ["robustness.csv", "robustness.html", "robustness.json",
                                                     "robustness_methods.csv", "robustness_outcomes.safetensors"]
    table = pd.read_csv(out / "robustness.csv")
    assert len(table) == 2 * (1 + 2 * 2 + 3)  # per model: clean, 2 corruptions × 2 severities, ε ∈ {0, 2, 8}/255
    assert set(table["kind"]) == {"clean", "corruption", "fgsm"}
    for name in ("none", "cutmix"):
        rows = table[table["model"] == name]
        clean = rows[rows["kind"] == "clean"].iloc[0]
        at_zero = rows[(rows["kind"] == "fgsm") & (rows["eps"] == 0)].iloc[0]
        assert clean["correct"] == at_zero["correct"] and clean["total"] == 10  # ε = 0 is the clean accuracy
    report = json.loads((out / "robustness.json").read_text())
    assert report["command"].startswith("python -m analysis.robustness --checkpoint") and report["seconds"] > 0
    assert report["data"]["data_seed"] == 3 and report["data"]["corruptions"] == ["gaussian_noise", "zoom_blur"]
    assert [row["model"] for row in report["summary"]] == ["none", "cutmix"] and len(report["rows"]) == len(table)
    page = (out / "robustness.html").read_text()
    assert "Plotly.newPlot" in page and "coloraxis" in page and "FGSM" in page
    printed = capsys.readouterr().out
    assert "mean_corrupted_accuracy_15" in printed and "robustness.html" in printed

    # The same counts as the function on the same images: the shapes test split of the checkpoints' seed, in the
    # version their classes name (version 1: square and diamond) — not the default version 2.
    from analysis import load_checkpoint
    from msda.data import Shapes

    assert "version 1" in report["data"]["description"]
    dataset = Shapes("test", n=10, size=16, seed=3, version=1)
    models = {name: load_checkpoint(tmp_path / f"{name}.safetensors")[0] for name in ("none", "cutmix")}
    direct = evaluate_corruptions(models, dataset, corruptions=["gaussian_noise", "zoom_blur"], severities=[1, 5],
                                  batch_size=4)
    corrupted = table[table["kind"] == "corruption"]
    assert corrupted["correct"].tolist() == direct.correct.flatten().tolist()
    assert result["summary"]["model"].tolist() == ["none", "cutmix"]


def test_cli_cifar10_c_folder_known_errors(tmp_path):
    """A CIFAR-10-C folder in the official layout (5 rows per severity): dark images are right, bright ones
    wrong for the threshold network; the errors per cell are designed."""
    per_severity = 4
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    for name in CORRUPTIONS:
        images = np.full((5 * per_severity, 32, 32, 3), 20, dtype=np.uint8)
        for severity in range(1, 6):
            start = (severity - 1) * per_severity
            images[start:start + wrong_count(name, severity, per_severity)] = 235  # bright: predicted class 1
        np.save(folder / f"{name}.npy", images)
    np.save(folder / "labels.npy", np.zeros(5 * per_severity, dtype=np.int64))
    checkpoint = threshold_checkpoint(tmp_path / "threshold.safetensors", size=32, classes=[f"c{i}" for i in range(10)])
    out = tmp_path / "report"
    main(["--checkpoint", str(checkpoint), "--data", "cifar10-c", "--root", str(folder), "--device", "cpu",
          "--no-progress", "--out", str(out)])
    table = pd.read_csv(out / "robustness.csv")
    assert set(table["kind"]) == {"corruption"}  # no clean set given: no clean row, no FGSM
    for row in table.itertuples():
        assert row.total == per_severity
        assert row.error == pytest.approx(wrong_count(row.corruption, row.severity, per_severity) / per_severity)
    summary = json.loads((out / "robustness.json").read_text())["summary"][0]
    errors = [wrong_count(c, s, per_severity) / per_severity for c in CORRUPTIONS for s in range(1, 6)]
    assert summary["mean_corrupted_accuracy_19"] == pytest.approx(1 - sum(errors) / len(errors))
    assert summary["mean_corrupted_accuracy_15"] == pytest.approx(1 - sum(errors[:75]) / 75)
    assert summary["clean_error"] is None and "mce" not in summary


def _write_jpeg(path: Path, value: int, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path, quality=90)


def test_cli_imagenet_c_mce_by_hand(tmp_path):
    """An ImageNet-C folder (15 corruptions × 5 severities × 2 classes × 2 images of 16 px), designed errors,
    a clean val/ folder with one wrong image in four, and mCE / relative mCE against hand computation."""
    wnids, size, n = ["n01440764", "n01443537"], 16, 4
    root, clean_root = tmp_path / "ImageNet-C", tmp_path / "ImageNet"
    for name in BENCHMARK_CORRUPTIONS:
        for severity in range(1, 6):
            wrong = wrong_count(name, severity, n)
            for k in range(n):  # images sorted wnid by wnid: k = 0, 1 of class 0, then 2, 3 of class 1
                label = k // 2
                bright = label == 1 if k >= wrong else label == 0  # the first `wrong` images fooled
                _write_jpeg(root / name / str(severity) / wnids[label] / f"{k}.JPEG", 235 if bright else 20, size)
    for k, bright in enumerate((True, False, True, False)):  # classes 0, 0, 1, 1
        _write_jpeg(clean_root / "val" / wnids[k // 2] / f"{k}.JPEG", 235 if bright else 20, size)
    checkpoint = threshold_checkpoint(tmp_path / "threshold.safetensors", size=size, classes=wnids)
    out = tmp_path / "report"
    main(["--checkpoint", str(checkpoint), "--data", "imagenet-c", "--root", str(root), "--clean-root",
          str(clean_root), "--fgsm-eps", "4/255", "--workers", "0", "--device", "cpu", "--no-progress", "--out",
          str(out)])
    report = json.loads((out / "robustness.json").read_text())
    summary = report["summary"][0]
    clean_error = 2 / 4  # image 0 (class 0, bright: predicted 1) and image 3 (class 1, dark) are wrong
    assert summary["clean_error"] == pytest.approx(clean_error)
    errors = {c: [wrong_count(c, s, n) / n for s in range(1, 6)] for c in BENCHMARK_CORRUPTIONS}
    ce = {c: sum(e) / (5 * ALEXNET_ERRORS[c]) for c, e in errors.items()}
    relative = {c: (sum(e) - 5 * clean_error) / (5 * (ALEXNET_ERRORS[c] - ALEXNET_CLEAN_ERROR)) for c, e in errors.items()}
    assert summary["mce"] == pytest.approx(sum(ce.values()) / 15, abs=1e-12)
    assert summary["relative_mce"] == pytest.approx(sum(relative.values()) / 15, abs=1e-12)
    assert report["alexnet_normalised"]["threshold"]["ce"]["fog"] == pytest.approx(ce["fog"], abs=1e-12)
    assert summary["mean_corrupted_accuracy_19"] is None  # the 4 extra corruptions are absent
    assert [row["eps_255"] for row in report["fgsm"]] == [0.0, 4.0]
    assert report["fgsm"][0]["accuracy"] == pytest.approx(1 - clean_error)


@pytest.mark.parametrize("args,message", [
    (["--data", "shapes-c", "--corruptions", "fog", "fogg"], "unknown corruption 'fogg'; allowed: gaussian_noise"),
    (["--data", "shapes-c", "--severities", "1", "6"], "--severities must be integers in 1 … 5; got 6"),
    (["--data", "cifar10-c"], "--data cifar10-c needs --root"),
    (["--data", "cifar10"], "--data must be one of shapes-c, shapes\\+corrupt"),
    (["--data", "shapes-c", "--fgsm-eps", "8/255,x"], "--fgsm-eps: 'x' is not a number"),
    (["--data", "shapes-c", "--root", "/tmp"], "is generated and reads no files"),
])
def test_cli_bad_arguments_exit_with_a_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main(["--checkpoint", str(tmp_path / "missing.safetensors"), "--device", "cpu", *args])
    assert stop.value.code == 2
    assert re.search(message, " ".join(capsys.readouterr().err.split()))


def test_cli_errors_name_the_problem(tmp_path):
    threshold_checkpoint(tmp_path / "t.safetensors", size=32, classes=[f"c{i}" for i in range(10)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no cifar10-c corruption"):
        main(["--checkpoint", str(tmp_path / "t.safetensors"), "--data", "cifar10-c", "--root", str(empty),
              "--device", "cpu", "--no-progress", "--out", str(tmp_path / "out")])
    (empty / "snow.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="holds none of the chosen corruptions .* found snow"):
        main(["--checkpoint", str(tmp_path / "t.safetensors"), "--data", "cifar10-c", "--root", str(empty),
              "--corruptions", "fog", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "out")])


def test_module_runs_without_runpy_warnings_and_exits_cleanly(tmp_path):
    done = subprocess.run([sys.executable, "-W", "error", "-m", "analysis.robustness", "--checkpoint", "x.pt",
                           "--data", "imagenet-c"], check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--data imagenet-c needs --root" in done.stderr and "Traceback" not in done.stderr


def test_torchrun_two_processes_equal_one(tmp_path):
    random_checkpoints(tmp_path)
    common = ["--checkpoint", str(tmp_path / "none.safetensors"), str(tmp_path / "cutmix.safetensors"),
              "--data", "shapes-c", "--n-images", "11", "--corruptions", "gaussian_noise", "zoom_blur", "spatter",
              "--severities", "2", "5", "--fgsm-eps", "4/255", "--batch-size", "3", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "analysis.robustness", *common, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main([*common, "--out", str(tmp_path / "single")])
    finally:
        torch.set_num_threads(threads)
    merged = pd.read_csv(tmp_path / "ddp" / "robustness.csv")
    single = pd.read_csv(tmp_path / "single" / "robustness.csv")
    pd.testing.assert_frame_equal(merged, single)
    assert merged["total"].max() == 11
    assert json.loads((tmp_path / "ddp" / "robustness.json").read_text())["world_size"] == 2


# ----------------------------------------------------------------------------------------------- JPEG codec


def test_jpeg_compression_falls_back_to_pil_with_the_same_output(monkeypatch):
    import torchvision.io

    images = torch.rand(3, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchvision's deprecation of its codecs does not reach the caller
        through_torchvision = corrupt(images, "jpeg_compression", 3)
    monkeypatch.delattr(torchvision.io, "encode_jpeg")  # a torchvision without image codecs
    through_pil = corrupt(images, "jpeg_compression", 3)
    # Both are libjpeg with the same settings (identical here); other builds may round a level apart.
    assert torch.allclose(through_pil, through_torchvision, atol=2 / 255)
    assert through_pil.shape == images.shape and through_pil.is_contiguous()


def test_cli_compares_methods_over_seeds_and_images_and_keeps_every_item(tmp_path, capsys):
    from analysis.outcomes import load_outcomes
    from analysis.stats import VERDICTS

    classes = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]
    meta = {"arch": "resnet20", "num_classes": 10, "classes": classes, "input_size": 16, "mean": [0.5] * 3,
            "std": [0.25] * 3, "dataset": "shapes", "data_seed": 0}
    for method in ("none", "mixup"):
        for seed in (0, 1):
            torch.manual_seed(10 * seed + len(method))  # test fixture: different untrained networks
            save_checkpoint(tmp_path / f"{method}-s{seed}.safetensors", build_model("resnet20", 10).state_dict(),
                            {**meta, "method": method, "seed": seed})
    out = tmp_path / "report"
    result = main(["--checkpoint", str(tmp_path / "*.safetensors"), "--n", "8", "--corruptions", "fog", "snow",
                   "--severities", "2", "5", "--fgsm-eps", "2/255", "--batch-size", "3", "--device", "cpu",
                   "--no-progress", "--replication-data-seed", "4", "--out", str(out)])
    methods = result["methods"].set_index("method")
    assert (methods["seeds"] == 2).all() and list(methods.index) == ["mixup", "none"]
    stored = load_outcomes(out / "robustness_outcomes.safetensors")
    assert set(stored) == {"none-s0", "none-s1", "mixup-s0", "mixup-s1"}
    grid = stored["none-s1"]["corruptions/correct"]
    assert grid.dtype == torch.bool and grid.shape == (2, 2, 8) and stored["none-s1"]["fgsm/correct"].shape == (2, 8)
    assert stored["none-s1"]["replication/corruptions/correct"].shape == (2, 2, 8)
    rows = result["table"]  # the counts are the sums of the per-item hits, cell by cell
    for ci, corruption in enumerate(("fog", "snow")):
        for si, severity in enumerate((2, 5)):
            (count,) = rows[(rows["model"] == "none-s1") & (rows["corruption"] == corruption)
                            & (rows["severity"] == severity)]["correct"]
            assert count == int(grid[ci, si].sum())
    summary = result["summary"].set_index("model")
    assert summary.loc["none-s1", "corrupted_accuracy"] == pytest.approx(grid.double().mean().item())
    assert summary.loc["none-s1", "clean_error"] == pytest.approx(1 - stored["none-s1"]["clean/correct"].double().mean().item())
    mean = (summary.loc["none-s0", "corrupted_accuracy"] + summary.loc["none-s1", "corrupted_accuracy"]) / 2
    assert methods.loc["none", "corrupted_accuracy_mean"] == pytest.approx(mean)
    assert methods.loc["none", "corrupted_accuracy_vs_none"] == "baseline"
    assert methods.loc["mixup", "accuracy_fog_vs_none"] in VERDICTS and "fgsm_2_255_ci_low" in methods.columns
    assert methods.loc["mixup", "clean_error_replicated"] in (True, False)
    drop = 1 - summary.loc["none-s1", "clean_error"] - summary.loc["none-s1", "corrupted_accuracy"]
    assert "accuracy_drop_15_mean" not in methods.columns  # needs the 15 benchmark corruptions; only 2 ran
    assert drop == pytest.approx(stored["none-s1"]["clean/correct"].double().mean().item() - grid.double().mean().item())
    report = json.loads((out / "robustness.json").read_text())
    assert {row["method"] for row in report["rows"]} == {"none", "mixup"} and "seed" in report["rows"][0]
    assert "spread_rule" not in report and "comparisons" not in report and report["replication"]["data_seed"] == 4
    assert report["outcomes"] == "robustness_outcomes.safetensors"
    assert sorted(p.name for p in out.iterdir()) == ["robustness.csv", "robustness.html", "robustness.json",
                                                     "robustness_methods.csv", "robustness_outcomes.safetensors"]
    assert "per method: Intervals are 95 %" in capsys.readouterr().out
    assert "spread" not in (out / "robustness.html").read_text()


def test_sharded_item_outcomes_add_up_to_the_single_process_ones():
    torch.manual_seed(0)  # test fixture: an untrained network
    models = {"a": build_model("resnet20", 10).eval()}
    images = torch.rand(7, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(7) % 10
    whole = evaluate_corruptions(models, images, labels, corruptions=["fog"], severities=[3], batch_size=2,
                                 keep_items=True)
    shards = [evaluate_corruptions(models, images, labels, corruptions=["fog"], severities=[3], batch_size=2,
                                   shard=(rank, 3), keep_items=True) for rank in range(3)]
    summed = sum(shard.items.to(torch.uint8) for shard in shards)  # what all_sum does over the ranks
    assert int(summed.max()) == 1 and torch.equal(summed.bool(), whole.items) and whole.items.shape == (1, 1, 1, 7)
    assert int(whole.items.sum()) == int(whole.correct.sum())
    curves = fgsm_curves(models, images, labels, eps=[0.0, 4 / 255], batch_size=3, keep_items=True)
    assert curves["a"].items.shape == (2, 7) and torch.equal(curves["a"].items.sum(1), curves["a"].correct)