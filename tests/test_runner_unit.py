"""Runner semantics with a fake transport: phases, per-host vs global dependencies, shells."""

from __future__ import annotations

import json
from types import SimpleNamespace

from lync2fa import hostops
from lync2fa.decision import Decision
from lync2fa.plan import Plan, Step
from lync2fa.runner import Runner, phases
from lync2fa.task import Task


def _facts(params):
    return {"value": hostops.registry_fact("HKLM:\\SOFTWARE\\Test", ["Value"])}


def _decide(ctx):
    ops = [hostops.registry_set("HKLM:\\SOFTWARE\\Test", "Value", ctx.params.get("audit_filter", 1), "DWord")]
    if ctx.params.get("pin"):
        ops.append(hostops.named("card", pin=hostops.secret("pin")))
    return Decision({"x": 0}, {"x": 1}, ops)


def task(name, group, after=()):
    return Task(name=name, group=group, facts=_facts, decide=_decide, after=after)


class FakeConnection:
    """Answers host requests as the primitive library would: facts, then groups of operations."""

    def __init__(self, pool, host):
        self.pool, self.host = pool, host

    def request(self, request, secrets=None, deadline_s=None, idempotent=False):
        self.pool.requests.append((self.host, request, secrets))
        if request["kind"] == "facts":
            return {
                "lync2fa": 1,
                "facts": {name: {"ok": True, "value": {"exists": False, "values": {}}} for name in request["facts"]},
            }
        answers, failed = [], set()
        for group in request["groups"]:
            if any(n in failed for n in group["needs"]):
                failed.add(group["id"])
                answers.append({"id": group["id"], "skipped": True, "blocked_by": group["needs"][0], "operations": []})
                continue
            self.pool.ran.append((group["id"], self.host))
            if (group["id"], self.host) in self.pool.failing:
                failed.add(group["id"])
                answers.append(
                    {"id": group["id"], "skipped": False, "operations": [{"ok": False, "error": {"message": "boom"}}]}
                )
            else:
                answers.append(
                    {
                        "id": group["id"],
                        "skipped": False,
                        "operations": [{"ok": True, "output": None} for _ in group["operations"]],
                    }
                )
        return {"lync2fa": 1, "groups": answers}


class FakePool:
    def __init__(self, failing=()):
        self.failing, self.ran, self.closed, self.open, self.requests = set(failing), [], [], {}, []

    def get(self, settings):
        return self.open.setdefault(settings.host, FakeConnection(self, settings.host))

    def close_host(self, host):
        if self.open.pop(host, None):
            self.closed.append((host, len(self.ran)))

    def close(self):
        for host in list(self.open):
            self.close_host(host)


class Hooks:
    def lync2fa_task_start(self, step):
        pass

    def lync2fa_task_finish(self, step, result):
        pass


def make_plan(tasks, hosts_by_group):
    steps = []
    for t in tasks:
        for h in hosts_by_group[t.group]:
            host = SimpleNamespace(name=h, var=lambda name, default=None: default, has_var=lambda name: False)
            steps.append(Step(t, host, {"audit_filter": 1}, SimpleNamespace(host=h, password="pw")))
    return Plan(tasks=list(tasks), steps=steps)


CA = task("ca.a", "ca")
CA2 = task("ca.b", "ca", after=("ca.a",))
VSC = task("client.vsc", "clients")
ENROLL = task("client.enroll", "clients", after=("client.vsc", "ca.b"))
GROUPS = {"ca": ["ca01"], "clients": ["cl1", "cl2", "cl3"]}


def test_phases_split_only_on_cross_group_dependencies_and_keep_a_group_together():
    plan = make_plan([CA, CA2, VSC, ENROLL], GROUPS)
    # client.vsc waits for the phase of its dependant, so a client's whole rollout is one phase
    assert [[t.name for t in p] for p in phases(plan)] == [["ca.a", "ca.b"], ["client.vsc", "client.enroll"]]
    alone = task("client.settings", "clients")  # no dependant: with the rest of its group
    plan = make_plan([CA, CA2, VSC, alone, ENROLL], GROUPS)
    assert [[t.name for t in p] for p in phases(plan)] == [
        ["ca.a", "ca.b"],
        ["client.vsc", "client.settings", "client.enroll"],
    ]
    early = task("ca.early", "ca")
    later = task("adfs.x", "adfs", after=("ca.early",))
    plan = make_plan([early, later], {"ca": ["ca01"], "adfs": ["adfs01"]})
    assert [[t.name for t in p] for p in phases(plan)] == [["ca.early"], ["adfs.x"]]  # bounded by its dependant


