"""Per-epoch metrics written as CSV and JSON lines: the run's progress in ``<stem>.partial.csv``/``.jsonl``
after each epoch, moved to ``<stem>.csv``/``.jsonl`` only when the run commits its checkpoint."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .checkpoint import atomic_write
from .outputs import disk_full_as_error


class MetricsLog:
    """Keeps the epoch rows in memory and rewrites `<stem>.partial.csv` and `<stem>.partial.jsonl` after each
    epoch; :meth:`commit` renames them to `<stem>.csv` and `<stem>.jsonl`.

    Rewriting whole (small) files through a rename keeps them consistent after a crash, and lets a resumed
    run drop the rows of epochs it is about to redo. Keeping the progress under other names until the commit
    means that a re-run which fails (a full disk, NaN, Ctrl-C) never replaces the metrics of the previous run
    whose checkpoint is still there.
    """

    def __init__(self, stem: str | os.PathLike, rows: list[dict] | None = None):
        self.stem = Path(stem)
        self.rows: list[dict] = list(rows or [])

    def _named(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    @property
    def csv_path(self) -> Path:
        return self._named(".csv")

    @property
    def jsonl_path(self) -> Path:
        return self._named(".jsonl")

    @property
    def partial_csv_path(self) -> Path:
        return self._named(".partial.csv")

    @property
    def partial_jsonl_path(self) -> Path:
        return self._named(".partial.jsonl")

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file the log writes, committed and partial."""
        return self.csv_path, self.jsonl_path, self.partial_csv_path, self.partial_jsonl_path

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.flush()

    def flush(self) -> None:
        """Rewrite the partial files from the rows."""
        if not self.rows:
            return
        fields = list(self.rows[0])
        for row in self.rows[1:]:
            fields += [key for key in row if key not in fields]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        text = buffer.getvalue()
        lines = "".join(json.dumps(row) + "\n" for row in self.rows)
        atomic_write(self.partial_csv_path, lambda tmp: Path(tmp).write_text(text))
        atomic_write(self.partial_jsonl_path, lambda tmp: Path(tmp).write_text(lines))

    def commit(self) -> None:
        """Move the partial files to the final names (call after the checkpoint is written)."""
        self.flush()
        if not self.rows:
            return
        for partial, final in ((self.partial_csv_path, self.csv_path), (self.partial_jsonl_path, self.jsonl_path)):
            with disk_full_as_error(final):
                os.replace(partial, final)

    def discard_partial(self) -> None:
        """Delete the progress files of an earlier, unfinished run (a fresh start)."""
        for path in (self.partial_csv_path, self.partial_jsonl_path):
            path.unlink(missing_ok=True)
