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

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "msda-checkpoint/1"
_UMASK = os.umask(0)
os.umask(_UMASK)
REQUIRED_META = ("arch", "num_classes", "classes", "input_size", "mean", "std")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to `path`, then rename it to `path`."""
    path = Path(path)
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
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The msda metadata of a .safetensors file, or None when it has none (a plain safetensors file)."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    if header.get("format") != FORMAT or "msda" not in header:
        return None
    return json.loads(header["msda"])


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Resume state (model, optimiser, generators, progress), atomically."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Resume state written by :func:`save_state`; loaded with ``weights_only=True`` (no code runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"no resume state at {path}: nothing to resume (start without --resume)") from None
    except Exception as error:  # weights_only refuses anything but plain data
        raise ValueError(f"{path} is not a resume state this program wrote ({error})") from None


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
