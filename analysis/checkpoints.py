"""Loading trained classifiers safely: our checkpoints, plain state dicts and the common research layouts.

What is read, and how:

- ``.safetensors`` files (recognised by suffix or by their header, whatever the suffix): tensors only, nothing
  can execute. Our checkpoints (``msda.training.checkpoint``) carry their metadata in the header; plain ones
  (e.g. exported from other code bases) need ``arch``.
- Anything else (``.pt``, ``.pth``, ``.bin``, ``.ckpt``, ``.pth.tar``, …) goes through
  ``torch.load(weights_only=True)``, which only rebuilds tensors, numbers, strings, lists and dicts — plus one
  class allowed by name, ``argparse.Namespace``: timm's train script (and DeiT's) store their command-line
  arguments as one beside the weights. A Namespace is a bag of attributes: rebuilding it calls no method of the
  file's choosing, and the values inside it pass the same weights-only check. A pickle that names any other
  Python object (a whole pickled model, an optimizer class, or a file crafted to run code) is refused *before*
  anything in it runs, with a ValueError that says how to re-save it as a state dict.

Layouts understood inside a file: a bare state dict (timm's ``clean_checkpoint.py`` writes one, as ``.pth`` or
``.safetensors``); a dict holding it under ``state_dict``, ``model_state_dict``, ``model``, ``net``,
``network``, ``module`` or ``weights`` (nested, e.g. Lightning or timm training checkpoints with optimizer
state beside them); key prefixes ``module.`` (DataParallel / DDP), ``_orig_mod.`` (torch.compile), ``model.``
(Lightning) and ``net.`` (our :class:`msda.models.Normalized` wrapper — its ``mean``/``std`` buffers are then
used as the input normalisation).

timm's train script (``timm.utils.CheckpointSaver``: ``epoch``, ``arch``, ``state_dict``, ``optimizer``,
``version``, ``args``, and ``state_dict_ema`` with ``--model-ema``): ``arch`` is timm's model name and is read as
``"timm/<name>"`` (a pretrained tag such as ``.a1_in1k`` dropped); the input convention is the one the run
used — ``args.mean``/``args.std``/``args.input_size``/``args.img_size`` where given, else the model name's
timm config. The EMA weights are loaded with ``use_ema=True`` (``state_dict_ema``, or DeiT's ``model_ema``);
by default the trained weights (``state_dict``) are.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import pickletools
import re
import threading
import zipfile
from numbers import Integral
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from msda._checks import describe
from msda.data._common import IMAGENET_MEAN, IMAGENET_STD
from msda.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from msda.models import ARCHS, Normalized, build_model, fixed_input_size, list_models, timm_data_config
from msda.models.timm_models import is_timm_arch, timm_arch_for
from msda.training.checkpoint import read_checkpoint_meta

__all__ = ["load_checkpoint", "default_meta", "CONTAINER_KEYS", "STRIPPED_PREFIXES"]

CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "net", "network", "module", "weights")
"""Keys under which training scripts commonly nest the network's state dict, tried in this order."""

EMA_KEYS: tuple[str, ...] = ("state_dict_ema", "model_ema")
"""Keys of the exponential-moving-average weights beside the trained ones (timm's train script, DeiT's), read
with ``use_ema=True``."""

SAFE_CLASSES: tuple[type, ...] = (argparse.Namespace,)
"""The only classes ``torch.load(weights_only=True)`` may rebuild beyond plain data: training scripts (timm's,
DeiT's) save their ``args`` as an ``argparse.Namespace``, which holds plain values and runs no code."""

_SAFE_GLOBALS_LOCK = threading.Lock()

STRIPPED_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.", "net.")
"""Wrapper prefixes removed when every key carries one (and the architecture's own keys do not)."""

_SHOWN_KEYS = 6  # how many missing/unexpected keys an error message lists before abbreviating

# Bounds on what a file may claim, checked before any claim sizes an allocation: a crafted header must cost
# no more than the file itself.
MAX_NUM_CLASSES = 100_000
"""Most classes accepted: ImageNet-21k's 21 841 is the largest label set in common use; 10⁹ classes in a header
once built 10⁹ default class names (+4 GB) before any check."""

