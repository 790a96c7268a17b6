"""The template profile as data: task parameters -> template record -> attribute view.

A *record* has the shape of ``plugins/ca/builtin_templates.py`` (what the lab stores and the
ESC rules read) plus the attributes this tier manages. The *view* is what the scripts and the
twin return as before/after: one key per managed template attribute, so the diff is
attribute-level.
"""
from __future__ import annotations

import copy
import re

from ..ca.builtin_templates import EKU
from .esc import short_name

OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")  # use fullmatch
DEFAULT_OWNER = "Domain Admins"
VIEW_KEYS = ("display_name", "schema_version", "ekus", "application_policies", "min_key_size", "providers",
             "exportable_key", "subject_from_ad", "upn_in_san", "enrollee_supplies_subject", "manager_approval",
             "prompt_user", "no_security_extension", "authorized_signatures", "ra_application_policies",
             "issuance_policies", "validity_days", "renewal_days", "owner", "acl")


def resolve_oid(value: str) -> str:
    """A friendly EKU name (``smart_card_logon``) or a dotted OID, as the OID."""
    return EKU.get(value, value)


def merge_acl(acl: list[dict], grants: list[dict]) -> list[dict]:
    """Add rights to an ACL (entries by short principal name); never removes any."""
    rights: dict[str, set] = {}
    for ace in [*acl, *grants]:
        rights.setdefault(short_name(ace["principal"]), set()).update(ace["rights"])
    return [{"principal": p, "rights": sorted(r)} for p, r in sorted(rights.items())]


def grants(p: dict) -> list[dict]:
    """The ACL entries the profile asks for: Read+Enroll(+Autoenroll) and any extra entries."""
    enroll = ["Read", "Enroll"] + (["Autoenroll"] if p["autoenroll"] else [])
    return [{"principal": p["enroll_principal"], "rights": enroll},
            *({"principal": a["principal"], "rights": list(a["rights"])} for a in p["extra_acl"])]


def policies(p: dict, links: dict[str, str | None]) -> list[dict]:
    """Issuance policies with the group each OID is actually linked to (``links``)."""
    return sorted(({"oid": e["oid"], "linked_group": links.get(e["oid"])} for e in p["issuance_policies"]),
                  key=lambda e: e["oid"])


def declared_policies(p: dict) -> list[dict]:
    """Issuance policies as the operator declared them (what the ESC gate judges)."""
    return [{"oid": e["oid"], "linked_group": e.get("linked_group")} for e in p["issuance_policies"]]


def desired_record(p: dict, base: dict | None, links: dict[str, str | None] | None = None,
                   existing: bool = False) -> dict:
    """The template after applying the profile to ``base``: the ``existing`` template, else the
    source template being duplicated (or nothing). ``links`` maps issuance policy OIDs to the
    group they are linked to; without it, the declared links are used (the ESC gate)."""
    record = copy.deepcopy(base or {})
    ess = p["enrollee_supplies_subject"]
    ekus = sorted({resolve_oid(e) for e in p["ekus"]})
    record.update({
        "name": p["name"], "display_name": p["display_name"], "schema_version": p["schema_version"],
        "ekus": ekus, "application_policies": ekus if p["schema_version"] >= 2 else [],
        "min_key_size": p["min_key_size"], "providers": list(p["providers"]), "exportable_key": p["exportable_key"],
        "subject_from_ad": p["subject_from_ad"] and not ess, "upn_in_san": not ess, "enrollee_supplies_subject": ess,
        "manager_approval": p["manager_approval"], "prompt_user": p["prompt_user"],
        "no_security_extension": p["no_security_extension"], "authorized_signatures": p["authorized_signatures"],
        "ra_application_policies": sorted({resolve_oid(o) for o in p["ra_application_policies"]}),
        "issuance_policies": declared_policies(p) if links is None else policies(p, links),
        "validity_days": p["validity_days"], "renewal_days": p["renewal_days"],
        "owner": record.get("owner") if existing else DEFAULT_OWNER,
        "acl": merge_acl(record.get("acl", []), grants(p)),
    })
    return record


def view(record: dict | None, name: str, published: bool) -> dict:
    """The attribute view of a stored template (None: it does not exist)."""
    if record is None:
        return {"name": name, "exists": False, **{k: None for k in VIEW_KEYS}, "published": published}
    ess = bool(record.get("enrollee_supplies_subject"))
    ekus = sorted(record.get("ekus", []))
    v1 = record.get("schema_version", 1) < 2
    acl = {short_name(a["principal"]): sorted(a["rights"]) for a in record.get("acl", [])}
    return {
        "name": name, "exists": True, "display_name": record.get("display_name"),
        "schema_version": record.get("schema_version", 1), "ekus": ekus,
        "application_policies": sorted(record.get("application_policies", [] if v1 else ekus)),
        "min_key_size": record.get("min_key_size"), "providers": list(record.get("providers", [])),
        "exportable_key": bool(record.get("exportable_key")),
        "subject_from_ad": bool(record.get("subject_from_ad", not ess)),
        "upn_in_san": bool(record.get("upn_in_san", not ess)), "enrollee_supplies_subject": ess,
        "manager_approval": bool(record.get("manager_approval")), "prompt_user": bool(record.get("prompt_user")),
        "no_security_extension": bool(record.get("no_security_extension")),
        "authorized_signatures": int(record.get("authorized_signatures") or 0),
        "ra_application_policies": sorted(record.get("ra_application_policies", [])),
        "issuance_policies": sorted(record.get("issuance_policies", []), key=lambda e: e["oid"]),
        "validity_days": record.get("validity_days"), "renewal_days": record.get("renewal_days"),
        "owner": short_name(record["owner"]) if record.get("owner") else None, "acl": acl,
        "published": published,
    }
