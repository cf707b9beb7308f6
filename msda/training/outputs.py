"""A run's output files on a shared machine: a full disk in one line, a report set written as one unit, one run
per output folder. Used by ``python -m msda.train`` and the four study command lines of :mod:`analysis`.

- :class:`DiskFull`: what every write of the project raises when the disk or the user's quota is full (ENOSPC,
  EDQUOT) — one line naming the path and the free space (:func:`shutil.disk_usage`), instead of a traceback or
  torch's ``enforce fail at inline_container.cc``. :func:`msda.training.checkpoint.atomic_write` raises it, so
  every report, outcome file, metrics file, checkpoint and resume state does.
- :func:`output_folder`: a lock on ``<out>/.lock`` (``fcntl.flock``, non-blocking) held for the whole run; a
  second run into the same folder stops at once with one line naming the run that holds it (pid, start time,
  command, written into the lock file). Within it, :meth:`OutputFolder.report_set` writes a set of files (CSV,
  JSON, HTML, per-item outcomes) into a fresh staging folder inside ``<out>`` and moves them into place with
  ``os.replace`` only once all of them are written: a run that fails (a full disk, a crash) leaves the previous
  complete set untouched, and a set's member the new run does not write is removed with the rest, so files of
  two runs never sit side by side (an error in the figures, once the tables and outcomes are written, commits
  those without the HTML). A run killed during the renames (a few microseconds) is completed
  by the next run's lock: a staging folder marked complete is moved into place, any other is deleted.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

__all__ = ["DiskFull", "FolderBusy", "OutputFolder", "disk_full_as_error", "free_space", "output_folder", "run_cli"]

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"
COMPLETE_NAME = ".complete"  # inside a staging folder: every member is written; its JSON lists them
_MAX_LOCK_TEXT = 4096


class DiskFull(OSError):
    """A write failed because the file system (or the user's quota) is full. ``str()`` is one line naming the
    path being written and the space left on its file system."""

    def __init__(self, path: str | os.PathLike, cause: OSError | None = None):
        code = cause.errno if cause is not None and cause.errno in DISK_FULL_ERRNOS else errno.ENOSPC
        self.path = Path(path)
        self.free = free_space(self.path)
        what = "disk quota exceeded" if code == errno.EDQUOT else "no space left on the device"
        left = "unknown space" if self.free is None else _bytes(self.free)
        self.message = (f"{what} while writing {self.path} ({left} free on its file system); free some space "
                        "and run again — the files of the previous run are left as they were")
        super().__init__(code, self.message)

    def __str__(self) -> str:
        return self.message


class FolderBusy(ValueError):
    """Another run holds the output folder's lock; the message names it (pid, start time, command)."""


def free_space(path: str | os.PathLike) -> int | None:
    """Bytes available on the file system of `path` (or of its nearest existing parent); None if unknown."""
    for candidate in (Path(path), *Path(path).absolute().parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


@contextmanager
def disk_full_as_error(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ENOSPC/EDQUOT :class:`OSError` raised inside the block into :class:`DiskFull` naming `path`."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(path, error) from None
        raise


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run a study's ``main``; a ValueError (bad input, a busy folder) or a full disk ends the program with its
    one-line message (exit status 1) instead of a traceback."""
    try:
        main(argv)
    except (ValueError, DiskFull) as error:
        raise SystemExit(f"error: {error}") from None


# ----------------------------------------------------------------------------------------------- the folder


class OutputFolder:
    """An output folder this process holds the lock of (see :func:`output_folder`)."""

    def __init__(self, path: Path, lock_fd: int):
        self.path = path
        self._lock_fd = lock_fd

    @contextmanager
    def report_set(self, members: Iterable[str], *, results: Iterable[str] = ()) -> Iterator[Path]:
        """A staging folder to write a set of files into; on a normal exit they replace the folder's files of
        that set, on an exception they are deleted and the folder is left as it was.

        Args:
            members: every file name the set can have (the optional ones too): those the new set does not write
                are removed from the folder when it is committed, so no file of an older set is left beside it.
            results: the members that hold the results (tables, per-item outcomes). When they are all written
                and the rest fails for another reason than a full disk (a figure of the HTML page), the set is
                committed without the rest before the error is raised: an hour-long study never loses its
                numbers to a plot, and its set is still never mixed with an older one.
        Yields:
            the staging folder (write the set's files directly into it, under their final names).
        """
        members = tuple(dict.fromkeys(members))
        results = tuple(results)
        for name in members:
            if not name or name != Path(name).name or name.startswith("."):
                raise ValueError(f"a report set's member must be a plain file name, got {name!r}")
        if not set(results) <= set(members):
            raise ValueError(f"a report set's results {results} must be among its members {members}")
        staging = self.path / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
        with disk_full_as_error(staging):
            staging.mkdir()
        try:
            yield staging
        except DiskFull:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception:
            if results and all((staging / name).is_file() for name in results):
                _commit(staging, self.path, members)
            else:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _commit(staging, self.path, members)

    def release(self) -> None:
        if self._lock_fd < 0:
            return
        try:
            (self.path / LOCK_NAME).unlink(missing_ok=True)  # while still held: see _take_lock
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1


@contextmanager
def output_folder(path: str | os.PathLike, *, command: str, option: str = "--out") -> Iterator[OutputFolder]:
    """Make the folder `path` if needed and hold its lock for the block; :class:`FolderBusy` (one line naming
    the run that holds it) when another run does. Leftovers of a run killed while writing are resolved first."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file; give a folder")
    try:
        with disk_full_as_error(path):
            path.mkdir(parents=True, exist_ok=True)
    except DiskFull:
        raise
    except OSError as error:
        raise ValueError(f"{option} {path}: the folder cannot be made ({error.strerror})") from None
    folder = OutputFolder(path, _take_lock(path, command, option))
    try:
        _resolve_leftovers(path)
        yield folder
    finally:
        folder.release()


def _take_lock(folder: Path, command: str, option: str) -> int:
    import fcntl

    lock = folder / LOCK_NAME
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            if is_disk_full(error):
                raise DiskFull(lock, error) from None
            raise ValueError(f"{option} {folder}: its lock file {lock} cannot be opened ({error.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderBusy(f"{option} {folder} is in use by another run ({holder}); wait for it to finish or "
                             f"choose another {option}") from None
        # The holder removes the lock file before it lets go: a file locked after that is a stale name, and
        # the lock is taken again on the file now at that name.
        try:
            current = os.stat(lock, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command})
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (record + "\n").encode("utf-8"), 0)
            except OSError as error:
                os.close(fd)
                if is_disk_full(error):
                    raise DiskFull(lock, error) from None
                raise
            return fd
        os.close(fd)
    raise FolderBusy(f"{option} {folder}: its lock file keeps changing; another run is starting there")


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, _MAX_LOCK_TEXT, 0).decode("utf-8", "replace")
        record = json.loads(text)
        command = str(record["command"])
        if len(command) > 500:
            command = command[:500] + "…"
        return (f"pid {int(record['pid'])} on {record.get('host', '?')}, started {record['started']}: "
                f"{command}").replace("\n", " ")
    except (OSError, ValueError, KeyError, TypeError):
        return "it has not written its details yet"