MIN_INPUT_SIZE, MAX_INPUT_SIZE = 8, 512
"""Input sides accepted. The classifiers here are trained at 32 px (ours) to 224–384 px (torchvision's); the
analysis pages run a forward and a backward pass at this side, which at 2048 px took 99 s and +3.5 GB, and at
10⁶ px asked for terabytes. Below 8 px the last stage of our ResNets has no spatial extent left for a CAM."""

INPUT_CHANNELS = 3
"""Every architecture here takes RGB: mean and std need exactly one entry per channel."""

MAX_UNPACKED_BYTES = 1 << 30
"""Largest total unpacked size of a torch.save archive (1 GiB, about a ViT-L's weights): torch.save stores
entries uncompressed, so a real checkpoint unpacks to its own size, while a 2 MB file with a deflated pickle
once inflated to 2 GiB (+4 GB, 7–10 s) before any check."""

MAX_PICKLE_BYTES = 16 << 20
"""Largest unpacked pickle in a torch.save archive (16 MiB): a state dict's pickle holds only names and
storage references, ~100 bytes per tensor (resnet152's is 60 kB); tensors live in separate entries."""

MAX_EXPANSION = 4
"""Largest accepted ratio of unpacked to packed size in a torch.save archive: stored entries (what torch.save
writes) expand 1×, re-compressed weights rarely shrink 2×; a pickle bomb expands 1000×."""


def default_meta(arch: str, num_classes: int) -> dict[str, Any]:
    """The input convention assumed for a file that does not state one.

    - torchvision architectures: ImageNet mean/std ``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)``, 224 px.
    - our CIFAR-style architectures (``msda.models.ARCHS``): CIFAR-10 mean/std
      ``(0.4914, 0.4822, 0.4465)`` / ``(0.2470, 0.2435, 0.2616)`` at 32 px, or CIFAR-100's
      ``(0.5071, 0.4865, 0.4409)`` / ``(0.2673, 0.2564, 0.2762)`` when ``num_classes == 100``. (Our own training
      always writes its statistics into the checkpoint, so this only applies to files from elsewhere.)
    - timm architectures (``"timm/<name>"``): the mean, std and input side of the name's timm config (what timm's
      scripts use unless told otherwise; e.g. ImageNet's at 224 px for ``timm/resnet50``, 0.5/0.5 for
      ``timm/vit_tiny_patch16_224``).
    - classes: ``["class 0", "class 1", …]``.
    """
    if arch in ARCHS:
        mean, std = (CIFAR100_MEAN, CIFAR100_STD) if num_classes == 100 else (CIFAR10_MEAN, CIFAR10_STD)
        size = 32
    elif is_timm_arch(arch):
        config = timm_data_config(arch)
        mean, std, size = config["mean"], config["std"], config["input_size"]
    else:
        mean, std, size = IMAGENET_MEAN, IMAGENET_STD, 224
    return {"arch": arch, "num_classes": num_classes, "classes": [f"class {i}" for i in range(num_classes)],
            "input_size": size, "mean": list(mean), "std": list(std)}


