"""The templates tier end to end on the lab, through the real CLI and WinRM.

What the tier did is read back where Windows keeps it: the template's pKICertificateTemplate
object and its ACL in AD (converted with the tier's own ``model.record_from_ad``), the OID objects
under CN=OID, the CA's enrollment service object (the templates it issues), and the rollback
records in the CA host's registry.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from lab_operations import by_task, timeless

from lync2fa import adcs
from lync2fa.adcs import EKU
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import Machine
from lync2fa.lab.windows import adcs as lab_adcs
from lync2fa.lab.windows import directory as lab_directory
from lync2fa.plugins.templates import model
from lync2fa.records import RECORDS_KEY

TEMPLATE = "TPMVirtualSmartCardLogon"


def with_machine(lab, func, commit: bool = False):
    """Run ``func(machine)`` on the lab's ca01 model (reads, or a change behind lync2fa's back)."""
    store = control.open_store(lab.dir)
    estate = Estate.load(lab.dir)
    try:
        with store.transaction(commit=commit):
            return func(Machine(store, estate, estate.host("ca01")))
    finally:
        store.close()


def ad_object(lab, dn: str) -> dict | None:
    return with_machine(lab, lambda m: m.directory.get(dn))


def template(lab, name: str = TEMPLATE) -> dict | None:
    """The template as AD holds it, in the tier's terms (None: not in AD)."""
    obj = ad_object(lab, adcs.template_dn(name))
    return None if obj is None else model.record_from_ad({"exists": True, **obj})


def change_template(lab, name: str, attributes: dict | None = None, aces=()) -> None:
    """Change a template's raw attributes or add ACEs behind lync2fa's back (drift)."""

    def change(machine):
        obj = machine.directory.get(adcs.template_dn(name))
        obj["attributes"].update(attributes or {})
        for principal, rights, object_type in aces:
            sid, account = lab_directory.translate(machine.store, principal)
            obj["acl"]["aces"].append(
                {
                    "sid": sid,
                    "account": account,
                    "rights": rights,
                    "inherited": False,
                    "object_type": object_type or adcs.ALL_EXTENDED_RIGHTS,
                    "allow": True,
                }
            )
        machine.directory.put(obj)

    with_machine(lab, change, commit=True)


def oid_objects(lab) -> dict[str, dict]:
    """The OID objects under CN=OID, by their OID."""
    objects = with_machine(lab, lambda m: m.directory.children(adcs.OID_CONTAINER))
    return {
        o["attributes"][adcs.TEMPLATE_OID_ATTRIBUTE][0]: o
        for o in objects
        if o["attributes"].get(adcs.TEMPLATE_OID_ATTRIBUTE)
    }


def put_oid_object(lab, oid: str, display: str) -> None:
    def create(machine):
        machine.directory.create(
            adcs.OID_CONTAINER,
            f"{oid.rsplit('.', 1)[-1]}.0123456789ABCDEF0123456789ABCDEF",
            adcs.OID_CLASS,
            {"flags": [1], "displayName": [display], adcs.TEMPLATE_OID_ATTRIBUTE: [oid]},
        )

    with_machine(lab, create, commit=True)


def issued(lab) -> list[str]:
    store = control.open_store(lab.dir)
    try:
        return lab_adcs.ca_of(store, "ca01")["published"]
    finally:
        store.close()


def set_issued(lab, names: list[str]) -> None:
    def change(machine):
        dn = adcs.enrollment_service_dn(lab_adcs.ca_name(machine))
        machine.directory.set_attributes(dn, {adcs.ISSUED_TEMPLATES_ATTRIBUTE: list(names)})

    with_machine(lab, change, commit=True)


def template_records(lab) -> dict:
    """The rollback records of this tier on ca01 (HKLM:\\SOFTWARE\\lync2fa\\Created)."""
    key = with_machine(lab, lambda m: m.registry.read(RECORDS_KEY)) or {"values": {}}
    return {n: json.loads(v["value"]) for n, v in key["values"].items() if n.startswith("template/")}


def put_record(lab, resource_id: str, previous: dict) -> None:
    value = json.dumps({"created": True, "previous": previous, "at": "2026-01-01T00:00:00+00:00"})
    with_machine(lab, lambda m: m.registry.set(RECORDS_KEY, resource_id, value, "String"), commit=True)


