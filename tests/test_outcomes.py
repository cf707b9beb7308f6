"""analysis.outcomes: the per-item outcome store round-trips, is compact, atomic and refuses bad files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from analysis.outcomes import FORMAT, load_outcomes, save_outcomes


def study_table():
    rng = np.random.default_rng(0)
    return {
        "cutmix-s0": {"correct": rng.random(1001) < 0.7, "confidence": rng.random(1001),
                      "corrupted": rng.random((5, 1001)) < 0.5, "predicted": rng.integers(0, 100, 1001)},
        "none-s0": {"correct": torch.rand(3, 7, generator=torch.Generator().manual_seed(0)) < 0.5,
                    "score": torch.tensor([np.nan, -np.inf, 1e4, -3.25]), "nothing": np.zeros(0, dtype=bool)},
    }


def test_round_trip_exact_for_bools_and_integers_float16_tolerance_for_floats(tmp_path):
    table = study_table()
    path = save_outcomes(tmp_path / "outcomes.safetensors", table)
    loaded = load_outcomes(path)
    assert list(loaded) == list(table) and all(list(loaded[k]) == list(table[k]) for k in table)
    for key, metrics in table.items():
        for metric, value in metrics.items():
            expected = torch.as_tensor(value)
            got = loaded[key][metric]
            assert got.shape == expected.shape, (key, metric)
            if expected.dtype == torch.bool or not expected.is_floating_point():
                assert got.dtype == expected.dtype and torch.equal(got, expected), (key, metric)
            else:
                assert got.dtype == torch.float32
                torch.testing.assert_close(got, expected.float(), rtol=2**-11, atol=1e-7, equal_nan=True)


def test_booleans_are_bit_packed(tmp_path):
    path = save_outcomes(tmp_path / "o.safetensors", {"m": {"correct": np.ones(80_000, dtype=bool)}})
    assert os.path.getsize(path) < 10_000 + 1_000  # 80 000 flags in 10 000 bytes, plus the header


def test_write_is_atomic_and_replaces_the_old_file(tmp_path):
    path = tmp_path / "o.safetensors"
    save_outcomes(path, {"a": {"x": np.arange(3)}})
    save_outcomes(path, {"b": {"y": np.arange(4)}})
    assert list(load_outcomes(path)) == ["b"]
    assert os.listdir(tmp_path) == ["o.safetensors"]  # no temporary file left behind
    with pytest.raises(ValueError, match="float16 storage holds at most 65504"):
        save_outcomes(path, {"c": {"z": np.array([1e6])}})
    assert list(load_outcomes(path)) == ["b"] and os.listdir(tmp_path) == ["o.safetensors"]


def write_foreign(path, metadata, tensors=None):
    save_file(tensors or {"t0": np.zeros(2, dtype=np.uint8)}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b"not a safetensors file at all"), "not a readable outcomes file"),
    (lambda p: None, "is not a file"),
    (lambda p: write_foreign(p, {"format": "pt"}), "metadata format is 'pt'"),
    (lambda p: write_foreign(p, {"format": FORMAT, "outcomes": "{"}), "not valid JSON"),
    (lambda p: write_foreign(p, {"format": FORMAT, "outcomes": json.dumps(
        [{"key": "a", "metric": "m", "tensor": "t0", "shape": [100], "dtype": "bool"}])}), "do not hold shape"),
    (lambda p: write_foreign(p, {"format": FORMAT, "outcomes": json.dumps(
        [{"key": "a", "metric": "m", "tensor": "t9", "shape": [2], "dtype": "uint8"}])}), "missing tensor"),
    (lambda p: write_foreign(p, {"format": FORMAT, "outcomes": json.dumps(
        [{"key": "a", "metric": "m", "tensor": "t0", "shape": [2], "dtype": "object"}])}), "not bool, float16"),
], ids=["garbage", "missing", "foreign", "bad-json", "bad-shape", "bad-name", "bad-dtype"])
def test_a_bad_file_is_a_one_line_value_error_naming_the_path(tmp_path, make, reason):
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(ValueError, match=reason) as raised:
        load_outcomes(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("table, message", [
    ({}, "table must be a non-empty mapping"),
    ({"": {"x": [1]}}, "table keys must be non-empty strings"),
    ({"a": {}}, r"table\['a'\] must be a non-empty mapping"),
    ({"a": {"x": ["text"]}}, r"table\['a'\]\['x'\] must hold bool, integer or floating values"),
])
def test_bad_tables_are_refused(tmp_path, table, message):
    with pytest.raises(ValueError, match=message):
        save_outcomes(tmp_path / "o.safetensors", table)
    assert not os.listdir(tmp_path)
