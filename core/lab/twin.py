"""What a lab twin gets and returns: the resource-script contract, implemented in Python."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .estate import Estate, LabHost
from .state import EstateStore


class TwinFailure(Exception):
    """Raised by a twin where the real script would throw; nothing it wrote is kept."""


@dataclass
class TwinContext:
    store: EstateStore
    estate: Estate
    host: LabHost
    check_mode: bool
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    # The twin of the scripts' HKLM:\SOFTWARE\lync2fa\Created markers (rollback removes
    # only what lync2fa created).
    def mark_created(self, resource_id: str) -> None:
        if not self.check_mode:
            self.store.put("created_marker", f"{self.host.name}/{resource_id}", {"host": self.host.name})

    def was_created(self, resource_id: str) -> bool:
        return self.store.get("created_marker", f"{self.host.name}/{resource_id}") is not None

    def unmark_created(self, resource_id: str) -> None:
        if not self.check_mode:
            self.store.delete("created_marker", f"{self.host.name}/{resource_id}")

    # The twin of Set-Lync2faRecord / Get-Lync2faRecordIds: a created-marker that also holds
    # what rollback needs ({"created": bool, "previous": ...}). The first record wins, so a
    # later apply never overwrites the original values.
    def record(self, resource_id: str, created: bool, previous=None) -> None:
        if self.check_mode or self.was_created(resource_id):
            return
        self.store.put("created_marker", f"{self.host.name}/{resource_id}",
                       {"host": self.host.name, "created": created, "previous": previous})

    def records(self, prefix: str) -> dict[str, dict]:
        """This host's records whose id starts with ``prefix``, by id (in id order)."""
        start = f"{self.host.name}/{prefix}"
        return {key[len(self.host.name) + 1:]: {"created": True, "previous": None, **data}
                for key, data in self.store.items("created_marker").items() if key.startswith(start)}


Twin = Callable[[TwinContext, dict], dict]


def outcome(before: dict, after: dict, msg: str = "", warnings: list[str] | None = None) -> dict:
    """A script result whose ``changed`` is derived from before/after, never set by hand."""
    return {"changed": before != after, "failed": False, "msg": msg, "before": before,
            "after": after, "warnings": list(warnings or [])}


def failure(msg: str, before: dict | None = None, warnings: list[str] | None = None) -> dict:
    return {"changed": False, "failed": True, "msg": msg, "before": before or {},
            "after": before or {}, "warnings": list(warnings or [])}