def test_same_group_dependency_is_per_host_and_cross_group_is_global():
    pool = FakePool(failing={("client.vsc", "cl2")})
    report = Runner(Hooks(), pool=pool, forks=4).run(make_plan([CA, CA2, VSC, ENROLL], GROUPS), False)
    status = {(r.task, r.host): r.status for r in report.results}
    assert status[("client.enroll", "cl1")] == "changed"
    assert status[("client.enroll", "cl2")] == "skipped"  # its own card failed
    assert status[("client.enroll", "cl3")] == "changed"  # another client's failure does not block it
    pool = FakePool(failing={("ca.b", "ca01")})
    report = Runner(Hooks(), pool=pool, forks=4).run(make_plan([CA, CA2, VSC, ENROLL], GROUPS), False)
    assert {r.host: r.status for r in report.results if r.task == "client.enroll"} == {
        "cl1": "skipped",
        "cl2": "skipped",
        "cl3": "skipped",
    }  # no enrollment without the CA


def test_each_host_runs_its_steps_in_order_and_closes_its_shell_after_its_last_phase():
    pool = FakePool()
    plan = make_plan([CA, CA2, VSC, ENROLL], GROUPS)
    report = Runner(Hooks(), pool=pool, forks=4).run(plan, False)
    assert report.ok and len(report.results) == 8
    ca_steps = [t for t, h in pool.ran if h == "ca01"]
    assert ca_steps == ["ca.a", "ca.b"]
    for client in GROUPS["clients"]:
        assert [t for t, h in pool.ran if h == client] == ["client.vsc", "client.enroll"]
    closed = dict(pool.closed)
    assert closed["ca01"] == 2  # closed after its last phase, before any client started
    for client in GROUPS["clients"]:  # each client's shell closes as soon as its own steps ended
        assert [t for t, h in pool.ran[: closed[client]] if h == client] == ["client.vsc", "client.enroll"]
    assert len(pool.closed) == 4
    assert [r.task for r in report.results] == [s.task.name for s in plan.steps]


def test_tasks_run_in_rollout_order_with_each_tier_together():
    from lync2fa.plan import order_tasks

    tasks = {
        t.name: t
        for t in [
            task("client.vsc", "clients"),
            task("adfs.trust", "adfs"),
            task("ca.a", "ca"),
            task("client.enroll", "clients", after=("client.vsc", "ca.b", "adfs.trust")),
            task("ca.b", "ca", after=("ca.a",)),
            task("adfs.auth", "adfs", after=("ca.a",)),
        ]
    }
    assert [t.name for t in order_tasks(tasks)] == [
        "ca.a",
        "ca.b",
        "adfs.trust",
        "adfs.auth",
        "client.vsc",
        "client.enroll",
    ]
    # Tiers that depend on each other both ways fall back to plain dependency order.
    tasks["ca.c"] = task("ca.c", "ca", after=("adfs.auth",))
    names = [t.name for t in order_tasks(tasks)]
    assert names.index("adfs.auth") < names.index("ca.c") and names.index("ca.a") < names.index("adfs.auth")


def test_secret_parameters_are_sent_apart_from_the_request():
    from lync2fa.task import Param

    secret_task = Task(
        name="client.card",
        group="clients",
        facts=_facts,
        decide=_decide,
        params=(Param("audit_filter", "int", default=1), Param("pin", secret=True)),
    )
    plan = make_plan([secret_task], {"clients": ["cl1"]})
    plan.steps[0].params["pin"] = "58203917"
    pool = FakePool()
    report = Runner(Hooks(), pool=pool).run(plan, False)
    assert report.ok
    (_, facts, no_secrets), (_, apply, secrets) = pool.requests
    assert no_secrets is None and "58203917" not in json.dumps(facts) + json.dumps(apply)
    assert secrets == {"client.card/pin": "58203917"}
    assert apply["groups"][0]["operations"][1]["args"] == {"pin": {"secret": "client.card/pin"}}
    assert "58203917" not in json.dumps(report.as_dict())


