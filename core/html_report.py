"""A run report people want to read: one self-contained HTML file (inline CSS, no script, no
external asset), written beside report.json for every apply/verify/rollback.

Per tier and host: what changed with its diff, what failed and why, the checklist of every step
as a table, durations (a tier's is its elapsed wall time: tiers overlap), the inventory's hosts the
run had no step for and why, and the run's metadata. Everything that came from a host is escaped
(Jinja2 autoescape); the page works offline and prints.
"""

from __future__ import annotations

import json
import re
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
    # Wall time from the tier's first step starting to its last one finishing (None: not recorded).
    elapsed: float | None = None

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
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in report.results:
        name = r.task.split(".", 1)[0]
        tier = out.setdefault(name, TierView(name))
        tier.hosts.setdefault(r.host, HostView(r.host)).steps.append(r)
        tier.counts[r.status] += 1
        if (r.task, r.host) in report.spans:
            spans.setdefault(name, []).append(report.spans[(r.task, r.host)])
    for name, ran in spans.items():
        out[name].elapsed = max(end for _, end in ran) - min(start for start, _ in ran)
    return list(out.values())


def hosts_without_steps(report: RunReport) -> list[tuple[str, str]]:
    """(host, why) for each inventory host the run had no step for, though no ``--limit`` left it
    out (its groups are none the run's tasks target): the Edge, say, is configured from a pool
    server, and the step that names it says so."""
    plan = report.plan
    inventory = getattr(plan.steps[0].host, "inventory", None) if plan and plan.steps else None
    if plan is None or inventory is None:
        return []
    try:
        targeted = {inventory.group_name(t.group) for t in plan.tasks}
        planned = {s.host.name for s in plan.steps}
        idle = [inventory.host(n) for n in inventory.all_hosts() if n not in planned]
        idle = [(h, {h.name, str(h.fqdn)}) for h in idle if not set(h.groups) & targeted]
        texts = [(s, json.dumps(_public(s), default=str)) for s in plan.steps] if idle else []
    except Exception:  # a report must never fail because the inventory cannot be read again
        return []
    out = []
    for host, names in idle:
        pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(n)}(?![\w-])" for n in names), re.IGNORECASE)
        naming: dict[str, list[str]] = {}
        for step, text in texts:
            if pattern.search(text):
                naming.setdefault(step.task.name, []).append(step.host.name)
        if naming:
            why = "; ".join(f"configured from {', '.join(hosts)} ({task})" for task, hosts in naming.items())
        else:
            why = f"no task of this run targets its group(s): {', '.join(host.groups) or '(none)'}"
        out.append((host.name, why))
    return out


def _public(step) -> dict:
    """A step's parameters without its secrets (searched for host names, never shown)."""
    return {k: v for k, v in step.params.items() if k not in step.task.secret_params}


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
            idle_hosts=hosts_without_steps(report),
        )
    )
