"""Per host and task results, their diffs, and secret redaction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MASK = "********"


@dataclass
class Result:
    host: str
    task: str
    changed: bool = False
    failed: bool = False
    skipped: bool = False
    msg: str = ""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    duration: float = 0.0
    # What was (or would be) applied, in order: {"operation": one line for -v and reports, "detail":
    # the operation as decided (secrets as their placeholders), "result": what the host answered}.
    operations: list = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.skipped:
            return "skipped"
        return "changed" if self.changed else "ok"

    @property
    def diff(self) -> list[dict]:
        return attribute_diff(self.before, self.after)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status
        data["diff"] = self.diff
        return data


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def attribute_diff(before: dict, after: dict) -> list[dict]:
    """Attribute-level changes between two states, nested keys as dotted paths."""
    old, new = _flatten(before or {}), _flatten(after or {})
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) or (key in old) != (key in new):
            changes.append({"path": key, "before": old.get(key), "after": new.get(key)})
    return changes


def format_diff(changes: list[dict]) -> list[str]:
    def show(v):
        return json.dumps(v, sort_keys=True) if not isinstance(v, str) else v

    lines = []
    for c in changes:
        if c["before"] is None:
            lines.append(f"+ {c['path']}: {show(c['after'])}")
        elif c["after"] is None:
            lines.append(f"- {c['path']}: {show(c['before'])}")
        else:
            lines.append(f"~ {c['path']}: {show(c['before'])} -> {show(c['after'])}")
    return lines


class Redactor:
    """Replaces every known secret value anywhere in a structure with a mask."""

    def __init__(self, secrets: set[str] | None = None):
        self.secrets = sorted({s for s in (secrets or ()) if s and len(s) >= 3}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def result(self, result: Result) -> Result:
        return Result(
            **{
                **asdict(result),
                "msg": self.text(result.msg),
                "before": self(result.before),
                "after": self(result.after),
                "warnings": self(result.warnings),
                "operations": self(result.operations),
            }
        )
