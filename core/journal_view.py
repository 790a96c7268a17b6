"""``lync2fa journal`` for people and machines.

A table of runs (local time, command, inventory, user, counts, status); ``--run N`` the steps of
one run with readable diffs; ``--json`` with ISO-8601 times and diffs as objects. The journal is
opened read-only: looking at it never creates a state directory or a journal, and a missing one
is an error (exit 2), not an empty history.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .meta import UNREADABLE, duration, iso, number
from .results import format_diff

JOURNAL = "journal.sqlite"
STATUS_STYLE = {
    "ok": "green",
    "changed": "cyan",
    "failed": "red",
    "skipped": "yellow",
    "running": "yellow",
    "interrupted": "magenta",
}


class JournalMissing(Exception):
    """No journal where one was asked for (a usage error: exit code 2)."""


def _displayed_status(run: dict, state_dir: Path | None = None) -> str:
    """A run still "running" whose process is gone, or that no longer holds the state directory's
    run lock, shows as interrupted (when the journal knows)."""
    try:
        from .journal import displayed_status
    except ImportError:
        return run.get("status") or "-"
    return displayed_status(run, state_dir) or "-"


def open_readonly(state_dir: Path) -> sqlite3.Connection:
    if not state_dir.is_dir():
        raise JournalMissing(
            f"no state directory {state_dir} (nothing has been run with --state-dir {state_dir}; "
            "the default is $LYNC2FA_STATE_DIR, else .lync2fa)"
        )
    path = state_dir / JOURNAL
    if not path.is_file():
        raise JournalMissing(f"no journal in {state_dir} ({JOURNAL} is missing)")
    try:
        from .journal import (
            open_readonly as journal_open,  # also reads a journal in a read-only directory
        )
    except ImportError:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    else:
        db = journal_open(path)
    db.row_factory = sqlite3.Row
    return db


def _rows(db: sqlite3.Connection, sql: str, args: tuple = ()) -> list[dict]:
    return [dict(row) for row in db.execute(sql, args).fetchall()]


def _final(rows: list[dict]) -> list[dict]:
    """A step journaled as "started" before its operations were sent and again when it finished:
    keep the finished row (a "started" row alone is a step the run never finished)."""
    last: dict[tuple, int] = {}
    for index, row in enumerate(rows):
        last[(row["task"], row["host"])] = index
    return [
        row
        for index, row in enumerate(rows)
        if row.get("status") != "started" or last[(row["task"], row["host"])] == index
    ]


def _counts(rows: list[dict]) -> dict:
    counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def runs(db: sqlite3.Connection, state_dir: Path | None = None) -> list[dict]:
    """Every run with its step counts, oldest first, times as ISO-8601 (local time, with offset);
    ``state_dir``: the journal's, whose run lock tells a live run from a dead one."""
    by_run: dict[int, list[dict]] = {}
    for row in _rows(db, "SELECT run_id, task, host, status FROM results ORDER BY rowid"):
        by_run.setdefault(row["run_id"], []).append(row)
    out = []
    for run in _rows(db, "SELECT * FROM runs ORDER BY id"):
        run["counts"] = _counts(_final(by_run.get(run["id"], [])))
        run["status"] = _displayed_status(run, state_dir)
        run["check_mode"] = bool(run.get("check_mode"))
        run["duration_s"] = duration(run.get("started_at"), run.get("finished_at"))
        for key in ("started_at", "finished_at"):
            run[key] = iso(run.get(key))
        out.append(run)
    return out


def _json_field(text, default):
    if not isinstance(text, str):
        return text if text is not None else default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def steps(db: sqlite3.Connection, run_id: int) -> list[dict]:
    out = []
    for step in _final(_rows(db, "SELECT * FROM results WHERE run_id = ? ORDER BY rowid", (run_id,))):
        step["diff"] = _json_field(step.get("diff"), [])
        step["warnings"] = _json_field(step.get("warnings"), [])
        step["changed"], step["failed"] = bool(step.get("changed")), bool(step.get("failed"))
        step["finished_at"] = iso(step.get("finished_at"))
        step.pop("fingerprint", None)
        out.append(step)
    return out


def _local(stamp: str | None) -> str:
    if not stamp:
        return "-"
    if stamp == UNREADABLE:
        return UNREADABLE
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(value) -> str:
    if value is None:
        return "-"
    seconds = number(value)
    if seconds is None:
        return UNREADABLE
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


