"""Issue 8: the lab runs exactly the operation list the decisions produced, for every task.

A whole rollout and the rollback of every tier run on one lab; every host's log of executed
operations is compared, in full and in order, with the operations the CLI's --json report says
were decided (tests/lab_operations.py).
"""

from __future__ import annotations

import copy
import json

import pytest
from lab_operations import by_task

from lync2fa import api
from lync2fa.hostops import describe
from lync2fa.results import MASK

TASKS = api.tasks()
CHANGING = {name for name, task in TASKS.items() if task.kind in ("apply", "rollback")}
ROLLBACK_TIERS = sorted({name.split(".", 1)[0] for name, task in TASKS.items() if task.kind == "rollback"})


def test_every_host_executes_exactly_what_every_task_decided_in_a_rollout_and_its_rollback(make_lab, run_cli):
    lab = make_lab(clients=1)
    # lync.ucs_rollback changes nothing unless asked to (the lab's users are homed on pool01).
    inventory = lab.inventory_with({"pool01": {"lync_ucs_rollback": True}})

    def cli(command: str, *extra: str):
        result = run_cli(command, "-i", inventory, "--state-dir", lab.state_dir, "--json", *extra)
        assert result.code == 0, result.out[-3000:] + result.err[-3000:]
        return result

    applied = cli("apply")
    lab.ran_as_decided(applied.json())
    mark = lab.mark()
    rolled = cli("rollback", "--tier", ",".join(ROLLBACK_TIERS))
    executed = lab.ran_as_decided(rolled.json(), since=mark)
    assert set(executed) >= {"ca01", "adfs01", "pool01", "dir01", "cl0001"}

    # Every task that changes or undoes something was compared here (verify tasks send nothing).
    produced = {task for r in (applied, rolled) for task, ops in by_task(r.json()).items() if ops}
    assert sorted(produced) == sorted(CHANGING)

    # Decided operations name secrets by placeholder: no value reached them (the output's
    # redaction had nothing to mask), and none reaches the output.
    details = [op for r in (applied, rolled) for ops in by_task(r.json()).values() for op in ops]
    assert MASK not in json.dumps(details)
    [card] = [op for op in details if op.get("name") == "vsc_create"]
    assert card["args"]["pin"] == {"secret": "pin"}
    secrets = api.plan(api.load_inventory(inventory), kind=("apply", "rollback")).secrets()
    assert secrets and not [s for s in secrets if s in applied.out + rolled.out]


def test_an_operation_that_differs_only_beyond_its_description_is_caught(make_lab, run_cli):
    """The comparison is of full operations: an ad_create with other attributes is another operation,
    though its one-line description is the same."""
    lab = make_lab(clients=1)
    applied = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, "--json", "--tasks", "ca,templates")
    assert applied.code == 0, applied.out[-3000:]
    report = applied.json()
    lab.ran_as_decided(report)
    other = copy.deepcopy(report)
    [created, *_] = [op for r in other["results"] for op in r["operations"] if op["detail"]["op"] == "ad_create"]
    created["detail"]["attributes"].popitem()
    assert describe(created["detail"]) == created["operation"]
    with pytest.raises(AssertionError, match="executed other operations than decided"):
        lab.ran_as_decided(other)
