"""Step durations and progress (issue 10): each step of a host batch gets its own share of the
batch's time (not the whole batch each), a tier's time is its elapsed wall time, and a host's batch
says when it starts and when it applies, before its steps finish."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser

import pytest
from test_runner_unit import CA, CA2, FakeConnection, FakePool, Hooks, make_plan

from lync2fa.lab import control
from lync2fa.lab.faults import FaultBook
from lync2fa.runner import Runner

LATENCY_S = 0.2  # per HTTP request to ca01: its batches take seconds, the other hosts' a fraction
CLI = "import sys\nfrom lync2fa import cli\nsys.exit(cli.main(sys.argv[1:]))"


# -- the split, without a lab ---------------------------------------------------------------------
class TimedConnection(FakeConnection):
    """Applies as the frame does, taking ``HOST_MS`` per group on the host (as it reports in
    ``elapsed_ms``) plus ``TRANSPORT_S`` for the request itself."""

    HOST_MS = {"ca.a": 300, "ca.b": 20}
    TRANSPORT_S = 0.1

    def request(self, request, secrets=None, deadline_s=None, idempotent=False):
        answer = super().request(request, secrets, deadline_s, idempotent)
        if request["kind"] == "apply":
            time.sleep(self.TRANSPORT_S + sum(self.HOST_MS.values()) / 1000)
            for group in answer["groups"]:
                group["elapsed_ms"] = self.HOST_MS[group["id"]]
        return answer


class TimedPool(FakePool):
    def get(self, settings):
        return self.open.setdefault(settings.host, TimedConnection(self, settings.host))


def test_each_step_of_a_batch_gets_its_group_time_on_the_host_and_a_share_of_the_rest():
    started = time.monotonic()
    report = Runner(Hooks(), pool=TimedPool()).run(make_plan([CA, CA2], {"ca": ["ca01"]}), False)
    elapsed = time.monotonic() - started
    a, b = (next(r for r in report.results if r.task == name) for name in ("ca.a", "ca.b"))
    assert a.changed and b.changed
    assert a.duration - b.duration == pytest.approx(0.28, abs=0.03)  # 300 ms vs 20 ms on the host
    assert 0.42 <= a.duration + b.duration <= elapsed  # the batch's time, counted once
    start, end = report.spans[("ca.a", "ca01")]
    assert report.spans[("ca.b", "ca01")] == (start, end)  # one batch: one span
    assert end - start == pytest.approx(a.duration + b.duration, abs=0.02)


# -- a lab apply with one slow host ---------------------------------------------------------------
class Tables(HTMLParser):
    """Every table of a page as rows of cell texts."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) / (1000 if unit == "ms" else 1)


@pytest.fixture(scope="module")
def slow_ca_apply(tmp_path_factory):
    """One apply of a fresh lab (one client) where every request to ca01 waits LATENCY_S, stderr a
    pipe (not a terminal) read line by line as it comes: (timed stderr lines, JSON report, HTML)."""
    base = tmp_path_factory.mktemp("timing")
    inventory = control.up(base / "lab", clients=1)
    try:
        store = control.open_store(base / "lab")
        try:
            FaultBook(store).set("ca01", latency_s=LATENCY_S)
        finally:
            store.close()
        state = base / "state"
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "apply", "-i", str(inventory), "--state-dir", str(state)]
            + ["--skip-preflight", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), ln.rstrip()) for ln in proc.stderr))
        reader.start()
        watchdog = threading.Timer(300, proc.kill)
        watchdog.start()
        out = proc.stdout.read()  # not communicate(): it would read stderr too
        proc.wait()
        watchdog.cancel()
        reader.join(10)
        assert proc.returncode == 0, out[-2000:] + "\n".join(line for _, line in lines)
        doc = json.loads(out)
        html = (state / "reports" / f"run-{doc['run_id']}" / "report.html").read_text()
        yield lines, doc, html
    finally:
        control.down(base / "lab")


def test_a_slow_host_batch_announces_its_start_and_apply_before_its_steps_finish(slow_ca_apply):
    lines, _, _ = slow_ca_apply
    started = next(t for t, line in lines if line.startswith("ca01: started ca.authority"))
    applying = next(t for t, line in lines if line.startswith("ca01: applying ca.authority"))
    finished = next(t for t, line in lines if line.startswith("[") and line.endswith(")") and " on ca01 (" in line)
    # Read as they came: each announcement is at least one slow request ahead of what follows it.
    assert started + LATENCY_S <= applying and applying + LATENCY_S <= finished
    assert "steps)" in next(line for _, line in lines if line.startswith("ca01: started"))


def test_step_durations_add_up_to_the_run_not_a_multiple_of_it(slow_ca_apply):
    _, doc, _ = slow_ca_apply
    run_s = doc["metadata"]["duration_s"]
    ca01 = [r["duration"] for r in doc["results"] if r["host"] == "ca01"]
    assert len(ca01) >= 4 and sum(ca01) > 1  # its batches were slow
    assert sum(ca01) <= run_s  # one host's steps run one batch after the other: at most the run


def test_html_tier_time_is_elapsed_wall_time_within_the_run(slow_ca_apply):
    _, doc, html = slow_ca_apply
    run_s = doc["metadata"]["duration_s"]
    tiers = next(t for t in Tables(html).tables if t and "Tier" in t[0])
    column = tiers[0].index("Elapsed")
    elapsed = {row[0]: seconds(row[column]) for row in tiers[1:]}
    assert {"ca", "templates", "adfs", "lync", "client"} <= set(elapsed)
    assert all(0 < value <= run_s for value in elapsed.values()), (elapsed, run_s)
    assert elapsed["ca"] > 1  # ca01's slow batches
