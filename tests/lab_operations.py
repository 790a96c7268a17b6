"""What a lab host executed compared with what lync2fa decided (issue 8).

The lab logs every operation a host executed (``operations.jsonl``); a CLI ``--json`` report
carries each decided operation in full (``detail``). Per host and in order they must be equal;
the only legitimate difference is the name of a secret placeholder: a request names it
``<task>/<name>`` (steps sent together share one secrets document).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from lync2fa.execute import qualified_secrets
from lync2fa.records import RECORDS_KEY


def decided(report: dict) -> dict[str, list[dict]]:
    """Per host, in order, the operations a CLI ``--json`` report says were sent to it: every
    decided operation of each step that was not skipped (none in check mode), its secret
    placeholders named as the request names them."""
    if report["check_mode"]:
        return {}
    out: dict[str, list[dict]] = {}
    for result in report["results"]:
        if result["skipped"] or not result["operations"]:
            continue
        step = SimpleNamespace(task=SimpleNamespace(name=result["task"]))
        operations, _ = qualified_secrets(step, [op["detail"] for op in result["operations"]], {})
        out.setdefault(result["host"], []).extend(operations)
    return out


def by_task(report: dict) -> dict[str, list[dict]]:
    """The decided operations of a report, by task (every host)."""
    out: dict[str, list[dict]] = {}
    for result in report["results"]:
        out.setdefault(result["task"], []).extend(op["detail"] for op in result["operations"])
    return out


def timeless(operations: list[dict]) -> list[dict]:
    """Operations without the time a rollback record was decided (``at``): two decisions of the
    same change, made at different times, write the same record otherwise."""

    def strip(operation: dict) -> dict:
        if operation.get("op") != "registry_set" or operation.get("path") != RECORDS_KEY:
            return operation
        record = json.loads(operation["value"])
        return {**operation, "value": {k: v for k, v in record.items() if k != "at"}}

    return [strip(op) for op in operations]
