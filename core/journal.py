"""The audit journal: every run and every result, in SQLite under the state directory.

Only redacted results reach the journal; secrets never do. A task is recorded as done
only when its script reported success.
"""
from __future__ import annotations

import getpass
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

from .results import Result

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL, finished_at REAL,
    operator TEXT NOT NULL, controller TEXT NOT NULL,
    command TEXT NOT NULL, inventory TEXT NOT NULL, check_mode INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    host TEXT NOT NULL, task TEXT NOT NULL, status TEXT NOT NULL,
    changed INTEGER NOT NULL, failed INTEGER NOT NULL, msg TEXT NOT NULL,
    diff TEXT NOT NULL, warnings TEXT NOT NULL, duration REAL NOT NULL, finished_at REAL NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS results_by_step ON results(task, host);
"""


class Journal:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "journal.sqlite"
        # Many Ansible forks may write at once: wait for the lock rather than fail.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        # WAL + NORMAL: every result is committed (an interrupted run keeps what it did) without an
        # fsync per result, which would dominate a run over thousands of clients.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def start_run(self, command: str, inventory: str, check_mode: bool) -> int:
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO runs(started_at, operator, controller, command, inventory, check_mode) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), getpass.getuser(), socket.gethostname(), command, inventory, int(check_mode)))
            return int(cur.lastrowid)

    def record(self, run_id: int, result: Result, fingerprint: str = "") -> None:
        """``fingerprint`` identifies what the step was asked to do (see Runner), for resume."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, result.host, result.task, result.status, int(result.changed), int(result.failed),
                 result.msg, json.dumps(result.diff, default=str), json.dumps(result.warnings),
                 result.duration, time.time(), fingerprint))

    def finish_run(self, run_id: int, status: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                             (time.time(), status, run_id))

    def runs(self) -> list[dict]:
        return self._query("SELECT * FROM runs ORDER BY id")

    def results(self, run_id: int | None = None) -> list[dict]:
        if run_id is None:
            return self._query("SELECT * FROM results ORDER BY rowid")
        return self._query("SELECT * FROM results WHERE run_id = ? ORDER BY rowid", (run_id,))

    def unfinished_run(self, command: str, inventory: str) -> int | None:
        """The latest run of ``command`` on ``inventory`` if it did not end well."""
        row = self._db.execute("SELECT id, status FROM runs WHERE command = ? AND inventory = ? AND check_mode = 0 "
                               "ORDER BY id DESC LIMIT 1", (command, inventory)).fetchone()
        return row[0] if row and row[1] != "ok" else None

    def succeeded_steps(self, run_id: int) -> dict[tuple[str, str], str]:
        """(task, host) -> fingerprint of the steps that succeeded in a run (what ``--resume`` skips)."""
        rows = self._db.execute("SELECT task, host, fingerprint FROM results WHERE run_id = ? "
                                "AND status IN ('ok', 'changed')", (run_id,)).fetchall()
        return {(t, h): f for t, h, f in rows}

    def _query(self, sql: str, args: tuple = ()) -> list[dict]:
        with self._lock:
            cur = self._db.execute(sql, args)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()
