"""The template as the tier sees it: AD's raw attributes and ACL <-> the template *record* <->
the attribute *view*, and the profile (task parameters) as a desired record.

* raw: what ``ad_object_fact(..., acl=True)`` returns for a ``pKICertificateTemplate``: attribute
  lists (flag words as signed 32-bit ints, periods as base64 FILETIME intervals) and the ACL
  (``{owner, aces: [{sid, account, rights (bits), object_type (GUID), allow, inherited}]}``).
* record: the template's meaning (``name``, ``ekus``, ``enrollee_supplies_subject``, ...,
  ``owner``, ``acl``: ``[{principal, rights: [names]}]``), what the ESC rules judge.
* view: what the tier reports as before/after: one key per managed setting, ``acl`` as a
  ``{principal: rights}`` mapping, so the diff is attribute-level.

Every conversion is here, in Python; the hosts only read and write the raw attributes.
"""

from __future__ import annotations

import copy
import re

from lync2fa import adcs
from lync2fa.adcs import EKU
from lync2fa.hostops import typed

from .esc import short_name

OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")  # use fullmatch
DEFAULT_OWNER = "Domain Admins"  # who owns a template a Domain Admin creates
VIEW_KEYS = (
    "display_name",
    "schema_version",
    "ekus",
    "application_policies",
    "min_key_size",
    "providers",
    "exportable_key",
    "subject_from_ad",
    "upn_in_san",
    "enrollee_supplies_subject",
    "manager_approval",
    "prompt_user",
    "no_security_extension",
    "authorized_signatures",
    "ra_application_policies",
    "issuance_policies",
    "validity_days",
    "renewal_days",
    "owner",
    "acl",
)
ATTRIBUTES = tuple(adcs.TEMPLATE_ATTRIBUTES)
# Attributes a duplicate takes from its source (Duplicate Template in the MMC), before the profile.
COPIED = (
    "flags",
    "pKIDefaultKeySpec",
    "pKIKeyUsage",
    "pKIMaxIssuingDepth",
    "pKICriticalExtensions",
    "pKIExtendedKeyUsage",
    "pKIExpirationPeriod",
    "pKIOverlapPeriod",
    "pKIDefaultCSPs",
    "msPKI-RA-Signature",
    "msPKI-Enrollment-Flag",
    "msPKI-Private-Key-Flag",
    "msPKI-Certificate-Name-Flag",
    "msPKI-Minimal-Key-Size",
    "msPKI-Template-Schema-Version",
    "msPKI-Certificate-Application-Policy",
    "msPKI-RA-Application-Policies",
    "msPKI-RA-Policies",
    "msPKI-Certificate-Policy",
)
# The template rights vocabulary (Allow entries) -> the ACE lync2fa adds for it.
RIGHT_ACES = {
    "Read": (adcs.GENERIC_READ, None),
    "Write": (adcs.GENERIC_WRITE, None),
    "FullControl": (adcs.GENERIC_ALL, None),
    "WriteOwner": (adcs.WRITE_OWNER, None),
    "WriteDacl": (adcs.WRITE_DACL, None),
    "Enroll": (adcs.EXTENDED_RIGHT, adcs.ENROLL),
    "Autoenroll": (adcs.EXTENDED_RIGHT, adcs.AUTOENROLL),
}


def resolve_oid(value: str) -> str:
    """A friendly EKU name (``smart_card_logon``) or a dotted OID, as the OID."""
    return EKU.get(value, value)


# -- raw -> record ------------------------------------------------------------------------
def right_names(ace: dict) -> list[str]:
    """What an ACE's ActiveDirectoryRights bits and object type mean for a template."""
    bits = int(ace.get("rights") or 0)
    if bits & adcs.GENERIC_ALL == adcs.GENERIC_ALL:
        return ["FullControl"]
    names = []
    if bits & adcs.GENERIC_READ == adcs.GENERIC_READ:
        names.append("Read")
    if bits & adcs.WRITE_PROPERTY:
        names.append("Write")
    if bits & adcs.WRITE_DACL:
        names.append("WriteDacl")
    if bits & adcs.WRITE_OWNER:
        names.append("WriteOwner")
    if bits & adcs.EXTENDED_RIGHT:
        guid = (ace.get("object_type") or adcs.ALL_EXTENDED_RIGHTS).lower()
        if guid in (adcs.ENROLL, adcs.ALL_EXTENDED_RIGHTS):
            names.append("Enroll")
        if guid in (adcs.AUTOENROLL, adcs.ALL_EXTENDED_RIGHTS):
            names.append("Autoenroll")
    return names


