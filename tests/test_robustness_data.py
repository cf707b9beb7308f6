"""analysis.robustness.data: the one engine of the command line and the Robustness page — stored-set discovery,
evenly spaced selection, refused counts, the ImageNet-C class check, and the report with method and seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from analysis.robustness import evaluate_corruptions
from analysis.stats import VERDICTS
from analysis.robustness.data import (build_report, check_count, evenly_spaced, prepare_data,
                                      stored_corruptions)

V2 = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]


def _meta(**extra):
    return {"num_classes": 10, "input_size": 16, "classes": V2, "data_seed": 0, **extra}


def test_evenly_spaced_keeps_the_dataset_at_its_size_and_refuses_more():
    # The page used `n >= total`, the command line `n == total`: one rule now, and more than there is refused.
    data = TensorDataset(torch.arange(10))
    assert evenly_spaced(data, 10) is data
    assert [int(data[i][0]) for i in evenly_spaced(data, 4).indices] == [0, 2, 5, 7]
    for bad in (11, 0, True):
        with pytest.raises(ValueError, match=r"n must be an integer in 1 … 10 \(the dataset's size\)"):
            evenly_spaced(data, bad)


def test_check_count_refuses_instead_of_capping():
    assert check_count(None, 20, "cifar10-c") == 20 and check_count(20, 20, "cifar10-c") == 20
    with pytest.raises(ValueError, match="n must be at most 20 for cifar10-c .*got 256"):
        check_count(256, 20, "cifar10-c")


def _cifar_c(root, names=("fog",), rows=20):
    root.mkdir()
    generator = np.random.default_rng(0)
    for name in names:
        np.save(root / f"{name}.npy", generator.integers(0, 256, (rows, 32, 32, 3), dtype=np.uint8))
    np.save(root / "labels.npy", generator.integers(0, 10, rows))
    return root


def test_stored_cifar_c_counts_are_refused_not_capped(tmp_path):
    root = _cifar_c(tmp_path / "CIFAR-10-C", names=("fog", "snow"))
    assert stored_corruptions(root, "cifar10-c") == ["snow", "fog"]  # CORRUPTIONS order
    metas = [_meta(input_size=32, classes=[f"c{i}" for i in range(10)])]
    data = prepare_data("cifar10-c", metas, root=root, corruptions=["fog", "frost"], severities=[1, 2], n=4)
    assert data.corruptions == ("fog",) and len(data.stored["fog", 2]) == 4
    assert any("left out: frost" in note for note in data.notes)
    with pytest.raises(ValueError, match="n must be at most 4 for cifar10-c"):  # 20 rows = 4 per severity
        prepare_data("cifar10-c", metas, root=root, corruptions=["fog"], severities=[1], n=8)
    with pytest.raises(ValueError, match="the checkpoints have 100 classes, cifar10-c has 10"):
        prepare_data("cifar10-c", [_meta(input_size=32, num_classes=100)], root=root, n=4)


def test_imagenet_c_labels_must_be_the_checkpoints_classes(tmp_path):
    from PIL import Image

    root = tmp_path / "ImageNet-C"
    for wnid in ("n01", "n02", "n03"):
        (root / "fog" / "1" / wnid).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(root / "fog" / "1" / wnid / "a.JPEG")
    assert stored_corruptions(root, "imagenet-c") == ["fog"]
    with pytest.raises(ValueError, match="the checkpoints have 2 classes, imagenet-c has 3"):
        prepare_data("imagenet-c", [_meta(num_classes=2, classes=["a", "b"])], root=root, severities=[1])
    data = prepare_data("imagenet-c", [_meta(num_classes=3, classes=["n01", "n02", "n03"])], root=root,
                        severities=[1], n=3)
    assert data.alexnet and data.num_classes == 3 and len(data.stored["fog", 1]) == 3


def test_shapes_data_are_the_version_the_checkpoints_name():
    v1 = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "ellipse", "crescent"]
    assert "version 1" in prepare_data("shapes-c", [_meta(classes=v1)], n=4, severities=[1]).description
    assert "version 2" in prepare_data("shapes-c", [_meta()], n=4, severities=[1]).description
    with pytest.raises(ValueError, match="different shapes versions"):
        prepare_data("shapes-c", [_meta(classes=v1), _meta()], n=4, severities=[1])


def test_report_rows_carry_method_and_seed_and_seeds_give_a_per_method_table():
    from analysis.robustness.reports import read_report
    from app.lib.robustness_runs import report_json

    models = {f"{method}-s{seed}": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
              for method in ("none", "mixup") for seed in (0, 1, 2)}
    for index, model in enumerate(models.values()):
        torch.nn.init.normal_(model[1].weight, generator=torch.Generator().manual_seed(index))
    data = prepare_data("shapes-c", [_meta()], n=8, corruptions=["fog"], severities=[1])
    results = evaluate_corruptions(models, data.clean, data.labels, corruptions=data.corruptions,
                                   severities=data.severities, generator_seed=0, keep_items=True)
    checkpoints = {name: {"method": name.split("-")[0], "seed": int(name[-1])} for name in models}
    report = build_report(results, {}, alexnet=False, data={"name": "shapes-c"}, checkpoints=checkpoints,
                          settings={})
    rows = report["rows"]
    assert list(rows.columns[:3]) == ["model", "method", "seed"] and set(rows["method"]) == {"none", "mixup"}
    methods = report["methods"].set_index("method")
    none = report["summary"][report["summary"]["method"] == "none"]["corrupted_accuracy"]
    assert methods.loc["none", "corrupted_accuracy_mean"] == pytest.approx(none.mean())
    assert methods.loc["none", "corrupted_accuracy_ci_low"] <= none.mean() <= methods.loc["none", "corrupted_accuracy_ci_high"]
    assert methods.loc["mixup", "corrupted_accuracy_vs_none"] in VERDICTS
    assert methods.loc["none", "corrupted_accuracy_vs_none"] == "baseline" and "bootstrap" in report["interval"]
    document, reread, _ = read_report(report_json(report), "robustness.json")  # the reader takes the new columns
    assert reread.correct.tolist() == results.correct.tolist()
    single = build_report(results, {}, alexnet=False, data={}, checkpoints={}, settings={})
    assert "methods" not in single and single["rows"]["method"].isna().all()
    counts_only = evaluate_corruptions(models, data.clean, data.labels, corruptions=data.corruptions,
                                       severities=data.severities, generator_seed=0)
    # Without per-item outcomes there is nothing to compare paired: no per-method verdicts.
    assert "methods" not in build_report(counts_only, {}, alexnet=False, data={}, checkpoints=checkpoints, settings={})


def test_the_per_method_table_has_fgsm_accuracy_per_eps_with_its_interval():
    from analysis.robustness.evaluate import FGSMCurve

    data = prepare_data("shapes-c", [_meta()], n=4, corruptions=["fog"], severities=[1])
    models = {f"{method}-s{seed}": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
              for method in ("none", "mixup") for seed in (0, 1)}
    results = evaluate_corruptions(models, data.clean, data.labels, corruptions=data.corruptions,
                                   severities=data.severities, generator_seed=0)
    correct = {"none-s0": [4, 2], "none-s1": [4, 0], "mixup-s0": [4, 3], "mixup-s1": [3, 3]}
    items = {name: torch.arange(4)[None] < torch.tensor(values)[:, None] for name, values in correct.items()}  # [E, 4]
    curves = {name: FGSMCurve(eps=(0.0, 2 / 255), correct=torch.tensor(values), total=torch.tensor(4),
                              items=items[name]) for name, values in correct.items()}
    checkpoints = {name: {"method": name.split("-")[0], "seed": int(name[-1])} for name in models}
    report = build_report(results, curves, alexnet=False, data={}, checkpoints=checkpoints, settings={})
    methods = report["methods"].set_index("method")
    assert methods.loc["none", "fgsm_2_255_mean"] == pytest.approx(0.25)
    assert methods.loc["mixup", "fgsm_2_255_mean"] == pytest.approx(0.75)
    assert methods.loc["mixup", "fgsm_0_255_mean"] == pytest.approx(0.875)
    assert methods.loc["mixup", "fgsm_2_255_diff"] == pytest.approx(0.5)
    assert methods.loc["mixup", "fgsm_2_255_diff_ci_low"] <= 0.5 <= methods.loc["mixup", "fgsm_2_255_diff_ci_high"]
    assert methods.loc["mixup", "fgsm_2_255_vs_none"] in VERDICTS


def test_per_image_metrics_average_the_cells_and_pair_the_drop_to_corruption():
    from analysis.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTIONS
    from analysis.robustness.tables import metric_cells

    generator = torch.Generator().manual_seed(0)
    grid = torch.rand(len(CORRUPTIONS), 2, 6, generator=generator) < 0.7  # [C, S, N]
    clean = torch.tensor([True, True, False, True, False, True])
    cells = metric_cells({"m": {"clean/correct": clean, "corruptions/correct": grid,
                                "fgsm/correct": torch.stack([clean, ~clean])}}, CORRUPTIONS, (1, 5), (0.0, 2 / 255))
    benchmark = grid[[CORRUPTIONS.index(c) for c in BENCHMARK_CORRUPTIONS]].double().mean((0, 1))
    assert torch.allclose(cells[(), "mean_corrupted_accuracy_15"]["m"], benchmark)
    assert torch.allclose(cells[(), "accuracy_drop_15"]["m"], clean.double() - benchmark)
    assert torch.allclose(cells[(), "accuracy_fog"]["m"], grid[CORRUPTIONS.index("fog")].double().mean(0))
    assert torch.equal(cells[(), "clean_error"]["m"], 1.0 - clean.double())
    assert torch.equal(cells[(), "fgsm_2_255"]["m"], (~clean).double())
    assert cells[(), "corrupted_accuracy"]["m"].mean().item() == pytest.approx(grid.double().mean().item())
