"""Who ran what, where and when: the metadata that reports carry (and ``lync2fa --version``)."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lync2fa")
    except PackageNotFoundError:
        return "0+unknown"


def iso(ts: float | datetime | None) -> str | None:
    """ISO-8601 with the UTC offset (local time), or None."""
    if ts is None:
        return None
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, tz=UTC)
    return moment.astimezone().isoformat(timespec="seconds")


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
        "duration_s": round(finished - started, 3) if started and finished else None,
    }
