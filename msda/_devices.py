"""The ``--device`` of the command lines, checked against what this machine has before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The devices the command lines run on (autocast, channels-last and the generators are tested on these)."""


def check_device(text: str, flag: str = "--device") -> torch.device:
    """`text` as a torch.device this machine has; a one-line ValueError naming `flag` and what it has otherwise."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"{flag} must be one of {', '.join(DEVICE_TYPES)} (optionally with an index, e.g. "
                         f"cuda:1), got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{flag} {text}: this machine has no usable CUDA GPU; use {flag} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{flag} {text}: there are {torch.cuda.device_count()} CUDA devices "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {text}: MPS is not available on this machine; use {flag} cpu")
    if device.type == "cpu" and device.index not in (None, 0):
        raise ValueError(f"{flag} {text}: there is one CPU device, cpu (or cpu:0)")
    return device


def check_output_folder(path: str, flag: str) -> None:
    """Refuse an output path whose folder is missing or not writable, before a long run, not after it."""
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise ValueError(f"{flag} {path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{flag} {path}: the folder {folder} is not writable")
    if Path(path).is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file name")


def check_benchmark_args(parser, minimums, device: str, json_path: str | None) -> torch.device:
    """A benchmark's flags, before any work: each (flag, value, lowest) of `minimums`, the device and the
    folder of the JSON output. A bad one ends the program with one line (``parser.error``); returns the device."""
    for flag, value, low in minimums:
        if value < low:
            parser.error(f"{flag} must be at least {low}, got {value}")
    try:
        checked = check_device(device)
        if json_path:  # before the benchmark, not after minutes of it
            check_output_folder(json_path, "--json")
    except ValueError as error:
        parser.error(str(error))
    return checked
