"""Issue 12 items 12, 13, 14 and 17 against the lab: a hung host, signals, ``kill -9`` and resume,
per-host locking. The CLI runs in a subprocess (signals and ``kill -9`` need one); everything stays
on 127.0.0.1 (the lab's endpoints)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lync2fa import api, hostscript
from lync2fa.connection import ConnectionSettings
from lync2fa.hostops import cmdlet_fact
from lync2fa.journal import Journal
from lync2fa.transport import WinRMConnection

CLI = "import sys\nfrom lync2fa import cli\nsys.exit(cli.main(sys.argv[1:]))"
SERVER_TIERS = "ca,templates,adfs,lync"


def lync2fa(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def apply_args(lab, *extra) -> list:
    return ["apply", "-i", lab.inventory, "--state-dir", lab.state_dir, *extra]


def servers_applied(lab) -> None:
    done = run(*apply_args(lab, "--tasks", SERVER_TIERS, "--forks", 8, "--skip-preflight"))
    assert done.returncode == 0, done.stdout + done.stderr


def host_vars(lab, host: str, **values) -> None:
    folder = lab.inventory.parent / "host_vars"
    folder.mkdir(exist_ok=True)
    (folder / f"{host}.yml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))


def journal_rows(state_dir: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the journal while another process writes it (WAL: readers never block)."""
    path = state_dir / "journal.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        db.close()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def lab_operations(lab) -> list[dict]:
    path = lab.dir / "operations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cards_and_certificates(lab, clients: list[str]) -> dict[str, tuple[int, int]]:
    """Per client: the lab's virtual smart cards and the CA's certificates issued for it."""
    issued = lab.snapshot().get("ca_issued", {})
    return {
        c: (
            len((lab.get("vsc", c) or {}).get("cards", {})),
            sum(1 for row in issued.values() if row.get("client") == c),
        )
        for c in clients
    }


def journal_json(lab) -> dict:
    done = run("journal", "--state-dir", lab.state_dir, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- 12. a hung host: "no answer in N s", the others finish ------------------------------------------
def test_issue12_item12_a_hung_host_fails_with_no_answer_and_the_others_finish(make_lab):
    lab = make_lab(clients=3)
    servers_applied(lab)
    host_vars(lab, "cl0001", ansible_winrm_operation_timeout_sec=1, ansible_winrm_read_timeout_sec=2)
    lab.fault("cl0001", hang_receive=True)
    started = time.monotonic()
    done = run(*apply_args(lab, "--tasks", "client", "--step-timeout", 2, "--skip-preflight", "--json"), timeout=90)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)["results"]
    hung = [r for r in results if r["host"] == "cl0001"]
    assert hung and all(r["status"] == "failed" and "no answer in 6 s" in r["msg"] for r in hung), hung
    others = [r for r in results if r["host"] != "cl0001"]
    assert len(others) == 6 and all(r["status"] == "changed" for r in others), others
    assert elapsed < 45
    assert not [op for op in lab_operations(lab) if op["host"] == "cl0001"]  # nothing ran there


def test_issue12_item12_a_read_timeout_is_no_answer_and_is_never_retried(make_lab):
    """The lab holds every request to cl0001 longer than the client's read timeout."""
    lab = make_lab(clients=2)
    servers_applied(lab)
    host_vars(lab, "cl0001", ansible_winrm_operation_timeout_sec=1, ansible_winrm_read_timeout_sec=2)
    lab.fault("cl0001", latency_s=5.0)
    done = run(*apply_args(lab, "--tasks", "client", "--skip-preflight", "--json"), timeout=90)
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)["results"]
    hung = [r for r in results if r["host"] == "cl0001"]
    assert hung and all("no answer in 2 s" in r["msg"] and "attempts" not in r["msg"] for r in hung), hung
    assert all(r["duration"] < 5.5 for r in hung), hung  # one read timeout of 2 s, not three
    assert all(r["status"] == "changed" for r in results if r["host"] == "cl0002")


