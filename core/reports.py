"""Run reports: JSON (with the run's metadata), JUnit XML (CI dashboards), SARIF 2.1.0 (every finding:
the plan's security gate, verify's ESC audit and certificate chain checks, failed steps) and a
self-contained HTML page for people (``html_report``)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from .meta import version
from .results import format_diff
from .runner import RunReport
from .sarif import Issue, dumps, sarif_log

BRACKETED = re.compile(r"^\[([A-Z][A-Z0-9_]*)\]\s*(.*)$", re.DOTALL)


def to_json(report: RunReport, meta: dict | None = None) -> str:
    doc = report.as_dict()
    if meta:
        doc["metadata"] = meta
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


def to_junit(report: RunReport, meta: dict | None = None) -> str:
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name=f"lync2fa {report.command}",
        tests=str(len(report.results)),
        failures=str(counts["failed"]),
        errors="0",
        skipped=str(counts["skipped"]),
        # the run's wall time (steps of different hosts overlap: their sum is busy time, not duration)
        time=f"{(report.elapsed_s or sum(r.duration for r in report.results)):.3f}",
    )
    if meta:
        if meta.get("started_at"):
            suite.set("timestamp", meta["started_at"])
        if meta.get("controller"):
            suite.set("hostname", meta["controller"])
        props = ET.SubElement(suite, "properties")
        for key in ("version", "command", "inventory", "user", "run_id", "started_at", "finished_at"):
            if meta.get(key) is not None:
                ET.SubElement(props, "property", name=key, value=str(meta[key]))
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=r.task, name=r.host, time=f"{r.duration:.3f}")
        if r.failed:
            ET.SubElement(case, "failure", message=r.msg[:500]).text = r.msg
        elif r.skipped:
            ET.SubElement(case, "skipped", message=r.msg)
        elif r.changed:
            ET.SubElement(case, "system-out").text = "\n".join(format_diff(r.diff))
        if r.warnings and not r.failed:
            ET.SubElement(case, "system-err").text = "\n".join(str(w) for w in r.warnings)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def issues(report: RunReport) -> list[Issue]:
    """Every finding of a run: the plan's gated findings, findings a step reported as ``[RULE] ...``
    warnings (verify's ESC audit), each item of a failed check (certificate chains), failed steps."""
    out: list[Issue] = []
    for f in report.findings:
        out.append(
            Issue(
                f["rule"],
                "error" if f.get("severity") == "error" else "warning",
                f["message"],
                host=f.get("host", ""),
                task=f.get("task", ""),
                fix=f.get("fix", ""),
                kind="plan",
            )
        )
    for r in report.results:
        reported = False
        for warning in r.warnings:
            match = BRACKETED.match(str(warning))
            if not match:
                out.append(Issue("TASK_WARNING", "warning", str(warning), host=r.host, task=r.task, kind="run"))
                continue
            rule, text = match.groups()
            message, _, fix = text.partition(" Fix: ")
            accepted = "(accepted in " in message
            severity = "error" if r.failed and not accepted and rule in r.msg else ("note" if accepted else "warning")
            reported |= severity == "error"
            out.append(Issue(rule, severity, message.strip(), host=r.host, task=r.task, fix=fix.strip(), kind="run"))
        if not r.failed or reported:
            continue
        if r.msg.startswith("not in place"):
            out.append(
                Issue("NOT_IN_PLACE", "error", r.msg, host=r.host, task=r.task, kind="run", fix="run lync2fa apply")
            )
        elif r.task.endswith(".verify") and ": " in r.msg:
            head, _, items = r.msg.partition(": ")
            for item in items.split("; "):
                rule = "CERT_CHAIN" if re.search(r"certificate|chain|card", item, re.IGNORECASE) else "CHECK_FAILED"
                out.append(Issue(rule, "error", f"{head}: {item}", host=r.host, task=r.task, kind="run"))
        else:
            out.append(
                Issue(
                    "CHECK_FAILED" if report.command == "verify" else "TASK_FAILED",
                    "error",
                    r.msg or "failed",
                    host=r.host,
                    task=r.task,
                    kind="run",
                )
            )
    return out


def locate(found: list[Issue], inventory: str | list[str] | None) -> list[Issue]:
    """Point each issue at the inventory: the variable its message names (for that host) or the
    line that declares its host; unreadable inventories leave the issues without a file."""
    if not inventory:
        return found
    from .inventory_map import build

    sources = [s for s in (inventory.split(",") if isinstance(inventory, str) else inventory) if Path(s).exists()]
    try:
        imap = build(sources) if sources else None
    except Exception:  # a report must never fail because its inventory moved
        imap = None
    if imap is None:
        return found
    for issue in found:
        where = None
        for word in re.findall(r"[a-z][a-z0-9_]*[a-z0-9]", f"{issue.message} {issue.fix}"):
            if "_" not in word:
                continue
            defs = imap.definitions(word)
            mine = [d for d in defs if d.scope == "host" and d.name == issue.host]
            where = mine[0] if mine else defs[0] if defs else None
            if where:
                issue.key = word
                break
        where = where or imap.locate_host(issue.host) or None
        if where is None and imap.files:
            issue.file, issue.line, issue.col = imap.files[0], 1, 1
        elif where is not None:
            issue.file, issue.line, issue.col = where.file, where.line, where.col
            issue.key = issue.key or where.key
    return found


def to_sarif(report: RunReport, meta: dict | None = None) -> str:
    meta = meta or {}
    found = locate(issues(report), meta.get("inventory"))
    invocation = {"executionSuccessful": report.ok, "commandLine": f"lync2fa {report.command}"}
    for key, field in (("started_at", "startTimeUtc"), ("finished_at", "endTimeUtc")):
        if meta.get(key):
            invocation[field] = _utc(meta[key])
    log = sarif_log(found, meta.get("version") or version(), invocation, automation_id=f"lync2fa/{report.command}/")
    return dumps(log)


def _utc(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_all(
    report: RunReport, directory: Path, meta: dict | None = None, descriptions: dict[str, str] | None = None
) -> dict[str, Path]:
    """report.json, report.junit.xml, report.sarif and report.html in ``directory``."""
    from .html_report import render

    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "report.json",
        "junit": directory / "report.junit.xml",
        "sarif": directory / "report.sarif",
        "html": directory / "report.html",
    }
    paths["json"].write_text(to_json(report, meta))
    paths["junit"].write_text(to_junit(report, meta))
    paths["sarif"].write_text(to_sarif(report, meta))
    paths["html"].write_text(render(report, meta or {}, issues(report), descriptions))
    return paths
