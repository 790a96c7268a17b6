"""The templates tier end to end on the lab, through the real CLI and WinRM."""
from __future__ import annotations

import re

import pytest
import yaml

from lync2fa.plugins.ca.builtin_templates import EKU

TEMPLATE = "TPMVirtualSmartCardLogon"


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
    template = lab.get("template", TEMPLATE)
    assert template["display_name"] == "TPM Virtual Smart Card Logon"
    assert template["schema_version"] == 2
    assert set(template["ekus"]) == set(template["application_policies"]) == {EKU["client_auth"],
                                                                             EKU["smart_card_logon"]}
    assert template["min_key_size"] == 2048
    assert template["providers"] == ["Microsoft Base Smart Card Crypto Provider"]
    assert template["exportable_key"] is False and template["enrollee_supplies_subject"] is False
    assert template["subject_from_ad"] is True and template["upn_in_san"] is True
    assert (template["validity_days"], template["renewal_days"]) == (365, 42)
    assert template["owner"] == "Domain Admins"
    acl = {a["principal"]: a["rights"] for a in template["acl"]}
    assert acl["Lync 2FA Users"] == ["Enroll", "Read"]
    assert acl["Authenticated Users"] == ["Read"], "the source template's ACL is kept"
    # Registered under CN=OID below the forest's base, and issued by the CA.
    assert lab.get("pki_oid", template["oid"])["display_name"] == "TPM Virtual Smart Card Logon"
    assert template["oid"].startswith("1.3.6.1.4.1.311.21.8.")
    assert TEMPLATE in lab.get("ca", "ca01")["published"]
    assert lab.get("created_marker", f"ca01/template/{TEMPLATE}") is not None

    again = run_cli("apply", *run(lab, "--tasks", "ca,templates", "--json"))
    assert again.code == 0 and again.json()["counts"]["changed"] == 0
    verified = run_cli("verify", *run(lab, "--tasks", "templates", "--json"))
    assert verified.code == 0, verified.out
    assert [r["task"] for r in verified.json()["results"]] == ["templates.smartcard", "templates.audit"]
    audit = verified.json()["results"][1]
    assert audit["task"] == "templates.audit" and audit["warnings"] == []
    assert sorted(audit["after"]["templates"]) == ["EnrollmentAgent", "SmartcardLogon", "SmartcardUser", TEMPLATE]


def test_drift_shows_one_attribute_and_is_repaired(lab, run_cli, tmp_path):
    assert run_cli("apply", *run(lab, "--tasks", "ca,templates")).code == 0
    template = lab.get("template", TEMPLATE)
    template["min_key_size"] = 1024
    lab.put("template", TEMPLATE, template)
    planned = run_cli("plan", *run(lab, "--tasks", "ca,templates", "--json")).json()
    changed = changed_results(planned)
    assert list(changed) == ["templates.smartcard"]
    assert changed["templates.smartcard"]["diff"] == [{"path": "min_key_size", "before": 1024, "after": 2048}]
    assert run_cli("apply", *run(lab, "--tasks", "templates")).code == 0
    assert lab.get("template", TEMPLATE)["min_key_size"] == 2048
    again = run_cli("apply", *run(lab, "--tasks", "templates", "--json")).json()
    assert again["counts"]["changed"] == 0

    # A changed setting in the inventory updates only that attribute of the existing template.
    longer = with_vars(lab, tmp_path, templates_validity_days=730, templates_autoenroll=True)
    updated = run_cli("apply", "-i", longer, "--state-dir", lab.state_dir, "--tasks", "templates", "--json").json()
    assert changed_results(updated)["templates.smartcard"]["diff"] == [
        {"path": "acl.Lync 2FA Users", "before": ["Enroll", "Read"], "after": ["Autoenroll", "Enroll", "Read"]},
        {"path": "validity_days", "before": 365, "after": 730}]
    assert lab.get("template", TEMPLATE)["oid"] == template["oid"], "updated in place, not recreated"


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
    "ESC13": ({"templates_issuance_policies": [{"oid": "1.3.6.1.4.1.311.21.8.7.7.7", "linked_group": "Domain Admins"}]},
              {"ESC13"}),
    "ESC15": ({"templates_schema_version": 1, "templates_enrollee_supplies_subject": True,
               "templates_ekus": ["secure_email"]}, {"ESC15"}),
    "ESC15-with-ESC1": ({"templates_schema_version": 1, "templates_enrollee_supplies_subject": True},
                        {"ESC1", "ESC15"}),
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
    assert ca_lab.get("template", TEMPLATE) is None, "nothing is written when the gate refuses"

    partly = run_cli("plan", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates",
                     "--allow-insecure", "ESC8")
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
    for values, text in [({"templates_ekus": ["client_auth", "bogus"]}, "bogus"),
                         ({"templates_min_key_size": 1024}, "min_key_size"),
                         ({"templates_name": "SmartcardUser"}, "built-in template"),
                         ({"templates_renewal_days": 400}, "renewal_days"),
                         ({"templates_extra_acl": [{"principal": "X", "rights": ["Everything"]}]}, "extra_acl")]:
        result = run_cli("plan", "-i", with_vars(ca_lab, tmp_path, **values), "--state-dir", ca_lab.state_dir)
        assert result.code == 2 and text in result.err, (values, result.err)