def test_issue12_item12_preflight_gives_up_on_a_hung_host(make_lab):
    lab = make_lab(clients=2)
    host_vars(lab, "cl0001", ansible_winrm_operation_timeout_sec=1, ansible_winrm_read_timeout_sec=2)
    lab.fault("cl0001", hang_receive=True)
    done = run(*apply_args(lab, "--tasks", "client", "--step-timeout", 1), timeout=12)
    assert done.returncode == 1
    assert "no answer in" in done.stdout + done.stderr


# -- 13. SIGINT / SIGTERM: nothing new starts, in-flight steps finish, journaled interrupted --------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_issue12_item13_a_signal_mid_apply_interrupts_cleanly(make_lab, signum):
    lab = make_lab(clients=6)
    servers_applied(lab)
    runs_before = len(journal_json(lab)["runs"])
    clients = [f"cl{i:04d}" for i in range(1, 7)]
    for client in clients:
        lab.fault(client, latency_s=0.15)
    proc = lync2fa(*apply_args(lab, "--tasks", "client", "--forks", 2, "--skip-preflight"))
    try:
        wait_for(
            lambda: journal_rows(
                lab.state_dir, "SELECT 1 FROM results WHERE status = 'started' AND run_id > ?", (runs_before,)
            ),
            60,
            "a step's operations to be sent",
        )
        signalled = time.time()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    summary = [line for line in err.splitlines() if line.startswith("lync2fa: interrupted")]
    assert len(summary) == 1 and summary[0].startswith(f"lync2fa: interrupted by {name}: "), err
    assert "Traceback" not in err
    run_info = journal_json(lab)["runs"][-1]
    assert run_info["status"] == "interrupted"
    rows = journal_rows(
        lab.state_dir,
        "SELECT host, task, status, finished_at, msg FROM results WHERE run_id = ? ORDER BY rowid",
        (run_info["id"],),
    )
    started = [r for r in rows if r[2] == "started"]
    # A host not begun needs several requests of 0.15 s each before it could send operations.
    assert started and max(r[3] for r in started) <= signalled + 0.3, "operations were sent after the signal"
    finished = {(r[0], r[1]) for r in rows if r[2] != "started"}
    assert {(r[0], r[1]) for r in started} <= finished, "a step in flight was not let finish"
    not_started = {r[0] for r in rows if r[2] == "skipped" and "interrupted" in r[4]}
    assert not_started, "every host was worked on: the signal came too late to show anything"
    requests = [json.loads(line) for line in (lab.dir / "requests.jsonl").read_text().splitlines()]
    applied_hosts = {r["host"] for r in requests if r["kind"] == "apply"}
    assert not (applied_hosts & {h for h in not_started if not any(r[0] == h and r[2] == "started" for r in rows)})


