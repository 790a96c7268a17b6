"""Issue 12's fault suite: a 30-client lab, faults on the client tier, each fault followed by a
resumed apply (``--resume``) and ``verify``.

The server tiers are applied once per module (a module-scoped lab); each scenario works on its own
clients, picked with a fixed seed, so scenarios do not depend on each other (pytest-xdist may run
them on different workers, each then with its own lab). After every scenario: verify passes, no
client has a second virtual smart card or certificate, every change the faulted or interrupted run
made in the lab is in its journal, and no run stays "running". Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import Lab

from lync2fa.journal import Journal
from lync2fa.lab import control

SEED = 1212  # which clients get which fault
CLIENTS = 30
SERVERS = ["ca01", "adfs01", "pool01", "dir01", "edge01"]
CLI = "import sys\nfrom lync2fa import cli\nsys.exit(cli.main(sys.argv[1:]))"
FORKS = 30


def _plan_groups() -> dict[str, list[str]]:
    clients = [f"cl{i:04d}" for i in range(1, CLIENTS + 1)]
    random.Random(SEED).shuffle(clients)
    return {
        "drop": clients[0:2],
        "http_503": clients[2:4],
        "hang": clients[4:5],
        "lost_shell": clients[5:7],
        "answer_lost": clients[7:9],
        "slow": clients[9:11],
        "healthy": clients[11:12],
        "kill_9": clients[12:21],
        "sigterm": clients[21:30],
    }


GROUPS = _plan_groups()


def cli(*args) -> list[str]:
    return [sys.executable, "-c", CLI, *map(str, args)]


def run(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    base = tmp_path_factory.mktemp("fault-suite")
    inventory = control.up(base / "lab", clients=CLIENTS)
    lab = Lab(base / "lab", inventory, base / "state")
    try:
        done = run(
            "apply",
            "-i",
            lab.inventory,
            "--state-dir",
            lab.state_dir,
            "--tasks",
            "ca,templates,adfs,lync",
            "--forks",
            FORKS,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield lab
    finally:
        control.down(lab.dir)


def apply_args(lab, hosts: list[str], *extra) -> list:
    return [
        "apply",
        "-i",
        lab.inventory,
        "--state-dir",
        lab.state_dir,
        "--tasks",
        "client",
        "--limit",
        ",".join(hosts),
        "--forks",
        FORKS,
        "--skip-preflight",
        *extra,
    ]


def lab_operations(lab) -> list[dict]:
    path = lab.dir / "operations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def last_run_id(lab) -> int:
    runs = Journal(lab.state_dir, readonly=True).runs()
    return runs[-1]["id"] if runs else 0


def started_rows(lab, after_run: int) -> list:
    path = lab.state_dir / "journal.sqlite"
    if not path.exists():
        return []
    import sqlite3

    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(
            "SELECT host, task FROM results WHERE status = 'started' AND run_id > ?", (after_run,)
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def resume_and_check(lab, hosts: list[str], faulted_run: int, ops_before: int) -> None:
    """The faults are gone: a resumed apply completes the hosts, and the audit and the lab agree."""
    lab.clear_faults()
    time.sleep(0.5)  # requests still on their way to the lab finish there
    changed_in_lab = {o["host"] for o in lab_operations(lab)[ops_before:]}
    resumed = run(*apply_args(lab, hosts, "--resume", "--json"))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert {r["host"] for r in report["results"]} == set(hosts)

    journal = Journal(lab.state_dir, readonly=True)
    runs = journal.runs()
    rows = journal.results(faulted_run)
    unfinished = journal.started_unfinished(faulted_run)
    journal.close()
    assert [r["id"] for r in runs if r["status"] == "running"] == [], "a run stays running"
    assert not unfinished, f"steps of run {faulted_run} sent but never recorded: {unfinished}"
    recorded = {r["host"] for r in rows if r["changed"]}
    assert changed_in_lab <= recorded, (
        f"run {faulted_run} changed {sorted(changed_in_lab - recorded)} in the lab without a journal record"
    )

    issued = lab.snapshot().get("ca_issued", {})
    for host in hosts:
        cards = (lab.get("vsc", host) or {}).get("cards", {})
        certificates = [r for r in issued.values() if r.get("client") == host]
        assert (len(cards), len(certificates)) == (1, 1), (host, cards, certificates)

    verify = run(
        "verify",
        "-i",
        lab.inventory,
        "--state-dir",
        lab.state_dir,
        "--forks",
        FORKS,
        "--limit",
        ",".join(SERVERS + hosts),
    )
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_fault_suite_drops_5xx_a_hung_receive_lost_shells_and_lost_answers(estate):
    lab = estate
    hosts = [
        h for name in ("drop", "http_503", "hang", "lost_shell", "answer_lost", "slow", "healthy") for h in GROUPS[name]
    ]
    for host in GROUPS["drop"]:
        lab.fault(host, drop=True)
    for host in GROUPS["http_503"]:
        lab.fault(host, http_status=503)
    for host in GROUPS["hang"]:
        folder = lab.inventory.parent / "host_vars"
        folder.mkdir(exist_ok=True)
        (folder / f"{host}.yml").write_text(
            "ansible_winrm_operation_timeout_sec: 1\nansible_winrm_read_timeout_sec: 2\n"
        )
        lab.fault(host, hang_receive=True)
    for host in GROUPS["lost_shell"]:
        lab.fault(host, lose_shell_after=3)  # the facts read works; the shell is gone for the apply
    for host in GROUPS["answer_lost"]:
        # Command, Send and Receive of the facts, Send of the apply; its Receive runs the operations
        # in the lab and the connection drops before the answer.
        lab.fault(host, drop_reply_after=4)
    for host in GROUPS["slow"]:
        lab.fault(host, receive_timeouts=3)  # WinRM's OperationTimeout three times: slow, not failed
    ops_before = len(lab_operations(lab))
    done = run(*apply_args(lab, hosts, "--step-timeout", 3, "--json"))
    assert done.returncode == 1, done.stderr[-3000:]
    results = json.loads(done.stdout)["results"]
    by_host: dict[str, list[dict]] = {}
    for r in results:
        by_host.setdefault(r["host"], []).append(r)
    causes = {
        "drop": "host unreachable",
        "http_503": "HTTP 503",
        "hang": "no answer in 9 s",
        "lost_shell": "2150858843",
        "answer_lost": "may have run",
    }
    for name, cause in causes.items():
        for host in GROUPS[name]:
            assert all(r["status"] == "failed" for r in by_host[host]), by_host[host]
            assert any(cause in r["msg"] for r in by_host[host]), (name, by_host[host])
    for host in GROUPS["slow"] + GROUPS["healthy"]:
        assert all(r["status"] == "changed" for r in by_host[host]), by_host[host]
    faulted_run = json.loads(done.stdout)["run_id"]
    resume_and_check(lab, hosts, faulted_run, ops_before)


@pytest.mark.parametrize("how", ["kill_9", "sigterm"])
def test_fault_suite_the_controller_killed_or_terminated_mid_apply(estate, how):
    lab = estate
    hosts = GROUPS[how]
    latency = 0.4
    for host in hosts:
        lab.fault(host, latency_s=latency)
    ops_before = len(lab_operations(lab))
    runs_before = last_run_id(lab)
    proc = subprocess.Popen(
        cli(*apply_args(lab, hosts, "--forks", 3)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: started_rows(lab, runs_before), 60, "a step's operations to be sent")
        time.sleep(1.5 * latency)  # that step's Receive is on its way: the lab runs its operations
        proc.send_signal(signal.SIGKILL if how == "kill_9" else signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if how == "sigterm":
        assert proc.returncode == 143, err
        assert len([line for line in err.splitlines() if line.startswith("lync2fa: interrupted by SIGTERM")]) == 1
    else:
        assert proc.returncode == -signal.SIGKILL
    time.sleep(2 * latency)
    interrupted = last_run_id(lab)
    assert interrupted > runs_before
    journal = Journal(lab.state_dir, readonly=True)
    status = next(r["status"] for r in journal.runs() if r["id"] == interrupted)
    journal.close()
    assert status == "interrupted"
    resume_and_check(lab, hosts, interrupted, ops_before)
