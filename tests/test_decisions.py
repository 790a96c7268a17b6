"""Decision tests without a lab: recorded facts in -> operations, diff and warnings out.

Each fixture under tests/decisions/<tier>/*.json is::

    {"task": "ca.authority", "params": {...}, "check_mode": false, "hostvars": {...},
     "facts": {"<name>": {"ok": true, "value": ...} | {"ok": false, "error": {...}}},
     "more": {"<name>": {...}},                       # optional: facts a More round would read
     "planned": ["<task>"],                           # optional: same-host steps with pending changes
     "expect": {"operations": [...], "before": {...}, "after": {...}, "failed": false,
                "msg_contains": "...", "warnings_contain": ["..."]}}

Only the keys present in ``expect`` are compared (``operations`` always is, [] by default). A
rollback record's value is compared as its JSON object with "at": "<at>". Every cmdlet an expected operation calls
must bind against the documented signature (the same check the lab makes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lync2fa import api
from lync2fa.catalog import Catalog
from lync2fa.decision import Context, Decision, Facts, More
from lync2fa.records import RECORDS_KEY

FIXTURES = sorted((Path(__file__).parent / "decisions").glob("*/*.json"))


def _normalise(operations: list[dict]) -> list[dict]:
    """Rollback records carry the time they were written: compared as "<at>"."""
    out = []
    for op in operations:
        if op.get("op") == "registry_set" and op.get("path") == RECORDS_KEY:
            data = json.loads(op["value"])
            op = {**op, "value": {**data, "at": "<at>"}}
        out.append(op)
    return out


def _decide(fixture: dict):
    task = api.tasks()[fixture["task"]]
    params = task.validate(fixture.get("params", {}))
    ctx = Context(
        task=task.name,
        host=fixture.get("host", "host01"),
        params=params,
        facts=Facts(fixture.get("facts", {})),
        check_mode=fixture.get("check_mode", False),
        hostvars=fixture.get("hostvars", {}),
        planned={name: Decision() for name in fixture.get("planned", [])},
    )
    queries = task.facts(params)
    assert set(queries) <= set(fixture.get("facts", {})) | set(fixture.get("more", {})) | set(), (
        f"fixture lacks facts {sorted(set(queries) - set(fixture.get('facts', {})))}"
    )
    for _ in range(4):
        answer = task.decide(ctx)
        if not isinstance(answer, More):
            return answer
        missing = set(answer.facts) - set(fixture.get("more", {}))
        assert not missing, f"the decision asked for facts the fixture does not give: {sorted(missing)}"
        ctx.facts = ctx.facts.merged({k: fixture["more"][k] for k in answer.facts})
    raise AssertionError("too many fact rounds")


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_decision(path):
    fixture = json.loads(path.read_text())
    decision = _decide(fixture)
    expect = fixture["expect"]
    assert _normalise(decision.operations) == _normalise(expect.get("operations", []))
    for key in ("before", "after", "failed"):
        if key in expect:
            assert getattr(decision, key) == expect[key], key
    if "msg_contains" in expect:
        assert expect["msg_contains"] in decision.msg
    for text in expect.get("warnings_contain", []):
        assert any(text in w for w in decision.warnings), (text, decision.warnings)
    if "warnings_contain" not in expect and not expect.get("failed"):
        assert expect.get("warnings", decision.warnings) == decision.warnings
    catalog = Catalog.load()
    for op in decision.operations:
        if op["op"] == "cmdlet":
            catalog.bind(
                op["cmdlet"],
                {
                    k: (v if not (isinstance(v, dict) and set(v) == {"secret"}) else "x")
                    for k, v in op["params"].items()
                },
            )


def test_every_deciding_task_has_fixtures():
    covered = {json.loads(p.read_text())["task"] for p in FIXTURES}
    deciding = {n for n, t in api.tasks().items() if t.decide is not None}
    assert deciding <= covered, f"tasks without decision fixtures: {sorted(deciding - covered)}"
