"""The checkpoint format written by ``msda.train`` and read by ``analysis.load_checkpoint``; resume state.

A checkpoint is one ``.safetensors`` file: the tensors are the bare network's state dict (the keys of
``msda.models.build_model(arch, num_classes)``, no wrapper prefix), and the header's metadata holds
``{"format": "msda-checkpoint/1", "msda": <JSON>}`` with: arch, num_classes, classes, input_size, mean, std
(the network takes images normalised with them; ``analysis.load_checkpoint`` wraps it so it takes [0, 1]
images), dataset, method, method_params, alpha, prob, label_smoothing, recipe, epochs, seed,
test_accuracy, test_images, train_images, command, msda_version, torch_version.

No pickles anywhere: resume state is saved with ``torch.save`` but only ever loaded with
``weights_only=True`` (tensors, numbers, strings, lists and dicts).

Every write goes to a temporary file in the same folder and is renamed into place, so a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .outputs import disk_full_as_error

FORMAT = "msda-checkpoint/1"
_UMASK = os.umask(0)
os.umask(_UMASK)
REQUIRED_META = ("arch", "num_classes", "classes", "input_size", "mean", "std")

MAX_JSON_DEPTH = 32
"""Deepest nesting accepted in JSON read from a file (checkpoint metadata, reports): ours nests 4 levels;
a file nested thousands deep would otherwise raise RecursionError in the parser or in whatever walks it."""

MAX_META_BYTES = 1 << 20
"""Largest checkpoint metadata accepted (1 MiB): ours is about 2 kB even with 1000 class names."""


def load_json_bounded(text: str | bytes, *, what: str, max_bytes: int = MAX_META_BYTES,
                      max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` with the size and nesting depth bounded; a ValueError naming `what` otherwise.

    The depth is measured on the parsed value with an explicit stack (no recursion), after the parser's
    own recursion guard has turned any pathological nesting into an error.
    """
    if len(text) > max_bytes:
        raise ValueError(f"{what} is {len(text)} bytes; at most {max_bytes} are accepted")
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply (at most {max_depth} levels are accepted)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} is not valid JSON ({error})") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"{what} is nested more than {max_depth} levels deep")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to `path`, then rename it to `path`.

    A full disk or quota (ENOSPC, EDQUOT) anywhere in it raises :class:`msda.training.outputs.DiskFull`, one line
    naming `path` and the free space; the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    with disk_full_as_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual permissions
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    return path


# mkstemp's names: the prefix given, 8 characters from [a-z0-9_], the suffix.
_TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left next to `path` when killed mid-write (SIGKILL
    and power loss skip its cleanup); returns the removed paths. Only names of exactly our pattern for this
    very target are touched."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = _TEMPORARY_NAME.fullmatch(candidate.name)
        if match and match["target"] == path.name and candidate.is_file() and not candidate.is_symlink():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write weights + metadata as one .safetensors file, atomically.

    Args:
        state_dict: the bare network's tensors (shared storage is copied, as safetensors requires).
        meta: JSON-serialisable metadata; must contain ``REQUIRED_META``.
    """
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata is missing {missing}; required: {list(REQUIRED_META)}")
    tensors = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in state_dict.items()}
    header = {"format": FORMAT, "msda": json.dumps(meta, sort_keys=True)}
    # Serialised here and written by Python, so a full disk is an OSError (save_file's Rust writer reports it as
    # an opaque SafetensorError); the bytes are the same file.
    data = save(tensors, metadata=header)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The msda metadata of a .safetensors file, or None when it has none (a plain safetensors file).

    Raises ValueError for a file that is not a readable safetensors file, or whose metadata is not a JSON
    object of bounded size and depth.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"{path} is not a readable .safetensors file ({error})") from None
    if header.get("format") != FORMAT or "msda" not in header:
        return None
    meta = load_json_bounded(header["msda"], what=f"the msda metadata of {path}")
    if not isinstance(meta, dict):
        raise ValueError(f"the msda metadata of {path} must be a JSON object, got {type(meta).__name__}")
    return meta


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Resume state (model, optimiser, generators, progress), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            recorder = _RecordingWriter(handle)
            try:
                torch.save(state, recorder)
            except RuntimeError:
                # torch reports a failed write as "enforce fail at inline_container.cc … unexpected pos": the
                # OSError behind it (a full disk) is the error to show.
                if recorder.error is not None:
                    raise recorder.error from None
                raise

    return atomic_write(path, write)


class _RecordingWriter:
    """A binary file for ``torch.save`` that keeps the OSError of a failed write (torch replaces it with its own
    RuntimeError)."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Resume state written by :func:`save_state`; loaded with ``weights_only=True`` (no code runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"no resume state at {path}: nothing to resume (start without --resume)") from None
    except Exception as error:  # weights_only refuses anything but plain data
        raise ValueError(f"{path} is not a resume state this program wrote ({error})") from None
    if not isinstance(state, dict) or not isinstance(state.get("fingerprint"), dict):
        raise ValueError(f"{path} is not a resume state this program wrote (no run fingerprint in it)")
    return state


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
