"""analysis.stats.compare: coverage on simulated studies with a known truth, paired verdicts, Holm, the metric
hook, determinism and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from analysis.stats import ITEMS_ONLY, SEEDS_AND_ITEMS, compare, ece_metric, holm_adjust

# A simulated study: items are easy (p = 0.98 of being right), hard (0.02) or ambiguous (0.5), in proportions
# 0.6 / 0.2 / 0.2; each seed's model shifts its ambiguous items by a ~ U(−δ, δ); a method with gap g adds g on
# ambiguous items. Truth: mean 0.6·0.98 + 0.2·0.02 + 0.2·0.5 = 0.692, true difference 0.2·g.
ITEM_P, ITEM_SHARE, TRUTH = np.array([0.98, 0.02, 0.5]), [0.6, 0.2, 0.2], 0.692
STUDIES, ITEMS, SEEDS, DELTA = 200, 200, 3, 0.2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Many small calls: on two busy cores torch's thread pool costs ~10× the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def simulated_items(rng, items=ITEMS):
    return ITEM_P[rng.choice(3, size=items, p=ITEM_SHARE)]


def simulated_models(rng, p, *, seeds=SEEDS, delta=DELTA, gap=0.0):
    """[seeds, items] correctness of `seeds` models of one method on items of success probability p."""
    ambiguous = p == 0.5
    shift = rng.uniform(-delta, delta, (seeds, 1)) if delta else np.zeros((seeds, 1))
    return rng.random((seeds, len(p))) < p + (shift + gap) * ambiguous


def paired_study(rng, gap, **kwargs):
    p = simulated_items(rng)
    return {"none": simulated_models(rng, p, **kwargs), "method": simulated_models(rng, p, gap=gap, **kwargs)}


# ------------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("seeds, delta", [(SEEDS, DELTA), (1, 0.0)], ids=["seeds-and-items", "one-seed"])
def test_interval_covers_the_truth_in_90_to_98_percent_of_studies(seeds, delta):
    # 200 independent studies as 200 "methods" of one call: each row's interval is its own study's.
    rng = np.random.default_rng(1)
    studies = {f"study{i}": simulated_models(rng, simulated_items(rng), seeds=seeds, delta=delta)
               for i in range(STUDIES)}
    table = compare(studies, baseline=None, n_boot=1000, generator=np.random.default_rng(2))
    covered = ((table.ci_low <= TRUTH) & (TRUTH <= table.ci_high)).mean()
    assert 0.90 <= covered <= 0.98, covered
    assert set(table.resampled) == {SEEDS_AND_ITEMS if seeds > 1 else ITEMS_ONLY}


def test_difference_interval_covers_the_true_gap():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(STUDIES):
        row = compare(paired_study(rng, gap=0.2), n_boot=1000, generator=rng).iloc[1]
        covered += row.diff_ci_low <= 0.2 * 0.2 <= row.diff_ci_high
    assert 0.90 <= covered / STUDIES <= 0.98, covered / STUDIES


def test_identical_methods_are_indistinguishable_in_at_least_90_percent():
    rng = np.random.default_rng(4)
    verdicts = [compare(paired_study(rng, gap=0.0), n_boot=1000, generator=rng).verdict[1] for _ in range(STUDIES)]
    assert verdicts.count("indistinguishable") >= 0.9 * STUDIES
    assert set(verdicts) <= {"indistinguishable", "better", "worse"}


def test_one_seed_interval_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(5)
    outcomes = rng.random(300) < 0.7
    row = compare({"m": outcomes}, baseline=None, n_boot=5000, generator=rng).iloc[0]
    ours = np.array([row.ci_low, row.ci_high])
    theirs = scipy.stats.bootstrap((outcomes.astype(float),), np.mean, method="percentile", n_resamples=5000,
                                   rng=np.random.default_rng(6)).confidence_interval
    assert row.resampled == ITEMS_ONLY and row["mean"] == pytest.approx(outcomes.mean())
    np.testing.assert_allclose(ours, [theirs.low, theirs.high], atol=0.01)


# --------------------------------------------------------------------------------------------- the verdicts


def test_large_true_gap_is_better_and_lower_is_better_flips_it():
    rng = np.random.default_rng(7)
    p = simulated_items(rng)
    outcomes = {"none": simulated_models(rng, p), "mixup": simulated_models(rng, p, gap=0.45)}
    higher = compare(outcomes, n_boot=500)
    lower = compare(outcomes, n_boot=500, higher_is_better=False)
    assert list(higher.verdict) == ["baseline", "better"] and list(lower.verdict) == ["baseline", "worse"]
    assert higher["diff"][1] > 0.05 and higher.diff_ci_low[1] > 0 and higher.p[1] < 0.01
    assert higher.drop(columns="verdict").equals(lower.drop(columns="verdict"))


def test_pairing_cancels_item_difficulty():
    # Both methods get the same hard items wrong, one seed each; only 12 items differ, all in favour of b. An
    # unpaired comparison would see two wide, overlapping intervals; the paired difference is clearly > 0.
    rng = np.random.default_rng(8)
    a = rng.random(400) < 0.5
    b = a.copy()
    b[np.flatnonzero(~a)[:12]] = True
    table = compare({"none": a, "b": b}, n_boot=1000)
    assert table.ci_low[1] < table.ci_high[0]  # the two intervals overlap
    assert table.verdict[1] == "better" and table.diff_ci_low[1] > 0


def test_holm_adjusted_p_values():
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.5])
    assert holm_adjust([]).shape == (0,)


def test_holm_is_applied_over_the_family_of_the_call():
    # One seed, 400 items: b wins 30 items and loses 14, so p ≈ 0.015 < 0.05 alone, but 10 × p > 0.05 in a
    # family of ten (the other nine are copies of the baseline, p = 1).
    base = np.zeros(400, dtype=bool)
    b = base.copy()
    b[:30] = True
    base[30:44] = True
    alone = compare({"none": base, "b": b}, n_boot=2000, generator=torch.Generator().manual_seed(0))
    assert alone.verdict[1] == "better" and alone.p[1] < 0.05 and alone.diff_ci_low[1] > 0
    family = {"none": base, "b": b, **{f"copy{i}": base.copy() for i in range(9)}}
    table = compare(family, n_boot=2000, generator=torch.Generator().manual_seed(0))
    assert table.verdict[1] == "indistinguishable" and table.diff_ci_low[1] > 0
    assert table.p_holm[1] == pytest.approx(min(1.0, 10 * table.p[1]))
    assert (table.p[2:] == 1).all() and (table.verdict[2:] == "indistinguishable").all()
    assert table.attrs["correction"].startswith("holm")


def test_table_layout_and_unequal_seed_counts():
    rng = np.random.default_rng(9)
    p = simulated_items(rng)
    outcomes = {"cutmix": simulated_models(rng, p, seeds=1), "none": torch.from_numpy(simulated_models(rng, p)),
                "fmix": simulated_models(rng, p, seeds=2).astype(np.float32)}
    table = compare(outcomes, n_boot=200)
    assert list(table.method) == ["cutmix", "none", "fmix"] and list(table.seeds) == [1, 3, 2]
    assert list(table.columns) == ["method", "mean", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high",
                                   "p", "p_holm", "verdict", "seeds", "items", "resampled"]
    assert table.verdict[1] == "baseline" and np.isnan(table["diff"][1]) and (table["items"] == ITEMS).all()
    assert list(table.resampled) == [ITEMS_ONLY, SEEDS_AND_ITEMS, SEEDS_AND_ITEMS]
    assert (table.ci_low <= table["mean"]).all() and (table["mean"] <= table.ci_high).all()
    assert table["mean"][1] == pytest.approx(outcomes["none"].double().mean().item())
    assert table.attrs["level"] == 0.95 and table.attrs["n_boot"] == 200
    alone = compare(outcomes, baseline=None, n_boot=200)
    assert alone.verdict.isna().all() and alone["diff"].isna().all()


# ------------------------------------------------------------------------------------------- metric hook


def weighted_mean(values, weights):
    return weights.to(values.dtype) @ values / weights.sum(1)


def test_metric_hook_with_the_mean_reproduces_the_built_in_statistic():
    rng = np.random.default_rng(10)
    outcomes = {"none": rng.random((3, 150)), "m": rng.random((2, 150))}
    built_in = compare(outcomes, n_boot=300, generator=torch.Generator().manual_seed(1))
    hooked = compare(outcomes, n_boot=300, generator=torch.Generator().manual_seed(1), metric=weighted_mean)
    numbers = ["mean", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high"]
    np.testing.assert_allclose(hooked[numbers].to_numpy(float), built_in[numbers].to_numpy(float), atol=1e-6)


def reference_ece(confidence, correct, bins=15):
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return sum(abs((correct[index == b] - confidence[index == b]).sum()) for b in range(bins)) / len(confidence)


def test_ece_metric_recomputes_the_binned_statistic_per_resample():
    rng = np.random.default_rng(11)
    confidence = rng.uniform(0.3, 1.0, (2, 2, 500))
    calibrated = rng.random((2, 500)) < confidence[0]  # right as often as it is confident
    overconfident = rng.random((2, 500)) < confidence[1] - 0.25
    outcomes = {"none": np.stack([confidence[0], calibrated], -1), "m": np.stack([confidence[1], overconfident], -1)}
    table = compare(outcomes, n_boot=300, metric=ece_metric(), higher_is_better=False)
    expected = np.mean([reference_ece(confidence[1][s], overconfident[s]) for s in range(2)])
    assert table["mean"][1] == pytest.approx(expected)
    assert table.verdict[1] == "worse" and table["diff"][1] > 0.15
    assert table.ci_low[0] < table["mean"][0] < table.ci_high[0]


def test_metric_must_return_one_value_per_weight_row():
    with pytest.raises(ValueError, match=r"metric must return a tensor of shape \[1\]"):
        compare({"none": np.ones((1, 5, 2))}, metric=lambda values, weights: values.sum())
    with pytest.raises(ValueError, match=r"ece_metric reads outcomes \[seeds, items, 2\]"):
        compare({"none": np.ones((1, 5))}, metric=ece_metric())


# ------------------------------------------------------------------------------------------- determinism


def test_deterministic_under_a_seed(device):
    rng = np.random.default_rng(12)
    outcomes = {"none": torch.from_numpy(rng.random((3, 100))).to(device),
                "m": torch.from_numpy(rng.random((3, 100))).to(device)}
    first = compare(outcomes, n_boot=200, generator=torch.Generator(device).manual_seed(3))
    again = compare(outcomes, n_boot=200, generator=torch.Generator(device).manual_seed(3))
    other = compare(outcomes, n_boot=200, generator=torch.Generator(device).manual_seed(4))
    assert first.equals(again) and not first.equals(other)
    assert compare(outcomes, n_boot=200).equals(compare(outcomes, n_boot=200))  # None: seeded with 0
    numpy_seeded = [compare(outcomes, n_boot=200, generator=np.random.default_rng(5)) for _ in range(2)]
    assert numpy_seeded[0].equals(numpy_seeded[1])


# ------------------------------------------------------------------------------------------------ bad input

GOOD = np.ones((2, 10))


@pytest.mark.parametrize("outcomes, kwargs, message", [
    ({"none": GOOD, "m": np.ones((2, 9))}, {}, r"same items \(paired\): 'm' has shape \(2, 9\) \(items 9\)"),
    ({"none": GOOD, "m": np.ones((0, 10))}, {}, r"outcomes\['m'\] is empty \(shape \(0, 10\)\)"),
    ({"none": GOOD, "m": []}, {}, r"outcomes\['m'\] is empty"),
    ({"none": GOOD, "m": np.where(GOOD > 0, np.nan, 0)}, {},
     r"outcomes\['m'\] has a non-finite value at index \(0, 0\)"),
    ({"none": np.ones((2, 1))}, {}, r"outcomes\['none'\] has 1 item; at least 2"),
    ({"none": np.ones((2, 3, 4))}, {}, r"outcomes\['none'\] must have shape \[seeds, items\] or \[items\], got shape"),
    ({"none": ["a", "b"]}, {}, r"outcomes\['none'\] must be a numeric"),
    ({}, {}, r"outcomes must be a non-empty mapping .* got an empty mapping"),
    ([GOOD], {}, r"outcomes must be a non-empty mapping .* got list"),
    ({"cutmix": GOOD}, {}, r"baseline 'none' is not among the methods \['cutmix'\]"),
    ({"none": GOOD}, {"level": 1.0}, r"level must be in \(0, 1\), got 1.0"),
    ({"none": GOOD}, {"level": 0}, r"level must be in \(0, 1\), got 0.0"),
    ({"none": GOOD}, {"n_boot": 99}, r"n_boot must be an integer in \[100, inf\), got 99"),
    ({"none": GOOD}, {"generator": 3}, r"generator must be a torch.Generator, a numpy.random.Generator or None"),
    ({"none": GOOD}, {"metric": "ece"}, r"metric must be None or a callable"),
], ids=["different-items", "no-seeds", "empty", "nan", "one-item", "3-d", "text", "no-methods", "not-a-mapping",
        "baseline", "level-1", "level-0", "n-boot", "generator", "metric"])
def test_bad_input_is_a_one_line_value_error(outcomes, kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        compare(outcomes, **kwargs)
    assert "\n" not in str(raised.value)
