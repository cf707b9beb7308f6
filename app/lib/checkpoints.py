"""Checkpoints for the analysis pages: the shipped folder, uploads, safe loading and a cache shared by sessions.

The folder is ``$MSDA_CHECKPOINTS`` when set (tests point it elsewhere), else ``<repository>/checkpoints``; its
``manifest.json`` (``python -m msda.training.manifest``: entries with ``file``, ``sha256``, ``method``,
``test_accuracy``, …) labels the files when present, and a file whose SHA-256 differs from its entry gets a
warning. Resume states of runs in progress (``<out>.state.pt``) are not listed. Every file — shipped or uploaded — is read by :func:`analysis.load_checkpoint`: tensors
only, a pickle that names code is refused before anything in it runs, and a file that does not fit its
architecture is refused with the layers that differ. A refusal is a message for the page, never an exception.

Models are cached with ``st.cache_resource``: shipped files keyed on path, modification time and size,
uploads on the SHA-256 of their bytes. A cached model is one object shared by every session, so each comes
with a lock: :func:`analysis.cam` registers hooks on the model for the length of a call, and a forward pass
of another session in that window would feed them. Hold :attr:`LoadedModel.lock` around every use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from msda.training.checkpoint import file_sha256

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "MSDA_CHECKPOINTS"
SUFFIXES = (".safetensors", ".pt", ".pth", ".pth.tar")
"""Checkpoint file endings listed and accepted (``.pth.tar``: timm's train script writes ``last.pth.tar``,
``model_best.pth.tar``)."""
RESUME_STATE = ".state.pt"
"""``msda.train`` keeps a run's resume state (optimiser and all) beside its output as ``<out>.state.pt``."""
UPLOAD_TYPES = ["safetensors", "pt", "pth", "tar"]
UPLOAD_CAP_MB = 20
"""``server.maxUploadSize`` in ``.streamlit/config.toml``: Streamlit refuses larger uploads before this code sees
them, so the uploader's help says where larger checkpoints go."""


def is_checkpoint_name(name: str) -> bool:
    """Whether a file name ends in one of :data:`SUFFIXES`."""
    return name.endswith(SUFFIXES)
FROM_FILE = "(as the file says)"
"""Architecture choice for uploads: use the file's own metadata."""


