"""Who ran what, where and when: the metadata that reports carry (and ``lync2fa --version``)."""

from __future__ import annotations

import getpass
import math
import socket
from datetime import UTC, datetime

# What a time or duration that is not a number (a damaged journal row) is shown as.
UNREADABLE = "?"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lync2fa")
    except PackageNotFoundError:
        return "0+unknown"


def number(value: object) -> float | None:
    """A stored time or duration as seconds, or None when it is not a finite number: a journal's
    REAL column still holds whatever was written to it (SQLite's type affinity is no constraint)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def iso(ts: float | datetime | None) -> str | None:
    """ISO-8601 with the UTC offset (local time), None for None, UNREADABLE for a value that is no
    time (text, or a number beyond the calendar)."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.astimezone().isoformat(timespec="seconds")
    seconds = number(ts)
    if seconds is None:
        return UNREADABLE
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).astimezone().isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return UNREADABLE


def duration(started: object, finished: object) -> float | None:
    """Seconds from ``started`` to ``finished``, or None unless both are numbers (a run still going,
    or a damaged row)."""
    start, end = number(started), number(finished)
    return round(end - start, 3) if start and end else None


def now() -> float:
    return datetime.now(tz=UTC).timestamp()


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        return "unknown"


def run_metadata(
    command: str,
    inventory: str | list[str],
    started: float | None,
    finished: float | None,
    run_id: int | None = None,
    check_mode: bool = False,
) -> dict:
    return {
        "tool": "lync2fa",
        "version": version(),
        "command": command,
        "inventory": inventory if isinstance(inventory, str) else ",".join(inventory),
        "user": user(),
        "controller": socket.gethostname(),
        "run_id": run_id,
        "check_mode": check_mode,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": duration(started, finished),
    }
