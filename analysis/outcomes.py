"""Per-item outcomes of a study, stored compactly and safely, for :func:`analysis.stats.compare` to re-read.

A study report keeps, per model (key, e.g. ``"cutmix-s0"``), per metric (e.g. ``"correct"``,
``"confidence"``) the outcome of every item: an array ``[items]`` or ``[..., items]`` (``[severities,
items]``). :func:`save_outcomes` writes them as one safetensors file — tensors and a JSON string, nothing that
runs on load (never pickle):

* booleans are bit-packed (``numpy.packbits``, little bit order): 10 000 correctness flags take 1 250 bytes;
* floating values are stored as float16 (relative error ≤ 2⁻¹¹ ≈ 5e-4, absolute ≤ 3e-8 below 6e-5; a finite
  value beyond float16's ±65504 is refused rather than turned into inf); NaN and ±inf are kept;
* integers (predicted labels, …) are stored exactly in their own dtype;
* the safetensors metadata holds, under ``"outcomes"``, a JSON list of ``{key, metric, tensor, shape,
  dtype}`` (the original dtype kind: ``bool``, ``float16`` or the integer dtype), and ``"format"``.

The write is atomic (a temporary file in the same folder, fsync, ``os.replace`` — the project's
:func:`~msda.training.checkpoint.atomic_write`), so a reader never sees half a file. :func:`load_outcomes` gives
back bool tensors, float32 tensors (from float16) and integer tensors, on the CPU; a file that is not one of
ours, or is damaged, raises a one-line ValueError naming the path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from msda.training.checkpoint import atomic_write, load_json_bounded

__all__ = ["FORMAT", "load_outcomes", "save_outcomes"]

FORMAT = "msda-lab outcomes v1"
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_MAX_META_BYTES = 64 << 20  # the JSON index: ~100 bytes per array


def save_outcomes(path: str | os.PathLike, table: Mapping[str, Mapping[str, object]]) -> Path:
    """Write `table` (key → {metric → array [items] or [..., items]}) to the safetensors file `path`.

    Arrays may be numpy arrays, torch tensors or nested lists of bool, integer or floating values. Returns
    the path. Raises ValueError (one line) for an empty table, a non-string or empty name, a non-numeric
    array or a finite float too large for float16.
    """
    from safetensors.numpy import save

    if not isinstance(table, Mapping) or not table:
        raise ValueError(f"table must be a non-empty mapping key → {{metric: array}}, got {type(table).__name__}")
    tensors, index = {}, []
    for key, metrics in table.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"table keys must be non-empty strings, got {key!r}")
        if not isinstance(metrics, Mapping) or not metrics:
            raise ValueError(f"table[{key!r}] must be a non-empty mapping metric → array, got "
                             f"{type(metrics).__name__}")
        for metric, value in metrics.items():
            if not isinstance(metric, str) or not metric:
                raise ValueError(f"table[{key!r}] metric names must be non-empty strings, got {metric!r}")
            array = _as_numpy(value, f"table[{key!r}][{metric!r}]")
            name = f"t{len(index)}"
            stored, kind = _encode(array, f"table[{key!r}][{metric!r}]")
            tensors[name] = stored
            index.append({"key": key, "metric": metric, "tensor": name, "shape": list(array.shape), "dtype": kind})
    data = save(tensors, metadata={"format": FORMAT, "outcomes": json.dumps(index)})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the rename makes them visible

    path = atomic_write(path, write)
    _fsync_folder(path.parent)
    return path


def load_outcomes(path: str | os.PathLike) -> dict[str, dict[str, Tensor]]:
    """Read a file :func:`save_outcomes` wrote: key → {metric → tensor} (bool, float32 or the stored integer
    dtype; CPU), in the order written. Raises ValueError naming `path` when it is missing, not a safetensors
    file, not an outcomes file, or inconsistent."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file; expected an outcomes .safetensors file written by save_outcomes")
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ValueError(f"its metadata format is {metadata.get('format')!r}, expected {FORMAT!r}")
            index = load_json_bounded(metadata.get("outcomes", ""), what="its outcomes index",
                                      max_bytes=_MAX_META_BYTES)
            if not isinstance(index, list):
                raise ValueError("its outcomes index is not a list")
            names = set(handle.keys())
            table: dict[str, dict[str, Tensor]] = {}
            for entry in index:
                key, metric, name, shape, kind = _entry(entry, names)
                table.setdefault(key, {})[metric] = _decode(handle.get_tensor(name), shape, kind)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as error:
        reason = " ".join(str(error).split())  # one line, whatever the library printed
        raise ValueError(f"{path} is not a readable outcomes file ({reason})") from None
    return table


def _as_numpy(value, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a numeric array, got {type(value).__name__}") from None
    if array.dtype != np.bool_ and array.dtype.kind not in "iuf":
        raise ValueError(f"{what} must hold bool, integer or floating values, got dtype {array.dtype}")
    return array


def _encode(array: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """(stored array, dtype kind) of one outcome array."""
    if array.dtype == np.bool_:
        return np.packbits(array.reshape(-1), bitorder="little"), "bool"
    if array.dtype.kind == "f":
        finite = array[np.isfinite(array)]
        if finite.size and float(np.abs(finite).max()) > _FLOAT16_MAX:
            raise ValueError(f"{what} has a finite value of {float(np.abs(finite).max()):g} in magnitude; "
                             f"float16 storage holds at most {_FLOAT16_MAX:g}")
        return np.ascontiguousarray(array, dtype=np.float16), "float16"
    return np.ascontiguousarray(array), str(array.dtype)


def _entry(entry, names: set[str]) -> tuple[str, str, str, tuple[int, ...], str]:
    if not isinstance(entry, dict):
        raise ValueError("an index entry is not an object")
    key, metric, name, shape, kind = (entry.get(field) for field in ("key", "metric", "tensor", "shape", "dtype"))
    if not (isinstance(key, str) and isinstance(metric, str) and name in names and isinstance(shape, list)
            and all(isinstance(size, int) and size >= 0 for size in shape) and isinstance(kind, str)):
        raise ValueError(f"index entry {str(entry)[:200]} is malformed or names a missing tensor")
    return key, metric, name, tuple(shape), kind


def _decode(stored: np.ndarray, shape: tuple[int, ...], kind: str) -> Tensor:
    count = int(np.prod(shape, dtype=np.int64))
    if kind == "bool":
        if stored.dtype != np.uint8 or stored.shape != ((count + 7) // 8,):
            raise ValueError(f"packed booleans of shape {stored.shape} ({stored.dtype}) do not hold shape {shape}")
        flags = np.unpackbits(stored, count=count, bitorder="little").astype(np.bool_)
        return torch.from_numpy(flags.reshape(shape))
    expected = np.dtype(np.float16) if kind == "float16" else _integer_dtype(kind)
    if stored.dtype != expected or stored.shape != shape:
        raise ValueError(f"tensor of shape {stored.shape} ({stored.dtype}) does not match shape {shape} ({kind})")
    if kind == "float16":
        stored = stored.astype(np.float32)
    return torch.from_numpy(np.array(stored))  # a writable copy, not a view of the file's buffer


def _integer_dtype(kind: str) -> np.dtype:
    try:
        dtype = np.dtype(kind)
    except TypeError:
        raise ValueError(f"dtype {kind!r} is not bool, float16 or an integer dtype") from None
    if dtype.kind not in "iu":
        raise ValueError(f"dtype {kind!r} is not bool, float16 or an integer dtype")
    return dtype


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