def test_a_host_reads_its_facts_once_and_applies_once_per_phase():
    pool = FakePool()
    Runner(Hooks(), pool=pool, forks=4).run(make_plan([CA, CA2, VSC, ENROLL], GROUPS), False)
    kinds = [request["kind"] for host, request, _ in pool.requests if host == "ca01"]
    assert kinds == ["facts", "apply"]
    apply = next(r for h, r, _ in pool.requests if h == "ca01" and r["kind"] == "apply")
    assert [g["id"] for g in apply["groups"]] == ["ca.a", "ca.b"] and apply["groups"][1]["needs"] == ["ca.a"]
    # check mode: the facts only
    pool = FakePool()
    Runner(Hooks(), pool=pool, forks=4).run(make_plan([CA, CA2, VSC, ENROLL], GROUPS), True)
    assert {request["kind"] for _, request, _ in pool.requests} == {"facts"}


def test_a_failed_prerequisite_skips_its_dependant_on_the_same_host():
    pool = FakePool(failing={("ca.a", "ca01")})
    report = Runner(Hooks(), pool=pool).run(make_plan([CA, CA2], {"ca": ["ca01"]}), False)
    status = {r.task: (r.status, r.msg) for r in report.results}
    assert status["ca.a"][0] == "failed" and "boom" in status["ca.a"][1]
    assert status["ca.b"] == ("skipped", "skipped: ca.a did not succeed")


def test_resume_skips_only_identical_steps_of_the_same_inventory(tmp_path):
    from lync2fa.journal import Journal

    journal = Journal(tmp_path)
    plan = make_plan([CA, CA2], {"ca": ["ca01"]})
    failed = Runner(Hooks(), journal=journal, pool=FakePool(failing={("ca.b", "ca01")})).run(
        plan, False, inventory="prod.yml"
    )
    assert not failed.ok

    other_inventory = FakePool()
    Runner(Hooks(), journal=journal, pool=other_inventory).run(
        make_plan([CA, CA2], {"ca": ["ca01"]}), False, inventory="lab.yml", resume=True
    )
    assert [t for t, _ in other_inventory.ran] == ["ca.a", "ca.b"]  # nothing to resume from there

    changed_params = make_plan([CA, CA2], {"ca": ["ca01"]})
    changed_params.steps[0].params["audit_filter"] = 2
    failed = Runner(Hooks(), journal=journal, pool=FakePool(failing={("ca.b", "ca01")})).run(
        plan, False, inventory="prod.yml"
    )
    pool = FakePool()
    resumed = Runner(Hooks(), journal=journal, pool=pool).run(changed_params, False, inventory="prod.yml", resume=True)
    assert [t for t, _ in pool.ran] == ["ca.a", "ca.b"]  # ca.a's parameters changed: run again

    Runner(Hooks(), journal=journal, pool=FakePool(failing={("ca.b", "ca01")})).run(plan, False, inventory="prod.yml")
    pool = FakePool()
    resumed = Runner(Hooks(), journal=journal, pool=pool).run(plan, False, inventory="prod.yml", resume=True)
    assert [t for t, _ in pool.ran] == ["ca.b"]
    assert resumed.results[0].msg.endswith("(resumed)") and resumed.ok
    journal.close()


def test_a_broken_observer_is_a_warning_not_a_lost_run():
    class Broken(Hooks):
        def lync2fa_task_start(self, step):
            raise RuntimeError("observer bug")

    report = Runner(Broken(), pool=FakePool()).run(make_plan([CA, CA2], {"ca": ["ca01"]}), False)
    assert report.ok and len(report.results) == 2
    assert report.results[0].warnings == ["observer hook lync2fa_task_start failed: RuntimeError: observer bug"]


def test_secret_parameters_must_be_strings_and_are_not_echoed():
    import pytest

    from lync2fa.task import Param, ParameterError

    secret_task = Task(
        name="client.card", group="clients", facts=_facts, decide=_decide, params=(Param("pin", secret=True),)
    )
    with pytest.raises(ParameterError) as err:
        secret_task.validate({"pin": ["Secr3tPIN!"]})
    assert "must be a string" in str(err.value) and "Secr3tPIN" not in str(err.value)
    assert secret_task.validate({"pin": "Secr3tPIN!"}) == {"pin": "Secr3tPIN!"}


