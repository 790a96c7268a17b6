"""Round trips on a real rollout (issue 11): per host, excluding the authentication handshake, a
full client rollout costs at most 8 WS-Management requests and a no-op re-apply at most 5, in
one PowerShell process per host (the lab counts what it received); after a full apply of every
tier, a no-op re-apply costs every host at most 5."""

from __future__ import annotations

import json


def _requests(counters: dict) -> int:
    return sum(counters["requests"].values())


def _delta(after: dict, before: dict) -> dict:
    return {
        "requests": _requests(after) - _requests(before),
        "process_starts": after["process_starts"] - before["process_starts"],
        "imports": after["imports"] - before["imports"],
        "signals": after["requests"].get("Signal", 0) - before["requests"].get("Signal", 0),
    }


def test_issue11_client_rollout_and_noop_reapply_round_trips(make_lab, run_cli):
    lab = make_lab(clients=1)
    args = ("-i", lab.inventory, "--state-dir", lab.state_dir, "--skip-preflight")
    assert run_cli("apply", *args, "--tasks", "ca,templates,adfs,lync").code == 0
    start = lab.counters("cl0001")
    applied = run_cli("apply", *args, "--tasks", "client", "--json")
    assert applied.code == 0, applied.out
    assert applied.json()["counts"]["changed"] >= 3
    after_apply = lab.counters("cl0001")
    again = run_cli("apply", *args, "--tasks", "client", "--json")
    assert again.code == 0 and again.json()["counts"]["changed"] == 0
    after_noop = lab.counters("cl0001")
    plan = run_cli("plan", *args, "--tasks", "client", "--json")
    assert plan.code == 0
    after_plan = lab.counters("cl0001")

    rollout, noop, check = _delta(after_apply, start), _delta(after_noop, after_apply), _delta(after_plan, after_noop)
    assert rollout["requests"] <= 8, rollout
    assert noop["requests"] <= 5, noop
    assert check["requests"] <= 5, check
    assert rollout["process_starts"] == noop["process_starts"] == check["process_starts"] == 1
    assert rollout["signals"] == noop["signals"] == 0


def test_issue11_noop_reapply_of_every_tier_round_trips(make_lab, run_cli):
    """After a full apply, a no-op re-apply of every tier costs each host at most 5 requests
    (Create, Command, one Send+Receive reading every fact of all its steps, Delete): no decision
    on the main path asks for a second read (``More``), none refuses and reads again."""
    lab = make_lab(clients=1)
    args = ("-i", lab.inventory, "--state-dir", lab.state_dir, "--skip-preflight")
    applied = run_cli("apply", *args, "--json")
    assert applied.code == 0, applied.out
    lab.counters("ca01")  # lets the lab write its counters (every 0.2 s) before they are listed
    hosts = sorted(json.loads((lab.dir / "counters.json").read_text()))
    assert {"ca01", "adfs01", "pool01", "cl0001"} <= set(hosts), hosts
    start = {host: lab.counters(host, settle_s=0.6 if i == 0 else 0) for i, host in enumerate(hosts)}
    again = run_cli("apply", *args, "--json")
    assert again.code == 0 and again.json()["counts"]["changed"] == 0, again.out
    noop = {
        host: _delta(lab.counters(host, settle_s=0.6 if i == 0 else 0), start[host]) for i, host in enumerate(hosts)
    }
    over = {host: d for host, d in noop.items() if d["requests"] > 5}
    assert not over, over
    assert all(d["process_starts"] == 1 and d["signals"] == 0 for d in noop.values()), noop