def estate(lab) -> dict:
    """The lab's state without empty registry keys (rollback leaves the records key, empty) and
    without the CA's in-memory template cache (when it was last reloaded is not configuration)."""
    snapshot = lab.snapshot(exclude_kinds=("lab_fault", "adcs_template_cache"))
    snapshot["registry"] = {k: v for k, v in snapshot.get("registry", {}).items() if v.get("values")}
    return snapshot


def run(lab, *args):
    return ("-i", lab.inventory, "--state-dir", lab.state_dir, *args)


def with_vars(lab, tmp_path, **values):
    """A copy of the lab inventory with extra host vars on the CA."""
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["all"]["children"]["ca"]["hosts"]["ca01"].update(values)
    path = tmp_path / f"inventory-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def changed_results(report) -> dict:
    return {r["task"]: r for r in report["results"] if r["changed"]}


def test_default_profile_plan_apply_reapply_verify(lab, run_cli):
    before = lab.snapshot()
    planned = run_cli("plan", *run(lab, "--tasks", "ca,templates", "--json"))
    assert planned.code == 0, planned.err
    smartcard = changed_results(planned.json())["templates.smartcard"]
    diff = {d["path"]: (d["before"], d["after"]) for d in smartcard["diff"]}
    assert diff["exists"] == (False, True) and diff["published"] == (False, True)
    assert diff["acl.Lync 2FA Users"] == (None, ["Enroll", "Read"])
    assert "acl" not in diff, "a new template's ACL is shown per principal"
    assert lab.snapshot() == before, "plan must not change the estate"

    applied = run_cli("apply", *run(lab, "--tasks", "ca,templates"))
    assert applied.code == 0, applied.out + applied.err
    assert "changed templates.smartcard on ca01" in applied.out
    template_ = template(lab)
    assert template_["display_name"] == "TPM Virtual Smart Card Logon"
    assert template_["schema_version"] == 2
    assert (
        set(template_["ekus"])
        == set(template_["application_policies"])
        == {EKU["client_auth"], EKU["smart_card_logon"]}
    )
    assert template_["min_key_size"] == 2048
    assert template_["providers"] == ["Microsoft Base Smart Card Crypto Provider"]
    assert template_["exportable_key"] is False and template_["enrollee_supplies_subject"] is False
    assert template_["subject_from_ad"] is True and template_["upn_in_san"] is True
    assert template_["prompt_user"] is True
    assert (template_["validity_days"], template_["renewal_days"]) == (365, 42)
    assert template_["owner"] == "Domain Admins"
    acl = {a["principal"]: a["rights"] for a in template_["acl"]}
    assert acl["Lync 2FA Users"] == ["Enroll", "Read"]
    assert acl["Authenticated Users"] == ["Read"], "the source template's ACL is kept"
    raw = ad_object(lab, adcs.template_dn(TEMPLATE))
    assert raw["class"] == adcs.TEMPLATE_CLASS
    assert raw["attributes"]["pKIExpirationPeriod"] == ["AEA5hy7h/v8="], "one year as Windows encodes it"
    assert adcs.uint32(raw["attributes"]["flags"][0]) & adcs.TEMPLATE_IS_MODIFIED
    assert not adcs.uint32(raw["attributes"]["flags"][0]) & adcs.TEMPLATE_IS_DEFAULT
    # Registered under CN=OID below the forest's base, and issued by the CA.
    assert oid_objects(lab)[template_["oid"]]["attributes"]["displayName"] == ["TPM Virtual Smart Card Logon"]
    assert template_["oid"].startswith("1.3.6.1.4.1.311.21.8.")
    assert TEMPLATE in issued(lab)
    assert template_records(lab)[f"template/{TEMPLATE}"]["previous"] == {"oid": template_["oid"]}

    again = run_cli("apply", *run(lab, "--tasks", "ca,templates", "--json"))
    assert again.code == 0 and again.json()["counts"]["changed"] == 0
    verified = run_cli("verify", *run(lab, "--tasks", "templates", "--json"))
    assert verified.code == 0, verified.out
    assert [r["task"] for r in verified.json()["results"]] == ["templates.smartcard", "templates.audit"]
    audit = verified.json()["results"][1]
    assert audit["task"] == "templates.audit" and audit["warnings"] == []
    # What a new Enterprise CA issues out of the box (User, WebServer), the CA tier's and this tier's.
    assert {"EnrollmentAgent", "SmartcardLogon", "SmartcardUser", "User", "WebServer", TEMPLATE} <= set(
        audit["after"]["templates"]
    )


