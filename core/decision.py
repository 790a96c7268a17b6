"""What a task's decision sees and returns.

``Task.facts(params)`` names the facts a step needs; the engine reads them on the host in one
script. ``Task.decide(ctx)`` is a pure function of the parameters and those facts: it returns a
``Decision`` (before/after for the diff, warnings, the operations to apply, or a refusal) or
``More`` when it needs further facts that depend on what it read (one more round trip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class FactError(Exception):
    """A fact could not be read on the host; ``error`` is Windows' error as data."""

    def __init__(self, name: str, error: dict):
        self.name, self.error = name, error
        super().__init__(f"reading {name} failed: {error.get('message', error)}")


@dataclass
class Facts:
    """The facts a host returned, by the names the task gave them."""

    raw: dict = field(default_factory=dict)

    def ok(self, name: str) -> bool:
        return bool(self.raw.get(name, {}).get("ok"))

    def error(self, name: str) -> dict | None:
        entry = self.raw.get(name)
        return None if entry is None or entry.get("ok") else entry.get("error", {})

    def value(self, name: str, default: Any = None) -> Any:
        """The fact's value; raises FactError if the host could not read it."""
        entry = self.raw.get(name)
        if entry is None:
            return default
        if not entry.get("ok"):
            raise FactError(name, entry.get("error") or {})
        return entry.get("value", default)

    def get(self, name: str, default: Any = None) -> Any:
        """The fact's value, or ``default`` when it is missing or could not be read."""
        entry = self.raw.get(name)
        return entry.get("value", default) if entry and entry.get("ok") else default

    def not_found(self, name: str) -> bool:
        """The read failed because the object does not exist (Windows' ObjectNotFound)."""
        error = self.error(name)
        return error is not None and error.get("category") == "ObjectNotFound"

    def merged(self, more: dict) -> Facts:
        return Facts({**self.raw, **more})


@dataclass
class Context:
    """One step's view for its decision."""

    task: str
    host: str
    params: dict
    facts: Facts
    check_mode: bool = False
    hostvars: dict = field(default_factory=dict)  # lync2fa_fqdn, lync2fa_domain, ...
    # Decisions of this host's earlier steps whose operations are not applied yet (same request).
    planned: dict = field(default_factory=dict)

    def assumes(self, task_name: str) -> bool:
        """Whether a missing prerequisite made by ``task_name`` may be assumed: in check mode, or
        because that task's changes on this host are planned in the same request. A decision that
        cannot plan on it may refuse: the engine then applies the prerequisite and decides again."""
        return self.check_mode or task_name in self.planned


@dataclass
class Decision:
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    operations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    msg: str = ""
    failed: bool = False

    @classmethod
    def refuse(cls, msg: str, before: dict | None = None, warnings: list[str] | None = None) -> Decision:
        """Nothing is applied and the step fails with ``msg`` (Windows would refuse, or we do)."""
        return cls(before=before or {}, after=before or {}, msg=msg, failed=True, warnings=list(warnings or []))


@dataclass
class More:
    """Ask for further facts (by name) before deciding; they are merged into ``ctx.facts``."""

    facts: dict
