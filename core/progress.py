"""Live progress on a terminal, as an ordinary lync2fa plugin (task start/finish hooks)."""
from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .hookspecs import hookimpl


class ProgressDisplay:
    def __init__(self, total: int, console: Console | None = None):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console or Console(stderr=True), transient=True)
        self.bar = self.progress.add_task("lync2fa", total=total)
        self._lock = threading.Lock()

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    @hookimpl
    def lync2fa_task_start(self, step):
        with self._lock:
            self.progress.update(self.bar, description=f"{step.task.name} on {step.host.name}")

    @hookimpl
    def lync2fa_task_finish(self, step, result):
        with self._lock:
            self.progress.advance(self.bar)