_Justify = Literal["left", "right"]


def print_runs(rows: list[dict], console: Console) -> None:
    table = Table(title="lync2fa journal", title_justify="left", header_style="bold")
    columns: tuple[tuple[str, _Justify], ...] = (
        ("run", "right"),
        ("started", "left"),
        ("command", "left"),
        ("inventory", "left"),
        ("user", "left"),
        ("ok", "right"),
        ("changed", "right"),
        ("failed", "right"),
        ("skipped", "right"),
        ("took", "right"),
        ("status", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for run in rows:
        c = run["counts"]
        command = run["command"] + (
            " (check)" if run["check_mode"] and run["command"] not in ("plan", "verify") else ""
        )
        table.add_row(
            str(run["id"]),
            _local(run["started_at"]),
            escape(command),
            escape(run.get("inventory") or "-"),
            escape(f"{run.get('operator', '-')}@{run.get('controller', '-')}"),
            str(c["ok"]),
            str(c["changed"]),
            f"[red]{c['failed']}[/]" if c["failed"] else "0",
            str(c["skipped"]),
            _duration(run["duration_s"]),
            _status(run.get("status") or "-"),
        )
    if not rows:
        console.print("the journal has no runs yet", highlight=False)
        return
    console.print(table)


def print_steps(run: dict, rows: list[dict], console: Console) -> None:
    c = run["counts"]
    console.print(
        f"[bold]run {run['id']}[/]: {escape(run['command'])} on {escape(run.get('inventory') or '-')} by "
        f"{escape(run.get('operator', '-'))}@{escape(run.get('controller', '-'))}, "
        f"{_local(run['started_at'])} -> {_local(run['finished_at'])} ({_duration(run['duration_s'])}), "
        f"{_status(run.get('status') or '-')}: {c['ok']} ok, {c['changed']} changed, {c['failed']} failed, "
        f"{c['skipped']} skipped",
        highlight=False,
    )
    table = Table(header_style="bold")
    step_columns: tuple[tuple[str, _Justify], ...] = (
        ("task", "left"),
        ("host", "left"),
        ("status", "left"),
        ("took", "right"),
        ("message", "left"),
    )
    for name, justify in step_columns:
        table.add_column(name, justify=justify, overflow="fold")
    for step in rows:
        table.add_row(
            escape(step["task"]),
            escape(step["host"]),
            _status(step["status"]),
            _duration(step.get("duration")),
            escape(step.get("msg") or ""),
        )
    console.print(table)
    verb = "would change" if run["check_mode"] else "changed"
    for step in rows:
        diff = step["diff"] if isinstance(step["diff"], list) else []
        if not diff and not step["warnings"]:
            continue
        console.print(
            f"[cyan]{escape(step['task'])} on {escape(step['host'])}[/] "
            f"({verb if step['changed'] else step['status']}):",
            highlight=False,
        )
        for line in format_diff(diff):
            console.print(f"    {line}", markup=False, highlight=False)
        for warning in step["warnings"] if isinstance(step["warnings"], list) else [step["warnings"]]:
            console.print(f"    [yellow]warning:[/] {escape(str(warning))}", highlight=False)


def show(state_dir: Path, run_id: int | None, as_json: bool, console: Console) -> None:
    if not console.is_terminal:  # a pipe or a log: wide rows rather than 80 folded columns
        console = Console(
            file=console.file, width=max(console.width, 200), highlight=False, soft_wrap=False, color_system=None
        )
    db = open_readonly(state_dir)
    try:
        all_runs = runs(db, state_dir)
        if run_id is None:
            if as_json:
                print(json.dumps({"journal": str(state_dir / JOURNAL), "runs": all_runs}, indent=2, default=str))
            else:
                print_runs(all_runs, console)
            return
        run = next((r for r in all_runs if r["id"] == run_id), None)
        if run is None:
            raise JournalMissing(
                f"no run {run_id} in the journal of {state_dir} "
                f"(runs: {', '.join(str(r['id']) for r in all_runs) or 'none'})"
            )
        rows = steps(db, run_id)
        if as_json:
            print(json.dumps({"run": run, "steps": rows}, indent=2, default=str))
        else:
            print_steps(run, rows, console)
    finally:
        db.close()