def test_drift_shows_one_attribute_and_is_repaired(lab, run_cli, tmp_path):
    assert run_cli("apply", *run(lab, "--tasks", "ca,templates")).code == 0
    oid = template(lab)["oid"]
    change_template(lab, TEMPLATE, {"msPKI-Minimal-Key-Size": [1024]})
    planned = run_cli("plan", *run(lab, "--tasks", "ca,templates", "--json")).json()
    changed = changed_results(planned)
    assert list(changed) == ["templates.smartcard"]
    assert changed["templates.smartcard"]["diff"] == [{"path": "min_key_size", "before": 1024, "after": 2048}]
    assert run_cli("apply", *run(lab, "--tasks", "templates")).code == 0
    assert template(lab)["min_key_size"] == 2048
    again = run_cli("apply", *run(lab, "--tasks", "templates", "--json")).json()
    assert again["counts"]["changed"] == 0

    # A changed setting in the inventory updates only that attribute of the existing template.
    longer = with_vars(lab, tmp_path, templates_validity_days=730, templates_autoenroll=True)
    updated = run_cli("apply", "-i", longer, "--state-dir", lab.state_dir, "--tasks", "templates", "--json").json()
    assert changed_results(updated)["templates.smartcard"]["diff"] == [
        {"path": "acl.Lync 2FA Users", "before": ["Enroll", "Read"], "after": ["Autoenroll", "Enroll", "Read"]},
        {"path": "validity_days", "before": 365, "after": 730},
    ]
    assert template(lab)["oid"] == oid, "updated in place, not recreated"
    assert template(lab)["validity_days"] == 730


@pytest.fixture(scope="module")
def ca_lab(tmp_path_factory):
    """One lab with the CA tier applied, shared by the gate tests (they never write)."""
    from conftest import Lab

    from lync2fa import cli
    from lync2fa.lab import control

    base = tmp_path_factory.mktemp("gate")
    lab = Lab(base / "lab", control.up(base / "lab"), base / "state")
    assert cli.main(["apply", *map(str, run(lab, "--tasks", "ca"))]) == 0
    yield lab
    control.down(lab.dir)