# -- 13/14. kill -9 mid-apply: no run stays running; --resume re-plans and completes the audit -------
def test_issue12_item14_kill_9_mid_apply_then_resume_records_what_the_killed_run_changed(make_lab):
    lab = make_lab(clients=4)
    servers_applied(lab)
    clients = [f"cl{i:04d}" for i in range(1, 5)]
    runs_before = len(journal_json(lab)["runs"])
    latency = 1.0
    for client in clients:
        lab.fault(client, latency_s=latency)
    baseline = len(lab_operations(lab))
    proc = lync2fa(*apply_args(lab, "--tasks", "client", "--forks", 4, "--skip-preflight"))
    try:
        first = wait_for(
            lambda: journal_rows(
                lab.state_dir, "SELECT host FROM results WHERE status = 'started' AND run_id > ?", (runs_before,)
            ),
            60,
            "a step's operations to be sent",
        )
        # The apply's Send, then its Receive (which runs the operations in the lab) are on their way.
        time.sleep(1.5 * latency)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    in_flight_host = first[0][0]
    try:
        wait_for(
            lambda: any(o["host"] == in_flight_host for o in lab_operations(lab)[baseline:]),
            10,
            "the lab to run the in-flight operations",
        )
    except AssertionError:  # a loaded machine: the Receive had not left yet (checked below too)
        pass
    time.sleep(2 * latency)  # other requests already on their way finish in the lab
    changed_hosts = {o["host"] for o in lab_operations(lab)[baseline:]}
    lab.clear_faults()

    runs = journal_json(lab)["runs"]
    killed = runs[-1]["id"]
    assert [r["status"] for r in runs if r["status"] == "running"] == []
    assert runs[-1]["status"] == "interrupted"
    journal = Journal(lab.state_dir, readonly=True)
    in_flight = journal.started_unfinished(killed)
    journal.close()
    assert in_flight, "the kill came when no step was in flight"

    resumed = run(*apply_args(lab, "--tasks", "client", "--resume", "--skip-preflight", "--json"))
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    for task, host in in_flight:
        result = next(r for r in report["results"] if (r["task"], r["host"]) == (task, host))
        assert "(resumed)" not in result["msg"], result  # re-planned, not taken as done
    journal = Journal(lab.state_dir, readonly=True)
    killed_rows = journal.results(killed)
    assert not journal.started_unfinished(killed)
    journal.close()
    recorded = {r["host"] for r in killed_rows if r["changed"]}
    assert changed_hosts <= recorded, f"changes of the killed run missing from its journal: {changed_hosts - recorded}"
    for task, host in in_flight:
        settled = [r for r in killed_rows if (r["task"], r["host"]) == (task, host) and r["status"] != "started"]
        expected = "before it was interrupted" if host in changed_hosts else "completed by run"
        assert settled and expected in settled[-1]["msg"], settled
    assert cards_and_certificates(lab, clients) == {c: (1, 1) for c in clients}
    verify = run("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--forks", 8)
    assert verify.returncode == 0, verify.stdout[-3000:]


# -- 17. per-host locking in the lab -----------------------------------------------------------------
def _concurrent_fact_reads(lab, hosts: list[str]) -> list[float]:
    """Each on its own connection, at once: a fact read that imports TrustedPlatformModule, which
    the real-estate cost profile makes take 0.3 s inside the host. Seconds each took."""
    inventory = api.load_inventory(lab.inventory)
    by_name = {h.name: h for h in inventory.hosts_in("clients", None)}
    connections = [WinRMConnection(ConnectionSettings.from_host(by_name[h])) for h in hosts]
    warm = hostscript.facts_request({"x": cmdlet_fact("Get-Date")})
    for c in connections:  # shells and processes started (paid) before timing
        c.request(warm, idempotent=True)
    query = hostscript.facts_request({"tpm": cmdlet_fact("Get-Tpm", module="TrustedPlatformModule")})
    took: list[float] = []
    barrier = threading.Barrier(len(connections))

    def one(conn):
        barrier.wait()
        start = time.monotonic()
        conn.request(query, idempotent=True)
        took.append(time.monotonic() - start)

    threads = [threading.Thread(target=one, args=(c,)) for c in connections]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in connections:
        c.close()
    return sorted(took)


@pytest.fixture
def costly_lab(make_lab):
    lab = make_lab(clients=4)
    lab.put("lab_setting", "profile", "real-estate")
    return lab


def test_issue12_item17_one_hosts_requests_are_serialised(costly_lab):
    took = _concurrent_fact_reads(costly_lab, ["cl0001"] * 3)
    assert took[-1] >= 3 * 0.3 - 0.05, took


def test_issue12_item17_different_hosts_run_concurrently_in_the_lab(costly_lab):
    took = _concurrent_fact_reads(costly_lab, ["cl0001", "cl0002", "cl0003", "cl0004"])
    assert took[-1] < 2 * 0.3 + 0.25, took  # serialised: 4 x 0.3 s


