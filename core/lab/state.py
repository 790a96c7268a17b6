"""The lab estate's state: JSON objects by (kind, key) in SQLite, kept across restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
"""


class _Rollback(Exception):
    pass


class EstateStore:
    """Thread-safe; every twin call runs inside one ``transaction`` (all or nothing)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[EstateStore]:
        """All writes inside commit together, or none do (on error, or when commit=False)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT" if commit else "ROLLBACK")
            finally:
                self._depth = 0

    def get(self, kind: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, kind: str, key: str, data: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", (kind, key, json.dumps(data, sort_keys=True))
            )

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE kind = ? AND key = ?", (kind, key))

    def items(self, kind: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, data FROM objects WHERE kind = ? ORDER BY key", (kind,)).fetchall()
        return {k: json.loads(d) for k, d in rows}

    def items_prefix(self, kind: str, prefix: str) -> dict[str, Any]:
        """The objects of a kind whose key starts with ``prefix`` (an index range scan)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, data FROM objects WHERE kind = ? AND key >= ? AND key < ? ORDER BY key",
                (kind, prefix, prefix + "\U0010ffff"),
            ).fetchall()
        return {k: json.loads(d) for k, d in rows}

    def snapshot(self, exclude_kinds: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """The whole estate (for comparing states in tests and rollback checks)."""
        with self._lock:
            rows = self._db.execute("SELECT kind, key, data FROM objects ORDER BY kind, key").fetchall()
        out: dict[str, dict[str, Any]] = {}
        for kind, key, data in rows:
            if kind not in exclude_kinds:
                out.setdefault(kind, {})[key] = json.loads(data)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