def load_checkpoint(path: str | os.PathLike, *, arch: str | None = None, num_classes: int | None = None,
                    device: str | torch.device = "cpu", classes: Sequence[str] | None = None,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    input_size: int | None = None, use_ema: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """A trained classifier from a weights file, ready for analysis.

    Args:
        path: our ``.safetensors`` checkpoint, a plain ``.safetensors`` state dict, or a ``.pt``/``.pth``/…
            file written by ``torch.save`` (read with ``weights_only=True`` only; see the module docstring for
            the layouts understood).
        arch: architecture name (``msda.models.list_models()``: ours, torchvision's, ``"timm/<name>"``);
            required unless the file's metadata names it.
        num_classes: number of outputs; when neither given nor in the metadata it is read from the classifier
            weight's shape.
        device: where the returned model lives.
        classes, mean, std, input_size: the input convention; given values override the file's. Without
            them and without metadata in the file, :func:`default_meta` applies: ImageNet mean/std at 224 px for
            torchvision architectures, CIFAR-10 (CIFAR-100 for 100 classes) mean/std at 32 px for ours, classes
            ``["class 0", …]``; a file saved from our ``Normalized`` wrapper supplies its own mean/std, a timm
            training checkpoint its run's (``args``), and timm architectures default to their timm config.
        use_ema: load the EMA weights a training checkpoint holds beside the trained ones (``state_dict_ema``,
            ``model_ema``) instead of them; a file without EMA weights is then refused.

    Returns ``(model, meta)``: ``model`` is ``Normalized(net, mean, std)`` — it takes images in [0, 1] and
    normalises inside — on `device`, in eval mode. ``meta`` is the file's metadata (for our checkpoints:
    dataset, method, test_accuracy, …) and always has ``arch``, ``num_classes``, ``classes``, ``mean``,
    ``std``, ``input_size``, plus ``path`` and ``layout`` (how the weights were found in the file).

    Raises ValueError when the file is missing or unreadable, contains Python objects or code, holds no state
    dict, disagrees with the given arch/num_classes, or does not fit the architecture (naming the layers whose
    shapes differ, with expected and found shapes, and the missing/unexpected keys).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {str(path)!r}")
    device = _check_device(device)
    if arch is not None:
        _check_arch(arch)
    if not isinstance(use_ema, bool):
        raise ValueError(f"use_ema must be True or False, got {describe(use_ema)}")
    if num_classes is not None:
        num_classes = _count("num_classes", num_classes, 1, MAX_NUM_CLASSES)
    if input_size is not None:
        input_size = _count("input_size", input_size, MIN_INPUT_SIZE, MAX_INPUT_SIZE)

    file_meta, state, layout = _read_weights(path, use_ema)
    file_meta = _check_file_meta(file_meta, path)
    if file_meta.get("arch") is not None and arch is not None and file_meta["arch"] != arch:
        raise ValueError(f"{path} was saved as arch {file_meta['arch']!r}, but arch={arch!r} was given")
    arch = arch if arch is not None else file_meta.get("arch")
    if arch is None:
        raise ValueError(f"{path} does not say which architecture it holds ({layout}); pass arch=…, one of "
                         f"msda.models.list_models() (ours: {', '.join(ARCHS)})")
    if arch not in _known_archs():
        raise ValueError(f"{path} names arch {arch!r}, which msda.models.build_model does not know; pass arch=…")

    state, normalisation, stripped = _strip_prefixes(state, _expected_keys(arch))
    if stripped:
        layout += f", prefix {' + '.join(map(repr, stripped))} removed"
    if file_meta.get("num_classes") is not None:
        if num_classes is not None and file_meta["num_classes"] != num_classes:
            raise ValueError(f"{path} was saved with num_classes={file_meta['num_classes']}, but "
                             f"num_classes={num_classes} was given")
        num_classes = file_meta["num_classes"]
    if num_classes is None:
        num_classes = _infer_num_classes(arch, state, path)
    # Every shape is compared on the meta device (no memory) before anything is allocated: a header's
    # num_classes against the weights' own head, a header's arch against the weights' keys.
    _check_fits(_expected_keys(arch, num_classes), state, arch, num_classes, path)
    _check_weight_values(state, path)

    meta = {**default_meta(arch, num_classes), **normalisation, **file_meta}
    overrides = {"classes": classes, "mean": mean, "std": std, "input_size": input_size}
    meta.update({key: value for key, value in overrides.items() if value is not None})
    meta.update(arch=arch, num_classes=num_classes, path=str(path), layout=layout)
    meta["classes"] = _check_classes(meta["classes"], num_classes)
    meta["input_size"] = _count("input_size", meta["input_size"], MIN_INPUT_SIZE, MAX_INPUT_SIZE)
    meta["mean"] = _check_channels("mean", meta["mean"], positive=False)
    meta["std"] = _check_channels("std", meta["std"], positive=True)

    net = build_model(arch, num_classes)
    # Vision transformers take one input side only (torchvision's say image_size, timm's check img_size).
    fixed_size = getattr(net, "image_size", None) if not is_timm_arch(arch) else fixed_input_size(net)
    if isinstance(fixed_size, int) and meta["input_size"] != fixed_size:
        raise ValueError(f"input_size must be {fixed_size} for {arch} (its position embeddings are for that "
                         f"side), got {meta['input_size']}")
    floating = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    net.load_state_dict(floating, strict=False)
    model = Normalized(net, meta["mean"], meta["std"])
    return model.to(device).eval(), meta


# ----------------------------------------------------------------------------------------------- reading


def _known_archs() -> frozenset[str]:
    return frozenset(list_models())


def _check_arch(arch) -> None:
    """A one-line ValueError for an arch build_model does not know, with the closest names (build_model's own
    refusal, which nothing is built for)."""
    if isinstance(arch, str) and arch in _known_archs():
        return
    with torch.device("meta"):
        build_model(arch, 2)
    raise ValueError(f"arch must be one of msda.models.list_models(), got {arch!r}")  # build_model accepted it


def _read_weights(path: Path, use_ema: bool = False) -> tuple[dict[str, Any], dict[str, Tensor], str]:
    """(metadata, state dict, layout description) of a file; no code from the file ever runs."""
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        try:
            with safe_open(str(path), framework="pt") as handle:
                state = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{path} is not a readable safetensors file ({error})") from None
        if use_ema:
            raise ValueError(f"{path} is a safetensors file of one set of weights: it holds no EMA weights "
                             "(use_ema=True needs a training checkpoint with state_dict_ema or model_ema)")
        meta = read_checkpoint_meta(path)
        if meta is not None:
            return dict(meta), state, "msda checkpoint"
        return {}, state, "plain safetensors state dict"

    _check_unpacked_size(path)
    try:
        # safe_globals edits torch's process-wide allow-list and restores it on exit: serialised, so one
        # thread's exit cannot withdraw the allowance from another's load in progress (the app loads in threads).
        with _SAFE_GLOBALS_LOCK, torch.serialization.safe_globals(list(SAFE_CLASSES)):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not _parses_as_pickle(path):
            raise ValueError(f"{path} is not a file torch.save wrote, or it is damaged "
                             f"({_unpickler_reason(error)})") from None
        # One sentence, not torch's paragraph (which ends by advising weights_only=False, i.e. running the code).
        raise ValueError(
            f"{path.name} is a pickle that would run code (it contains Python objects/code, not only tensors; "
            "nothing in the file was executed); only .safetensors or weights-only .pt files are loaded — a state "
            "dict, as torch.save(model.state_dict(), 'weights.pt') writes"
        ) from None
    except Exception as error:  # truncated or foreign files fail in many ways inside torch.load
        raise ValueError(f"{path} is not a file torch.save wrote, or it is damaged "
                         f"({type(error).__name__}: {_first_line(error)})") from None
    return _find_state_dict(loaded, path, use_ema)


def _check_unpacked_size(path: Path) -> None:
    """Refuse a torch.save archive whose entries would unpack past the bounds, from its directory alone (the
    zip readers of torch and Python stop at the declared size, so a lying directory cannot get past it)."""
    if not zipfile.is_zipfile(path):
        return  # the legacy format is a bare pickle, read as it is stored: its size is the file's
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a file torch.save wrote, or it is damaged ({error})") from None
    packed = max(path.stat().st_size, 1)
    unpacked = sum(entry.file_size for entry in entries)
    pickles = [entry for entry in entries if entry.filename.endswith(".pkl")]
    largest_pickle = max((entry.file_size for entry in pickles), default=0)
    if largest_pickle > MAX_PICKLE_BYTES:
        raise ValueError(f"{path} holds a {largest_pickle / 2**20:.0f} MiB pickle; a state dict's is far smaller "
                         f"(at most {MAX_PICKLE_BYTES >> 20} MiB are accepted)")
    if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_EXPANSION * packed + MAX_PICKLE_BYTES:
        raise ValueError(f"{path} would unpack to {unpacked / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB; at most "
                         f"{MAX_UNPACKED_BYTES >> 20} MiB and {MAX_EXPANSION}× the file size are accepted (a training "
                         "checkpoint with optimizer state: keep only the weights, e.g. with timm's clean_checkpoint.py)")


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length, then a JSON object."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _parses_as_pickle(path: Path) -> bool:
    """Whether the file's (first) pickle is well formed — read with pickletools, which runs nothing."""
    try:
        if zipfile.is_zipfile(path):  # torch.save's format: the object is pickled into <name>/data.pkl
            with zipfile.ZipFile(path) as archive:
                member = next((name for name in archive.namelist() if name.endswith("data.pkl")), None)
                if member is None:
                    return False
                data = archive.read(member)
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
    except Exception:  # any malformation: not a pickle
        return False
    return True


def _unpickler_reason(error: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\n|$)", text)
    return found.group(1).strip() if found else _first_line(error)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(key, str) and isinstance(tensor, Tensor) for key, tensor in value.items())