def _resolve_leftovers(folder: Path) -> None:
    """Staging folders of runs that died: complete ones are moved into place (the renames were under way),
    incomplete ones deleted."""
    for staging in sorted(folder.glob(f"{STAGING_PREFIX}*")):
        if not staging.is_dir() or staging.is_symlink():
            continue
        if (staging / COMPLETE_NAME).is_file():
            _move_into_place(staging, folder)
        else:
            shutil.rmtree(staging, ignore_errors=True)


def _commit(staging: Path, folder: Path, members: tuple[str, ...]) -> None:
    """Make the staged files durable, mark the staging folder complete, then move them into place."""
    try:
        written = sorted(entry.name for entry in staging.iterdir() if entry.is_file())
        strays = [name for name in written if name not in members]
        if strays:
            raise ValueError(f"{', '.join(strays)} written into a report set that names only {', '.join(members)}")
        for name in written:
            _fsync(staging / name)
        _fsync(staging)
        with disk_full_as_error(staging / COMPLETE_NAME):
            _write_small(staging / COMPLETE_NAME, json.dumps({"members": members, "written": written}))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _move_into_place(staging, folder)


def _move_into_place(staging: Path, folder: Path) -> None:
    record = json.loads((staging / COMPLETE_NAME).read_text(encoding="utf-8"))
    written = [name for name in record["written"] if name == Path(name).name]
    for name in written:
        if (staging / name).exists():  # absent: moved already by the run that died mid-way
            os.replace(staging / name, folder / name)
    for name in record["members"]:
        if name not in written and name == Path(name).name:
            (folder / name).unlink(missing_ok=True)
    _fsync(folder)
    shutil.rmtree(staging, ignore_errors=True)


def _write_small(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    with disk_full_as_error(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")