CRA = ["certificate_request_agent"]
# Inventory settings -> the rules the gate must name, exactly.
VARIANTS = {
    "ESC1": ({"templates_enrollee_supplies_subject": True}, {"ESC1"}),
    "ESC2": ({"templates_ekus": ["any_purpose"]}, {"ESC2"}),
    "ESC3": ({"templates_ekus": CRA}, {"ESC3"}),
    "ESC3-cosigned": ({"templates_authorized_signatures": 1, "templates_ra_application_policies": CRA}, {"ESC3"}),
    "ESC4": ({"templates_extra_acl": [{"principal": "Domain Users", "rights": ["Read", "Write"]}]}, {"ESC4"}),
    "ESC9": ({"templates_no_security_extension": True}, {"ESC9"}),
    "ESC13": (
        {"templates_issuance_policies": [{"oid": "1.3.6.1.4.1.311.21.8.7.7.7", "linked_group": "Domain Admins"}]},
        {"ESC13"},
    ),
    "ESC15": (
        {
            "templates_schema_version": 1,
            "templates_enrollee_supplies_subject": True,
            "templates_ekus": ["secure_email"],
        },
        {"ESC15"},
    ),
    "ESC15-with-ESC1": (
        {"templates_schema_version": 1, "templates_enrollee_supplies_subject": True},
        {"ESC1", "ESC15"},
    ),
    "ESC17": ({"templates_enrollee_supplies_subject": True, "templates_ekus": ["server_auth"]}, {"ESC17"}),
    "EXPORTABLE_KEY": ({"templates_exportable_key": True}, {"EXPORTABLE_KEY"}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gate_refuses_each_rule_and_allows_it_explicitly(ca_lab, run_cli, tmp_path, variant):
    values, expected = VARIANTS[variant]
    inventory = with_vars(ca_lab, tmp_path, **values)
    refused = run_cli("apply", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates")
    assert refused.code == 2, refused.out
    assert set(re.findall(r"\[([A-Z0-9_]+)\] templates\.smartcard on ca01", refused.err)) == expected
    assert "Fix:" in refused.err and "--allow-insecure" in refused.err
    assert template(ca_lab) is None, "nothing is written when the gate refuses"

    partly = run_cli(
        "plan", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates", "--allow-insecure", "ESC8"
    )
    assert partly.code == 2, "allowing another rule does not lift this one"
    allow = [a for rule in sorted(expected) for a in ("--allow-insecure", rule.lower())]
    allowed = run_cli("plan", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates", *allow)
    assert allowed.code == 0, allowed.out + allowed.err
    for rule in expected:
        assert f"warning: [{rule}]" in allowed.out
    assert "allowed by --allow-insecure" in allowed.out


def test_default_profile_passes_the_gate(ca_lab, run_cli):
    planned = run_cli("plan", *run(ca_lab, "--tasks", "templates", "--json"))
    assert planned.code == 0, planned.err
    assert planned.json()["findings"] == []


def test_invalid_settings_are_usage_errors(ca_lab, run_cli, tmp_path):
    for values, text in [
        ({"templates_ekus": ["client_auth", "bogus"]}, "bogus"),
        ({"templates_min_key_size": 1024}, "min_key_size"),
        ({"templates_name": "SmartcardUser"}, "built-in template"),
        ({"templates_renewal_days": 400}, "renewal_days"),
        ({"templates_extra_acl": [{"principal": "X", "rights": ["Everything"]}]}, "extra_acl"),
    ]:
        result = run_cli("plan", "-i", with_vars(ca_lab, tmp_path, **values), "--state-dir", ca_lab.state_dir)
        assert result.code == 2 and text in result.err, (values, result.err)


def test_unknown_group_fails_clearly_and_writes_nothing(ca_lab, run_cli, tmp_path):
    inventory = with_vars(ca_lab, tmp_path, templates_enroll_principal="CORP\\No Such Group")
    result = run_cli("apply", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates")
    assert result.code == 1
    assert "identity references could not be translated: CORP\\No Such Group" in result.out
    assert template(ca_lab) is None


def test_smartcard_user_profile_only_checks_the_builtin(lab, run_cli, tmp_path):
    inventory = with_vars(lab, tmp_path, templates_profile="smartcard_user", ca_principal="Domain Users")
    applied = run_cli("apply", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "ca,templates", "--json")
    assert applied.code == 0, applied.out + applied.err
    report = applied.json()
    smartcard = next(r for r in report["results"] if r["task"] == "templates.smartcard")
    assert smartcard["status"] == "ok" and smartcard["after"]["name"] == "SmartcardUser"
    assert smartcard["after"]["acl"]["Domain Users"] == ["Enroll", "Read"]
    assert [f["rule"] for f in report["findings"]] == ["BROAD_ENROLL"], "only the CA tier's warning"
    assert template(lab) is None
    assert template_records(lab) == {}


def test_audit_flags_a_drifted_published_template(lab, run_cli, tmp_path):
    assert run_cli("apply", *run(lab, "--tasks", "ca,templates")).code == 0
    set_issued(lab, sorted(set(issued(lab)) | {"WebServer"}))
    # The built-in WebServer (enrollee supplies subject, admins only) is fine to issue.
    assert run_cli("verify", *run(lab, "--tasks", "templates")).code == 0

    change_template(
        lab,
        "WebServer",
        aces=[("Domain Users", adcs.GENERIC_READ, None), ("Domain Users", adcs.EXTENDED_RIGHT, adcs.ENROLL)],
    )
    flagged = run_cli("verify", *run(lab, "--tasks", "templates"))
    assert flagged.code == 1
    assert "FAILED  templates.audit on ca01" in flagged.out
    assert "ESC15:WebServer, ESC17:WebServer" in flagged.out
    assert "warning: [ESC17] template WebServer" in flagged.out
    assert TEMPLATE + ":" not in flagged.out, "the tier's own template stays clean"

    accepted = with_vars(lab, tmp_path, templates_accepted_findings=["ESC15:WebServer", "esc17:webserver"])
    passed = run_cli("verify", "-i", accepted, "--state-dir", lab.state_dir, "--tasks", "templates")
    assert passed.code == 0, passed.out
    assert passed.out.count("(accepted in templates_accepted_findings)") == 2


def test_esc_allowed_template_is_applied_and_then_reported_by_the_audit(lab, run_cli, tmp_path):
    inventory = with_vars(lab, tmp_path, templates_no_security_extension=True)
    applied = run_cli(
        "apply", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "ca,templates", "--allow-insecure", "ESC9"
    )
    assert applied.code == 0, applied.out + applied.err
    assert template(lab)["no_security_extension"] is True
    # verify plans what apply would: the same rule must be allowed (the template is in place) ...
    refused = run_cli("verify", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "templates")
    assert refused.code == 2 and "[ESC9]" in refused.err
    audit = run_cli(
        "verify", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "templates", "--allow-insecure", "ESC9"
    )
    # ... and the audit of what the CA publishes still reports it as a finding.
    assert audit.code == 1 and f"ESC9:{TEMPLATE}" in audit.out


def test_rollback_removes_only_what_lync2fa_created(lab, run_cli):
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    after_ca = estate(lab)
    assert run_cli("apply", *run(lab, "--tasks", "templates")).code == 0
    assert estate(lab) != after_ca

    checked = run_cli("rollback", *run(lab, "--tier", "templates", "--check"))
    assert checked.code == 0 and f"~ templates.{TEMPLATE}.exists: true -> false" in checked.out
    assert template(lab) is not None, "--check removes nothing"

    rolled = run_cli("rollback", *run(lab, "--tier", "templates"))
    assert rolled.code == 0, rolled.out
    assert "changed templates.rollback on ca01" in rolled.out
    assert estate(lab) == after_ca, "the estate is back to its state before the templates tier"
    again = run_cli("rollback", *run(lab, "--tier", "templates", "--json"))
    assert again.json()["counts"]["changed"] == 0


def test_rollback_keeps_a_template_lync2fa_did_not_create(lab, run_cli):
    """An operator who built the template by hand (walkthrough) gets it updated, never deleted."""
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0

    def hand_made(machine):
        source = machine.directory.get(adcs.template_dn("SmartcardLogon"))
        attributes = {k: v for k, v in source["attributes"].items() if k != "cn"}
        machine.directory.create(
            adcs.TEMPLATES_CONTAINER,
            TEMPLATE,
            adcs.TEMPLATE_CLASS,
            {**attributes, "displayName": ["Made by hand"], "msPKI-Template-Schema-Version": [2]},
        )

    with_machine(lab, hand_made, commit=True)
    applied = run_cli("apply", *run(lab, "--tasks", "templates", "--json")).json()
    diff = {d["path"] for d in changed_results(applied)["templates.smartcard"]["diff"]}
    assert "display_name" in diff and "exists" not in diff
    assert run_cli("rollback", *run(lab, "--tier", "templates")).code == 0
    kept = template(lab)
    assert kept is not None and kept["display_name"] == "TPM Virtual Smart Card Logon"
    assert TEMPLATE in issued(lab)


def test_half_made_template_is_rolled_back_and_its_oid_reused(lab, run_cli):
    """What a script that failed after registering the OID (or after the template) leaves: a
    marker written before the first commit. Rollback removes whatever of it exists; a marker
    whose objects do not exist is no error; a retry reuses the recorded OID."""
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    oid = "1.3.6.1.4.1.311.21.8.1.2.3.4.5.6.12345678.87654321"
    put_record(lab, f"template/{TEMPLATE}", {"oid": oid})
    put_oid_object(lab, oid, "TPM Virtual Smart Card Logon")
    put_record(lab, "template/NeverMade", {"oid": "1.2.3"})
    oids_before = set(oid_objects(lab))

    retried = run_cli("apply", *run(lab, "--tasks", "templates.smartcard"))
    assert retried.code == 0, retried.out + retried.err
    assert template(lab)["oid"] == oid, "the recorded OID is reused"
    assert set(oid_objects(lab)) == oids_before, "no second OID object"

    rolled = run_cli("rollback", *run(lab, "--tier", "templates", "--json"))
    assert rolled.code == 0, rolled.out + rolled.err
    result = next(r for r in rolled.json()["results"] if r["task"] == "templates.rollback")
    assert result["before"]["templates"]["NeverMade"] == {"exists": False, "published": False}
    assert template(lab) is None and oid not in oid_objects(lab)
    assert template_records(lab) == {}

    # Only the OID object was committed before the failure: rollback still removes it.
    put_record(lab, f"template/{TEMPLATE}", {"oid": oid})
    put_oid_object(lab, oid, "TPM Virtual Smart Card Logon")
    assert run_cli("rollback", *run(lab, "--tier", "templates")).code == 0
    assert oid not in oid_objects(lab)
    assert set(oid_objects(lab)) == oids_before - {oid}


def test_lab_runs_exactly_the_operations_the_decision_produced(lab, run_cli):
    """Issue 8: what ca01 executed for templates.smartcard is the decision's operation list, in full."""
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    planned = run_cli("plan", *run(lab, "--tasks", "templates.smartcard", "--json")).json()
    mark = lab.mark()
    applied = run_cli("apply", *run(lab, "--tasks", "templates.smartcard", "--json"))
    assert applied.code == 0, applied.out
    executed = lab.ran_as_decided(applied.json(), since=mark)["ca01"]
    # The plan decided the same (its record carries another time).
    assert timeless(by_task(planned)["templates.smartcard"]) == timeless(executed)
    kinds = [op["op"] for op in executed]
    assert kinds[:3] == ["registry_set", "ad_create", "ad_create"], "the record first, then the OID, the template"
    assert kinds[-1] == "cmdlet" and executed[-1]["cmdlet"] == "Add-CATemplate" and executed[-1]["retry"]
    assert set(kinds[3:-1]) == {"ace_add"}
    again = run_cli("apply", *run(lab, "--tasks", "templates.smartcard", "--json"))
    assert again.json()["counts"]["changed"] == 0
    assert lab.mark() == mark + len(executed), "a no-op re-apply sends no operation"


def test_issue12_item3_gate_sees_ca_grants(ca_lab, run_cli, tmp_path):
    """Issue 12 item 3: the CA tier issuing WebServer and granting Enroll on it to Authenticated
    Users makes it ESC15/ESC17; the gate judges the templates as every planned change leaves them,
    so plan refuses before anything runs (and validate's SARIF names the rules)."""
    inventory = with_vars(
        ca_lab,
        tmp_path,
        ca_templates=["EnrollmentAgent", "SmartcardUser", "SmartcardLogon", "WebServer"],
        ca_template="WebServer",
        ca_principal="Authenticated Users",
    )
    before = ca_lab.snapshot()
    refused = run_cli("plan", "-i", inventory, "--state-dir", ca_lab.state_dir)
    assert refused.code == 2, refused.out + refused.err
    assert set(re.findall(r"\[(ESC\d+)\] ca\.template_permissions on ca01", refused.err)) == {"ESC15", "ESC17"}
    assert "template WebServer" in refused.err and "Authenticated Users" in refused.err
    assert ca_lab.snapshot() == before, "refused before anything ran"
    allowed = run_cli(
        "plan",
        "-i",
        inventory,
        "--state-dir",
        ca_lab.state_dir,
        "--allow-insecure",
        "ESC15",
        "--allow-insecure",
        "ESC17",
    )
    assert allowed.code == 0, allowed.err
    assert "warning: [ESC17]" in allowed.out

    sarif = run_cli("validate", "-i", inventory, "--format", "sarif")
    rules = {r["ruleId"] for run in sarif.json()["runs"] for r in run["results"]}
    assert {"ESC15", "ESC17"} <= rules, rules

    # A grant the gate can judge only with its built-in defaults: SmartcardUser to a dedicated group passes.
    fine = with_vars(ca_lab, tmp_path, ca_template="SmartcardUser", ca_principal="Lync 2FA Users")
    assert run_cli("plan", "-i", fine, "--state-dir", ca_lab.state_dir, "--tasks", "ca,templates").code == 0