def _find_state_dict(loaded: Any, path: Path, use_ema: bool = False
                     ) -> tuple[dict[str, Any], dict[str, Tensor], str]:
    """The state dict inside what ``torch.load`` returned, and the metadata it carries beside it."""
    if _is_state_dict(loaded):
        if use_ema:
            raise ValueError(f"{path} is a bare state dict: it holds no EMA weights (use_ema=True needs a training "
                             f"checkpoint with {' or '.join(EMA_KEYS)})")
        return {}, dict(loaded), "state dict"
    ema_key = next((key for key in EMA_KEYS if isinstance(loaded, Mapping) and _is_state_dict(loaded.get(key))),
                   None)
    if use_ema:
        if ema_key is None:
            keys = ", ".join(map(repr, list(loaded)[:10])) if isinstance(loaded, Mapping) else type(loaded).__name__
            raise ValueError(f"{path} holds no EMA weights (use_ema=True looks for {' or '.join(EMA_KEYS)}; its "
                             f"keys are {keys})")
        return _beside_weights(loaded), dict(loaded[ema_key]), f"EMA state dict under [{ema_key!r}]"
    node, trail = loaded, []
    while isinstance(node, Mapping) and not _is_state_dict(node):
        key = next((key for key in CONTAINER_KEYS if isinstance(node.get(key), Mapping)), None)
        if key is None:
            break
        node, trail = node[key], trail + [key]
    if _is_state_dict(node):
        layout = "state dict under " + "".join(f"[{key!r}]" for key in trail)
        if ema_key is not None:
            layout += f" (EMA weights beside it under [{ema_key!r}]: use_ema=True loads them)"
        return _beside_weights(loaded), dict(node), layout
    if isinstance(loaded, Mapping):
        tensors = {key: value for key, value in loaded.items() if isinstance(value, Tensor)}
        if tensors and all(isinstance(key, str) for key in tensors):
            return {}, tensors, "state dict (non-tensor entries ignored)"
        keys = ", ".join(map(repr, list(loaded)[:10])) + (", …" if len(loaded) > 10 else "")
        raise ValueError(f"{path} holds a dict without a state dict: no tensors at the top level and none under "
                         f"{', '.join(map(repr, CONTAINER_KEYS))}; its keys are {keys}")
    raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict (a dict of name → tensor)")


