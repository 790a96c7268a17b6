"""The Python face of lync2fa: load an inventory, plan, run, read the results.

    from lync2fa import api

    inventory = api.load_inventory("lab/hosts.yml")
    plan = api.plan(inventory, only=["ca"])          # tasks or tiers; None = everything
    report = api.run(plan, check_mode=True)          # a dry run: nothing changes
    for result in report.changed:
        print(result.host, result.task, result.diff)
    report = api.run(plan)                           # apply
    assert report.ok

Everything the CLI does goes through these functions, and the Ansible action plugins call
``run_step`` for one task on one host.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import reach
from .connection import ConnectionConfigError, ConnectionSettings
from .findings import Finding, gate
from .gate_cache import GateCache
from .inventory import Inventory, InventoryError
from .journal import Journal
from .journal import JournalError as JournalError  # re-exported
from .plan import Plan, PlanError, build_plan, order_tasks, params_for
from .plan import Step as Step  # re-exported
from .plugin_manager import collect_tasks, default_plugin_manager
from .results import Result
from .runlock import RunLock
from .runlock import RunLockError as RunLockError  # re-exported
from .runner import DEFAULT_STEP_TIMEOUT_S, Runner, RunReport
from .task import ParameterError

# The journal's directory, shared by both faces: $LYNC2FA_STATE_DIR, else .lync2fa here.
DEFAULT_STATE_DIR = Path(os.environ.get("LYNC2FA_STATE_DIR") or ".lync2fa")


def load_inventory(*sources: str | Path, vault_password_file: str | Path | None = None) -> Inventory:
    return Inventory(list(sources), vault_password_file=vault_password_file)


def tasks(pm=None) -> dict:
    """Every task the installed plugins contribute, by name."""
    return collect_tasks(pm or default_plugin_manager())


VERIFY_KINDS = ("apply", "verify")


def plan(
    inventory: Inventory,
    only: list[str] | None = None,
    limit: set[str] | None = None,
    allow_insecure: set[str] | frozenset = frozenset(),
    kind: str | tuple[str, ...] = "apply",
    pm=None,
) -> Plan:
    """Build and validate a plan; raises PlanError / InsecurePlanError (usage errors).

    ``kind`` selects the rollout ("apply"), the undo tasks ("rollback"), or the checks:
    ``VERIFY_KINDS`` (the apply tasks, run with ``run(..., verify=True)``, plus the read-only
    "verify" tasks).
    """
    pm = pm or default_plugin_manager()
    built = build_plan(inventory, collect_tasks(pm), only=only, limit=limit, kind=kind)
    findings: list[Finding] = [f for batch in pm.hook.lync2fa_validate_plan(plan=built) for f in batch or ()]
    built.findings = gate(findings, set(allow_insecure))
    built.warnings.extend(str(f) for f in built.findings)
    return built


def run(
    plan: Plan,
    check_mode: bool = False,
    state_dir: str | Path = DEFAULT_STATE_DIR,
    forks: int = 16,
    command: str | None = None,
    inventory_name: str = "",
    resume: bool = False,
    verify: bool = False,
    pm=None,
    wait_lock: bool = False,
    on_wait=None,
    shared_lock: bool = False,
    step_timeout_s: float | None = None,
    stop=None,
    pool=None,
) -> RunReport:
    """Run a plan; every result is journaled under ``state_dir``. ``resume`` skips the steps
    that succeeded in the last unfinished run of the same command. ``verify`` changes nothing
    and fails every apply step that would change something (the rollout is not in place).

    A run that changes hosts holds the state directory's run lock (``lync2fa.runlock``): another
    one raises RunLockError naming the holder's PID, or waits for it with ``wait_lock``
    (``on_wait(message)`` is told first). ``shared_lock``: hold it shared (the Ansible face's steps).
    ``step_timeout_s``: a host that does not answer a step in time fails ("no answer in N s").
    ``stop`` (a threading.Event): once set, nothing new starts; steps in flight finish, the run
    is journaled as interrupted. ``pool``: where the steps' connections come from (default:
    lync2fa's own WinRM client; the Ansible face passes the play's own connection)."""
    pm = pm or default_plugin_manager()
    default = "verify" if verify else ("plan" if check_mode else "apply")
    changes = not (check_mode or verify)
    lock = RunLock(state_dir, shared=shared_lock, wait=wait_lock, on_wait=on_wait, command=command or default)
    with lock if changes else contextlib.nullcontext():
        journal = Journal(Path(state_dir))
        try:
            runner = Runner(
                pm.hook,
                journal=journal,
                forks=forks,
                stop=stop,
                pool=pool,
                step_timeout_s=step_timeout_s or DEFAULT_STEP_TIMEOUT_S,
            )
            return runner.run(plan, check_mode, command or default, inventory_name, resume=resume, verify=verify)
        finally:
            journal.close()


def check_state_dir(state_dir: str | Path = DEFAULT_STATE_DIR, changes: bool = False, wait_lock: bool = False) -> None:
    """Before anything runs: the state directory and its journal can be written (JournalError),
    and, for a run that ``changes`` hosts, no other run holds its lock (RunLockError; not
    checked when the run will ``wait_lock``). ``run`` takes the lock itself."""
    Journal(Path(state_dir)).close()
    if changes and not wait_lock:
        RunLock(state_dir).acquire().release()


def run_step(
    inventory: Inventory,
    task_name: str,
    host_name: str,
    overrides: dict | None = None,
    check_mode: bool = False,
    allow_insecure: set[str] | frozenset = frozenset(),
    state_dir: str | Path = DEFAULT_STATE_DIR,
    verify: bool = False,
    pm=None,
    settings=None,
    pool=None,
    gate_cache: GateCache | None = None,
    step_timeout_s: float | None = None,
    stop=None,
) -> Result:
    """Run one task on one host (what an Ansible action plugin does), with explicit params.

    ``inventory`` is an :class:`Inventory` or anything with its ``host(name)`` and
    ``hosts_in(group)`` (the Ansible face passes the play's view of its inventory). The
    security gate judges the step among every step of its kind, as ``plan`` would, and
    applies the findings about this step (and those about no step in particular).

    ``settings`` (default: lync2fa's WinRM settings from the host's variables) and ``pool`` (see
    ``run``) let the Ansible face send the step's requests through the play's own connection.
    ``gate_cache`` keeps the gate's view of the inventory across the steps of one play, so that
    a step costs the same whatever the number of hosts (``lync2fa.gate_cache``).
    ``step_timeout_s`` and ``stop``: as for ``run`` (the Ansible face passes the task's ``timeout``).
    """
    pm = pm or default_plugin_manager()
    tasks = collect_tasks(pm)
    task = tasks[task_name]
    host = inventory.host(host_name)
    connection = settings if settings is not None else ConnectionSettings.from_host(host)
    step = Step(task, host, params_for(task, host, overrides), connection)
    double_hop = reach.refusals([step])
    if double_hop:
        raise PlanError(reach.message(double_hop))
    single = Plan(tasks=[task], steps=[step])
    single.findings = gate(gate_findings(inventory, tasks, step, pm, gate_cache, overrides), set(allow_insecure))
    single.warnings.extend(list(connection.warnings) + [str(f) for f in single.findings])
    report = run(
        single,
        check_mode=check_mode,
        state_dir=state_dir,
        forks=1,
        verify=verify,
        command=f"ansible:{task_name}",
        inventory_name=host_name,
        pm=pm,
        shared_lock=True,
        pool=pool,
        step_timeout_s=step_timeout_s,
        stop=stop,
    )
    result = report.results[0]
    result.warnings = list(single.warnings) + list(result.warnings)
    return result


def gate_findings(
    inventory, tasks: dict, step: Step, pm, cache: GateCache | None = None, overrides: dict | None = None
) -> list[Finding]:
    """The plan gate's findings about ``step`` (and about no step in particular), judged among
    every step of its kind. With a ``cache`` the inventory's steps are built and judged once per
    play and kind (not once per step: that was quadratic in the hosts); a step whose parameters
    are not the inventory's (module options that differ) is judged again, in its place."""

    def mine(findings):
        return [f for f in findings if f.task in ("", step.task.name) and f.host in ("", step.host.name)]

    def judge(context: Plan) -> list[Finding]:
        return [f for batch in pm.hook.lync2fa_validate_plan(plan=context) for f in batch or ()]

    if cache is not None and (not overrides or step.params == params_for(step.task, step.host)):
        return mine(
            cache.findings(
                step.task.kind,
                lambda: judge(_gate_context(inventory, tasks, None, step.task.kind)),
                host=step.host.name,
            )
        )
    return mine(judge(_gate_context(inventory, tasks, step)))


def _gate_context(inventory: Inventory, tasks: dict, step: Step | None, kind: str | None = None) -> Plan:
    """Every step of ``step``'s kind (or of ``kind``) that the inventory defines, with ``step``
    itself in its place (a gate may look at other steps, e.g. the permissions granted on a
    template). The gate judges parameters, not connections: no connection settings are read."""
    kind = step.task.kind if step is not None else kind
    ordered = order_tasks({n: t for n, t in tasks.items() if t.kind == kind})
    steps = []
    for task in ordered:
        for host in inventory.hosts_in(task.group):
            if step is not None and (task.name, host.name) == step.key:
                steps.append(step)
                continue
            try:
                steps.append(Step(task, host, params_for(task, host), _NO_CONNECTION))
            except (ParameterError, ConnectionConfigError, InventoryError):
                continue  # that step fails with its own error when it runs
    if step is not None and not any(s is step for s in steps):
        steps.append(step)
    return Plan(tasks=ordered, steps=steps)


class _NoConnection(ConnectionSettings):
    """Connection settings of a step the gate only judges (it never runs): every value empty, no
    endpoint, and a session that delegates (the gate judges parameters, not the double hop)."""

    @property
    def delegates(self) -> bool:
        return True

    @property
    def endpoint(self) -> str:
        return ""


_NO_CONNECTION = _NoConnection(host="", address="", port=0, scheme="", transport="", user="", password="")
