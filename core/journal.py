"""The audit journal: every run and every result, in SQLite under the state directory.

Only redacted results reach the journal; secrets never do. A task is recorded as done
only when its script reported success.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from .paths import PathError, ensure_dir
from .results import Result
from .runlock import is_held

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


# Columns added after the first release, added to an older journal when it is opened for writing.
MIGRATIONS = {
    ("runs", "pid"): "ALTER TABLE runs ADD COLUMN pid INTEGER",
    ("runs", "resumed_from"): "ALTER TABLE runs ADD COLUMN resumed_from INTEGER",
    ("results", "fingerprint"): "ALTER TABLE results ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
}
JOURNAL_FILE = "journal.sqlite"


class JournalError(RuntimeError):
    """The journal cannot be opened or written (an environment error: exit code 2). Raised, never
    swallowed, when the audit record would otherwise be lost."""


class Journal:
    def __init__(self, state_dir: Path, readonly: bool = False):
        """``readonly``: only read (``lync2fa journal``): works on a read-only state directory and
        never creates, migrates or writes anything."""
        state_dir = Path(state_dir)
        self.path = state_dir / JOURNAL_FILE
        self.readonly = readonly
        self._lock = threading.Lock()
        try:
            self._db = self._open_readonly() if readonly else self._open_writable(state_dir)
        except sqlite3.DatabaseError as exc:
            raise JournalError(explain(self.path, exc)) from None
        if not readonly:
            self._identity = self._stat()

    def _open_writable(self, state_dir: Path) -> sqlite3.Connection:
        try:
            ensure_dir(state_dir, "state directory")
        except PathError as exc:
            raise JournalError(str(exc)) from None
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            raise JournalError(f"the journal {self.path} is not writable (lync2fa journal can still read it)")
        # Many Ansible forks may write at once: wait for the lock rather than fail.
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        try:
            # Checked and created under the write lock: a fork creating the journal at the same
            # moment is seen with both tables or none, and a refused file is left untouched.
            db.execute("BEGIN IMMEDIATE")
            check_is_journal_or_empty(db, self.path)
            check_schema(db, self.path)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {(t, row[1]) for t in ("runs", "results") for row in db.execute(f"PRAGMA table_info({t})")}
            for key, sql in MIGRATIONS.items():
                if key not in columns:
                    db.execute(sql)
            db.commit()
            # WAL + NORMAL: every result is committed (an interrupted run keeps what it did) without an
            # fsync per result, which would dominate a run over thousands of clients.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.DatabaseError, JournalError):
            db.close()
            raise
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise JournalError(f"no journal at {self.path} (nothing has run with this --state-dir)")
        return open_readonly(self.path)

    def _stat(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_dev, st.st_ino

    def _check_file(self) -> None:
        """The journal file must still be the one opened: SQLite would go on writing to a deleted
        or replaced file, and the audit record would be lost silently."""
        try:
            same = self._stat() == self._identity
        except FileNotFoundError:
            same = False
        if not same:
            raise JournalError(
                f"the journal {self.path} was deleted or replaced during the run: results from "
                "now on cannot be recorded; stopping (the hosts may have been changed: run "
                "plan to see their state)"
            )

    def _write(self, sql: str, args: tuple):
        if self.readonly:
            raise JournalError(f"the journal {self.path} was opened read-only")
        with self._lock:
            self._check_file()
            try:
                with self._db:
                    return self._db.execute(sql, args)
            except sqlite3.DatabaseError as exc:
                raise JournalError(explain(self.path, exc)) from None

    def start_run(self, command: str, inventory: str, check_mode: bool, resumed_from: int | None = None) -> int:
        """``resumed_from``: the run this one resumes (``--resume``)."""
        cur = self._write(
            "INSERT INTO runs(started_at, operator, controller, command, inventory, check_mode, pid, resumed_from) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                getpass.getuser(),
                socket.gethostname(),
                command,
                inventory,
                int(check_mode),
                os.getpid(),
                resumed_from,
            ),
        )
        return int(cur.lastrowid)

    def record(self, run_id: int, result: Result, fingerprint: str = "") -> None:
        """``fingerprint`` identifies what the step was asked to do (see Runner), for resume."""
        self._write(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                result.host,
                result.task,
                result.status,
                int(result.changed),
                int(result.failed),
                result.msg,
                json.dumps(result.diff, default=str),
                json.dumps(result.warnings),
                result.duration,
                time.time(),
                fingerprint,
            ),
        )

    def record_started(self, run_id: int, host: str, task: str, fingerprint: str = "") -> None:
        """Before a step's operations are sent: if the controller dies now, the journal still says
        the step may have changed the host (a resumed run re-plans it and records the outcome)."""
        self._write(
            "INSERT INTO results VALUES (?, ?, ?, 'started', 0, 0, '', '[]', '[]', 0, ?, ?)",
            (run_id, host, task, time.time(), fingerprint),
        )

    def started_unfinished(self, run_id: int) -> set[tuple[str, str]]:
        """Steps of a run that were sent to their host but never recorded as finished."""
        rows = self._db.execute(
            "SELECT task, host, status FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        state: dict[tuple[str, str], str] = {}
        for task, host, status in rows:
            state[(task, host)] = status
        return {key for key, status in state.items() if status == "started"}

    def started_then_failed(self, run_id: int) -> set[tuple[str, str]]:
        """Steps of a run whose operations were sent and that were then recorded as failed: what
        ran before the failure (e.g. the host ran them and its answer was lost) is not in that record."""
        rows = self._db.execute(
            "SELECT task, host, status FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        state: dict[tuple[str, str], str] = {}
        sent: set[tuple[str, str]] = set()
        for task, host, status in rows:
            state[(task, host)] = status
            if status == "started":
                sent.add((task, host))
        return {key for key in sent if state[key] == "failed"}

    def unsettled(self, run_id: int) -> dict[int, tuple[set, set, set]]:
        """Per run, from ``run_id`` back along the runs it resumed (a resumed run may itself have
        been killed before it journaled what its predecessor left open): the steps sent and never
        recorded (``started_unfinished``), those sent then recorded failed (``started_then_failed``)
        and every step it sent."""
        out: dict[int, tuple[set, set, set]] = {}
        current: int | None = run_id
        while current is not None and current not in out:
            sent = {
                (t, h)
                for t, h in self._db.execute(
                    "SELECT task, host FROM results WHERE run_id = ? AND status = 'started'", (current,)
                ).fetchall()
            }
            out[current] = (self.started_unfinished(current), self.started_then_failed(current), sent)
            row = self._db.execute("SELECT resumed_from FROM runs WHERE id = ?", (current,)).fetchone()
            current = row[0] if row else None
        return out

    def finish_run(self, run_id: int, status: str) -> None:
        self._write("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def runs(self) -> list[dict]:
        """Every run; one still marked running whose process is gone (on this controller) is
        shown as interrupted (killed, or the machine went down)."""
        rows = self._query("SELECT * FROM runs ORDER BY id")
        for row in rows:
            row.setdefault("pid", None)
            row["status"] = displayed_status(row, self.path.parent)
        return rows

    def results(self, run_id: int | None = None) -> list[dict]:
        if run_id is None:
            return self._query("SELECT * FROM results ORDER BY rowid")
        return self._query("SELECT * FROM results WHERE run_id = ? ORDER BY rowid", (run_id,))

    def unfinished_run(self, command: str, inventory: str) -> int | None:
        """The latest run of ``command`` on ``inventory`` if it did not end well."""
        row = self._db.execute(
            "SELECT id, status FROM runs WHERE command = ? AND inventory = ? AND check_mode = 0 "
            "ORDER BY id DESC LIMIT 1",
            (command, inventory),
        ).fetchone()
        return row[0] if row and row[1] != "ok" else None

    def succeeded_steps(self, run_id: int) -> dict[tuple[str, str], str]:
        """(task, host) -> fingerprint of the steps that succeeded in a run (what ``--resume`` skips)."""
        rows = self._db.execute(
            "SELECT task, host, fingerprint FROM results WHERE run_id = ? AND status IN ('ok', 'changed')", (run_id,)
        ).fetchall()
        return {(t, h): f for t, h, f in rows}

    def _query(self, sql: str, args: tuple = ()) -> list[dict]:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
            except sqlite3.DatabaseError as exc:
                raise JournalError(explain(self.path, exc)) from None
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()


def explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    """What is wrong with the journal at ``path``, and what to do, from SQLite's error."""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "no such table" in text or "no such column" in text:
        return (
            f"the journal {path} is not a lync2fa journal or is corrupt ({text}); move it away "
            "(keep it for the audit) and run again to start a new journal"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"the journal {path} cannot be written ({text}): check the state directory's permissions"
    return f"the journal {path} cannot be used: {text}"


@functools.cache
def _schema_columns() -> dict[str, tuple[str, ...]]:
    """Each table's columns as SCHEMA creates them, in order (the later MIGRATIONS are optional)."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        later = {column for _table, column in MIGRATIONS}
        return {
            t: tuple(row[1] for row in db.execute(f"PRAGMA table_info({t})") if row[1] not in later)
            for t in ("runs", "results")
        }
    finally:
        db.close()


def check_is_journal_or_empty(db: sqlite3.Connection, path: Path) -> None:
    """Before writing: the database holds the journal's tables, or no table at all (a new journal).
    Another program's database (tables of its own) is refused rather than given ours."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables = {t for t in tables if not t.startswith("sqlite_")}
    missing = [t for t in _schema_columns() if t not in tables]
    if tables and missing:
        raise JournalError(explain(path, sqlite3.OperationalError(f"no such table: {missing[0]}")))


def check_schema(db: sqlite3.Connection, path: Path) -> None:
    """The journal's tables have SCHEMA's columns (JournalError naming the first missing one):
    another program's database would otherwise fail later, on a query. A table that does not
    exist yet is created by SCHEMA (and ``runs`` is read first, so its absence is caught there)."""
    for table, wanted in _schema_columns().items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in wanted if c not in have]
        if have and missing:
            raise JournalError(explain(path, sqlite3.OperationalError(f"no such column: {table}.{missing[0]}")))