def _is_timm_training_checkpoint(loaded: Mapping) -> bool:
    """timm's CheckpointSaver writes ``version`` and, with the script's arguments, ``args`` beside ``arch``."""
    return "state_dict" in loaded and isinstance(loaded.get("arch"), str) and (
        "version" in loaded or isinstance(loaded.get("args"), argparse.Namespace))


def _beside_weights(loaded: Any) -> dict[str, Any]:
    """What a training checkpoint says about the network beside its weights: the arch name and classes
    (training scripts often store them), and for timm's train script its run's input convention."""
    if not isinstance(loaded, Mapping):
        return {}
    meta = {key: loaded[key] for key in ("arch", "num_classes", "classes") if key in loaded}
    args = loaded.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, Mapping) else {}
    if _is_timm_training_checkpoint(loaded):
        meta.pop("arch")
        arch = timm_arch_for(loaded["arch"])
        if arch is not None:
            meta["arch"] = arch
            meta.update(_timm_run_convention(loaded["arch"], args))
        for key in ("epoch", "metric"):
            if isinstance(loaded.get(key), (int, float)) and not isinstance(loaded[key], bool):
                meta[f"timm_{key}"] = loaded[key]
    elif not isinstance(meta.get("arch"), str) or meta["arch"] not in _known_archs():
        meta.pop("arch", None)
        # DeiT's main.py saves no arch, but its args name the timm model (``--model deit_tiny_patch16_224``).
        arch = timm_arch_for(args.get("model")) if isinstance(loaded.get("args"), argparse.Namespace) else None
        if arch is not None:
            meta["arch"] = arch
            meta.update(_timm_run_convention(args["model"], args))
    if isinstance(args.get("num_classes"), int) and "num_classes" not in meta:
        meta["num_classes"] = args["num_classes"]
    return meta


