"""The plan gate's findings, judged once per play (the Ansible face, issue 11 item 3).

``lync2fa plan`` judges every step of a kind together once. The Ansible face runs one step per
task and host, each in its own worker process; judging "every step of the kind" again for each
of them made controller CPU grow with the square of the hosts. A :class:`GateCache` keeps the
findings of the inventory's steps of a kind for one play in a small file under the state
directory (``gate/<play>-<kind>.json``, mode 0600, an exclusive lock while it is written), so
the first step of a play judges the inventory and the others read the answer: constant work
per host. Findings hold no secret values (rule, message, fix, host, task).

A step whose module options differ from the inventory is judged again among the inventory's
steps, in its place (``api.gate_findings``). Variables changed with ``set_fact`` after a play's
first lync2fa step are seen by that step's own parameters and decisions, not by the gate's
view of the other hosts (documented in docs/ansible.md).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from .findings import Finding

# Files of plays older than this are removed when a new one is written.
KEEP_S = 7 * 24 * 3600


class GateCache:
    def __init__(self, state_dir: str | Path, play: str):
        self.folder = Path(state_dir) / "gate"
        self.play = re.sub(r"[^A-Za-z0-9_.-]", "_", play)[:120] or "play"

    def findings(self, kind: str, judge: Callable[[], list[Finding]]) -> list[Finding]:
        """The findings for ``kind`` in this play: read, or judged now by ``judge()`` and kept."""
        path = self.folder / f"{self.play}-{re.sub(r'[^a-z_]', '_', kind)}.json"
        cached = _read(path)
        if cached is not None:
            return cached
        try:
            return self._judge_once(path, judge)
        except OSError:   # an unusable state directory: the journal reports it; judge without a cache
            return judge()

    def _judge_once(self, path: Path, judge: Callable[[], list[Finding]]) -> list[Finding]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                cached = _read(path)      # another worker judged it while this one waited
                if cached is not None:
                    return cached
                found = judge()
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump([_as_dict(f) for f in found], out)
                os.replace(tmp, path)
                self._prune()
                return found
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prune(self) -> None:
        now = time.time()
        for old in self.folder.glob("*.json"):
            try:
                if now - old.stat().st_mtime > KEEP_S:
                    old.unlink()
            except OSError:
                pass


FIELDS = ("rule", "message", "fix", "severity", "host", "task")


def _as_dict(finding: Finding) -> dict:
    return {name: getattr(finding, name) for name in FIELDS}


def _read(path: Path) -> list[Finding] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        return [Finding(**{k: item[k] for k in FIELDS}) for item in data]
    except (TypeError, KeyError):
        return None