def checkpoint_folder() -> Path:
    """Where the shipped checkpoints are: ``$MSDA_CHECKPOINTS``, else ``<repository>/checkpoints``."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else ROOT / "checkpoints"


@dataclass(frozen=True)
class ShippedFile:
    """A checkpoint file in the folder, with its manifest entry (empty when the manifest does not list it)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The menu entry: the file's stem (its suffix unless .safetensors) and the manifest's test accuracy."""
        name = self.path.stem if self.path.suffix == ".safetensors" else self.path.name
        accuracy = self.manifest.get("test_accuracy")
        return name + (f" · {accuracy:.1%}" if isinstance(accuracy, (int, float)) else "")


@dataclass
class LoadedModel:
    """A classifier taking [0, 1] images and what the page says about it.

    Attributes:
        key: identifies the weights (for caching what is computed from them).
        name: short unique name shown on the page.
        source: where it came from, in words.
        model: the ``Normalized`` classifier from :func:`analysis.load_checkpoint`, eval mode, CPU.
        meta: its metadata (``arch``, ``classes``, ``input_size``, ``method``, ``test_accuracy``, …).
        warning: a caution (e.g. the file differs from the manifest), or None.
        lock: hold it around every use of ``model`` (see the module docstring).
    """

    key: str
    name: str
    source: str
    model: Any
    meta: dict[str, Any]
    warning: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def describe(self) -> str:
        """One line: method, architecture, input size, test accuracy."""
        meta = self.meta
        parts = [f"method **{meta['method']}**" if meta.get("method") else None, f"{meta['arch']}",
                 f"{self.size} px", f"{len(self.classes)} classes",
                 f"CAM layer {meta['cam_layer']}" if meta.get("cam_layer") else None]
        accuracy = meta.get("test_accuracy")
        if isinstance(accuracy, (int, float)):
            parts.append(f"test acc. {accuracy:.1%}")
        return " · ".join(part for part in parts if part)


@dataclass(frozen=True)
class LoadFailure:
    """A checkpoint that was refused; ``message`` is for the page."""

    name: str
    message: str


# ----------------------------------------------------------------------------------------------- the folder


def load_manifest(folder: Path) -> tuple[Any, str | None]:
    """The parsed ``manifest.json`` of `folder` (None when absent or unreadable) and a note when it cannot be
    read. Parsed once per version of the file (keyed on its modification time and size): every page run
    reads it, for the checkpoint menu and for the shipped studies. Callers must not change what it returns."""
    path = folder / "manifest.json"
    try:
        stat = path.stat()
    except OSError:
        return None, None
    return _parse_manifest(str(path), stat.st_mtime_ns, stat.st_size)


MAX_MANIFEST_BYTES = 16 * 2**20
"""Largest manifest.json read (the shipped one is well under 1 MB): a huge or sparse file is refused unread."""


@functools.lru_cache(maxsize=4)
def _parse_manifest(path: str, mtime_ns: int, size: int) -> tuple[Any, str | None]:
    from analysis.untrusted import UntrustedFileError, read_regular_file

    try:
        data = read_regular_file(path, max_bytes=MAX_MANIFEST_BYTES, what="manifest", within=Path(path).parent)
        return json.loads(data.decode("utf-8")), None
    except UntrustedFileError as error:
        return None, f"{error}; the files are listed without it."
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{path} could not be read ({error}); the files are listed without it."


def read_manifest(folder: Path) -> tuple[dict[str, dict], str | None]:
    """File name → manifest entry, and a note when the manifest exists but cannot be used."""
    path = folder / "manifest.json"
    data, note = load_manifest(folder)
    if data is None:
        return {}, note
    entries = data.get("checkpoints", data.get("entries")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return {}, f"{path} is not a list of entries with a 'file' each; the files are listed without it."
    return {Path(str(entry["file"])).name: entry for entry in entries
            if isinstance(entry, dict) and entry.get("file")}, None


def list_shipped(folder: Path) -> tuple[list[ShippedFile], str | None]:
    """The checkpoint files in `folder` (sorted), and a note for the page when there are none or the manifest
    is unusable."""
    if not folder.is_dir():
        return [], (f"The checkpoint folder {folder} does not exist. Train a model (`python -m msda.train … "
                    f"--out {folder}/<name>.safetensors`), point ${ENV_VAR} at a folder of checkpoints, or "
                    "upload a checkpoint in the sidebar.")
    from analysis.untrusted import leads_outside

    manifest, note = read_manifest(folder)
    named = sorted(path for path in folder.iterdir() if is_checkpoint_name(path.name)
                   and not path.name.startswith(".") and not path.name.endswith(RESUME_STATE))
    # A link may point to a file inside the folder (cutmix.safetensors → seeds/cutmix-s0.safetensors), not out of it.
    outside = [path.name for path in named if path.is_symlink() and leads_outside(path, folder)]
    files = [path for path in named if path.name not in outside and path.is_file()]
    skipped = (f"Not listed: {', '.join(outside)} — symbolic link{'s' if len(outside) > 1 else ''} leading outside "
               f"{folder} (only files inside the checkpoint folder are read).") if outside else None
    if not files:
        return [], " ".join(filter(None, [f"No checkpoints (*{', *'.join(SUFFIXES)}) in {folder} yet. Train one "
                                          f"with `python -m msda.train … --out {folder}/<name>.safetensors`, or "
                                          "upload one in the sidebar.", skipped]))
    note = " ".join(filter(None, [note, skipped])) or None
    return [ShippedFile(path, manifest.get(path.name, {})) for path in files], note


# ----------------------------------------------------------------------------------------------- loading


@st.cache_resource(max_entries=16, show_spinner="Loading a checkpoint…")
def _load_shipped(path: str, mtime_ns: int, size: int, expected_sha256: str | None) -> LoadedModel | LoadFailure:
    from analysis import load_checkpoint

    name = Path(path).stem
    try:
        model, meta = load_checkpoint(path)
    except ValueError as error:
        return LoadFailure(name, f"Checkpoint {Path(path).name} was not loaded: {error}")
    warning = None
    if expected_sha256 and file_sha256(path) != str(expected_sha256).lower():
        warning = (f"{Path(path).name} differs from the file manifest.json describes (its SHA-256 does not "
                   "match): it was changed or replaced after the manifest was written.")
    return LoadedModel(key=f"{path}:{mtime_ns}:{size}", name=name, source=f"checkpoints/{Path(path).name}",
                       model=model, meta=meta, warning=warning)


def load_shipped(entry: ShippedFile) -> LoadedModel | LoadFailure:
    """The model of a file in the folder (cached per path, modification time and size)."""
    try:
        stat = entry.path.stat()
    except OSError as error:
        return LoadFailure(entry.path.stem, f"Checkpoint {entry.path.name} cannot be read: {error}")
    return _load_shipped(str(entry.path), stat.st_mtime_ns, stat.st_size, entry.manifest.get("sha256"))


def _safe_name(name: str) -> str:
    """The upload's file name reduced to a plain file name (the page shows it; the bytes are stored under it)."""
    base = Path(name.replace("\\", "/")).name
    return re.sub(r"[^A-Za-z0-9._+-]", "_", base)[:120] or "checkpoint"


