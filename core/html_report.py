"""A run report people want to read: one self-contained HTML file (inline CSS, no script, no
external asset), written beside report.json for every apply/verify/rollback.

Per tier and host: what changed with its diff, what failed and why, the checklist of every step
as a table, durations, and the run's metadata. Everything that came from a host is escaped
(Jinja2 autoescape); the page works offline and prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .runner import RunReport
from .sarif import Issue

TEMPLATES = Path(__file__).parent / "templates"
TITLES = {
    "plan": "Plan (check mode)",
    "apply": "Apply",
    "verify": "Verification",
    "rollback": "Rollback",
    "demo": "Apply (demo)",
}


def _show(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _operations(result) -> list:
    """A step's operations as the report shows them: each one's line and result (the full
    operation, ``detail``, is for machines: the --json report)."""
    return [{k: v for k, v in op.items() if k != "detail"} for op in getattr(result, "operations", None) or []]


@dataclass
class HostView:
    name: str
    steps: list = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.steps)

    @property
    def status(self) -> str:
        statuses = {s.status for s in self.steps}
        for status in ("failed", "changed", "skipped"):
            if status in statuses:
                return status
        return "ok"


@dataclass
class TierView:
    name: str
    hosts: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: {"ok": 0, "changed": 0, "failed": 0, "skipped": 0})

    @property
    def duration(self) -> float:
        return sum(h.duration for h in self.hosts.values())

    @property
    def status(self) -> str:
        return (
            "failed"
            if self.counts["failed"]
            else "changed"
            if self.counts["changed"]
            else ("skipped" if self.counts["skipped"] and not self.counts["ok"] else "ok")
        )


def tiers(report: RunReport) -> list[TierView]:
    """Results grouped by tier, then host, in the order they ran."""
    out: dict[str, TierView] = {}
    for r in report.results:
        tier = out.setdefault(r.task.split(".", 1)[0], TierView(r.task.split(".", 1)[0]))
        tier.hosts.setdefault(r.host, HostView(r.host)).steps.append(r)
        tier.counts[r.status] += 1
    return list(out.values())


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = _show
    env.filters["operations"] = _operations
    env.filters["seconds"] = lambda s: f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"
    return env


def render(report: RunReport, meta: dict, issues: list[Issue], descriptions: dict[str, str] | None = None) -> str:
    verb = "would change" if report.check_mode else "changed"
    status = "passed" if report.ok else "failed"
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            meta=meta,
            issues=issues,
            tiers=tiers(report),
            descriptions=descriptions or {},
            title=TITLES.get(report.command, report.command.capitalize()),
            verb=verb,
            status=status,
            counts=report.counts(),
            verify=report.command == "verify",
            host_count=len({r.host for r in report.results}),
        )
    )
