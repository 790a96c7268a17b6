"""The ESC rules (plugins/templates/esc.py): each rule with a vulnerable and a safe variant."""

from __future__ import annotations

import copy

import pytest

from lync2fa import adcs
from lync2fa.adcs import EKU
from lync2fa.adcs_builtin import BUILTIN_TEMPLATES
from lync2fa.plugins.templates import TASKS, builtin_record, esc, model

SMARTCARD = next(t for t in TASKS if t.name == "templates.smartcard")
CRA = EKU["certificate_request_agent"]


def default_profile(**overrides) -> dict:
    """The template the default profile proposes (duplicate of the built-in Smartcard Logon)."""
    params = SMARTCARD.validate(overrides)
    return model.desired_record(params, builtin_record("SmartcardLogon"))


def rules(template: dict) -> set[str]:
    return {f.rule for f in esc.evaluate(template)}


def changed(template: dict, **values) -> dict:
    out = copy.deepcopy(template)
    out.update(values)
    return out


def with_acl(template: dict, *entries) -> dict:
    return changed(template, acl=template["acl"] + [{"principal": p, "rights": r} for p, r in entries])


def admins_only(template: dict) -> dict:
    return changed(
        template, acl=[a for a in template["acl"] if esc.is_admin(a["principal"]) or "Enroll" not in a["rights"]]
    )


BASE = default_profile()
WEB = builtin_record("WebServer")