def open_readonly(path: Path) -> sqlite3.Connection:
    """The journal at ``path`` for reading only: never created, migrated or written, and readable
    in a read-only state directory. A file that is not a lync2fa journal is a JournalError."""
    try:
        db = _connect_readonly(path)
        check_schema(db, path)
    except sqlite3.DatabaseError as exc:
        raise JournalError(explain(path, exc)) from None
    return db


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """In a read-only state directory a WAL journal cannot get its shared-memory file, so a copy
    of the journal and its write-ahead log (the latest results after a crash) is read."""
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=60)
        db.execute("SELECT count(*) FROM runs").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise
    with tempfile.TemporaryDirectory(prefix="lync2fa-journal-") as tmp:
        copy = Path(tmp) / JOURNAL_FILE
        try:
            shutil.copyfile(path, copy)
            wal = Path(str(path) + "-wal")
            if wal.exists():
                shutil.copyfile(wal, Path(str(copy) + "-wal"))
        except OSError as exc:
            raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
        disk = sqlite3.connect(copy)
        try:
            disk.execute("PRAGMA journal_mode=DELETE")  # folds the log in; an in-memory copy has no WAL
            image = disk.serialize()
        finally:
            disk.close()
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.deserialize(image)
    db.execute("SELECT count(*) FROM runs").fetchone()
    return db


def displayed_status(run: dict, state_dir: Path | None = None) -> str | None:
    """A run's status as it should be shown: one still "running" on this controller is
    "interrupted" (killed, or the machine went down) when its process is gone, or, for a run that
    changes hosts (it holds ``<state_dir>/run.lock`` while it lives), when no process holds that
    lock: its PID may since have been given to another process."""
    status = run.get("status")
    if status != "running" or run.get("controller") != socket.gethostname():
        return status
    pid = run.get("pid")
    if pid and not _alive(pid):
        return "interrupted"
    changes = not run.get("check_mode") and run.get("command") not in ("verify", "plan")  # verify: no lock
    if state_dir is not None and changes and is_held(Path(state_dir)) is False:
        return "interrupted"
    return status


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True