def principal_of(ace: dict) -> str:
    """The short account name of an ACE's trustee (its SID when it does not translate)."""
    return short_name(ace.get("account") or ace.get("sid") or "?")


def acl_of(acl: dict | None) -> list[dict]:
    """The Allow entries of an ACL (explicit and inherited) as ``[{principal, rights}]``."""
    rights: dict[str, set] = {}
    for ace in (acl or {}).get("aces") or []:
        if ace.get("allow", True):
            rights.setdefault(principal_of(ace), set()).update(right_names(ace))
    return [{"principal": p, "rights": sorted(r)} for p, r in sorted(rights.items())]


def _one(attributes: dict, name: str, default=None):
    values = attributes.get(name) or []
    return values[0] if values else default


def providers_of(values: list[str]) -> list[str]:
    """pKIDefaultCSPs ("1,Provider", "2,Other") in priority order, without the numbers."""

    def priority(value: str) -> int:
        head = value.split(",", 1)[0]
        return int(head) if head.strip().isdigit() else 0

    return [v.split(",", 1)[1] if "," in v else v for v in sorted(values, key=priority)]


def record_from_ad(entry: dict | None, links: dict[str, str | None] | None = None) -> dict | None:
    """The record of a template read from AD (None when it does not exist). ``links`` maps
    issuance policy OIDs to the group their OID object links to."""
    if not entry or not entry.get("exists"):
        return None
    a = entry.get("attributes") or {}
    name_flag = adcs.uint32(_one(a, "msPKI-Certificate-Name-Flag", 0))
    enroll_flag = adcs.uint32(_one(a, "msPKI-Enrollment-Flag", 0))
    key_flag = adcs.uint32(_one(a, "msPKI-Private-Key-Flag", 0))
    name = _one(a, "cn") or (entry.get("dn") or "CN=?").split(",", 1)[0].split("=", 1)[-1]
    acl = entry.get("acl") or {}
    return {
        "name": name,
        "display_name": _one(a, "displayName"),
        "oid": _one(a, "msPKI-Cert-Template-OID"),
        "schema_version": max(int(_one(a, "msPKI-Template-Schema-Version", 1) or 1), 1),
        "ekus": sorted(a.get("pKIExtendedKeyUsage") or []),
        "application_policies": sorted(a.get("msPKI-Certificate-Application-Policy") or []),
        "min_key_size": int(_one(a, "msPKI-Minimal-Key-Size", 0) or 0),
        "providers": providers_of(a.get("pKIDefaultCSPs") or []),
        "exportable_key": bool(key_flag & adcs.KEY_EXPORTABLE),
        "subject_from_ad": bool(name_flag & adcs.NAME_SUBJECT_REQUIRE_DIRECTORY_PATH),
        "upn_in_san": bool(name_flag & adcs.NAME_SUBJECT_ALT_REQUIRE_UPN),
        "enrollee_supplies_subject": bool(name_flag & adcs.NAME_ENROLLEE_SUPPLIES_SUBJECT),
        "manager_approval": bool(enroll_flag & adcs.ENROLL_PEND_ALL_REQUESTS),
        "prompt_user": bool(enroll_flag & adcs.ENROLL_USER_INTERACTION_REQUIRED),
        "no_security_extension": bool(enroll_flag & adcs.ENROLL_NO_SECURITY_EXTENSION),
        "authorized_signatures": int(_one(a, "msPKI-RA-Signature", 0) or 0),
        "ra_application_policies": sorted(a.get("msPKI-RA-Application-Policies") or []),
        "issuance_policies": sorted(
            ({"oid": o, "linked_group": (links or {}).get(o)} for o in a.get("msPKI-Certificate-Policy") or []),
            key=lambda e: e["oid"],
        ),
        "validity_days": adcs.period_days(_one(a, "pKIExpirationPeriod")),
        "renewal_days": adcs.period_days(_one(a, "pKIOverlapPeriod")),
        "owner": short_name(acl["owner"]) if acl.get("owner") else None,
        "acl": acl_of(acl),
    }


# -- profile -> desired record ------------------------------------------------------------
def merge_acl(acl: list[dict], grants: list[dict]) -> list[dict]:
    """Add rights to an ACL (entries by short principal name); never removes any."""
    rights: dict[str, set] = {}
    for ace in [*acl, *grants]:
        rights.setdefault(short_name(ace["principal"]), set()).update(ace["rights"])
    return [{"principal": p, "rights": sorted(r)} for p, r in sorted(rights.items())]


def grants(p: dict) -> list[dict]:
    """The ACL entries the profile asks for: Read+Enroll(+Autoenroll) and any extra entries."""
    enroll = ["Read", "Enroll"] + (["Autoenroll"] if p["autoenroll"] else [])
    return [
        {"principal": p["enroll_principal"], "rights": enroll},
        *({"principal": a["principal"], "rights": list(a["rights"])} for a in p["extra_acl"]),
    ]


