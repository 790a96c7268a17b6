"""What lync2fa created or changed on a host, so that rollback undoes only that.

Records live in the host's registry under ``RECORDS_KEY``: one value per resource, whose data
is JSON ``{"created": bool, "previous": ..., "at": ISO time}``. The first record of a resource
wins, so a later apply never overwrites the original values. Decisions read them as a fact
(``records_fact``) and write them with operations (``record`` / ``forget``), placed *before*
the operation that creates or changes the resource, so an interrupted apply is still undoable.
"""

from __future__ import annotations

import datetime as dt
import json

from .hostops import registry_fact, registry_remove, registry_set

RECORDS_KEY = "HKLM:\\SOFTWARE\\lync2fa\\Created"
FACT = "lync2fa_records"


def records_fact() -> dict:
    return registry_fact(RECORDS_KEY)


def parse(value: dict | None) -> dict[str, dict]:
    """Records by resource id, from the registry fact's value."""
    out = {}
    for name, data in ((value or {}).get("values") or {}).items():
        try:
            record = json.loads(data) if isinstance(data, str) and data.startswith("{") else {"created": True}
        except ValueError:
            record = {"created": True}
        out[name] = {
            "created": bool(record.get("created", True)),
            "previous": record.get("previous"),
            "at": record.get("at"),
        }
    return out


def with_prefix(records: dict[str, dict], prefix: str) -> dict[str, dict]:
    return {k: v for k, v in sorted(records.items()) if k.startswith(prefix)}


def record(records: dict[str, dict], resource_id: str, created: bool, previous=None) -> list[dict]:
    """The operation recording a resource, or none when it is recorded already (first wins)."""
    if resource_id in records:
        return []
    data = {"created": created, "previous": previous, "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
    return [registry_set(RECORDS_KEY, resource_id, json.dumps(data, sort_keys=True, separators=(",", ":")))]


def forget(resource_id: str) -> dict:
    return registry_remove(RECORDS_KEY, resource_id)
