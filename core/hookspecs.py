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

import pluggy

PROJECT = "lync2fa"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lync2fa_tasks():
    """Return the tasks (``lync2fa.task.Task``) this plugin contributes.

    Example::

        @hookimpl
        def lync2fa_tasks():
            return [Task(name="hardening.audit_filter", tier="hardening", group="ca",
                         template=HERE / "audit_filter.ps1.j2",
                         params=(Param("audit_filter", "int", default=127),),
                         after=("ca.authority",))]
    """


@hookspec
def lync2fa_validate_plan(plan):
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


@hookspec
def lync2fa_lab_twins():
    """Return lab twins: a mapping of task name -> twin callable.

    A twin implements the task's resource-script contract on the lab's state: it gets a
    ``lync2fa.lab.twin.TwinContext`` and the same parameters the script would read, and
    returns the same JSON-able result the script prints. Optionally a plugin also
    contributes ``lync2fa_lab_seed``.

    Example::

        @hookimpl
        def lync2fa_lab_twins():
            return {"hardening.audit_filter": audit_filter_twin}
    """


@hookspec
def lync2fa_lab_seed(store, estate):
    """Put this plugin's initial objects into a new lab estate (``store`` is the lab's
    ``EstateStore``, ``estate`` its ``Estate`` layout). Called once, when the lab is created.

    Example::

        @hookimpl
        def lync2fa_lab_seed(store, estate):
            store.put("ca_registry", estate.first("ca").name, {"AuditFilter": 0})
    """


@hookspec
def lync2fa_task_start(step):
    """Called when a step (task x host, ``lync2fa.plan.Step``) starts running.

    Example (a progress printer)::

        @hookimpl
        def lync2fa_task_start(step):
            print(f"-> {step.task.name} on {step.host.name}")
    """


@hookspec
def lync2fa_task_finish(step, result):
    """Called when a step finished, with its ``lync2fa.results.Result``.

    Example::

        @hookimpl
        def lync2fa_task_finish(step, result):
            if result.failed:
                alert(f"{result.task} failed on {result.host}: {result.msg}")
    """