# rule -> (vulnerable variant, safe variant that differs in the one setting that matters)
CASES = {
    "ESC1": (
        changed(BASE, enrollee_supplies_subject=True),
        changed(BASE, enrollee_supplies_subject=True, manager_approval=True),
    ),
    "ESC1-no-approval-but-admins-only": (
        changed(BASE, enrollee_supplies_subject=True),
        admins_only(changed(BASE, enrollee_supplies_subject=True)),
    ),
    "ESC2": (
        changed(BASE, ekus=[EKU["any_purpose"]], application_policies=[EKU["any_purpose"]]),
        changed(BASE, ekus=[EKU["any_purpose"]], application_policies=[EKU["any_purpose"]], authorized_signatures=1),
    ),
    "ESC2-no-eku": (changed(BASE, ekus=[], application_policies=[]), BASE),
    "ESC3": (
        with_acl(builtin_record("EnrollmentAgent"), ("Domain Users", ["Read", "Enroll"])),
        builtin_record("EnrollmentAgent"),
    ),
    "ESC3-agent-cosigned": (
        changed(BASE, authorized_signatures=1, ra_application_policies=[CRA]),
        changed(BASE, authorized_signatures=1, ra_application_policies=[CRA], manager_approval=True),
    ),
    "ESC4": (with_acl(BASE, ("Domain Users", ["Read", "Write"])), with_acl(BASE, ("Domain Users", ["Read"]))),
    "ESC4-owner": (changed(BASE, owner="CORP\\helpdesk"), changed(BASE, owner="CORP\\Enterprise Admins")),
    "ESC4-writedacl": (with_acl(BASE, ("Authenticated Users", ["WriteDacl"])), BASE),
    "ESC9": (
        changed(BASE, no_security_extension=True),
        changed(
            BASE, no_security_extension=True, ekus=[EKU["secure_email"]], application_policies=[EKU["secure_email"]]
        ),
    ),
    "ESC13": (
        changed(BASE, issuance_policies=[{"oid": "1.3.6.1.4.1.311.21.8.1.2.3", "linked_group": "Tier0"}]),
        changed(BASE, issuance_policies=[{"oid": "1.3.6.1.4.1.311.21.8.1.2.3", "linked_group": None}]),
    ),
    "ESC15": (
        with_acl(WEB, ("Domain Users", ["Enroll"])),
        changed(with_acl(WEB, ("Domain Users", ["Enroll"])), schema_version=2),
    ),
    "ESC17": (
        with_acl(WEB, ("Domain Users", ["Enroll"])),
        changed(with_acl(WEB, ("Domain Users", ["Enroll"])), manager_approval=True),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_flags_vulnerable_and_passes_safe_variant(case):
    rule = case.split("-")[0]
    vulnerable, safe = CASES[case]
    assert rule in rules(vulnerable)
    assert rule not in rules(safe)


def test_default_profile_and_lab_builtins_pass():
    assert esc.evaluate(BASE) == []
    # WebServer (enrollee supplies subject, schema v1) and Enrollment Agent are admins-only;
    # User is enrollable by Domain Users but builds its subject from AD.
    for name in BUILTIN_TEMPLATES:
        assert esc.evaluate(builtin_record(name)) == [], name


def test_findings_name_rule_setting_and_fix():
    esc1 = esc.evaluate(CASES["ESC1"][0], host="ca01", task="templates.smartcard")
    assert [f.rule for f in esc1] == ["ESC1"]
    f = esc1[0]
    assert f.severity == "error" and f.host == "ca01" and f.task == "templates.smartcard"
    assert "Lync 2FA Users" in f.message and "ENROLLEE_SUPPLIES_SUBJECT" in f.message
    assert "templates_enrollee_supplies_subject" in f.message
    assert "templates_enrollee_supplies_subject: false" in f.fix
    esc4 = esc.evaluate(CASES["ESC4"][0])[0]
    assert "Domain Users (Write)" in esc4.message and "Domain Admins" in esc4.fix


def test_every_rule_is_exercised():
    assert {c.split("-")[0] for c in CASES} == set(esc.RULES)


def test_admin_set_is_the_shared_vocabulary():
    assert esc.ADMIN_PRINCIPALS is adcs.ADMIN_PRINCIPALS
    assert esc.is_admin("CORP\\Domain Admins") and not esc.is_admin("CORP\\Domain Users")


def test_full_control_means_enroll_and_write():
    found = rules(with_acl(changed(BASE, enrollee_supplies_subject=True), ("Helpdesk", ["FullControl"])))
    assert {"ESC1", "ESC4"} <= found


def test_acl_as_mapping_or_list_judges_the_same():
    vulnerable = CASES["ESC1"][0]
    as_view = model.view(vulnerable, vulnerable["name"], True)
    assert isinstance(as_view["acl"], dict)
    assert rules(as_view) == rules(vulnerable) == {"ESC1"}


def test_application_policies_count_like_ekus():
    # A v2+ template whose application policy alone carries client authentication.
    template = changed(
        BASE, ekus=[EKU["secure_email"]], application_policies=[EKU["client_auth"]], enrollee_supplies_subject=True
    )
    assert "ESC1" in rules(template)


def test_raw_attributes_convert_as_ms_crtd_says():
    """Flag bits, FILETIME periods and ACE bits read from AD mean what MS-CRTD and the
    ActiveDirectoryRights enumeration say."""
    record = builtin_record("WebServer")
    assert record["enrollee_supplies_subject"] and not record["subject_from_ad"]
    assert (record["validity_days"], record["renewal_days"]) == (730, 42)
    assert builtin_record("User")["exportable_key"] and builtin_record("User")["upn_in_san"]
    assert adcs.period_bytes(365) == "AEA5hy7h/v8="  # 1 year as Windows stores it
    ace = {"rights": adcs.EXTENDED_RIGHT, "object_type": adcs.ALL_EXTENDED_RIGHTS}
    assert model.right_names(ace) == ["Enroll", "Autoenroll"], "all extended rights include both"
    assert model.right_names({"rights": adcs.GENERIC_ALL}) == ["FullControl"]
    assert model.right_names({"rights": adcs.GENERIC_WRITE}) == ["Write"]
    assert model.right_names({"rights": adcs.EXTENDED_RIGHT, "object_type": adcs.AUTOENROLL}) == ["Autoenroll"]


def test_raw_writes_keep_unmanaged_bits():
    raw = BUILTIN_TEMPLATES["User"]["attributes"]
    desired = model.view(default_profile(), "X", True)
    values = model.raw_values(desired, raw)
    enroll = adcs.uint32(values["msPKI-Enrollment-Flag"]["value"])
    assert enroll & adcs.ENROLL_AUTO_ENROLLMENT and enroll & adcs.ENROLL_USER_INTERACTION_REQUIRED
    name_flag = adcs.uint32(values["msPKI-Certificate-Name-Flag"]["value"])
    assert name_flag & adcs.NAME_SUBJECT_REQUIRE_EMAIL, "a bit lync2fa does not manage is kept"
    assert values["msPKI-Certificate-Name-Flag"]["value"] < 0, "AD's Integer syntax is signed"
    assert adcs.uint32(values["msPKI-Private-Key-Flag"]["value"]) & adcs.KEY_EXPORTABLE == 0
    ess = model.raw_values({**desired, "enrollee_supplies_subject": True}, raw)
    assert ess["msPKI-Certificate-Name-Flag"]["value"] == adcs.NAME_ENROLLEE_SUPPLIES_SUBJECT
