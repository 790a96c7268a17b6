"""`lync2fa rollback --tier lync,adfs` returns the lab estate to its state before apply."""

from __future__ import annotations

import json
import sqlite3

from test_adfs_lab import run

from lync2fa.records import RECORDS_KEY

# Lab bookkeeping, not Windows configuration: faults, and when the CA last reloaded its template cache.
UNRELATED = ("lab_fault", "adcs_template_cache")


def hosts_with_records(snapshot: dict) -> set[str]:
    """Hosts holding rollback records (values under HKLM:\\SOFTWARE\\lync2fa\\Created)."""
    suffix = "|" + RECORDS_KEY.lower()
    hosts = {
        key.split("|", 1)[0]
        for key, data in snapshot.get("registry", {}).items()
        if key.endswith(suffix) and data.get("values")
    }
    return hosts | {key.split("/", 1)[0] for key in snapshot.get("created_marker", {})}  # tiers not yet ported


def _without_time(value):
    try:
        record = json.loads(value)
    except (TypeError, ValueError):
        return value
    return {k: v for k, v in record.items() if k != "at"} if isinstance(record, dict) else record


def estate(lab) -> dict:
    """The lab's state as compared here: rollback records and AD objects without the time they were
    written, and no empty registry keys (the records key stays, empty, once rollback forgot every record)."""
    snapshot = lab.snapshot(UNRELATED)
    registry = {}
    for key, data in snapshot.get("registry", {}).items():
        if not data.get("values"):
            continue
        if key.endswith("|" + RECORDS_KEY.lower()):
            data = {
                **data,
                "values": {
                    name: {**entry, "value": _without_time(entry["value"])} for name, entry in data["values"].items()
                },
            }
        registry[key] = data
    # AD stamps each object with when it was created: a re-created object is the same object.
    ad = {
        dn: {**obj, "attributes": {k: v for k, v in obj["attributes"].items() if k != "whenCreated"}}
        for dn, obj in snapshot.get("ad", {}).items()
    }
    return {**snapshot, "registry": registry, "ad": ad}


def test_apply_then_rollback_restores_the_estate_exactly(lab, run_cli):
    original = estate(lab)
    assert run(run_cli, "apply", lab, tasks="adfs,lync").code == 0
    applied = estate(lab)
    assert applied != original
    assert hosts_with_records(applied) == {"adfs01", "pool01", "dir01"}

    checked = run(run_cli, "rollback", lab, "--check", "--json", tasks="lync,adfs")
    assert checked.code == 0
    assert {(r["task"], r["host"]) for r in checked.json()["results"] if r["changed"]} == {
        ("lync.rollback", "pool01"),
        ("lync.rollback", "dir01"),
        ("adfs.rollback", "adfs01"),
    }
    assert estate(lab) == applied, "rollback --check changes nothing"

    rolled = run(run_cli, "rollback", lab, "--json", tasks="lync,adfs")
    assert rolled.code == 0
    report = rolled.json()
    assert [r["task"] for r in report["results"]] == ["lync.rollback", "lync.rollback", "adfs.rollback"]
    assert report["findings"] == []
    assert estate(lab) == original
    # The default lab's AD FS is 3.0+: apply and rollback each set the global policy once.
    assert [op["cmdlet"] for op in lab.operations("adfs01") if op.get("cmdlet", "").endswith("Policy")] == [
        "Set-AdfsGlobalAuthenticationPolicy"
    ] * 2

    # The journal records what rollback did, per host.
    db = sqlite3.connect(lab.state_dir / "journal.sqlite")
    rows = db.execute(
        "SELECT r.task, r.host, r.status, r.diff FROM results r JOIN runs u ON u.id = r.run_id "
        "WHERE u.command = 'rollback' AND u.check_mode = 0 AND r.status != 'started'"
    ).fetchall()
    assert {(task, host, status) for task, host, status, _ in rows} == {
        ("lync.rollback", "pool01", "changed"),
        ("lync.rollback", "dir01", "changed"),
        ("adfs.rollback", "adfs01", "changed"),
    }
    adfs_diff = {d["path"]: d for task, _, _, diff in rows if task == "adfs.rollback" for d in json.loads(diff)}
    assert adfs_diff["trusts.pool01-PassiveAuth.present"] == {
        "path": "trusts.pool01-PassiveAuth.present",
        "before": True,
        "after": False,
    }

    again = run(run_cli, "rollback", lab, "--json", tasks="lync,adfs")
    assert again.json()["counts"] == {"ok": 3, "changed": 0, "failed": 0, "skipped": 0}


def test_tiers_roll_back_separately_and_reapply_cleanly(lab, run_cli):
    original = estate(lab)
    assert run(run_cli, "apply", lab, tasks="adfs,lync").code == 0
    applied = estate(lab)
    assert run(run_cli, "rollback", lab, tasks="lync").code == 0
    partial = estate(lab)
    assert partial["adfs_relying_party_trust"] == applied["adfs_relying_party_trust"], "--tier lync leaves AD FS alone"
    assert not any(k.startswith("CsWebServiceConfiguration/service:") for k in partial["cs_config"])
    assert run(run_cli, "rollback", lab, tasks="adfs").code == 0
    assert estate(lab) == original
    # Nothing is left behind that would confuse a second rollout.
    assert run(run_cli, "apply", lab, tasks="adfs,lync").code == 0
    assert estate(lab) == applied


def test_templates_roll_back_to_the_ca_tiers_estate(lab, run_cli):
    """The templates tier's rollback removes its template, OID object, CA issuance and records,
    and nothing of the CA tier: the estate is the one the CA tier left, and a second rollout
    re-creates the same objects (the template OID is reused, no leftover blocks it)."""
    assert run(run_cli, "apply", lab, tasks="ca").code == 0
    after_ca = estate(lab)
    assert run(run_cli, "apply", lab, tasks="templates").code == 0
    applied = estate(lab)
    assert hosts_with_records(applied) == {"ca01"}
    rolled = run(run_cli, "rollback", lab, "--json", tasks="templates")
    assert rolled.code == 0, rolled.out
    assert [(r["task"], r["changed"]) for r in rolled.json()["results"]] == [("templates.rollback", True)]
    assert estate(lab) == after_ca
    assert run(run_cli, "apply", lab, tasks="templates").code == 0
    assert estate(lab) == applied
