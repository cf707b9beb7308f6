"""analysis.seeds: mean ± sd over seeds per method, and the spread rule |Δmean| < sd_a + sd_b."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.seeds import formatted, has_seeds, seed_summary, spread_comparisons, verdict


def _table():
    return pd.DataFrame({"method": ["none"] * 3 + ["mixup"] * 3 + ["cutmix", None],
                         "seed": [0, 1, 2, 0, 1, 2, 0, 0],
                         "accuracy": [0.80, 0.82, 0.81, 0.85, 0.86, 0.84, 0.70, 0.5]})


def test_mean_and_sample_sd_per_method_by_hand():
    summary = seed_summary(_table(), ["accuracy"]).set_index("method")
    assert list(summary.index) == ["none", "mixup", "cutmix"]  # the unknown method is left out
    assert summary.loc["none", "accuracy_mean"] == pytest.approx(0.81)
    assert summary.loc["none", "accuracy_sd"] == pytest.approx(0.01)  # ddof 1: √((0.01² + 0.01²) / 2)
    assert math.isnan(summary.loc["cutmix", "accuracy_sd"]) and summary.loc["cutmix", "seeds"] == 1
    assert summary.loc["mixup", "seed_list"] == "0 1 2"
    assert summary.loc["mixup", "accuracy_vs_none"] == "beyond spread"  # |0.85 − 0.81| = 0.04 ≥ 0.02
    assert summary.loc["cutmix", "accuracy_vs_none"] == "one seed"


def test_the_spread_rule_at_its_boundary():
    assert verdict(0.5, 0.25, 0.9375, 0.25) == "within spread"
    assert verdict(0.5, 0.25, 1.0, 0.25) == "beyond spread"  # |Δ| = sd_a + sd_b is not within (exact in binary)
    assert verdict(0.5, float("nan"), 0.9, 0.1) == "one seed"


def test_pairs_and_the_readable_table():
    summary = seed_summary(_table(), ["accuracy"])
    pairs = spread_comparisons(summary, ["accuracy"])
    assert len(pairs) == 3 and set(pairs["verdict"]) == {"beyond spread", "one seed"}
    shown = formatted(summary, ["accuracy"]).set_index("method")
    assert shown.loc["none", "accuracy"] == "0.810 ± 0.010" and shown.loc["cutmix", "accuracy"] == "0.700"
    assert shown.loc["none", "accuracy_vs_none"] == "(baseline)"


def test_has_seeds_needs_two_seeds_of_one_method():
    assert has_seeds(_table())
    assert not has_seeds(pd.DataFrame({"method": ["a", "b"], "seed": [0, 0]}))
    assert not has_seeds(pd.DataFrame({"method": ["a", "a"]}))
    with pytest.raises(ValueError, match=r"table must have the columns \['method', 'seed'\], missing \['seed'\]"):
        seed_summary(pd.DataFrame({"method": ["a"]}), ["x"])