def test_issue12_item13_sigint_during_preflight_is_a_one_line_summary(make_lab):
    lab = make_lab(clients=2)
    for client in ("cl0001", "cl0002"):
        lab.fault(client, latency_s=1.0)
    proc = lync2fa(*apply_args(lab, "--tasks", "client"))
    try:
        time.sleep(2.0)  # preflight is reading the clients' facts
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Traceback" not in err
    assert proc.returncode == 130


def test_issue12_item14_a_step_whose_answer_was_lost_is_journaled_as_the_change_it_made(make_lab):
    """The host ran the apply and the connection dropped before its answer: the run records the
    steps failed ("may have run"); the resumed run finds the change in place and the failed run's
    journal then says it made the change."""
    lab = make_lab(clients=2)
    servers_applied(lab)
    # Per shell: Command, Send and Receive of the facts, Send of the apply; its Receive runs the
    # operations and the answer is lost.
    lab.fault("cl0001", drop_reply_after=4)
    done = run(*apply_args(lab, "--tasks", "client", "--skip-preflight", "--json"))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    lost = [r for r in report["results"] if r["host"] == "cl0001"]
    assert lost and all(r["status"] == "failed" and "may have run" in r["msg"] for r in lost), lost
    assert {op["host"] for op in lab_operations(lab)} >= {"cl0001"}  # the lab did run them
    lab.clear_faults()
    resumed = run(*apply_args(lab, "--tasks", "client", "--skip-preflight", "--resume", "--json"))
    assert resumed.returncode == 0, resumed.stderr
    assert all(r["status"] == "ok" for r in json.loads(resumed.stdout)["results"] if r["host"] == "cl0001")
    journal = Journal(lab.state_dir, readonly=True)
    rows = [r for r in journal.results(report["run_id"]) if r["host"] == "cl0001"]
    journal.close()
    for task in {r["task"] for r in lost}:
        last = [r for r in rows if r["task"] == task][-1]
        assert last["changed"] == 1 and "recorded as failed" in last["msg"], rows
    assert cards_and_certificates(lab, ["cl0001", "cl0002"]) == {"cl0001": (1, 1), "cl0002": (1, 1)}


def test_issue12_item14_a_resumed_run_killed_in_turn_leaves_no_step_unsettled(make_lab):
    """Run 1 killed with steps in flight; its resume (run 2) killed in turn before it got to them (or
    after sending one again); run 3 resumes run 2 and settles run 1's steps as well, each on the run
    that made the change."""
    lab = make_lab(clients=2)
    servers_applied(lab)
    done = run(*apply_args(lab, "--tasks", "client", "--skip-preflight"))
    assert done.returncode == 0, done.stderr  # every change in place (made "by" the killed runs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal = Journal(lab.state_dir)
    first = journal.start_run("apply", str(lab.inventory), False)
    journal.record_started(first, "cl0001", "client.virtual_smartcard")
    journal.record_started(first, "cl0002", "client.virtual_smartcard")
    second = journal.start_run("apply", str(lab.inventory), False, resumed_from=first)
    journal.record_started(second, "cl0002", "client.virtual_smartcard")
    journal._db.execute("UPDATE runs SET pid = ? WHERE id IN (?, ?)", (dead.pid, first, second))
    journal._db.commit()
    journal.close()
    resumed = run(*apply_args(lab, "--tasks", "client", "--skip-preflight", "--resume", "--json"))
    assert resumed.returncode == 0, resumed.stderr
    journal = Journal(lab.state_dir, readonly=True)
    assert not journal.started_unfinished(first) and not journal.started_unfinished(second)
    last = {(run_id, r["host"]): r for run_id in (first, second) for r in journal.results(run_id)}
    journal.close()
    assert last[(first, "cl0001")]["changed"] == 1
    assert "changed by this run before it was interrupted" in last[(first, "cl0001")]["msg"]
    assert last[(second, "cl0002")]["changed"] == 1
    assert last[(first, "cl0002")]["changed"] == 0
    assert f"run {second} sent it again" in last[(first, "cl0002")]["msg"]