def _timm_run_convention(model_name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """mean, std and input side as timm's train script resolved them: its arguments where given, else the
    config of the model name it was given (tag included: ``resnet50.a1_in1k``'s)."""
    try:
        convention = timm_data_config("timm/" + model_name.removeprefix("timm/"))
    except Exception:  # a name timm resolves but has no config for: the untagged name's
        convention = timm_data_config(timm_arch_for(model_name))
    for key in ("mean", "std"):
        if isinstance(args.get(key), (list, tuple)):  # one value stands for every channel, as in timm
            convention[key] = list(args[key]) * (3 if len(args[key]) == 1 else 1)
    size = args.get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2]:
        convention["input_size"] = size[2]
    elif isinstance(args.get("img_size"), int):
        convention["input_size"] = args["img_size"]
    return convention


# ----------------------------------------------------------------------------------------------- matching


def _expected_keys(arch: str, num_classes: int = 2) -> dict[str, Tensor]:
    """Parameter and buffer shapes and dtypes of `arch` (as meta tensors), built on the meta device (no memory,
    no init cost)."""
    with torch.device("meta"):
        return dict(build_model(arch, num_classes).state_dict())


def _strip_prefixes(state: dict[str, Tensor], expected: Mapping[str, torch.Size]
                    ) -> tuple[dict[str, Tensor], dict[str, Any], list[str]]:
    """Remove wrapper prefixes; returns (state, normalisation found in a Normalized wrapper, prefixes removed)."""
    normalisation: dict[str, Any] = {}
    stripped: list[str] = []
    changed = True
    while changed:
        changed = False
        for prefix in STRIPPED_PREFIXES:
            keys = [key for key in state if not (prefix == "net." and key in ("mean", "std"))]
            if (keys and all(key.startswith(prefix) for key in keys)
                    and not all(key.startswith(prefix) for key in expected)):
                if prefix == "net.":  # our Normalized wrapper: its buffers are the input normalisation
                    for name in ("mean", "std"):
                        if name in state:
                            normalisation[name] = state[name].flatten().tolist()
                    state = {key: value for key, value in state.items() if key not in ("mean", "std")}
                state = {key[len(prefix):]: value for key, value in state.items()}
                stripped.append(prefix)
                changed = True
    return state, normalisation, stripped


def _infer_num_classes(arch: str, state: Mapping[str, Tensor], path: Path) -> int:
    """The number of classes, read from the classifier tensors' shapes (found by building the arch twice)."""
    with torch.device("meta"):
        two = {key: value.shape for key, value in build_model(arch, 2).state_dict().items()}
        three = {key: value.shape for key, value in build_model(arch, 3).state_dict().items()}
    found: dict[str, int] = {}
    for key, shape in two.items():
        if shape != three[key] and key in state:
            dim = next(d for d, (a, b) in enumerate(zip(shape, three[key])) if a != b)
            if state[key].ndim == len(shape):
                found[key] = int(state[key].shape[dim])
    values = set(found.values())
    if len(values) != 1:
        detail = f"classifier shapes {found}" if found else "no classifier tensor of that architecture in it"
        raise ValueError(f"could not read the number of classes from {path} ({detail}); pass num_classes=…")
    return values.pop()


