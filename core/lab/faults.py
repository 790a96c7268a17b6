"""Fault injection for the lab: per host, stored with the estate so tests and benchmarks can
change faults while the lab runs (``lync2fa lab fault``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from .state import EstateStore
from .wsman import Faults

KIND = "lab_fault"
# The documented values of each fault: (kind, minimum, maximum) for numbers.
SPEC: dict[str, tuple[str, float | None, float | None]] = {
    "latency_s": ("seconds", 0.0, 600.0),
    "drop": ("bool", None, None),
    "http_status": ("status", 100, 599),
    "receive_timeouts": ("count", 0, 1000),
    "reject_auth": ("bool", None, None),
    "fail_tasks": ("tasks", None, None),
    "ca_offline": ("bool", None, None),
    # A hung command: every Receive is held for the client's OperationTimeout, then answered with
    # WinRM's OperationTimeout fault, forever (lync2fa --step-timeout ends it).
    "hang_receive": ("bool", None, None),
    # A lost shell (WinRM service restarted): per shell, the requests after this many get
    # "shell not found" (WinRM fault 2150858843); 0 never.
    "lose_shell_after": ("count", 0, 1000),
    # A network cut at the worst moment: per shell, the request after this many is carried out and
    # its answer never arrives (the connection drops); 0 never.
    "drop_reply_after": ("count", 0, 1000),
}
DOC = {
    "seconds": "a number of seconds from {min:g} to {max:g}",
    "bool": "true or false",
    "status": "an HTTP status from {min} to {max}, or null",
    "count": "a whole number from {min} to {max}",
    "tasks": "a comma-separated list of task names",
}


@dataclass
class HostFaults:
    latency_s: float = 0.0
    drop: bool = False
    http_status: int | None = None
    receive_timeouts: int = 0
    reject_auth: bool = False
    fail_tasks: list[str] = field(default_factory=list)  # these tasks' scripts fail (exit 1)
    ca_offline: bool = False  # enrollment/template scripts fail
    hang_receive: bool = False  # every Receive times out, forever
    lose_shell_after: int = 0  # a shell is gone after this many requests
    drop_reply_after: int = 0  # the next request runs, its answer is lost

    def transport(self) -> Faults:
        return Faults(
            latency_s=self.latency_s,
            drop=self.drop,
            http_status=self.http_status,
            receive_timeouts=self.receive_timeouts,
            reject_auth=self.reject_auth,
            hang_receive=self.hang_receive,
            lose_shell_after=self.lose_shell_after,
            drop_reply_after=self.drop_reply_after,
        )


def _expected(name: str) -> str:
    kind, low, high = SPEC[name]
    return DOC[kind].format(min=low, max=high)


def parse_setting(setting: str) -> tuple[str, object]:
    """``NAME=VALUE`` from the command line, as its documented type (ValueError otherwise)."""
    if "=" not in setting:
        raise ValueError(f"fault setting {setting!r} is not NAME=VALUE")
    name, raw = setting.split("=", 1)
    _known(name)
    kind = SPEC[name][0]
    text = raw.strip()
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            value: object = text.lower() == "true"
        elif kind == "seconds":
            value = float(text)
        elif kind == "status":
            value = None if text.lower() in ("null", "none", "") else int(text)
        elif kind == "count":
            value = int(text)
        else:
            value = [t.strip() for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"fault {name}={raw[:40]!r}: expected {_expected(name)}") from None
    return name, check_value(name, value)


def check_value(name: str, value):
    """A fault's value, checked against its documented type and range (ValueError otherwise)."""
    kind, low, high = SPEC[name]

    def within(v: float) -> bool:
        if low is None or high is None:  # SPEC gives every number kind its range
            raise ValueError(f"fault {name}: SPEC has no range for a {kind}")
        return low <= v <= high

    ok = {
        "bool": lambda v: isinstance(v, bool),
        "seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and within(v),
        "status": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and within(v)),
        "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and within(v),
        "tasks": lambda v: isinstance(v, list) and all(isinstance(t, str) and t for t in v),
    }[kind](value)
    if not ok:
        raise ValueError(f"fault {name}={str(value)[:40]!r}: expected {_expected(name)}")
    return value


def _known(name: str) -> None:
    if name not in SPEC:
        raise ValueError(f"unknown fault {name[:40]!r}; known: {', '.join(sorted(SPEC))}")


class FaultBook:
    def __init__(self, store: EstateStore, hosts: list[str] | None = None, tasks: list[str] | None = None):
        """``hosts`` / ``tasks``: when given, the only host names and ``fail_tasks`` entries accepted."""
        self.store = store
        self.hosts = set(hosts) if hosts is not None else None
        self.tasks = set(tasks) if tasks is not None else None

    def _check_host(self, host: str) -> None:
        if self.hosts is not None and host != "*" and host not in self.hosts:
            raise ValueError(
                f"no host {host[:60]!r} in the lab; hosts: * (every host), {', '.join(sorted(self.hosts))}"
            )

    def get(self, host: str) -> HostFaults:
        merged = {**(self.store.get(KIND, "*") or {}), **(self.store.get(KIND, host) or {})}
        known = {f.name for f in fields(HostFaults)}
        return HostFaults(**{k: v for k, v in merged.items() if k in known})

    def set(self, host: str, **values) -> HostFaults:
        """``host`` may be ``*`` for every host. Unknown fault names raise ValueError."""
        self._check_host(host)
        known = {f.name for f in fields(HostFaults)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        for name, value in values.items():
            check_value(name, value)
        if self.tasks is not None:
            bad = [t for t in values.get("fail_tasks") or [] if t not in self.tasks]
            if bad:
                raise ValueError(f"fail_tasks: unknown task(s) {', '.join(bad)}")
        current = {**(self.store.get(KIND, host) or {}), **values}
        HostFaults(**current)  # validates the shape
        with self.store.transaction():
            self.store.put(KIND, host, current)
        return HostFaults(**current)

    def clear(self, host: str | None = None) -> None:
        """``host``'s own faults; None or ``*`` every host's (as ``*`` sets a fault on every host),
        not only the ones set with ``*``."""
        if host is not None:
            self._check_host(host)
        with self.store.transaction():
            if host in (None, "*"):
                for key in self.store.items(KIND):
                    self.store.delete(KIND, key)
            else:
                self.store.delete(KIND, host)

    def as_dict(self) -> dict:
        return {k: asdict(self.get(k)) for k in self.store.items(KIND)}
