"""Run reports as JSON, JUnit XML (for CI dashboards) and SARIF (for security findings)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .results import format_diff
from .runner import RunReport


def to_json(report: RunReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str)


def to_junit(report: RunReport) -> str:
    counts = report.counts()
    suite = ET.Element("testsuite", name="lync2fa", tests=str(len(report.results)),
                       failures=str(counts["failed"]), skipped=str(counts["skipped"]))
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=r.task, name=r.host, time=f"{r.duration:.3f}")
        if r.failed:
            ET.SubElement(case, "failure", message=r.msg[:500]).text = r.msg
        elif r.skipped:
            ET.SubElement(case, "skipped", message=r.msg)
        elif r.changed:
            ET.SubElement(case, "system-out").text = "\n".join(format_diff(r.diff))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def to_sarif(report: RunReport) -> str:
    rules = sorted({f["rule"] for f in report.findings})
    results = [{
        "ruleId": f["rule"],
        "level": "error" if f["severity"] == "error" else "warning",
        "message": {"text": f"{f['message']}. Fix: {f['fix']}" if f.get("fix") else f["message"]},
        "locations": [{"logicalLocations": [{"name": f"{f.get('task', '')}@{f.get('host', '')}"}]}],
    } for f in report.findings]
    doc = {"version": "2.1.0",
           "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
           "runs": [{"tool": {"driver": {"name": "lync2fa", "rules": [{"id": r} for r in rules]}},
                     "results": results}]}
    return json.dumps(doc, indent=2)


def write_all(report: RunReport, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "junit": directory / "report.junit.xml",
             "sarif": directory / "report.sarif"}
    paths["json"].write_text(to_json(report))
    paths["junit"].write_text(to_junit(report))
    paths["sarif"].write_text(to_sarif(report))
    return paths
