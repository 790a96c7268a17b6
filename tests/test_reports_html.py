"""Run reports: the self-contained HTML page, JSON metadata, SARIF with every finding of verify
(checked against the OASIS schema), JUnit XML; and progress lines when stderr is not a terminal."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lync2fa.meta import now, run_metadata, version
from lync2fa.reports import write_all
from lync2fa.results import Result
from lync2fa.runner import RunReport

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
HOSTILE = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Text, tags and every URL-bearing attribute of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.chunks: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "data", "poster")]

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


EDGE_FROM_POOL = "edge01 configured from pool01 (lync.edge_proxy)"
CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def rendered(html: Path) -> Page:
    """The page as headless Chromium parsed and laid it out (its DOM after rendering)."""
    dom = subprocess.run(
        [*CHROMIUM, "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    return Page(dom.stdout)


def check_self_contained(page: Page) -> None:
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert all(u.startswith("#") for u in page.urls), page.urls  # in-page anchors only
    assert "style" in page.tags


def verify_report(inventory: Path) -> RunReport:
    results = [
        Result("ca01", "ca.authority", duration=0.4),
        Result(
            "ca01",
            "templates.audit",
            failed=True,
            duration=0.2,
            msg="1 ESC finding(s) on templates this CA issues: ESC1:WebServer2. Fix them",
            warnings=[
                "[ESC1] template WebServer2 lets Domain Users enroll ... Fix: build the subject from AD",
                "[ESC9] template Old has no security extension. (accepted in templates_accepted_findings) "
                "Fix: keep it on",
            ],
        ),
        Result(
            "pool01",
            "lync.web_service",
            failed=True,
            before={"UseWindowsAuth": "Enabled"},
            after={"UseWindowsAuth": "None"},
            msg="not in place: UseWindowsAuth",
        ),
        Result(
            "ws0101",
            "client.verify",
            failed=True,
            duration=0.3,
            msg=f"client not ready for two-factor sign-in: the TPMVirtualSmartCardLogon certificate of {HOSTILE} "
            "does not chain to the CA ca01.contoso.com\\Contoso CA; HKLM\\Software\\Lync SavePassword is 1, "
            "expected 0",
        ),
        Result("ws0102", "client.verify", duration=0.3),
    ]
    findings = [
        {
            "rule": "TOKEN_REPLAY",
            "severity": "warning",
            "host": "adfs01",
            "task": "adfs.token_replay",
            "message": "adfs_prevent_token_replays is false: a captured AD FS token can be replayed",
            "fix": "set adfs_prevent_token_replays: true",
        }
    ]
    return RunReport(results, True, 7, "verify", findings=findings)


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inv" / "hosts.yml"
    path.parent.mkdir()
    path.write_text(
        "all:\n  children:\n    ca:\n      hosts:\n        ca01:\n    adfs:\n      hosts:\n"
        "        adfs01:\n          adfs_prevent_token_replays: false\n    lync_pools:\n      hosts:\n"
        "        pool01:\n    clients:\n      hosts:\n        ws0101:\n        ws0102:\n"
    )
    return path


def written(tmp_path, inventory, report=None):
    report = report or verify_report(inventory)
    started = now() - 3
    meta = run_metadata("verify", str(inventory), started, started + 2.5, report.run_id, True)
    return write_all(report, tmp_path / "reports", meta, {"client.verify": "TPM, card, certificate & registry"})


def test_html_report_has_every_tier_host_and_failure_and_is_self_contained(tmp_path, inventory):
    paths = written(tmp_path, inventory)
    html = paths["html"].read_text()
    page = Page(html)
    check_self_contained(page)
    for tier in ("ca", "templates", "lync", "client"):
        assert f"Tier {tier}" in page.text
    for host in ("ca01", "pool01", "ws0101", "ws0102"):
        assert host in page.text
    assert "Verification checklist" in page.text
    assert "does not chain to the CA" in page.text and "UseWindowsAuth" in page.text
    assert "TPM, card, certificate & registry" in page.text  # escaped, shown as text
    assert HOSTILE in page.text and HOSTILE not in html  # host text escaped, never markup
    assert f"{version()} · journal run 7" in page.text
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", page.text)  # ISO times with offset


def test_json_report_carries_metadata(tmp_path, inventory):
    doc = json.loads(written(tmp_path, inventory)["json"].read_text())
    meta = doc["metadata"]
    assert {"version", "inventory", "user", "controller", "started_at", "finished_at", "command"} <= set(meta)
    assert meta["inventory"] == str(inventory) and meta["command"] == "verify"
    assert datetime.fromisoformat(meta["finished_at"]) > datetime.fromisoformat(meta["started_at"])
    assert doc["counts"]["failed"] == 3


def test_sarif_carries_every_finding_of_verify(tmp_path, inventory):
    jsonschema = pytest.importorskip("jsonschema")
    log = json.loads(written(tmp_path, inventory)["sarif"].read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    run = log["runs"][0]
    results = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert {
        ("ESC1", "error"),
        ("ESC9", "note"),
        ("NOT_IN_PLACE", "error"),
        ("CERT_CHAIN", "error"),
        ("CHECK_FAILED", "error"),
        ("TOKEN_REPLAY", "warning"),
    } <= results
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert all(rule["help"]["text"] for rule in rules.values())
    esc1 = next(r for r in run["results"] if r["ruleId"] == "ESC1")
    location = esc1["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("hosts.yml")
    assert location["physicalLocation"]["region"]["startLine"] == 5  # where ca01 is declared
    replay = next(r for r in run["results"] if r["ruleId"] == "TOKEN_REPLAY")
    assert replay["locations"][0]["physicalLocation"]["region"]["startLine"] == 9  # the variable itself
    chain = next(r for r in run["results"] if r["ruleId"] == "CERT_CHAIN")
    assert chain["properties"]["host"] == "ws0101" and "chain" in chain["message"]["text"]


def test_junit_report_parses(tmp_path, inventory):
    path = written(tmp_path, inventory)["junit"]
    suite = ET.parse(path).getroot()
    assert suite.get("tests") == "5" and suite.get("failures") == "3" and suite.get("timestamp")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["command"] == "verify" and props["version"]
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromfile(str(path))
    assert xml.failures == 3 and xml.tests == 5


# --- against the lab -------------------------------------------------------------------------------


def test_apply_and_verify_write_html_beside_json_and_progress_lines(lab, run_cli):
    result = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, "-v")
    lines = [line for line in result.err.splitlines() if re.match(r"^\[\s*\d+/\d+\] ", line)]
    total = int(lines[0].split("/")[1].split("]")[0])
    assert len(lines) == total > 10  # one line per finished step, as it finishes
    assert lines[-1].startswith(f"[{total}/{total}]")
    html_path = Path(re.search(r"report: (\S+report\.html)", result.out).group(1))
    assert html_path.exists() and (html_path.parent / "report.json").exists()
    page = Page(html_path.read_text())
    check_self_contained(page)
    for host in lab.load_inventory().all_hosts():
        assert host in page.text, host
    assert EDGE_FROM_POOL in page.text  # the Edge has no step: the pool server's step configures it
    for tier in ("ca", "templates", "adfs", "lync", "client"):
        assert f"Tier {tier}" in page.text, tier
    verify = run_cli("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--json")
    doc = json.loads(verify.out)
    assert doc["metadata"]["command"] == "verify" and doc["metadata"]["run_id"] == doc["run_id"]
    run_dir = Path(lab.state_dir) / "reports" / f"run-{doc['run_id']}"
    assert "Verification checklist" in Page((run_dir / "report.html").read_text()).text


def test_version(run_cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        from lync2fa import cli

        cli.main(["--version"])
    assert exit_.value.code == 0
    assert re.match(r"lync2fa \d+\.\d+", capsys.readouterr().out)


@pytest.mark.skipif(not shutil.which("chromium"), reason="headless Chromium (Debian's chromium) not installed")
def test_report_renders_in_headless_chromium(tmp_path, inventory):
    html = written(tmp_path, inventory)["html"]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*CHROMIUM, f"--screenshot={shot}", "--window-size=1280,1600", html.resolve().as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    page = rendered(html)
    for tier in ("ca", "templates", "lync", "client"):
        assert f"Tier {tier}" in page.text, tier
    for host in ("ca01", "pool01", "ws0101", "ws0102"):
        assert host in page.text, host
    assert "Verification checklist" in page.text and "does not chain to the CA" in page.text


def _step(task: str, host: str):
    from types import SimpleNamespace

    return SimpleNamespace(task=SimpleNamespace(name=task), host=SimpleNamespace(name=host))


def test_live_display_counts_hosts_done_and_failed_per_tier():
    import io

    from rich.console import Console

    from lync2fa.progress import ProgressDisplay

    steps = [
        _step("ca.authority", "ca01"),
        _step("ca.web_enrollment", "ca01"),
        _step("client.vsc", "ws1"),
        _step("client.vsc", "ws2"),
        _step("client.enrollment", "ws2"),
    ]
    display = ProgressDisplay(len(steps), Console(file=io.StringIO(), force_terminal=True), steps=steps, verbose=1)
    with display:
        display.lync2fa_task_finish(steps[0], Result("ca01", "ca.authority"))
        display.lync2fa_task_finish(steps[2], Result("ws1", "client.vsc", failed=True))
        display.lync2fa_task_finish(steps[3], Result("ws2", "client.vsc"))
        bars = {t.description.split()[0]: t for t in display.progress.tasks}
        assert (bars["ca"].completed, bars["ca"].total) == (0, 1)  # ca01 has a step left
        assert (bars["client"].completed, bars["client"].total) == (1, 2)
        assert "1 failed" in bars["client"].fields["failed"]
        display.lync2fa_task_finish(steps[1], Result("ca01", "ca.web_enrollment"))
        assert bars["ca"].completed == 1


def test_line_printer_shows_operations_with_v():
    import io

    from lync2fa.progress import LinePrinter

    out = io.StringIO()
    printer = LinePrinter(2, verbose=1, check_mode=True, stream=out)
    changed = Result("ca01", "ca.authority", changed=True, duration=1.25)
    changed.operations = [{"operation": "cmdlet Install-AdcsCertificationAuthority", "result": {"ok": True}}]
    printer.lync2fa_task_finish(_step("ca.authority", "ca01"), changed)
    printer.lync2fa_task_finish(_step("client.vsc", "ws1"), Result("ws1", "client.vsc", failed=True, msg="no TPM\nx"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] would change ca.authority on ca01 (1.2 s)"
    assert lines[1].strip().startswith("cmdlet Install-AdcsCertificationAuthority")
    assert lines[2] == "[2/2] failed       client.vsc on ws1 (0.0 s): no TPM"


def test_demo_report_shows_every_tier_and_host(tmp_path):
    """What `make demo` writes: the apply report and the verification report, every tier and host;
    rendered by headless Chromium when it is installed (tools/screenshot_report.sh)."""
    state = tmp_path / "state"
    run = subprocess.run(
        [sys.executable, "-m", "lync2fa.cli", "demo", "--clients", "2", "--dir", tmp_path, "--state-dir", state],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    hosts = ["ca01", "adfs01", "pool01", "dir01", "edge01", "cl0001", "cl0002"]
    reports = (
        (state / "demo-reports" / "report.html", "Apply (demo)"),
        (state / "demo-reports" / "verify" / "report.html", "Verification checklist"),
    )
    for path, title in reports:
        page = Page(path.read_text())
        check_self_contained(page)
        assert title in page.text and "PASSED" in page.text
        for tier in ("ca", "templates", "adfs", "lync", "client"):
            assert f"Tier {tier}" in page.text
        for host in hosts:
            assert host in page.text, host
    assert EDGE_FROM_POOL in Page(reports[0][0].read_text()).text
    if shutil.which("chromium"):
        for path, title in reports:
            page = rendered(path)
            assert title in page.text and "PASSED" in page.text
            for tier in ("ca", "templates", "adfs", "lync", "client"):
                assert f"Tier {tier}" in page.text, (path, tier)
            for host in hosts:
                assert host in page.text, (path, host)
        shot = tmp_path / "report.png"
        subprocess.run(
            [
                "bash",
                str(Path(__file__).parents[1] / "tools" / "screenshot_report.sh"),
                str(state / "demo-reports" / "report.html"),
                str(shot),
            ],
            capture_output=True,
            timeout=180,
            check=False,
        )
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_report_lists_hosts_without_steps_with_the_step_that_configures_them(tmp_path):
    """The Edge has no step of its own: the pool server's step names it. A host of a group no task
    targets is listed as such; one a --limit left out of a targeted group is not listed at all."""
    from lync2fa.html_report import hosts_without_steps, render
    from lync2fa.inventory import Inventory
    from lync2fa.plan import Plan, Step
    from lync2fa.task import Task

    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    lync_pools:\n      hosts:\n        pool01:\n        pool02:\n"
        "    lync_edge:\n      hosts:\n        edge01:\n          lync2fa_fqdn: edge01.contoso.invalid\n"
        "    monitoring:\n      hosts:\n        scom01:\n"
    )
    inventory = Inventory([path])
    edge_proxy = Task(name="lync.edge_proxy", group="lync_pools", facts=lambda p: {}, decide=lambda ctx: None)
    params = {"edge_identities": ["Service:EdgeServer:edge01.contoso.invalid"]}
    plan = Plan(tasks=[edge_proxy], steps=[Step(edge_proxy, inventory.host("pool01"), params, None)])
    report = RunReport([Result("pool01", "lync.edge_proxy", changed=True)], False, 3, plan=plan)
    assert hosts_without_steps(report) == [
        ("edge01", "configured from pool01 (lync.edge_proxy)"),
        ("scom01", "no task of this run targets its group(s): monitoring"),
    ]  # pool02: left out by --limit
    page = Page(render(report, run_metadata("apply", str(path), now(), now(), 3), []))
    assert "steps on 1 host(s); 2 host(s) without steps" in page.text
    assert "edge01 configured from pool01 (lync.edge_proxy)" in page.text


def test_junit_suite_time_is_the_runs_wall_time_not_the_sum_of_overlapping_steps():
    from lync2fa.reports import to_junit
    from lync2fa.results import Result
    from lync2fa.runner import RunReport

    steps = [Result(host=f"cl{i}", task="client.enrollment", duration=10.0) for i in range(5)]
    report = RunReport(results=steps, check_mode=False, elapsed_s=12.5)  # five hosts in parallel
    suite = ET.fromstring(to_junit(report))
    assert float(suite.get("time")) == 12.5
