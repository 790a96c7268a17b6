"""A host's steps of one phase: read their facts together, decide in Python, apply together.

Per host and phase, one request reads every fact the steps declared (and those of the host's
later phases: when nothing is applied in between, they read nothing again); each step's
decision then runs in order, seeing the decisions of the same host's earlier steps
(``Context.planned``), so a dependent step can plan on what will exist; one request applies
every step's operations as groups (a group whose prerequisite failed is skipped on the host).
Decisions may ask for more facts (``More``): the requests of all the host's steps go in one read
per round. If a decision refuses while a prerequisite's changes are still pending, those changes
are applied first and the remaining steps read their facts again, so no decision has to predict
what it cannot.

In check mode and on a no-op re-apply nothing but the fact reads is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import hostscript
from .decision import Context, Decision, FactError, Facts, More
from .hostops import describe

MAX_FACT_ROUNDS = 4


@dataclass
class Outcome:
    decision: Decision
    applied: list[dict] = field(default_factory=list)  # what each operation did, in order
    failed: bool = False
    skipped: bool = False
    msg: str = ""

    @property
    def changed(self) -> bool:
        """Whether the host was (or, in check mode, would be) changed: a step that failed after
        some of its operations succeeded did change it, and the journal must say so."""
        if self.skipped:
            return False
        if self.applied:
            return any(done.get("ok") for done in self.applied)
        return bool(self.decision.operations) and not self.failed


def read_facts(connection, queries: dict[str, dict], deadline_s: float | None = None) -> Facts:
    if not queries:
        return Facts()
    response = connection.request(hostscript.facts_request(queries), None, deadline_s, idempotent=True)
    _check(response)
    return Facts(response.get("facts") or {})


def qualified_secrets(step, operations: list[dict], secrets: dict) -> tuple[list[dict], dict]:
    """The step's operations with secret placeholders renamed ``<task>/<name>`` (steps of one
    request share the secrets document), and those secrets."""
    prefix = step.task.name + "/"

    def rename(value):
        if isinstance(value, dict):
            if set(value) == {"secret"}:
                return {"secret": prefix + value["secret"]}
            return {k: rename(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    return rename(operations), {prefix + k: v for k, v in secrets.items()}


class HostBatch:
    """Runs one host's steps of a phase. ``secrets_of(step)`` gives a step's secret values;
    ``started(steps)`` is called before operations are sent (the journal records them)."""

    def __init__(
        self,
        connection,
        check_mode: bool,
        secrets_of: Callable,
        started: Callable,
        deadline_s: float | None = None,
        stop=None,
        facts_cache: dict | None = None,
        read_also: list | None = None,
        applied: Callable | None = None,
    ):
        self.connection, self.check_mode = connection, check_mode
        self.secrets_of, self.started, self.deadline_s = secrets_of, started, deadline_s
        self.decided: dict[tuple[str, str], Decision] = {}
        self.stop = stop  # a threading.Event: once set, no operation is sent
        # Facts already read for this host (by step), and steps of its later phases to read with the
        # first request: when nothing was applied in between, those phases read nothing again.
        self.cache = facts_cache if facts_cache is not None else {}
        self.read_also = list(read_also or ())
        self.applied = applied or (lambda: None)
        self.rounds: dict[tuple[str, str], int] = {}  # More rounds per step
        # Seconds spent on each step: its decisions, its group's time on the host, and an even share
        # of the requests it took part in (a fact read, the apply request's transport).
        self.spent: dict[tuple[str, str], float] = {}

    def run(self, steps: list) -> dict[tuple[str, str], Outcome]:
        outcomes: dict[tuple[str, str], Outcome] = {}
        facts = self._facts(steps)
        pending: list = []  # decided steps whose operations are not applied yet
        waiting = list(steps)  # not decided yet, in order
        while waiting:
            more: dict = {}  # step key -> the facts its decision asked for (one read for all)
            progressed = False
            for step in list(waiting):
                if any(
                    w.key != step.key and w.task.name in step.task.after
                    for w in waiting
                    if waiting.index(w) < waiting.index(step)
                ):
                    continue  # a same-host prerequisite is not decided yet
                blocker = self._blocker(step, outcomes)
                if blocker:
                    outcomes[step.key] = Outcome(Decision(), skipped=True, msg=f"skipped: {blocker} did not succeed")
                    waiting.remove(step)
                    progressed = True
                    continue
                clock = time.monotonic()
                answer = self._decide(step, facts[step.key], pending)
                self._charge([step.key], time.monotonic() - clock)
                if isinstance(answer, More):
                    more[step.key] = answer.facts
                    continue
                progressed = True
                if answer.failed and any(p.task.name in step.task.after for p in pending) and not self.check_mode:
                    # It cannot plan on a prerequisite's pending changes: make them, then read again.
                    self._apply(pending, outcomes)
                    pending = []
                    self.cache.clear()
                    facts.update(self._facts(waiting))
                    break
                waiting.remove(step)
                self.decided[step.key] = answer
                outcomes[step.key] = Outcome(answer, failed=answer.failed, msg=answer.msg)
                if answer.operations and not answer.failed:
                    pending.append(step)
            if more:
                clock = time.monotonic()
                read = self._read_more(more)
                self._charge(more, time.monotonic() - clock)
                for key, extra in read.items():
                    facts[key] = facts[key].merged(extra)
                    self.rounds[key] = self.rounds.get(key, 0) + 1
                for step in waiting:
                    if self.rounds.get(step.key, 0) > MAX_FACT_ROUNDS:
                        waiting.remove(step)
                        outcomes[step.key] = Outcome(
                            Decision.refuse(
                                f"{step.task.name}: the decision asked for facts more than {MAX_FACT_ROUNDS} times"
                            ),
                            failed=True,
                        )
            elif not progressed:
                raise RuntimeError("no step of the host could be decided")  # a dependency cycle: a bug
        if not self.check_mode:
            self._apply(pending, outcomes)
        return outcomes

    # -- internals --------------------------------------------------------------------
    def _charge(self, keys: Iterable[tuple[str, str]], seconds: float) -> None:
        """Spread ``seconds`` evenly over the steps ``keys``."""
        keys = list(keys)
        for key in keys:
            self.spent[key] = self.spent.get(key, 0.0) + seconds / len(keys)

    def _facts(self, steps: list) -> dict[tuple[str, str], Facts]:
        """The steps' facts: from the cache, else one read (with the later phases' steps)."""
        missing = [s for s in steps if s.key not in self.cache]
        if missing:
            also = [s for s in self.read_also if s.key not in self.cache and s not in missing]
            clock = time.monotonic()
            self.cache.update(self._read(missing + also))
            self._charge([s.key for s in missing], time.monotonic() - clock)  # later phases read for free
            self.read_also = []
        return {s.key: self.cache[s.key] for s in steps}

    def _read(self, steps: list) -> dict[tuple[str, str], Facts]:
        queries = {
            f"{i}|{name}": query for i, step in enumerate(steps) for name, query in step.task.facts(step.params).items()
        }
        merged = read_facts(self.connection, queries, self.deadline_s)
        out = {}
        for i, step in enumerate(steps):
            prefix = f"{i}|"
            out[step.key] = Facts({k[len(prefix) :]: v for k, v in merged.raw.items() if k.startswith(prefix)})
        return out

    def _read_more(self, more: dict) -> dict[tuple[str, str], dict]:
        keys = list(more)
        queries = {f"{i}|{name}": query for i, key in enumerate(keys) for name, query in more[key].items()}
        merged = read_facts(self.connection, queries, self.deadline_s)
        return {
            key: {k[len(f"{i}|") :]: v for k, v in merged.raw.items() if k.startswith(f"{i}|")}
            for i, key in enumerate(keys)
        }

    def _decide(self, step, facts: Facts, pending: list) -> Decision | More:
        planned = {p.task.name: self.decided[p.key] for p in pending}
        ctx = Context(
            task=step.task.name,
            host=step.host.name,
            params=step.params,
            facts=facts,
            check_mode=self.check_mode,
            hostvars=_hostvars(step.host),
            planned=planned,
        )
        try:
            return step.task.decide(ctx)
        except FactError as exc:
            return Decision.refuse(str(exc))

    def _blocker(self, step, outcomes: dict) -> str | None:
        for other_key, outcome in outcomes.items():
            task_name, host = other_key
            if host == step.host.name and task_name in step.task.after and (outcome.failed or outcome.skipped):
                return f"{task_name} on {host}"
        return None

    def _apply(self, pending: list, outcomes: dict) -> None:
        if not pending:
            return
        if self.stop is not None and self.stop.is_set():
            for step in pending:
                outcome = outcomes[step.key]
                outcome.skipped, outcome.msg = True, "not applied: the run was interrupted"
            return
        groups, secrets = [], {}
        names = {p.task.name for p in pending}
        for step in pending:
            operations, step_secrets = qualified_secrets(step, self.decided[step.key].operations, self.secrets_of(step))
            secrets.update(step_secrets)
            groups.append(
                {"id": step.task.name, "needs": [n for n in step.task.after if n in names], "operations": operations}
            )
        self.started(pending)
        self.applied()
        self.cache.clear()  # what was read before is stale now
        clock = time.monotonic()
        try:
            response = self.connection.request(hostscript.apply_request(groups), secrets or None, self.deadline_s)
            _check(response)
        except Exception as exc:
            self._charge([s.key for s in pending], time.monotonic() - clock)
            for step in pending:
                outcome = outcomes[step.key]
                outcome.failed, outcome.msg = True, str(exc)
            if not isinstance(exc, hostscript.HostScriptError):
                raise
            return
        answers = {a["id"]: a for a in response.get("groups") or []}
        self._charge_apply(pending, answers, time.monotonic() - clock)
        for step in pending:
            outcome = outcomes[step.key]
            answer = answers.get(step.task.name)
            ops = outcome.decision.operations
            if answer is None:
                outcome.failed, outcome.msg = True, "the host did not answer for this step's operations"
            elif answer.get("skipped"):
                outcome.skipped, outcome.msg = True, f"skipped: {answer.get('blocked_by')} did not succeed"
            else:
                outcome.applied = list(answer.get("operations") or [])
                for index, (operation, done) in enumerate(zip(ops, outcome.applied, strict=False)):
                    if not done.get("ok"):
                        error = (done.get("error") or {}).get("message", "unknown error")
                        outcome.failed = True
                        outcome.msg = (
                            f"operation {index + 1} of {len(ops)} ({describe(operation)}) failed: {str(error).strip()}"
                        )
                        break
                else:
                    if len(outcome.applied) < len(ops):
                        outcome.failed, outcome.msg = True, f"only {len(outcome.applied)} of {len(ops)} operations ran"

    def _charge_apply(self, pending: list, answers: dict, seconds: float) -> None:
        """Each step its group's time on the host (``elapsed_ms``), and an even share of the rest of
        the apply request (transport, the session's start)."""
        on_host = {s.key: _seconds((answers.get(s.task.name) or {}).get("elapsed_ms")) for s in pending}
        scale = min(1.0, seconds / (sum(on_host.values()) or 1.0))  # never more than the request took
        for key, own in on_host.items():
            self._charge([key], own * scale)
        self._charge(on_host, max(0.0, seconds - sum(on_host.values()) * scale))


def _seconds(milliseconds) -> float:
    """A host-reported ``elapsed_ms`` in seconds; 0 when absent (a skipped group) or not a number."""
    if isinstance(milliseconds, int | float) and not isinstance(milliseconds, bool) and milliseconds > 0:
        return milliseconds / 1000
    return 0.0


def _check(response: dict) -> None:
    if response.get("failed"):
        error = response.get("error") or {}
        raise hostscript.HostScriptError(f"host script failed: {error.get('message', 'unknown error')}")


def _hostvars(host) -> dict:
    names = ("lync2fa_fqdn", "lync2fa_domain", "lync2fa_lync_role", "inventory_hostname")
    return {n: host.var(n) for n in names if host.has_var(n)}