def policies(p: dict, links: dict[str, str | None]) -> list[dict]:
    """Issuance policies with the group each OID is actually linked to (``links``)."""
    return sorted(
        ({"oid": e["oid"], "linked_group": links.get(e["oid"])} for e in p["issuance_policies"]), key=lambda e: e["oid"]
    )


def declared_policies(p: dict) -> list[dict]:
    """Issuance policies as the operator declared them (what the ESC gate judges)."""
    return [{"oid": e["oid"], "linked_group": e.get("linked_group")} for e in p["issuance_policies"]]


def desired_record(
    p: dict, base: dict | None, links: dict[str, str | None] | None = None, existing: bool = False
) -> dict:
    """The template after applying the profile to ``base``: the ``existing`` template, else the
    source template being duplicated (or nothing). ``links`` maps issuance policy OIDs to the
    group they are linked to; without it, the declared links are used (the ESC gate)."""
    record = copy.deepcopy(base or {})
    ess = p["enrollee_supplies_subject"]
    ekus = sorted({resolve_oid(e) for e in p["ekus"]})
    record.update(
        {
            "name": p["name"],
            "display_name": p["display_name"],
            "schema_version": p["schema_version"],
            "ekus": ekus,
            "application_policies": ekus if p["schema_version"] >= 2 else [],
            "min_key_size": p["min_key_size"],
            "providers": list(p["providers"]),
            "exportable_key": p["exportable_key"],
            "subject_from_ad": p["subject_from_ad"] and not ess,
            "upn_in_san": not ess,
            "enrollee_supplies_subject": ess,
            "manager_approval": p["manager_approval"],
            "prompt_user": p["prompt_user"],
            "no_security_extension": p["no_security_extension"],
            "authorized_signatures": p["authorized_signatures"],
            "ra_application_policies": sorted({resolve_oid(o) for o in p["ra_application_policies"]}),
            "issuance_policies": declared_policies(p) if links is None else policies(p, links),
            "validity_days": p["validity_days"],
            "renewal_days": p["renewal_days"],
            "owner": record.get("owner") if existing else DEFAULT_OWNER,
            "acl": merge_acl(record.get("acl", []), grants(p)),
        }
    )
    return record


# -- record -> view -----------------------------------------------------------------------
def view(record: dict | None, name: str, published: bool) -> dict:
    """The attribute view of a template (None: it does not exist)."""
    if record is None:
        return {"name": name, "exists": False, **{k: None for k in VIEW_KEYS}, "published": published}
    ess = bool(record.get("enrollee_supplies_subject"))
    ekus = sorted(record.get("ekus", []))
    v1 = record.get("schema_version", 1) < 2
    acl = {short_name(a["principal"]): sorted(a["rights"]) for a in record.get("acl", [])}
    return {
        "name": name,
        "exists": True,
        "display_name": record.get("display_name"),
        "schema_version": record.get("schema_version", 1),
        "ekus": ekus,
        "application_policies": sorted(record.get("application_policies", [] if v1 else ekus)),
        "min_key_size": record.get("min_key_size"),
        "providers": list(record.get("providers", [])),
        "exportable_key": bool(record.get("exportable_key")),
        "subject_from_ad": bool(record.get("subject_from_ad", not ess)),
        "upn_in_san": bool(record.get("upn_in_san", not ess)),
        "enrollee_supplies_subject": ess,
        "manager_approval": bool(record.get("manager_approval")),
        "prompt_user": bool(record.get("prompt_user")),
        "no_security_extension": bool(record.get("no_security_extension")),
        "authorized_signatures": int(record.get("authorized_signatures") or 0),
        "ra_application_policies": sorted(record.get("ra_application_policies", [])),
        "issuance_policies": sorted(record.get("issuance_policies", []), key=lambda e: e["oid"]),
        "validity_days": record.get("validity_days"),
        "renewal_days": record.get("renewal_days"),
        "owner": short_name(record["owner"]) if record.get("owner") else None,
        "acl": acl,
        "published": published,
    }


# -- record -> raw writes -----------------------------------------------------------------
def _set(word: int, bit: int, on: bool) -> int:
    return word | bit if on else word & ~bit


