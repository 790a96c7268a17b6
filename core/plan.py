"""Planning: which task runs on which host with which (validated) parameters, in what order."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from . import reach
from .connection import ConnectionConfigError, ConnectionSettings, ansible_bool
from .findings import Finding
from .groups import var_name
from .inventory import HostContext, Inventory, InventoryError
from .task import ParameterError, Task


class PlanError(ValueError):
    """The plan cannot be built (a usage/config error: exit code 2)."""


# <tier>_* variables read by plugins besides their tasks' parameters.
EXTRA_TIER_VARS = frozenset({"adfs_federation_service_name", "adfs_version"})


@dataclass
class Step:
    task: Task
    host: HostContext
    params: dict
    # None only in the plan validate hands plugins' checks, for a host whose connection settings do
    # not read; the planner refuses such a host, so every step that runs has its settings.
    connection: ConnectionSettings | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.task.name, self.host.name)


@dataclass
class Plan:
    tasks: list[Task]  # in dependency order
    steps: list[Step]
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def steps_for(self, task_name: str) -> list[Step]:
        """A task's steps (indexed on first use: the runner asks for every step's dependencies)."""
        if getattr(self, "_index_size", None) != len(self.steps):
            index: dict[str, list[Step]] = {}
            for s in self.steps:
                index.setdefault(s.task.name, []).append(s)
            self._index, self._index_size = index, len(self.steps)
        return list(self._index.get(task_name, ()))

    def secrets(self) -> set[str]:
        """Every secret value in the plan (passwords, secret params), for redaction."""
        values = {s.connection.password for s in self.steps if s.connection is not None}
        for s in self.steps:
            values.update(str(s.params[name]) for name in s.task.secret_params if s.params.get(name))
        return {v for v in values if v}


def _topological(graph: dict[str, set[str]]) -> list[str]:
    """Dependencies first; among the ready ones, the order in which ``graph`` lists them."""
    rank = {name: i for i, name in enumerate(graph)}
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        for name in sorted(sorter.get_ready(), key=rank.__getitem__):
            ordered.append(name)
            sorter.done(name)
    return ordered


def order_tasks(tasks: dict[str, Task]) -> list[Task]:
    """Tasks in rollout order: dependencies first, and a tier's tasks together (tiers in their
    dependency order) unless tiers depend on each other both ways."""
    graph = {name: {d for d in t.after if d in tasks} for name, t in tasks.items()}
    try:
        plain = _topological(graph)
    except CycleError as exc:
        raise PlanError(f"task dependencies form a cycle: {exc.args[1]}") from None
    tiers: dict[str, set[str]] = {}
    for name in plain:
        tiers.setdefault(tasks[name].tier, set()).update(
            tasks[d].tier for d in graph[name] if tasks[d].tier != tasks[name].tier
        )
    try:
        tier_rank = {tier: i for i, tier in enumerate(_topological(tiers))}
    except CycleError:
        return [tasks[n] for n in plain]
    position = {name: i for i, name in enumerate(plain)}
    return [tasks[n] for n in sorted(plain, key=lambda n: (tier_rank[tasks[n].tier], position[n]))]


def select_tasks(
    tasks: dict[str, Task], only: list[str] | None, kind: str | tuple[str, ...] = "apply"
) -> dict[str, Task]:
    """Tasks of one kind (or several); ``only`` names tasks or whole tiers (``ca`` = every ``ca.*``).
    ``None`` selects every task; an empty selection is an error, never "everything"."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    tasks = {n: t for n, t in tasks.items() if t.kind in kinds}
    if only is None:
        return tasks
    if not only:
        raise PlanError(f"an empty selection of {kind} tasks: name tasks or tiers, or select none to run them all")
    unknown = [o for o in only if o not in tasks and not any(t.tier == o for t in tasks.values())]
    if unknown:
        raise PlanError(f"unknown {kind} task or tier: {', '.join(unknown)}")
    return {n: t for n, t in tasks.items() if n in only or t.tier in only}


def params_for(task: Task, host: HostContext, overrides: dict | None = None) -> dict:
    """Inventory vars ``<tier>_<param>``, else the task's host-derived default, else its default."""
    values = {}
    for p in task.params:
        var = task.var_prefix + p.name
        if overrides and p.name in overrides:
            values[p.name] = overrides[p.name]
        elif host.has_var(var):
            values[p.name] = host.var(var)
        elif p.name in task.derived:
            values[p.name] = task.derived[p.name](host)
    return task.validate(values)


