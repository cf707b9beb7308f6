"""Per-epoch metrics written as CSV and JSON lines, appended atomically line by line."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .checkpoint import atomic_write


class MetricsLog:
    """Keeps the epoch rows in memory and rewrites `<stem>.csv` and `<stem>.jsonl` after each epoch.

    Rewriting whole (small) files through a rename keeps them consistent after a crash, and lets a resumed
    run drop the rows of epochs it is about to redo.
    """

    def __init__(self, stem: str | os.PathLike, rows: list[dict] | None = None):
        self.stem = Path(stem)
        self.rows: list[dict] = list(rows or [])

    @property
    def csv_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".csv")

    @property
    def jsonl_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".jsonl")

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.flush()

    def flush(self) -> None:
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
        atomic_write(self.csv_path, lambda tmp: Path(tmp).write_text(text))
        atomic_write(self.jsonl_path, lambda tmp: Path(tmp).write_text(lines))