def test_unknown_group_fails_clearly_and_writes_nothing(ca_lab, run_cli, tmp_path):
    inventory = with_vars(ca_lab, tmp_path, templates_enroll_principal="CORP\\No Such Group")
    result = run_cli("apply", "-i", inventory, "--state-dir", ca_lab.state_dir, "--tasks", "templates")
    assert result.code == 1
    assert "identity references could not be translated: CORP\\No Such Group" in result.out
    assert ca_lab.get("template", TEMPLATE) is None


def test_smartcard_user_profile_only_checks_the_builtin(lab, run_cli, tmp_path):
    inventory = with_vars(lab, tmp_path, templates_profile="smartcard_user", ca_principal="Domain Users")
    applied = run_cli("apply", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "ca,templates", "--json")
    assert applied.code == 0, applied.out + applied.err
    report = applied.json()
    smartcard = next(r for r in report["results"] if r["task"] == "templates.smartcard")
    assert smartcard["status"] == "ok" and smartcard["after"]["name"] == "SmartcardUser"
    assert smartcard["after"]["acl"]["Domain Users"] == ["Enroll", "Read"]
    assert [f["rule"] for f in report["findings"]] == ["BROAD_ENROLL"], "only the CA tier's warning"
    assert lab.get("template", TEMPLATE) is None
    assert not any(k.startswith("ca01/template/") for k in lab.snapshot().get("created_marker", {}))


def test_audit_flags_a_drifted_published_template(lab, run_cli, tmp_path):
    assert run_cli("apply", *run(lab, "--tasks", "ca,templates")).code == 0
    ca = lab.get("ca", "ca01")
    ca["published"] = sorted(ca["published"] + ["WebServer"])
    lab.put("ca", "ca01", ca)
    # The built-in WebServer (enrollee supplies subject, admins only) is fine to issue.
    assert run_cli("verify", *run(lab, "--tasks", "templates")).code == 0

    web = lab.get("template", "WebServer")
    web["acl"].append({"principal": "Domain Users", "rights": ["Read", "Enroll"]})
    lab.put("template", "WebServer", web)
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
    applied = run_cli("apply", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "ca,templates",
                      "--allow-insecure", "ESC9")
    assert applied.code == 0, applied.out + applied.err
    assert lab.get("template", TEMPLATE)["no_security_extension"] is True
    # verify plans what apply would: the same rule must be allowed (the template is in place) ...
    refused = run_cli("verify", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "templates")
    assert refused.code == 2 and "[ESC9]" in refused.err
    audit = run_cli("verify", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "templates",
                    "--allow-insecure", "ESC9")
    # ... and the audit of what the CA publishes still reports it as a finding.
    assert audit.code == 1 and f"ESC9:{TEMPLATE}" in audit.out