def build_plan(
    inventory: Inventory,
    tasks: dict[str, Task],
    only: list[str] | None = None,
    limit: set[str] | None = None,
    kind: str | tuple[str, ...] = "apply",
) -> Plan:
    chosen = select_tasks(tasks, only, kind)
    ordered = order_tasks(chosen)
    if limit is not None:
        unknown = sorted(set(limit) - set(inventory.all_hosts()))
        if unknown or not limit:
            raise PlanError(f"--limit {', '.join(unknown) or '(empty)'}: no such host in the inventory")
    steps, errors, warnings = [], [], list(getattr(inventory, "warnings", ()))
    for task in ordered:
        for host in inventory.hosts_in(task.group, limit):
            try:
                settings = ConnectionSettings.from_host(host)
                steps.append(Step(task, host, params_for(task, host), settings))
                warnings.extend(w for w in settings.warnings if w not in warnings)
            except (ParameterError, ConnectionConfigError, InventoryError) as exc:
                error = str(exc) if str(exc).startswith(f"{host.name}: ") else f"{host.name}: {exc}"
                if error not in errors:
                    errors.append(error)
    if errors:
        raise PlanError("invalid inventory or parameters:\n  " + "\n  ".join(errors))
    check_coverage(inventory, ordered, steps, only, limit)
    double_hop = reach.refusals(steps)
    if double_hop:
        raise PlanError(reach.message(double_hop))
    warnings.extend(unknown_variables(tasks, steps))
    return Plan(tasks=[t for t in ordered if any(s.task is t for s in steps)], steps=steps, warnings=warnings)


ALLOW_EMPTY_GROUPS = "lync2fa_allow_empty_groups"


def allows_empty_groups(inventory: Inventory) -> bool:
    """``lync2fa_allow_empty_groups: true`` (group_vars/all): an inventory for part of the rollout
    (clients only, say) skips the tiers it has no hosts for, as the playbooks do, instead of refusing."""
    names = inventory.all_hosts()
    if not names:
        return False
    return ansible_bool(inventory.host(names[0]).var(ALLOW_EMPTY_GROUPS, False), ALLOW_EMPTY_GROUPS, names[0])


def check_coverage(
    inventory: Inventory, chosen: list[Task], steps: list[Step], only: list[str] | None, limit: set[str] | None
) -> None:
    """A selected tier (or task) that yields no host is an error, not a silent "0 ok": every tier
    when nothing was selected, the named ones when ``only`` names them; with a ``limit`` alone,
    at least one step. ``lync2fa validate`` reports the same refusal."""
    covered_tiers = {s.task.tier for s in steps}
    covered_tasks = {s.task.name for s in steps}
    if only:
        names = {t.name for t in chosen}
        wanted = [(o, [t for t in chosen if t.name == o or t.tier == o]) for o in only]
        missing = [(o, ts) for o, ts in wanted if not (o in covered_tasks or (o not in names and o in covered_tiers))]
    elif limit is None and not allows_empty_groups(inventory):
        tiers = list(dict.fromkeys(t.tier for t in chosen))
        missing = [(tier, [t for t in chosen if t.tier == tier]) for tier in tiers if tier not in covered_tiers]
    else:
        missing = [] if steps else [("the selection", chosen)]
    if not missing:
        return
    groups = sorted(inventory.groups() - {"all", "ungrouped"})
    known = f"the inventory's groups: {', '.join(groups)}" if groups else "the inventory has no groups"
    within = " within --limit" if limit is not None else ""
    lines = []
    for name, ts in missing:
        wanted_groups = sorted({_named(inventory, t.group) for t in ts})
        what = name if name == "the selection" else (f"task {name}" if "." in name else f"tier {name}")
        lines.append(f"{what}: no host{within} in inventory group {' or '.join(wanted_groups)}")
    raise PlanError("nothing to run for " + "; ".join(lines) + f" ({known})")


def _named(inventory: Inventory, group: str) -> str:
    """A task group as the inventory names it: ``pki (lync2fa_ca_group)``, or ``ca``."""
    name = inventory.group_name(group)
    return name if name == group else f"{name} ({var_name(group)})"


def unknown_variables(tasks: dict[str, Task], steps: list[Step]) -> list[str]:
    """A warning for every ``<tier>_*`` variable of the planned hosts that no task reads (a
    misspelt ``ca_commonname`` would otherwise be ignored silently), with the closest known name."""
    prefixes = tuple(sorted({t.var_prefix for t in tasks.values()}))
    known = {t.var_prefix + p.name for t in tasks.values() for p in t.params} | EXTRA_TIER_VARS
    hosts_by_var: dict[str, list[str]] = {}
    seen: set[str] = set()
    for step in steps:
        if step.host.name in seen:
            continue
        seen.add(step.host.name)
        names = step.host.var_names() if hasattr(step.host, "var_names") else ()
        for name in names:
            if name.startswith(prefixes) and name not in known:
                hosts_by_var.setdefault(name, []).append(step.host.name)
    warnings = []
    for name, hosts in sorted(hosts_by_var.items()):
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        where = ", ".join(hosts[:3]) + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else "")
        warnings.append(f"variable {name} (on {where}) is not read by any task{hint}")
    return warnings
