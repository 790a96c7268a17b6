"""Progress as ordinary lync2fa plugins (task start/finish hooks).

On a terminal, :class:`ProgressDisplay` keeps one live bar per tier (hosts done and failed).
Elsewhere (CI logs), :class:`LinePrinter` prints a line when a host's batch starts and when it
starts applying (a client's whole rollout is one batch), and one line per step as it finishes, so
a long run shows where it is. With ``-v`` both also show the operations a step sent
(``result.operations``).
"""

from __future__ import annotations

import sys
import threading
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from .hookspecs import hookimpl

BATCH_NAMES = 4  # task names shown in a batch's line; more are "..."


def _tier(step) -> str:
    return step.task.name.split(".", 1)[0]


def _operations(result) -> list:
    return list(getattr(result, "operations", None) or [])


def _describe(op) -> str:
    if isinstance(op, dict):
        inner = op.get("operation", op)
        text = (
            inner
            if isinstance(inner, str)
            else ", ".join(f"{k}={v}" for k, v in inner.items())
            if isinstance(inner, dict)
            else str(inner)
        )
        return text + (f" -> {op['result']}" if isinstance(op, dict) and op.get("result") not in (None, "") else "")
    return str(op)


class ProgressDisplay:
    """One bar per tier: its hosts done (every step of the tier finished on them) and failed."""

    def __init__(self, total: int, console: Console | None = None, steps=None, verbose: int = 0):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.verbose = verbose
        self._lock = threading.Lock()
        self._failed: dict[str, set] = {}
        self._bars: dict[str, int] = {}
        self._left: dict[tuple[str, str], int] = {}  # (tier, host) -> steps not finished yet
        for step in steps or ():
            key = (_tier(step), step.host.name)
            self._left[key] = self._left.get(key, 0) + 1
        per_tier: dict[str, int] = {}
        for tier, _host in self._left:
            per_tier[tier] = per_tier.get(tier, 0) + 1
        if not per_tier:
            per_tier = {"lync2fa": total}
        width = max(len(t) for t in per_tier)
        for tier, count in per_tier.items():
            self._failed[tier] = set()
            self._bars[tier] = self.progress.add_task(f"{tier:<{width}} hosts", total=count, failed="")

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    @hookimpl
    def lync2fa_task_start(self, step):
        pass

    @hookimpl
    def lync2fa_task_finish(self, step, result):
        with self._lock:
            tier = _tier(step) if _tier(step) in self._bars else next(iter(self._bars))
            key = (tier, step.host.name)
            if result.failed:
                self._failed[tier].add(step.host.name)
            if key in self._left:
                self._left[key] -= 1
                done = self._left[key] == 0
            else:  # no steps given: count steps
                done = True
            failed = len(self._failed[tier])
            self.progress.update(
                self._bars[tier], advance=1 if done else 0, failed=f"[red]{failed} failed[/]" if failed else ""
            )
            if self.verbose:
                for op in _operations(result):
                    self.progress.console.print(
                        f"  {escape(step.host.name)} {escape(step.task.name)}: {escape(_describe(op))}", highlight=False
                    )


class LinePrinter:
    """On stderr: a line per host batch stage (``cl0001: applying client.vsc, client.enrollment
    (2 steps)``) and one per finished step (``[12/40] changed  ca.authority on ca01 (1.2 s)``)."""

    def __init__(self, total: int, verbose: int = 0, check_mode: bool = False, stream=None):
        self.total, self.verbose, self.check_mode = total, verbose, check_mode
        self._stream = stream
        self._done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def stream(self):
        return self._stream or sys.stderr

    @hookimpl
    def lync2fa_task_start(self, step):
        pass

    @hookimpl
    def lync2fa_host_batch(self, host, stage, steps):
        names = [s.task.name for s in steps]
        shown = ", ".join(names[:BATCH_NAMES]) + (", ..." if len(names) > BATCH_NAMES else "")
        with self._lock:
            self._write([f"{host}: {stage} {shown} ({len(names)} step{'' if len(names) == 1 else 's'})"])

    def _write(self, lines: list[str]) -> None:
        """Under ``self._lock``: a step's lines stay together, and in the order they are counted."""
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    @hookimpl
    def lync2fa_task_finish(self, step, result):
        status = result.status
        if status == "changed" and self.check_mode:
            status = "would change"
        with self._lock:
            self._done += 1
            width = len(str(self.total))
            line = (
                f"[{self._done:>{width}}/{self.total}] {status:<12} {step.task.name} on {step.host.name} "
                f"({result.duration:.1f} s)"
            )
            if result.failed and result.msg:
                line += f": {result.msg.splitlines()[0][:200]}"
            lines = [line]
            if self.verbose:
                lines += [f"    {_describe(op)}" for op in _operations(result)]
            self._write(lines)
