"""What a real estate charges that the lab does not naturally: starting powershell.exe and
importing modules. ``lync2fa lab up --profile real-estate`` makes the lab pay them (sleeps), so
benchmarks show what a rollout would cost; the lab counts process starts, imports and WS-Management
requests per host either way (``counters.json`` in the lab directory)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

SETTING = ("lab_setting", "profile")
PROFILES = {
    "fast": {"process_start_s": 0.0, "imports_s": {}},
    # Measured orders of magnitude on real servers (issue 11): a powershell.exe start ~0.5 s, the
    # Lync/SfB module 8 s, ADFS 2 s, AD CS and ServerManager about 1 s.
    "real-estate": {
        "process_start_s": 0.5,
        "imports_s": {
            "SkypeForBusiness": 8.0,
            "Lync": 8.0,
            "ADFS": 2.0,
            "ADCSDeployment": 1.0,
            "ADCSAdministration": 1.0,
            "ServerManager": 1.0,
            "WebAdministration": 0.5,
            "TrustedPlatformModule": 0.3,
        },
    },
}


def profile(store) -> dict:
    return PROFILES.get(store.get(*SETTING) or "fast", PROFILES["fast"])


class Counters:
    """Per host: process starts, module imports, WS-Management requests by action."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self.process_starts: Counter = Counter()
        self.imports: Counter = Counter()
        self.requests: dict[str, Counter] = defaultdict(Counter)
        self._dirty = False

    def process_started(self, host: str) -> None:
        with self._lock:
            self.process_starts[host] += 1
            self._dirty = True

    def imported(self, host: str, count: int = 1) -> None:
        with self._lock:
            self.imports[host] += count
            self._dirty = True

    def request(self, host: str, action: str) -> None:
        with self._lock:
            self.requests[host][action] += 1
            self._dirty = True

    def snapshot(self) -> dict:
        with self._lock:
            hosts = set(self.process_starts) | set(self.imports) | set(self.requests)
            return {
                h: {
                    "process_starts": self.process_starts[h],
                    "imports": self.imports[h],
                    "requests": dict(self.requests[h]),
                }
                for h in sorted(hosts)
            }

    def flush(self) -> None:
        if self.path is None or not self._dirty:
            return
        self._dirty = False
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), sort_keys=True))
        tmp.replace(self.path)

    def flush_every(self, interval_s: float, stop: threading.Event) -> threading.Thread:
        def loop():
            while not stop.wait(interval_s):
                self.flush()
            self.flush()

        thread = threading.Thread(target=loop, name="lab-counters", daemon=True)
        thread.start()
        return thread


def pay(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
