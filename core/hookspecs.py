"""The lync2fa plugin contract.

lync2fa is built from pluggy plugins (project name ``lync2fa``). The built-in tiers in
``lync2fa.plugins`` register through the ``lync2fa`` entry-point group exactly like a
third-party distribution does::

    # pyproject.toml of a third-party plugin
    [project.entry-points.lync2fa]
    hardening = "lync2fa_hardening"

Each hook below is documented with an example. Keep this file small and stable: a hook
that is added here is a promise to every plugin author.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # the lab is not imported on the production path
    from .findings import Finding
    from .lab.estate import Estate
    from .lab.state import EstateStore
    from .plan import Plan, Step
    from .results import Result
    from .task import Task

PROJECT = "lync2fa"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lync2fa_tasks() -> list[Task]:
    """Return the tasks (``lync2fa.task.Task``) this plugin contributes: the facts each reads, its
    pure decision and the operations it emits (docs/writing-a-tier.md). Task names are unique
    across plugins; a duplicate is refused.

    Example::

        @hookimpl
        def lync2fa_tasks():
            return [Task(name="hardening.audit_filter", group="ca", after=("ca.authority",),
                         facts=audit_filter_facts, decide=decide_audit_filter,
                         params=(Param("audit_filter", "int", default=127, minimum=0, maximum=127),))]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def lync2fa_validate_plan(plan: Plan) -> list[Finding]:
    """Inspect a plan (``lync2fa.plan.Plan``) before anything runs; return findings.

    Return a list of ``lync2fa.findings.Finding``. A finding with severity ``error``
    refuses the plan unless the operator passes ``--allow-insecure RULE`` for its rule,
    in which case it is reported as a warning.

    Example::

        @hookimpl
        def lync2fa_validate_plan(plan):
            return [Finding(rule="HARD1", severity="error", host=s.host.name,
                            task=s.task.name, message="audit filter must be 127",
                            fix="set hardening_audit_filter: 127")
                    for s in plan.steps_for("hardening.audit_filter")
                    if s.params["audit_filter"] != 127]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def lync2fa_lab_seed(store: EstateStore, estate: Estate) -> None:
    """Put this plugin's initial objects into a new lab estate (``store`` is the lab's
    ``EstateStore``, ``estate`` its ``Estate`` layout). Called once, when the lab is created.
    The lab simulates Windows for every tier; seed only what a real estate would already hold
    for your plugin (e.g. a product installed beforehand), in the Windows model's shape.

    Example::

        @hookimpl
        def lync2fa_lab_seed(store, estate):
            from lync2fa.lab.windows.registry import Registry
            Registry(store, estate.first("ca").name).set(AUDIT_KEY, "AuditFilter", 0, "DWord")
    """


@hookspec
def lync2fa_task_start(step: Step) -> None:
    """Called when a step (task x host, ``lync2fa.plan.Step``) starts running.

    Example (a progress printer)::

        @hookimpl
        def lync2fa_task_start(step):
            print(f"-> {step.task.name} on {step.host.name}")
    """


@hookspec
def lync2fa_host_batch(host: str, stage: str, steps: list[Step]) -> None:
    """Called when one host's steps go to it together (one fact read, one apply request for all):
    ``stage`` is ``"started"`` (the batch begins: its facts are read, its steps decided) or
    ``"applying"`` (the operations of ``steps`` are being sent). A batch can take long (a client's
    whole rollout is one); its steps finish when it returns.

    Example::

        @hookimpl
        def lync2fa_host_batch(host, stage, steps):
            print(f"{host}: {stage} {len(steps)} step(s)")
    """


@hookspec
def lync2fa_task_finish(step: Step, result: Result) -> None:
    """Called when a step finished, with its ``lync2fa.results.Result``.

    Example::

        @hookimpl
        def lync2fa_task_finish(step, result):
            if result.failed:
                alert(f"{result.task} failed on {result.host}: {result.msg}")
    """