@st.cache_resource(max_entries=8, show_spinner="Loading the uploaded checkpoint…")
def _load_upload(digest: str, name: str, arch: str | None, _data: bytes) -> LoadedModel | LoadFailure:
    from analysis import load_checkpoint

    stem = Path(name).stem
    with tempfile.TemporaryDirectory(prefix="msda-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(_data)
        try:
            model, meta = load_checkpoint(path, arch=arch)
        except ValueError as error:
            message = str(error).replace(str(path), name).replace(folder + os.sep, "")
            if "does not say which architecture" in message:
                message += " — choose it under “Architecture of uploaded files” in the sidebar."
            return LoadFailure(stem, f"Upload {name} was not loaded: {message}")
        except MemoryError:  # the loader bounds what a file may claim; this is the last line of defence
            return LoadFailure(stem, f"Upload {name} was not loaded: it needs more memory than this server has.")
    meta["path"] = f"upload: {name}"
    return LoadedModel(key=f"upload:{digest}:{arch}", name=stem, source=f"upload: {name}", model=model, meta=meta)


def load_upload(data: bytes, name: str, arch: str | None = None) -> LoadedModel | LoadFailure:
    """The model of uploaded bytes (cached on their SHA-256 and the architecture chosen for them)."""
    safe = _safe_name(name)
    if not data:
        return LoadFailure(Path(safe).stem, f"Upload {safe} is empty (0 bytes).")
    if not is_checkpoint_name(safe):
        return LoadFailure(Path(safe).stem, f"Upload {safe}: checkpoints must end in {', '.join(SUFFIXES)}.")
    return _load_upload(hashlib.sha256(data).hexdigest(), safe, arch, data)


def unique_names(models: list[LoadedModel]) -> list[LoadedModel]:
    """The same models, renamed where two share a name (an upload of a shipped file, say)."""
    seen: dict[str, int] = {}
    out = []
    for loaded in models:
        count = seen.get(loaded.name, 0)
        seen[loaded.name] = count + 1
        if count:
            loaded = LoadedModel(loaded.key, f"{loaded.name} ({count + 1})", loaded.source, loaded.model,
                                 loaded.meta, loaded.warning, loaded.lock)
        out.append(loaded)
    return out


# ----------------------------------------------------------------------------------------------- widgets


def preselected(shipped: list[ShippedFile], prefer: tuple[str, ...], count: int) -> list[str]:
    """The menu labels to preselect, in the folder's order: the shipped files of the `prefer` methods (by the
    manifest's method, else the file's stem), topped up with the folder's first files to `count`."""
    chosen = {entry.label for entry in shipped if (entry.manifest.get("method") or entry.path.stem) in prefer}
    for entry in shipped:
        if len(chosen) >= count:
            break
        chosen.add(entry.label)
    return [entry.label for entry in shipped if entry.label in chosen]


def choose_checkpoints(prefix: str, *, multiple: bool = True, default_count: int = 3, prefer: tuple[str, ...] = ()
                       ) -> tuple[list[LoadedModel], list[LoadFailure], str | None]:
    """Sidebar widgets: shipped checkpoints and uploads. Returns (models, refusals, note on the folder).

    Args:
        prefix: widget key prefix (one per page).
        multiple: several models (CAM, robustness) or one (HardMix).
        default_count: how many shipped files are preselected (at least; more when `prefer` names more).
        prefer: the methods whose shipped checkpoints are preselected (e.g. the baseline and the methods a
            page compares).
    """
    from msda.models import list_models

    folder = checkpoint_folder()
    shipped, note = list_shipped(folder)
    by_label = {entry.label: entry for entry in shipped}
    labels = list(by_label)
    if multiple:
        chosen = st.multiselect("Checkpoints", labels, default=preselected(shipped, prefer, default_count),
                                key=f"{prefix}:shipped",
                                help=f"Files in {folder} (set ${ENV_VAR} to use another folder).")
    else:
        one = st.selectbox("Checkpoint", labels, index=0 if labels else None, key=f"{prefix}:shipped",
                           help=f"Files in {folder} (set ${ENV_VAR} to use another folder).",
                           placeholder="no checkpoint in the folder" if not labels else "choose a checkpoint")
        chosen = [one] if one else []
    uploads = st.file_uploader("…or upload checkpoints" if multiple else "…or upload a checkpoint",
                               type=UPLOAD_TYPES, accept_multiple_files=multiple, key=f"{prefix}:upload",
                               help="Our .safetensors checkpoints, a state dict saved with torch.save (.pt, "
                                    ".pth) or a timm training checkpoint (.pth.tar). Loaded safely: files that "
                                    "hold Python objects or code are refused. Uploads stop at "
                                    f"{UPLOAD_CAP_MB} MB: put larger checkpoints (ImageNet-size models such as "
                                    f"timm/resnet50 or timm/convnext_tiny at 224 px) in {folder} "
                                    f"(${ENV_VAR}) and choose them above.")
    st.caption(f"Uploads: up to {UPLOAD_CAP_MB} MB each. Larger checkpoints (ImageNet-size models, e.g. "
               f"timm/resnet50 at 224 px, ~100 MB) are refused by the uploader: copy them into the checkpoint "
               f"folder {folder} (set ${ENV_VAR} to use another) and choose them in the menu above.")
    uploads = [] if uploads is None else uploads if isinstance(uploads, list) else [uploads]
    arch = FROM_FILE
    if uploads:
        arch = st.selectbox("Architecture of uploaded files", [FROM_FILE] + list_models(), key=f"{prefix}:arch",
                            help="Only needed for plain state dicts that do not name their architecture.")
    models: list[LoadedModel] = []
    failures: list[LoadFailure] = []
    for upload in uploads:
        result = load_upload(upload.getvalue(), upload.name, None if arch == FROM_FILE else arch)
        (models if isinstance(result, LoadedModel) else failures).append(result)
    if uploads and not multiple:
        chosen = []  # the upload replaces the shipped choice
    for label in chosen:
        result = load_shipped(by_label[label])
        (models if isinstance(result, LoadedModel) else failures).append(result)
    return unique_names(models), failures, note
