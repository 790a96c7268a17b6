"""The runner: task x host steps in dependency order, hosts concurrently (bounded).

A step runs only when what it depends on succeeded: on the same host when both tasks target
the same group (so one broken client does not stop the others), everywhere otherwise (no
templates on a CA that failed to install).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Set as AbstractSet
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from . import execute
from .hostops import describe
from .hostscript import HostScriptError
from .journal import Journal, JournalError
from .plan import Plan, Step
from .results import Redactor, Result
from .transport import ConnectionPool, Deadline, TransportError

# A step's deadline: sized for the slowest one, on-card enrollment (key generation in the TPM,
# the CA's answer, InstallResponse), with margin. A host that does not answer in time fails
# with "no answer in N s" and the run goes on with the others.
DEFAULT_STEP_TIMEOUT_S = 300.0


def batch_deadline(step_timeout_s: float, steps: int) -> Deadline:
    """Each request of a host batch (its fact reads, its one apply carrying every step's
    operations) may take the batch's steps × the step timeout: several enrollments legitimately
    take that long together. The message says so, lest "no answer in 20 s" read as a wrong 5."""
    reckoned = f"{steps} steps × {step_timeout_s:g} s, --step-timeout" if steps > 1 else "--step-timeout"
    return Deadline(step_timeout_s * steps, reckoned)


@dataclass
class RunReport:
    results: list[Result]
    check_mode: bool
    run_id: int | None = None
    command: str = "apply"
    warnings: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    interrupted: bool = False  # SIGINT/SIGTERM: steps not started are reported skipped
    # When each step ran, as seconds since the run started (start, end): a step of a host batch
    # spans the batch. What the report shows as a tier's elapsed time (tiers overlap).
    spans: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    elapsed_s: float = 0.0  # the run's wall time
    plan: Plan | None = field(default=None, repr=False)  # what ran, for the report's hosts without steps

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    @property
    def changed(self) -> list[Result]:
        return [r for r in self.results if r.changed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        for r in self.results:
            counts[r.status] += 1
        return counts

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "check_mode": self.check_mode,
            "counts": self.counts(),
            "warnings": self.warnings,
            "findings": self.findings,
            "results": [r.as_dict() for r in self.results],
        }


def phases(plan: Plan) -> list[list]:
    """Split the ordered tasks into phases separated only by cross-group dependencies.

    A task may not run before the phase after its latest cross-group prerequisite (nor before a
    same-group one's phase); within that bound it runs as late as it may: with its same-group
    dependants, and without any, with the rest of its group. Each host thus has as few phases as
    the dependencies allow: one PowerShell process, one fact read and one apply for a client's
    whole rollout. Inside a phase every host runs its own steps one after the other (one shell, a
    pipeline per host) while hosts run concurrently; a barrier separates phases.
    """
    group_of = {t.name: t.group for t in plan.tasks}
    earliest: dict[str, int] = {}
    for task in plan.tasks:
        earliest[task.name] = max(
            [earliest[d] + (0 if group_of[d] == task.group else 1) for d in task.after if d in earliest], default=0
        )
    last_of_group: dict[str, int] = {}
    for task in plan.tasks:
        last_of_group[task.group] = max(last_of_group.get(task.group, 0), earliest[task.name])
    dependants: dict[str, list] = {t.name: [] for t in plan.tasks}
    for task in plan.tasks:
        for dep in task.after:
            if dep in dependants:
                dependants[dep].append(task)
    phase_of: dict[str, int] = {}
    for task in reversed(plan.tasks):  # dependants first
        bounds = [phase_of[d.name] - (0 if d.group == task.group else 1) for d in dependants[task.name]]
        latest = min(bounds) if bounds else last_of_group[task.group]
        phase_of[task.name] = max(earliest[task.name], latest)
    out: list[list] = [[] for _ in range(max(phase_of.values(), default=-1) + 1)]
    for task in plan.tasks:
        out[phase_of[task.name]].append(task)
    return [tasks for tasks in out if tasks]


def batches(plan: Plan, stages: list[list]) -> tuple[dict, dict]:
    """The host batches of a run, keyed (phase, host), and what each needs done before it starts:
    the same host's batch of the previous phase it has, and for a cross-group prerequisite, the
    batches of every host running that prerequisite ("everywhere", as the dependency rule says)."""
    phase_of = {t.name: i for i, tasks in enumerate(stages) for t in tasks}
    units: dict[tuple[int, str], list[Step]] = {}
    for step in plan.steps:
        units.setdefault((phase_of[step.task.name], step.host.name), []).append(step)
    holders: dict[str, set[tuple[int, str]]] = {}
    for key, steps in units.items():
        for step in steps:
            holders.setdefault(step.task.name, set()).add(key)
    needs: dict[tuple[int, str], set[tuple[int, str]]] = {}
    for key, steps in units.items():
        phase, host = key
        wanted = {(p, host) for p in range(phase) if (p, host) in units}
        for step in steps:
            for dep in step.task.after:
                if dep in holders and plan.steps_for(dep)[0].task.group != step.task.group:
                    wanted |= holders[dep]
        wanted.discard(key)
        needs[key] = wanted
    return units, needs


class Runner:
    def __init__(
        self,
        hooks,
        journal: Journal | None = None,
        forks: int = 16,
        pool: ConnectionPool | None = None,
        step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S,
        stop: threading.Event | None = None,
    ):
        self.hooks = hooks
        self.stop = stop or threading.Event()  # set by SIGINT/SIGTERM: start nothing new
        self.step_timeout_s = step_timeout_s
        self.journal = journal
        self.forks = max(1, forks)
        self.pool = pool or ConnectionPool()

    def run(
        self,
        plan: Plan,
        check_mode: bool,
        command: str = "apply",
        inventory: str = "",
        resume: bool = False,
        verify: bool = False,
    ) -> RunReport:
        """Run the plan. With ``resume``, steps that succeeded in the last unfinished run of the
        same command are not run again (they are reported ok). With ``verify`` (implies check
        mode), an apply task that would change something fails as "not in place", and every
        check runs whatever failed before it: nothing is changed, so nothing is blocked."""
        check_mode = check_mode or verify
        redact = Redactor(plan.secrets())
        done: dict[tuple[str, str], str] = {}
        resumed_from = None
        unsettled: dict[int, tuple[set, set, set]] = {}
        if resume and self.journal:
            resumed_from = self.journal.unfinished_run(command, inventory)
            if resumed_from is not None:
                done = self.journal.succeeded_steps(resumed_from)
                # Sent but never finished (the controller died), or sent and then failed (e.g. the answer
                # was lost after the host ran them), in the resumed run or the runs it resumed in turn:
                # re-planned now; what their facts show is put on those runs' record below.
                unsettled = self.journal.unsettled(resumed_from)
        run_id = (
            self.journal.start_run(command, inventory, check_mode, resumed_from=resumed_from) if self.journal else None
        )
        results: dict[tuple[str, str], Result] = {}
        run_started = time.monotonic()
        spans: dict[tuple[str, str], tuple[float, float]] = {}
        status = "interrupted"
        stages = phases(plan)
        last_stage = {s.host.name: i for i, tasks in enumerate(stages) for t in tasks for s in plan.steps_for(t.name)}
        phase_of = {t.name: i for i, tasks in enumerate(stages) for t in tasks}
        by_host_all: dict[str, list[Step]] = {}
        for planned_step in plan.steps:
            by_host_all.setdefault(planned_step.host.name, []).append(planned_step)
        # Per host, the facts read for its steps of every phase, valid while nothing was applied
        # anywhere since (a no-op re-apply or a plan reads each host once).
        cache: dict[str, dict] = {}
        generation = [0]
        read_at: dict[str, int] = {}
        guard = threading.Lock()

        def host_cache(host: str) -> dict:
            with guard:
                if read_at.get(host) != generation[0]:
                    cache[host] = {}
                    read_at[host] = generation[0]
                return cache[host]

        def bump() -> None:
            with guard:
                generation[0] += 1

        def since_start() -> float:
            return round(time.monotonic() - run_started, 4)

        def run_host(steps: list[Step]) -> None:
            begun = since_start()
            spans.update({step.key: (begun, begun) for step in steps})  # a step not sent takes no time
            if self.stop.is_set():
                for step in steps:
                    results[step.key] = self._finish(
                        step,
                        run_id,
                        redact,
                        Result(
                            step.host.name, step.task.name, skipped=True, msg="not started: the run was interrupted"
                        ),
                    )
                return
            todo: list[Step] = []
            batch: set = set()  # steps going to the host: HostBatch judges prerequisites among them
            for step in steps:
                blocker = None if verify else self._blocker(step, plan, results, batch)
                if done and done.get(step.key) == fingerprint(step):
                    results[step.key] = self._finish(
                        step,
                        run_id,
                        redact,
                        Result(step.host.name, step.task.name, msg=f"done in run {resumed_from} (resumed)"),
                    )
                elif blocker:
                    results[step.key] = self._finish(
                        step,
                        run_id,
                        redact,
                        Result(step.host.name, step.task.name, skipped=True, msg=f"skipped: {blocker} did not succeed"),
                    )
                else:
                    todo.append(step)
                    batch.add(step.key)
            phase = phase_of[steps[0].task.name]
            if todo:
                later = [s for s in by_host_all[todo[0].host.name] if phase_of[s.task.name] > phase]
                batch_started = since_start()
                results.update(
                    self._run_batch(
                        todo,
                        check_mode,
                        run_id,
                        redact,
                        verify,
                        facts_cache=host_cache(todo[0].host.name),
                        read_also=later,
                        applied=bump,
                    )
                )
                batch_ended = since_start()
                spans.update({step.key: (batch_started, batch_ended) for step in todo})
            if last_stage[steps[0].host.name] == phase:
                # Its last phase: the shell (and its PowerShell process) goes now, not at the phase's
                # end, so a run holds at most --forks sessions open whatever the number of hosts.
                self.pool.close_host(steps[0].host.name)

        try:
            units, needs = batches(plan, stages)
            with ThreadPoolExecutor(max_workers=self.forks, thread_name_prefix="lync2fa") as workers:
                # A host's batch starts as soon as the batches it needs are done (its own earlier one,
                # and every host's batch holding a cross-group prerequisite): no barrier between
                # phases, so a group whose prerequisites are met overlaps with the others.
                waiting = {key: set(keys) for key, keys in needs.items()}
                dependants: dict[tuple[int, str], list[tuple[int, str]]] = {key: [] for key in units}
                for key, keys in needs.items():
                    for need in keys:
                        dependants[need].append(key)
                running = {workers.submit(run_host, units[key]): key for key, keys in waiting.items() if not keys}
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        key = running.pop(future)
                        future.result()
                        for dependant in dependants[key]:
                            waiting[dependant].discard(key)
                            if not waiting[dependant]:
                                running[workers.submit(run_host, units[dependant])] = dependant
            ordered = [results[s.key] for s in plan.steps if s.key in results]
            report = RunReport(
                ordered,
                check_mode,
                run_id,
                command=command,
                warnings=list(plan.warnings),
                findings=[f.as_dict() for f in plan.findings],
                spans=spans,
                elapsed_s=since_start(),
                plan=plan,
            )
            resent: dict[tuple[str, str], int] = {}  # a step sent again by a later run of the chain
            for old_run in sorted(unsettled, reverse=True):
                in_flight, sent_failed, sent = unsettled[old_run]
                self._settle_in_flight(in_flight, old_run, results, run_id, sent_failed, resent)
                resent.update({key: old_run for key in sent if key not in resent})
            status = "interrupted" if self.stop.is_set() else ("ok" if report.ok else "failed")
            report.interrupted = self.stop.is_set()
            return report
        finally:
            self.pool.close()
            if self.journal and run_id is not None:
                self.journal.finish_run(run_id, status)

    def _settle_in_flight(
        self,
        in_flight: set,
        resumed_from,
        results: dict,
        run_id,
        sent_failed: AbstractSet = frozenset(),
        resent: dict | None = None,
    ) -> None:
        """Close the audit gap of a killed controller: a step that run ``resumed_from`` sent but
        never recorded is journaled there as changed when this run found it already in place. So is
        one it sent and recorded as failed (its answer lost after the host ran it). ``resent``: steps
        a later run sent again (so it was not in place then), with that run."""
        journal = self.journal
        assert journal is not None, "unsettled steps come from the journal"
        resent = resent or {}
        for key in sorted((in_flight | sent_failed) & set(resent)):
            if key in in_flight:
                journal.record(
                    resumed_from,
                    Result(key[1], key[0], msg=(f"interrupted before it finished; run {resent[key]} sent it again")),
                )
        for key in sorted(sent_failed - in_flight - set(resent)):
            result = results.get(key)
            if result is None or result.failed or result.skipped or result.changed:
                continue
            journal.record(
                resumed_from,
                Result(
                    result.host,
                    result.task,
                    changed=True,
                    failed=False,
                    msg=f"its operations ran although it was recorded as failed (run {run_id} found the change in place)",
                ),
            )
        for key in sorted(in_flight - set(resent)):
            result = results.get(key)
            if result is None or result.failed or result.skipped:
                continue
            if result.changed:
                msg = f"interrupted before it finished; completed by run {run_id}"
            else:
                msg = f"changed by this run before it was interrupted (run {run_id} found the change in place)"
            journal.record(
                resumed_from, Result(result.host, result.task, changed=not result.changed, msg=msg, failed=False)
            )

    @staticmethod
    def _blocker(step: Step, plan: Plan, results: dict, batch: AbstractSet = frozenset()) -> str | None:
        for dep_name in step.task.after:
            dep_steps = plan.steps_for(dep_name)
            if not dep_steps:
                continue
            same_group = dep_steps[0].task.group == step.task.group
            relevant = [d for d in dep_steps if not same_group or d.host.name == step.host.name]
            for dep in relevant:
                if dep.key in batch:
                    continue
                r = results.get(dep.key)
                if r is None or r.failed or r.skipped:
                    return f"{dep_name} on {dep.host.name}"
        return None

    def _run_batch(
        self,
        steps: list[Step],
        check_mode: bool,
        run_id,
        redact: Redactor,
        verify: bool,
        facts_cache: dict | None = None,
        read_also: list | None = None,
        applied=None,
    ) -> dict[tuple[str, str], Result]:
        """One host's steps of a phase through one fact read and one apply (see execute.HostBatch)."""
        started = time.monotonic()
        placeholders = {s.key: Result(s.host.name, s.task.name) for s in steps}
        for step in steps:
            self._observe("lync2fa_task_start", placeholders[step.key], step=step)
        host = steps[0].host.name
        self._observe("lync2fa_host_batch", placeholders[steps[0].key], host=host, stage="started", steps=steps)

        sent: set[tuple[str, str]] = set()  # steps whose operations went to the host

        def journal_started(pending: list[Step]) -> None:
            sent.update(s.key for s in pending)
            if self.journal and run_id is not None:
                for step in pending:
                    self.journal.record_started(run_id, step.host.name, step.task.name, fingerprint(step))
            self._observe(
                "lync2fa_host_batch", placeholders[pending[0].key], host=host, stage="applying", steps=pending
            )

        connection = steps[0].connection
        assert connection is not None, "a planned step has its connection settings"
        batch = execute.HostBatch(
            self.pool.get(connection),
            check_mode,
            secrets_of=secret_values,
            started=journal_started,
            deadline_s=batch_deadline(self.step_timeout_s, len(steps)),
            stop=self.stop,
            facts_cache=facts_cache,
            read_also=read_also,
            applied=applied,
        )
        try:
            outcomes = batch.run(steps)
        except JournalError:
            raise  # the audit record would be lost: stop the run loudly (exit 2)
        except (TransportError, HostScriptError) as exc:
            outcomes = {
                s.key: execute.Outcome(batch.decided.get(s.key) or execute.Decision(), failed=True, msg=str(exc))
                for s in steps
            }
        except Exception as exc:  # a bug must fail the host's steps, not the whole run
            # ... and keep what was decided; a step already sent may have run (issue 12 item 14).
            error = f"internal error: {type(exc).__name__}: {exc}"
            outcomes = {
                s.key: execute.Outcome(
                    batch.decided.get(s.key) or execute.Decision(),
                    failed=True,
                    msg=f"its operations may have run (the next plan shows the state): {error}"
                    if s.key in sent
                    else error,
                )
                for s in steps
            }
        durations = self._durations(steps, batch.spent, time.monotonic() - started)
        results = {}
        for step in steps:
            outcome = outcomes.get(step.key) or execute.Outcome(execute.Decision(), skipped=True, msg="not run")
            result = placeholders[step.key]
            self._fill(result, outcome)
            if verify and step.task.kind == "apply" and result.changed and not result.failed:
                result.failed, result.changed = True, False
                result.msg = "not in place: " + ", ".join(c["path"] for c in result.diff)
            result.duration = durations[step.key]
            results[step.key] = self._finish(step, run_id, redact, result)
        return results

    @staticmethod
    def _durations(steps: list[Step], spent: dict, elapsed: float) -> dict[tuple[str, str], float]:
        """Each step's share of its batch: what the batch measured for it (``HostBatch.spent``) and
        an even share of the rest (the connection, the journal), so that they add up to the batch."""
        rest = max(0.0, elapsed - sum(spent.get(s.key, 0.0) for s in steps)) / len(steps)
        return {s.key: round(spent.get(s.key, 0.0) + rest, 4) for s in steps}

    @staticmethod
    def _fill(result: Result, outcome) -> None:
        decision = outcome.decision
        result.before, result.after = decision.before, decision.after
        result.warnings += decision.warnings
        # what the host warned while applying (e.g. Install-WindowsFeature: automatic updating is off)
        result.warnings += [
            f"{describe(op)}: {text}"
            for op, done in zip(decision.operations, outcome.applied, strict=False)
            for text in (done.get("warnings") or [])
        ]
        applied = outcome.applied + [None] * len(decision.operations)
        result.operations = [
            {"operation": describe(op), "detail": op, **({"result": done} if done else {})}
            for op, done in zip(decision.operations, applied, strict=False)
        ]
        result.changed, result.failed, result.skipped = outcome.changed, outcome.failed, outcome.skipped
        result.msg = outcome.msg

    def _finish(self, step: Step, run_id, redact: Redactor, result: Result) -> Result:
        result = redact.result(result)
        self._observe("lync2fa_task_finish", result, step=step, result=result)
        if self.journal and run_id is not None:
            self.journal.record(run_id, result, fingerprint(step))
        return result

    def _observe(self, hook: str, warn_into: Result, **kwargs) -> None:
        """Call an observer hook; a broken observer is a warning, never a lost run."""
        try:
            call = getattr(self.hooks, hook, None)
            if call is not None:  # an observer object need not implement every hook
                call(**kwargs)
        except Exception as exc:  # third-party code
            warn_into.warnings.append(f"observer hook {hook} failed: {type(exc).__name__}: {exc}")


def secret_values(step: Step) -> dict:
    """A step's secret parameters (PINs, PUKs): they travel beside the request, never in it."""
    return {k: v for k, v in step.params.items() if k in step.task.secret_params and v is not None}


def fingerprint(step: Step) -> str:
    """What a step was asked to do: task, host, endpoint and parameters (a secret counts by
    name only). ``--resume`` skips a step only if its fingerprint is the same as before."""
    params = {k: ("<secret>" if k in step.task.secret_params else v) for k, v in step.params.items()}
    doc = {
        "task": step.task.name,
        "host": step.host.name,
        "params": params,
        "endpoint": getattr(step.connection, "endpoint", ""),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
