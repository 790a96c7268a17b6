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


Twin = Callable[[TwinContext, dict], dict]


def outcome(before: dict, after: dict, msg: str = "", warnings: list[str] | None = None) -> dict:
    """A script result whose ``changed`` is derived from before/after, never set by hand."""
    return {"changed": before != after, "failed": False, "msg": msg, "before": before,
            "after": after, "warnings": list(warnings or [])}


def failure(msg: str, before: dict | None = None, warnings: list[str] | None = None) -> dict:
    return {"changed": False, "failed": True, "msg": msg, "before": before or {},
            "after": before or {}, "warnings": list(warnings or [])}
