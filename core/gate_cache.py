"""The plan gate's findings, judged once per play (the Ansible face, issue 11 item 3).

``lync2fa plan`` judges every step of a kind together once. The Ansible face runs one step per
task and host, each in its own worker process; judging "every step of the kind" again for each
of them made controller CPU grow with the square of the hosts. A :class:`GateCache` keeps the
findings of the inventory's steps of a kind for one play under the state directory
(``gate/<play>-<kind>/``: one small file per host plus one for findings about no host, mode
0600, written once under an exclusive lock), so the first step of a play judges the inventory
and every other step reads two small files: constant work per host. Findings hold no secret
values (rule, message, fix, host, task).

A step whose module options differ from the inventory is judged again among the inventory's
steps, in its place (``api.gate_findings``). Variables changed with ``set_fact`` after a play's
first lync2fa step are seen by that step's own parameters and decisions, not by the gate's
view of the other hosts (documented in docs/ansible.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .findings import Finding

KEEP_S = 7 * 24 * 3600  # plays older than this are removed when a new one is judged
DONE = ".done"  # written last: the folder is complete
FIELDS = ("rule", "message", "fix", "severity", "host", "task")


class GateCache:
    def __init__(self, state_dir: str | Path, play: str):
        self.root = Path(state_dir) / "gate"
        self.play = re.sub(r"[^A-Za-z0-9_.-]", "_", play)[:120] or "play"

    def findings(self, kind: str, judge: Callable[[], list[Finding]], host: str | None = None) -> list[Finding]:
        """The findings for ``kind`` in this play about ``host`` and about no host (all of them
        when ``host`` is None): read, or judged now by ``judge()`` and kept."""
        folder = self.root / f"{self.play}-{re.sub(r'[^a-z_]', '_', kind)}"
        if not (folder / DONE).exists():
            try:
                found = self._judge_once(folder, judge)
            except OSError:  # an unusable state directory: the journal reports it; judge without a cache
                found = judge()
            return found if host is None else [f for f in found if f.host in ("", host)]
        if host is None:
            return [f for path in sorted(folder.glob("*.json")) for f in _read(path)]
        return _read(folder / "_.json") + _read(folder / _name(host))

    def _judge_once(self, folder: Path, judge: Callable[[], list[Finding]]) -> list[Finding]:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if (folder / DONE).exists():  # another worker judged it while this one waited
                    return [f for path in sorted(folder.glob("*.json")) for f in _read(path)]
                found = judge()
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(mode=0o700)
                by_host: dict[str, list[dict]] = {}
                for f in found:
                    by_host.setdefault(f.host, []).append({k: getattr(f, k) for k in FIELDS})
                by_host.setdefault("", [])
                for host, items in by_host.items():
                    _write(folder / (_name(host) if host else "_.json"), items)
                _write(folder / DONE, [])
                self._prune()
                return found
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prune(self) -> None:
        now = time.time()
        for old in self.root.iterdir():
            try:
                if old.is_dir() and now - old.stat().st_mtime > KEEP_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass


def _name(host: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host)[:80]
    return f"h-{safe}-{hashlib.sha256(host.encode()).hexdigest()[:8]}.json"


def _write(path: Path, items: list) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(items, out)


def _read(path: Path) -> list[Finding]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Finding(**{k: item[k] for k in FIELDS}) for item in data]
    except (OSError, ValueError, TypeError, KeyError):
        return []