def test_rollback_removes_only_what_lync2fa_created(lab, run_cli):
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    after_ca = lab.snapshot()
    assert run_cli("apply", *run(lab, "--tasks", "templates")).code == 0
    assert lab.snapshot() != after_ca

    checked = run_cli("rollback", *run(lab, "--tier", "templates", "--check"))
    assert checked.code == 0 and f"~ templates.{TEMPLATE}.exists: true -> false" in checked.out
    assert lab.get("template", TEMPLATE) is not None, "--check removes nothing"

    rolled = run_cli("rollback", *run(lab, "--tier", "templates"))
    assert rolled.code == 0, rolled.out
    assert f"changed templates.rollback on ca01" in rolled.out
    assert lab.snapshot() == after_ca, "the estate is back to its state before the templates tier"
    again = run_cli("rollback", *run(lab, "--tier", "templates", "--json"))
    assert again.json()["counts"]["changed"] == 0


def test_rollback_keeps_a_template_lync2fa_did_not_create(lab, run_cli):
    """An operator who built the template by hand (walkthrough) gets it updated, never deleted."""
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    hand_made = {**lab.get("template", "SmartcardLogon"), "name": TEMPLATE, "display_name": "Made by hand",
                 "schema_version": 2, "created_by": "operator"}
    lab.put("template", TEMPLATE, hand_made)
    applied = run_cli("apply", *run(lab, "--tasks", "templates", "--json")).json()
    diff = {d["path"] for d in changed_results(applied)["templates.smartcard"]["diff"]}
    assert "display_name" in diff and "exists" not in diff
    assert run_cli("rollback", *run(lab, "--tier", "templates")).code == 0
    kept = lab.get("template", TEMPLATE)
    assert kept is not None and kept["display_name"] == "TPM Virtual Smart Card Logon"
    assert TEMPLATE in lab.get("ca", "ca01")["published"]


def test_ca_offline_fails_without_writing(lab, run_cli):
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    lab.fault("ca01", ca_offline=True)
    result = run_cli("apply", *run(lab, "--tasks", "templates"))
    assert result.code == 1 and "RPC server is unavailable" in result.out
    assert lab.get("template", TEMPLATE) is None


def test_half_made_template_is_rolled_back_and_its_oid_reused(lab, run_cli):
    """What a script that failed after registering the OID (or after the template) leaves: a
    marker written before the first commit. Rollback removes whatever of it exists; a marker
    whose objects do not exist is no error; a retry reuses the recorded OID."""
    assert run_cli("apply", *run(lab, "--tasks", "ca")).code == 0
    oid = "1.3.6.1.4.1.311.21.8.1.2.3.4.5.6.12345678.87654321"
    lab.put("created_marker", f"ca01/template/{TEMPLATE}", {"host": "ca01", "created": True, "previous": {"oid": oid}})
    lab.put("pki_oid", oid, {"display_name": "TPM Virtual Smart Card Logon", "type": "template", "linked_group": None})
    lab.put("created_marker", "ca01/template/NeverMade", {"host": "ca01", "created": True, "previous": {"oid": "1.2.3"}})
    oids_before = set(lab.snapshot().get("pki_oid", {}))

    retried = run_cli("apply", *run(lab, "--tasks", "templates.smartcard"))
    assert retried.code == 0, retried.out + retried.err
    assert lab.get("template", TEMPLATE)["oid"] == oid, "the recorded OID is reused"
    assert set(lab.snapshot().get("pki_oid", {})) == oids_before, "no second OID object"

    rolled = run_cli("rollback", *run(lab, "--tier", "templates", "--json"))
    assert rolled.code == 0, rolled.out + rolled.err
    result = next(r for r in rolled.json()["results"] if r["task"] == "templates.rollback")
    assert result["before"]["templates"]["NeverMade"] == {"exists": False, "published": False}
    assert lab.get("template", TEMPLATE) is None and lab.get("pki_oid", oid) is None
    assert not any(k.startswith("ca01/template/") for k in lab.snapshot().get("created_marker", {}))

    # Only the OID object was committed before the failure: rollback still removes it.
    lab.put("created_marker", f"ca01/template/{TEMPLATE}", {"host": "ca01", "created": True, "previous": {"oid": oid}})
    lab.put("pki_oid", oid, {"display_name": "TPM Virtual Smart Card Logon", "type": "template", "linked_group": None})
    assert run_cli("rollback", *run(lab, "--tier", "templates")).code == 0
    assert lab.get("pki_oid", oid) is None
    assert set(lab.snapshot().get("pki_oid", {})) == oids_before - {oid}
