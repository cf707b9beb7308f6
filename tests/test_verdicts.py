"""analysis.verdicts: per-item outcomes arranged per method for compare(), paired NaN handling, replication."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from analysis.verdicts import (by_method, ci_text, method_table, per_item_mean, verdict_table, vs_baseline,
                               wants_method_table, with_replication)


def hits(p, n=400, seed=0):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)) < p


def test_by_method_stacks_seeds_in_seed_order_and_leaves_out_unknown_methods():
    outcomes = {"b-s1": torch.ones(3), "a-s0": torch.zeros(3), "b-s0": torch.full((3,), 2.0), "x": torch.ones(3)}
    grouped = by_method(outcomes, {"b-s1": "b", "a-s0": "a", "b-s0": "b", "x": None},
                        {"b-s1": 1, "a-s0": 0, "b-s0": 0})
    assert list(grouped) == ["a", "b"] and grouped["b"][:, 0].tolist() == [2.0, 1.0]


def test_a_table_does_not_depend_on_the_order_the_checkpoints_were_listed_in():
    generator = torch.Generator().manual_seed(0)
    names = [f"{m}-s{s}" for m in ("none", "mixup", "cutmix") for s in range(3)]
    outcomes = {name: (torch.rand(200, generator=generator) < 0.8).double() for name in names}
    methods, seeds = {n: n.split("-")[0] for n in names}, {n: int(n[-1]) for n in names}
    tables = [verdict_table(by_method(dict(order), methods, seeds), n_boot=300).set_index("method").sort_index()
              for order in (outcomes.items(), reversed(outcomes.items()))]
    pd.testing.assert_frame_equal(*tables)


def test_an_item_undefined_for_any_model_is_dropped_for_all():
    values = {"none": torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]),
              "cutmix": torch.tensor([[1.0, math.nan, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])}
    table = verdict_table(values, n_boot=200).set_index("method")
    assert (table["items"] == 3).all() and (table["items_dropped"] == 1).all()
    assert table.loc["none", "mean"] == pytest.approx(2 / 6) and table.loc["cutmix", "mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="only 1 item"):
        verdict_table({"none": torch.tensor([[math.nan, 1.0, 1.0]]), "a": torch.tensor([[1.0, math.nan, 0.0]])},
                      n_boot=200)


def test_replicated_means_the_same_verdict_on_both_splits():
    first = verdict_table({"none": hits(0.5)[None], "good": hits(0.9, seed=1)[None], "same": hits(0.5, seed=2)[None]},
                          n_boot=200)
    second = verdict_table({"none": hits(0.5, seed=3)[None], "good": hits(0.9, seed=4)[None],
                            "same": hits(0.9, seed=5)[None]}, n_boot=200)
    joined = with_replication(first, second).set_index("method")
    assert joined.loc["good", "verdict"] == joined.loc["good", "rep_verdict"] == "better"
    assert joined.loc["good", "replicated"] is True and joined.loc["none", "replicated"] is None
    assert joined.loc["same", "verdict"] == "indistinguishable" and joined.loc["same", "rep_verdict"] == "better"
    assert joined.loc["same", "replicated"] is False
    record = vs_baseline(joined.reset_index().to_dict("records")[1])
    assert record["method"] == "none" and record["verdict"] == "better" and record["replicated"] is True
    assert record["ci"][0] <= record["diff"] <= record["ci"][1] and 0 < record["p"] <= 0.05
    assert vs_baseline(joined.reset_index().to_dict("records")[0]) is None


def test_method_table_has_one_row_per_method_and_group_with_intervals_and_verdicts():
    cells = {(("solid",), "accuracy"): {"none-s0": hits(0.4), "cutmix-s0": hits(0.7, seed=1)},
             (("smooth",), "accuracy"): {"none-s0": hits(0.7, seed=2), "cutmix-s0": hits(0.72, seed=3)}}
    methods = {"none-s0": "none", "cutmix-s0": "cutmix"}
    table = method_table(cells, methods=methods, seeds={"none-s0": 0, "cutmix-s0": 0},
                         higher_is_better={"accuracy": True}, by=("kind",), n_boot=200)
    assert list(zip(table["method"], table["kind"])) == [("none", "solid"), ("none", "smooth"), ("cutmix", "solid"),
                                                         ("cutmix", "smooth")]
    assert list(table["accuracy_vs_none"]) == ["baseline", "baseline", "better", "indistinguishable"]
    assert (table["accuracy_ci_low"] <= table["accuracy_mean"]).all() and "accuracy_p" in table.columns
    assert table["seed_list"].tolist() == ["0"] * 4


def test_small_helpers():
    assert per_item_mean(torch.tensor([[1.0, math.nan], [0.0, 1.0], [math.nan, math.nan]]), 2)[:2].tolist() == [1.0, 0.5]
    assert ci_text(0.9431, 0.938, 0.948, scale=100) == "94.31 [93.80, 94.80]"
    assert ci_text(0.02, -0.01, 0.05, scale=100, sign=True, digits=1) == "+2.0 [-1.0, +5.0]"
    assert not wants_method_table({"a": "none"}) and wants_method_table({"a": "none", "b": "none"})
    assert wants_method_table({"a": "none", "b": "mixup"}) and not wants_method_table({"a": None, "b": None})