def _check_fits(expected: Mapping[str, Tensor], state: Mapping[str, Tensor], arch: str, num_classes: int,
                path: Path) -> None:
    """What ``load_state_dict`` would refuse, found from the shapes alone, with messages that say which layers
    differ and how."""
    # Older state dicts predate BatchNorm's step counter; it does not affect inference.
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    unexpected = [key for key in state if key not in expected]
    mismatched = [f"{key}: expected {tuple(expected[key].shape)}, found {tuple(state[key].shape)}"
                  for key in expected if key in state and state[key].shape != expected[key].shape]
    if mismatched or missing or unexpected:
        problems = []
        if mismatched:
            problems.append(f"{len(mismatched)} layer(s) with a different shape — " + _abbreviate(mismatched))
        if missing:
            problems.append(f"{len(missing)} missing key(s): " + _abbreviate(missing))
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected key(s): " + _abbreviate(unexpected))
        raise ValueError(f"{path} does not fit arch {arch!r} with num_classes={num_classes}: "
                         + "; ".join(problems)
                         + ". Was it trained with another architecture or number of classes?")
    not_float = [key for key, value in expected.items()
                 if key in state and value.is_floating_point() and not state[key].is_floating_point()]
    if not_float:
        raise ValueError(f"{path}: {len(not_float)} weight tensor(s) are not floating point — "
                         + _abbreviate([f"{key} ({state[key].dtype})" for key in not_float]))


def _check_weight_values(state: Mapping[str, Tensor], path: Path) -> None:
    """Refuse NaN or infinite weights: a model holding them outputs NaN for every image, silently."""
    bad = [key for key, value in state.items()
           if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all())]
    if bad:
        raise ValueError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values — " + _abbreviate(bad)
                         + ". Was the training run diverging?")


def _abbreviate(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    return shown + (f", … ({len(items) - _SHOWN_KEYS} more)" if len(items) > _SHOWN_KEYS else "")


# ----------------------------------------------------------------------------------------------- checks


def _check_device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch.device or a string like 'cpu' or 'cuda:0', got {device!r}") from None


def _check_classes(classes, num_classes: int) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence) or len(classes) != num_classes:
        shown = f"{len(classes)} entries" if isinstance(classes, Sequence) and len(classes) > 12 else describe(classes)
        raise ValueError(f"classes must be a list of {num_classes} names (one per class), got {shown}")
    return [str(name) for name in classes]


def _count(name: str, value, low: int, high: int) -> int:
    """An integer in [low, high]; bools and numeric strings are refused (True is not 1 class)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {describe(value)} "
                         f"({type(value).__name__})")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


def _check_channels(name: str, values, *, positive: bool) -> list[float]:
    """Per-channel normalisation: exactly INPUT_CHANNELS finite numbers (std: each > 0)."""
    if isinstance(values, Tensor):
        values = values.flatten().tolist()
    if (isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != INPUT_CHANNELS
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise ValueError(f"{name} must be a list of {INPUT_CHANNELS} numbers (one per RGB channel), got "
                         f"{describe(values) if not isinstance(values, Sequence) or len(values) <= 12 else f'{len(values)} entries'}")
    floats = [float(v) for v in values]
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in floats):
        allowed = "finite and > 0" if positive else "finite"
        raise ValueError(f"{name} values must be {allowed}, got {floats}")
    return floats


_META_FIELDS = {"arch": str, "num_classes": int, "input_size": int, "classes": list, "mean": list, "std": list}


def _check_file_meta(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The fields a file states about itself, each checked before it sizes anything; one sentence per error
    naming the field."""
    for key, kind in _META_FIELDS.items():
        value = meta.get(key)
        if value is None:
            continue
        try:
            if key == "num_classes":
                _count(key, value, 1, MAX_NUM_CLASSES)
            elif key == "input_size":
                _count(key, value, MIN_INPUT_SIZE, MAX_INPUT_SIZE)
            elif key == "classes":
                if not isinstance(value, list) or len(value) > MAX_NUM_CLASSES or not all(
                        isinstance(name, (str, int)) and not isinstance(name, bool) for name in value):
                    raise ValueError(f"classes must be a list of at most {MAX_NUM_CLASSES} names, got "
                                     f"{describe(value) if not isinstance(value, list) else 'another list'}")
            elif key in ("mean", "std"):
                _check_channels(key, value, positive=key == "std")
            elif not isinstance(value, kind):
                raise ValueError(f"{key} must be a {kind.__name__}, got {describe(value)}")
        except ValueError as error:
            raise ValueError(f"{path}: its metadata field {error}") from None
    return meta