def test_markup_in_a_host_message_is_printed_verbatim():
    import io

    from rich.console import Console

    from lync2fa.cli import print_report
    from lync2fa.results import Result
    from lync2fa.runner import RunReport

    console = Console(file=io.StringIO(), width=200)
    report = RunReport([Result("ca01", "ca.a", failed=True, msg="path [/] not found [bold]x[/bold]")], False)
    print_report(report, console)
    assert "path [/] not found [bold]x[/bold]" in console.file.getvalue()


def test_a_step_skipped_before_the_batch_still_blocks_its_dependants_in_it():
    """lync.web_service skipped (its AD FS prerequisite failed): the proxies after it must not run."""
    adfs = task("adfs.trust", "adfs")
    web = task("lync.web", "pools", after=("adfs.trust",))
    proxy = task("lync.proxy", "pools", after=("lync.web",))
    pool = FakePool(failing={("adfs.trust", "adfs01")})
    report = Runner(Hooks(), pool=pool).run(
        make_plan([adfs, web, proxy], {"adfs": ["adfs01"], "pools": ["pool01"]}), False
    )
    status = {r.task: r.status for r in report.results}
    assert status == {"adfs.trust": "failed", "lync.web": "skipped", "lync.proxy": "skipped"}
    assert ("lync.proxy", "pool01") not in pool.ran


def test_a_step_that_fails_half_way_is_recorded_as_changed_and_failed(tmp_path):
    """Its first operations changed the host: the audit must not say 'nothing changed'."""
    from lync2fa.journal import Journal

    two_ops = Task(
        name="ca.two",
        group="ca",
        facts=_facts,
        decide=lambda ctx: Decision(
            {"x": 0},
            {"x": 2},
            [
                hostops.registry_set("HKLM:\\SOFTWARE\\T", "A", 1, "DWord"),
                hostops.registry_set("HKLM:\\SOFTWARE\\T", "B", 2, "DWord"),
            ],
        ),
    )

    class HalfWay(FakeConnection):
        def request(self, request, secrets=None, deadline_s=None, idempotent=False):
            if request["kind"] == "apply":
                return {
                    "lync2fa": 1,
                    "groups": [
                        {
                            "id": "ca.two",
                            "skipped": False,
                            "operations": [
                                {"ok": True, "output": None},
                                {"ok": False, "error": {"message": "Access is denied."}},
                            ],
                        }
                    ],
                }
            return super().request(request, secrets, deadline_s, idempotent)

    pool = FakePool()
    pool.get = lambda settings: HalfWay(pool, settings.host)
    journal = Journal(tmp_path)
    report = Runner(Hooks(), journal=journal, pool=pool).run(make_plan([two_ops], {"ca": ["ca01"]}), False)
    (result,) = report.results
    assert result.failed and result.changed and "operation 2 of 2" in result.msg
    row = [r for r in journal.results(report.run_id) if r["status"] != "started"][-1]
    assert row["changed"] == 1 and row["failed"] == 1
    journal.close()


def test_a_batch_waits_only_for_what_it_needs_not_for_a_phase_barrier():
    """Clients need the CA's batch, not the pools': with no barrier they overlap with the pools."""
    from lync2fa.runner import batches

    ca, pools = task("ca.a", "ca"), task("lync.web", "pools", after=("ca.a",))
    vsc, enroll = task("client.vsc", "clients"), task("client.enroll", "clients", after=("client.vsc", "ca.a"))
    plan = make_plan([ca, pools, vsc, enroll], {"ca": ["ca01"], "pools": ["pool01"], "clients": ["cl1", "cl2"]})
    stages = phases(plan)
    units, needs = batches(plan, stages)
    client_batch = next(key for key in units if key[1] == "cl1")
    assert [s.task.name for s in units[client_batch]] == ["client.vsc", "client.enroll"]
    assert needs[client_batch] == {next(key for key in units if key[1] == "ca01")}
    assert next(key for key in units if key[1] == "ca01") in needs[next(key for key in units if key[1] == "pool01")]
