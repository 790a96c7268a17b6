"""One step on one host: read its facts, decide in Python, apply the operations.

At most two kinds of round trip per step: one script reading every fact the task declared
(plus one per ``More`` the decision asks for), and, when something must change and we are not
in check mode, one script applying the operations in order. A no-op step sends nothing but its
fact read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import hostscript
from .decision import Context, Decision, FactError, Facts, More
from .hostops import describe

MAX_FACT_ROUNDS = 4


@dataclass
class Outcome:
    decision: Decision
    applied: list[dict] = field(default_factory=list)   # what each operation did, in order
    failed: bool = False
    msg: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.decision.operations) and not self.failed


def read_facts(connection, queries: dict[str, dict], secrets: dict | None = None) -> Facts:
    if not queries:
        return Facts()
    output = connection.run_script(hostscript.build(hostscript.facts_request(queries)), None)
    response = _response(output)
    return Facts(response.get("facts") or {})


def decide(step, connection, check_mode: bool) -> Decision:
    """Gather the step's facts and run its decision (pure Python, no host change)."""
    task = step.task
    facts = read_facts(connection, task.facts(step.params))
    ctx = Context(task=task.name, host=step.host.name, params=step.params, facts=facts, check_mode=check_mode,
                  hostvars=_hostvars(step.host))
    for _ in range(MAX_FACT_ROUNDS):
        try:
            answer = task.decide(ctx)
        except FactError as exc:
            return Decision.refuse(f"{exc}")
        if not isinstance(answer, More):
            return answer
        ctx.facts = ctx.facts.merged(read_facts(connection, answer.facts).raw)
    raise RuntimeError(f"{task.name}: the decision asked for facts more than {MAX_FACT_ROUNDS} times")


def apply(connection, operations: list[dict], secrets: dict | None) -> tuple[list[dict], str]:
    """Run the operations; returns (per-operation results, failure message or "")."""
    output = connection.run_script(hostscript.build(hostscript.apply_request(operations)), secrets or None)
    response = _response(output)
    done = list(response.get("operations") or [])
    for index, (operation, result) in enumerate(zip(operations, done)):
        if not result.get("ok"):
            error = result.get("error") or {}
            return done, (f"operation {index + 1} of {len(operations)} ({describe(operation)}) failed: "
                          f"{error.get('message', 'unknown error')}")
    if len(done) < len(operations):
        return done, f"only {len(done)} of {len(operations)} operations ran"
    return done, ""


def run(step, connection, check_mode: bool, secrets: dict | None) -> Outcome:
    decision = decide(step, connection, check_mode)
    if decision.failed or check_mode or not decision.operations:
        return Outcome(decision, failed=decision.failed, msg=decision.msg)
    applied, error = apply(connection, decision.operations, secrets)
    return Outcome(decision, applied=applied, failed=bool(error), msg=error or decision.msg)


def _response(output) -> dict:
    try:
        response = hostscript.parse_response(output.stdout)
    except hostscript.HostScriptError:
        detail = output.stderr.strip() or "no output"
        raise hostscript.HostScriptError(f"host script failed (exit code {output.exit_code}): {detail}") from None
    if response.get("failed"):
        error = response.get("error") or {}
        raise hostscript.HostScriptError(f"host script failed: {error.get('message', 'unknown error')}")
    return response


def _hostvars(host) -> dict:
    names = ("lync2fa_fqdn", "lync2fa_domain", "lync2fa_lync_role", "inventory_hostname")
    return {n: host.var(n) for n in names if host.has_var(n)}