def raw_values(desired: dict, current_raw: dict) -> dict[str, dict]:
    """Every managed attribute of ``desired`` as typed values, keeping the bits lync2fa does not
    manage from ``current_raw`` (the template's or its source's attributes)."""
    name_flag = adcs.uint32(_one(current_raw, "msPKI-Certificate-Name-Flag", 0))
    if desired["enrollee_supplies_subject"]:
        # Supply in the request excludes every build-from-AD flag, as in the MMC's Subject Name tab.
        name_flag = adcs.NAME_ENROLLEE_SUPPLIES_SUBJECT
    else:
        name_flag &= ~adcs.NAME_ENROLLEE_SUPPLIES_SUBJECT
        name_flag = _set(name_flag, adcs.NAME_SUBJECT_ALT_REQUIRE_UPN, desired["upn_in_san"])
        name_flag = _set(name_flag, adcs.NAME_SUBJECT_REQUIRE_DIRECTORY_PATH, desired["subject_from_ad"])
    enroll_flag = adcs.uint32(_one(current_raw, "msPKI-Enrollment-Flag", 0))
    enroll_flag = _set(enroll_flag, adcs.ENROLL_PEND_ALL_REQUESTS, desired["manager_approval"])
    enroll_flag = _set(enroll_flag, adcs.ENROLL_USER_INTERACTION_REQUIRED, desired["prompt_user"])
    enroll_flag = _set(enroll_flag, adcs.ENROLL_NO_SECURITY_EXTENSION, desired["no_security_extension"])
    key_flag = _set(
        adcs.uint32(_one(current_raw, "msPKI-Private-Key-Flag", 0)), adcs.KEY_EXPORTABLE, desired["exportable_key"]
    )

    def strings(values):
        return typed("strings", list(values) if values else None)

    return {
        "displayName": typed("string", desired["display_name"]),
        "msPKI-Template-Schema-Version": typed("int", desired["schema_version"]),
        "pKIExtendedKeyUsage": strings(desired["ekus"]),
        "msPKI-Certificate-Application-Policy": strings(desired["application_policies"]),
        "msPKI-RA-Application-Policies": strings(desired["ra_application_policies"]),
        "msPKI-Certificate-Policy": strings([e["oid"] for e in desired["issuance_policies"]]),
        "msPKI-Minimal-Key-Size": typed("int", desired["min_key_size"]),
        "pKIDefaultCSPs": strings([f"{i},{csp}" for i, csp in enumerate(desired["providers"], 1)]),
        "msPKI-Private-Key-Flag": typed("int", adcs.int32(key_flag)),
        "msPKI-Certificate-Name-Flag": typed("int", adcs.int32(name_flag)),
        "msPKI-Enrollment-Flag": typed("int", adcs.int32(enroll_flag)),
        "msPKI-RA-Signature": typed("int", desired["authorized_signatures"]),
        "pKIExpirationPeriod": typed("bytes", adcs.period_bytes(desired["validity_days"])),
        "pKIOverlapPeriod": typed("bytes", adcs.period_bytes(desired["renewal_days"])),
    }


# Which attributes carry which view keys (an attribute is written when one of its keys differs).
WRITES = {
    "displayName": ("display_name",),
    "msPKI-Template-Schema-Version": ("schema_version",),
    "pKIExtendedKeyUsage": ("ekus",),
    "msPKI-Certificate-Application-Policy": ("application_policies",),
    "msPKI-RA-Application-Policies": ("ra_application_policies",),
    "msPKI-Certificate-Policy": ("issuance_policies",),
    "msPKI-Minimal-Key-Size": ("min_key_size",),
    "pKIDefaultCSPs": ("providers",),
    "msPKI-Private-Key-Flag": ("exportable_key",),
    "msPKI-Certificate-Name-Flag": ("subject_from_ad", "upn_in_san", "enrollee_supplies_subject"),
    "msPKI-Enrollment-Flag": ("manager_approval", "prompt_user", "no_security_extension"),
    "msPKI-RA-Signature": ("authorized_signatures",),
    "pKIExpirationPeriod": ("validity_days",),
    "pKIOverlapPeriod": ("renewal_days",),
}


def changed_attributes(current: dict, desired: dict, current_raw: dict) -> dict[str, dict]:
    """The typed writes that turn the template ``current`` (a view) into ``desired`` (a view)."""
    values = raw_values(desired, current_raw)
    return {attr: values[attr] for attr, keys in WRITES.items() if any(current.get(k) != desired.get(k) for k in keys)}


def missing_rights(acl_view: dict, grants_: list[dict]) -> list[tuple[str, str]]:
    """(principal as given, right) pairs the template's ACL (a view mapping) lacks."""
    have = {p.lower(): set(r or ()) for p, r in (acl_view or {}).items()}
    out = []
    for grant in grants_:
        current = have.setdefault(short_name(grant["principal"]).lower(), set())
        for right in grant["rights"]:
            if right not in current:
                out.append((grant["principal"], right))
                current.add(right)
    return out
