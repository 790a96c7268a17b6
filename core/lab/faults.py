"""Fault injection for the lab: per host, stored with the estate so tests and benchmarks can
change faults while the lab runs (``lync2fa lab fault``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .state import EstateStore
from .wsman import Faults

KIND = "lab_fault"


@dataclass
class HostFaults:
    latency_s: float = 0.0
    drop: bool = False
    http_status: int | None = None
    receive_timeouts: int = 0
    reject_auth: bool = False
    fail_tasks: list[str] = field(default_factory=list)   # these tasks' scripts fail (exit 1)
    ca_offline: bool = False                              # enrollment/template scripts fail

    def transport(self) -> Faults:
        return Faults(latency_s=self.latency_s, drop=self.drop, http_status=self.http_status,
                      receive_timeouts=self.receive_timeouts, reject_auth=self.reject_auth)


class FaultBook:
    def __init__(self, store: EstateStore):
        self.store = store

    def get(self, host: str) -> HostFaults:
        merged = {**(self.store.get(KIND, "*") or {}), **(self.store.get(KIND, host) or {})}
        known = {f.name for f in fields(HostFaults)}
        return HostFaults(**{k: v for k, v in merged.items() if k in known})

    def set(self, host: str, **values) -> HostFaults:
        """``host`` may be ``*`` for every host. Unknown fault names raise ValueError."""
        known = {f.name for f in fields(HostFaults)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        current = {**(self.store.get(KIND, host) or {}), **values}
        HostFaults(**current)  # validates the shape
        with self.store.transaction():
            self.store.put(KIND, host, current)
        return HostFaults(**current)

    def clear(self, host: str | None = None) -> None:
        with self.store.transaction():
            if host is None:
                for key in self.store.items(KIND):
                    self.store.delete(KIND, key)
            else:
                self.store.delete(KIND, host)

    def as_dict(self) -> dict:
        return {k: asdict(self.get(k)) for k in self.store.items(KIND)}
