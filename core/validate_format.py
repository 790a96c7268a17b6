"""The outputs of ``lync2fa validate``: human (grouped by severity), JSON, JUnit XML and SARIF."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from datetime import UTC

from rich.console import Console
from rich.markup import escape

from .inventory_map import relative
from .meta import iso, run_metadata, version
from .sarif import SEVERITIES, Issue, at_or_above, dumps, sarif_log
from .validate import Validation

TITLES = {"error": "[red]errors[/]", "warning": "[yellow]warnings[/]", "note": "[cyan]notes[/]"}


def _where(issue: Issue) -> str:
    if not issue.file:
        return ""
    rel = relative(issue.file)
    return f"{rel}:{issue.line}:{issue.col}" if issue.line else rel


def _hosts(issue: Issue) -> str:
    hosts = issue.properties.get("hosts") or []
    if not hosts:
        return ""
    shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    return f" (host{'s' if len(hosts) > 1 else ''}: {shown})"


def print_human(result: Validation, console: Console, fail_on: str = "error") -> None:
    for severity in SEVERITIES:
        issues = [i for i in result.issues if i.severity == severity]
        if not issues:
            continue
        console.print(f"{TITLES[severity]} ({len(issues)})", highlight=False)
        for i in issues:
            key = f"  {escape(i.key)}" if i.key else ""
            console.print(
                f"  {escape(_where(i))}{key}  [bold]\\[{escape(i.rule)}][/] {escape(i.message)}{escape(_hosts(i))}",
                highlight=False,
            )
            if i.fix:
                console.print(f"      fix: {escape(i.fix)}", highlight=False)
    c = result.counts()
    verdict = "[red]FAILED[/]" if result.failing(fail_on) else "[green]ok[/]"
    console.print(
        f"validate: {verdict}: {c['error']} error(s), {c['warning']} warning(s), {c['note']} note(s) in "
        f"{len(result.files)} file(s), {result.hosts} host(s), {result.tasks} task(s) "
        f"(fails on {fail_on} and above)",
        highlight=False,
    )


def metadata(result: Validation) -> dict:
    meta = run_metadata("validate", result.sources, result.started, result.finished)
    meta.pop("run_id"), meta.pop("check_mode")
    return meta


def to_json(result: Validation, fail_on: str = "error") -> str:
    doc = {
        "metadata": metadata(result),
        "fail_on": fail_on,
        "ok": not result.failing(fail_on),
        "counts": result.counts(),
        "files": [relative(f) for f in result.files],
        "hosts": result.hosts,
        "findings": [{**i.as_dict(), "file": relative(i.file) if i.file else ""} for i in result.issues],
    }
    return json.dumps(doc, indent=2, sort_keys=True)


def to_junit(result: Validation, fail_on: str = "error") -> str:
    failing = result.failing(fail_on)
    elapsed = f"{max(0.0, result.finished - result.started):.3f}"
    suites = ET.Element(
        "testsuites",
        name="lync2fa validate",
        tests="0",
        failures=str(len(failing)),
        errors="0",
        time=elapsed,
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="lync2fa validate",
        errors="0",
        skipped="0",
        failures=str(len(failing)),
        timestamp=iso(result.started) or "",
        hostname=socket.gethostname(),
        time=elapsed,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("version", version()), ("inventory", ",".join(result.sources)), ("fail_on", fail_on)):
        ET.SubElement(props, "property", name=name, value=value)
    cases = 0
    with_issues = {i.file for i in result.issues}
    for file in result.files:
        if file not in with_issues:
            ET.SubElement(suite, "testcase", classname=relative(file), name="valid", time="0")
            cases += 1
    for i in result.issues:
        name = f"[{i.rule}] {i.key or i.host or 'inventory'}" + (f" (line {i.line})" if i.line else "")
        case = ET.SubElement(
            suite, "testcase", classname=relative(i.file) if i.file else "lync2fa", name=name, time="0"
        )
        text = f"{_where(i)}: {i.message}{_hosts(i)}" + (f"\nfix: {i.fix}" if i.fix else "")
        if at_or_above(i.severity, fail_on):
            ET.SubElement(case, "failure", type=i.severity, message=i.message[:500]).text = text
        else:
            ET.SubElement(case, "system-out").text = f"{i.severity}: {text}"
        cases += 1
    suite.set("tests", str(cases))
    suites.set("tests", str(cases))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def to_sarif(result: Validation) -> str:
    invocation = {
        "executionSuccessful": True,
        "startTimeUtc": _utc(result.started),
        "endTimeUtc": _utc(result.finished),
        "commandLine": "lync2fa validate " + " ".join(f"-i {s}" for s in result.sources),
    }
    return dumps(sarif_log(result.issues, version(), invocation, automation_id="lync2fa/validate/"))


def _utc(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unusable(message: str, issues: list[Issue], console: Console) -> None:
    console.print(f"lync2fa: error: {escape(message)}", highlight=False)
    for i in issues:
        console.print(f"  {escape(_where(i))}  [bold]\\[{escape(i.rule)}][/] {escape(i.message)}", highlight=False)
