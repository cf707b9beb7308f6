"""Text and files that a user controls, made safe for where they go: one rule each, used everywhere.

A shared server reads checkpoint folders and uploads that anyone in a class or lab can fill, and writes what it
reads into CSV reports and plotly charts. Three rules:

- :func:`csv_cell` / :func:`csv_safe_frame`: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return is a formula to a spreadsheet (``=HYPERLINK(…)`` runs when the report is opened); it gets a
  leading apostrophe (OWASP's "CSV injection" rule). Numbers stay numbers.
- :func:`plotly_text`: plotly renders a pseudo-HTML subset in labels, titles, hover text and legends (``<a href>``,
  ``<b>``, ``<br>``); file-controlled text is escaped so it shows as typed.
- :func:`read_regular_file`: only a regular file is read (a FIFO would block a server thread forever, a device
  or a huge sparse file would exhaust memory), opened without blocking, and only up to a size cap. Symbolic links
  are followed: what counts is the file they point to, which must itself be a regular file within the cap — and,
  with ``within=folder``, inside that folder (:func:`leads_outside`): a link in a shared folder must not make the
  server read a file elsewhere that only the server's account can read.
"""

from __future__ import annotations

import html
import os
import stat
from numbers import Number
from pathlib import Path

__all__ = ["FORMULA_STARTS", "UntrustedFileError", "csv_cell", "csv_safe_frame", "leads_outside", "plotly_text",
           "read_regular_file"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class UntrustedFileError(ValueError):
    """A user-controlled file that is not read; the message names it and says why, in one line."""


def csv_cell(value):
    """`value` as it should go into a CSV cell: text starting like a formula gets a leading apostrophe; numbers,
    booleans and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_frame(frame):
    """A copy of a pandas DataFrame whose text cells (object and string columns, and the column names) pass
    through :func:`csv_cell`; numeric columns are untouched."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    out = frame.copy()
    for column in out.columns:
        if not (is_numeric_dtype(out[column]) or is_bool_dtype(out[column])):
            out[column] = out[column].map(lambda v: v if isinstance(v, Number) else csv_cell(v))
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def plotly_text(value) -> str:
    """Text from a file (class names, model names, file names) escaped for plotly's pseudo-HTML: ``<``, ``>`` and
    ``&`` show as typed and never become tags or links."""
    return html.escape(str(value), quote=False)


def leads_outside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether `path`, its symbolic links followed, ends outside `folder` (itself resolved, so the folder may be
    a link); True when it cannot be resolved (a link loop)."""
    try:
        return not Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):
        return True


def read_regular_file(path: str | os.PathLike, *, max_bytes: int, what: str = "file",
                      within: str | os.PathLike | None = None) -> bytes:
    """The bytes of `path` if it is a regular file (after following symbolic links) of at most `max_bytes`, and
    with `within` given, if its links lead to a file inside that folder.

    Raises :class:`UntrustedFileError` naming the file for anything else: missing, a FIFO, socket, device or
    folder (checked on the open descriptor, opened with ``O_NONBLOCK`` so a FIFO cannot block), too large, or a
    link out of `within`.
    """
    path = Path(path)
    if within is not None and path.is_symlink() and leads_outside(path, within):
        raise UntrustedFileError(f"{what} {path} is a symbolic link that leads outside {within}; only files inside "
                                 "the folder are read")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UntrustedFileError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise UntrustedFileError(f"{what} {path} cannot be opened ({error.strerror or error})") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
            raise UntrustedFileError(f"{what} {path} is {kind}; only regular files are read")
        if info.st_size > max_bytes:
            raise UntrustedFileError(f"{what} {path} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
        os.set_blocking(descriptor, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(descriptor, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew while being read
                raise UntrustedFileError(f"{what} {path} is over {max_bytes:,} bytes; at most {max_bytes:,} are read")
        return b"".join(chunks)
    finally:
        os.close(descriptor)
