"""The templates tier's facts and decisions: what each task reads on the CA host (the CA's
registry, the templates it issues, the template objects and their ACLs in AD, the OID objects,
the rollback records) and the operations that bring AD to the profile.

Every setting, flag bit and message is decided here (and in ``model``); the host only reads
raw attributes and writes typed values, ACEs and the documented ADCSAdministration cmdlets.
"""

from __future__ import annotations

import hashlib

from lync2fa import adcs, records
from lync2fa.decision import Context, Decision
from lync2fa.hostops import (
    ace_add,
    ad_create,
    ad_delete,
    ad_object_fact,
    ad_search_fact,
    ad_set,
    cmdlet,
    cmdlet_fact,
    named_fact,
    typed,
)

from ..ca.common import CA_CONFIG, NO_CA, NO_CA_CHECK_MODE, active_ca, ca_config_fact
from ..ca.templates_published import RETRY as PUBLISH_RETRY
from . import esc, model

SMARTCARD_USER = "SmartcardUser"
RECORD_PREFIX = "template/"
ADCS_MODULE = "ADCSAdministration"
# The CA tier's tasks that change Smartcard User (issue it, grant Enroll on it).
CA_TIER_CHANGES = frozenset({"ca.templates_published", "ca.template_permissions"})
TEMPLATE_FILTER = f"(objectClass={adcs.TEMPLATE_CLASS})"
OID_FILTER = f"(objectClass={adcs.OID_CLASS})"
OID_ATTRIBUTES = ("cn", "displayName", adcs.TEMPLATE_OID_ATTRIBUTE, adcs.OID_LINK_ATTRIBUTE)
TEMPLATE_ATTRIBUTES = ("cn", *model.ATTRIBUTES)


def not_in_ad(name: str) -> str:
    return f"Certificate template {name} does not exist in Active Directory."


def assumed_in_check_mode(name: str) -> str:
    return (
        f"Template {name} is not in Active Directory yet (check mode): assuming the Enterprise CA "
        "installation creates it."
    )


# -- shared facts ---------------------------------------------------------------------------
def ca_facts() -> dict:
    return {
        CA_CONFIG: ca_config_fact(),
        "published": cmdlet_fact("Get-CATemplate", select=("Name",), module=ADCS_MODULE),
    }


def oid_facts() -> dict:
    return {"oids": ad_search_fact(adcs.OID_CONTAINER, OID_FILTER, OID_ATTRIBUTES, scope="onelevel")}


def published_names(ctx: Context) -> tuple[list[str], str | None]:
    """The templates this CA issues (Get-CATemplate), or the refusal when they cannot be read.
    Without a CA there is nothing issued (the cmdlet's failure then means nothing)."""
    if active_ca(ctx.facts) is None:
        return [], None
    error = ctx.facts.error("published")
    if error is not None:
        return [], f"Get-CATemplate failed: {error.get('message', 'unknown error')}".strip()
    return [str(row.get("Name")) for row in ctx.facts.value("published") or []], None


def group_of(dn: str | None) -> str | None:
    """The group an msDS-OIDToGroupLink names, as its cn (first RDN of the DN)."""
    if not dn:
        return None
    rdn, value = dn, ""
    for i, char in enumerate(dn):  # the first unescaped comma ends the RDN
        if char == "," and (i == 0 or dn[i - 1] != "\\"):
            rdn = dn[:i]
            break
    value = rdn.split("=", 1)[-1]
    return value.replace("\\,", ",").replace("\\\\", "\\")


def oid_objects(ctx: Context) -> list[dict]:
    return [o for o in ctx.facts.value("oids") or [] if o.get("exists", True)]


def links(objects: list[dict]) -> dict[str, str | None]:
    """Issuance policy / template OID -> the group its OID object links to."""
    out = {}
    for obj in objects:
        attributes = obj.get("attributes") or {}
        for oid in attributes.get(adcs.TEMPLATE_OID_ATTRIBUTE) or []:
            out[oid] = group_of((attributes.get(adcs.OID_LINK_ATTRIBUTE) or [None])[0])
    return out


def _first(entry: dict | None, attribute: str):
    values = ((entry or {}).get("attributes") or {}).get(attribute) or []
    return values[0] if values else None


# -- templates.smartcard --------------------------------------------------------------------
def principals(p: dict) -> list[str]:
    return list(dict.fromkeys([p["enroll_principal"], *(a["principal"] for a in p["extra_acl"])]))


def smartcard_facts(p: dict) -> dict:
    name = SMARTCARD_USER if p["profile"] == "smartcard_user" else p["name"]
    facts = {
        **ca_facts(),
        **oid_facts(),
        "template": ad_object_fact(adcs.template_dn(name), TEMPLATE_ATTRIBUTES, acl=True),
    }
    if p["profile"] == "vsc":
        facts.update(
            {
                "source": ad_object_fact(adcs.template_dn(p["source_template"]), TEMPLATE_ATTRIBUTES, acl=True),
                "oid_base": ad_object_fact(adcs.OID_CONTAINER, [adcs.TEMPLATE_OID_ATTRIBUTE]),
                "accounts": named_fact("account_sids", names=principals(p)),
                records.FACT: records.records_fact(),
            }
        )
    return facts


def _check_ca(ctx: Context, warnings: list[str]) -> tuple[list[str], str | None]:
    if active_ca(ctx.facts) is None:
        if not ctx.check_mode:
            return [], NO_CA
        warnings.append(NO_CA_CHECK_MODE)
    return published_names(ctx)


def decide_smartcard(ctx: Context) -> Decision:
    warnings: list[str] = []
    published, refusal = _check_ca(ctx, warnings)
    if refusal:
        return Decision.refuse(refusal, warnings=warnings)
    issued = {n.lower() for n in published}
    if ctx.params["profile"] == "smartcard_user":
        return _smartcard_user(ctx, SMARTCARD_USER in issued or SMARTCARD_USER.lower() in issued, warnings)
    return _duplicate(ctx, issued, warnings)


def _smartcard_user(ctx: Context, published: bool, warnings: list[str]) -> Decision:
    """The docs' plain path: the CA tier issues Smartcard User and grants Enroll; nothing to write.
    The template is reported as the CA tier leaves it: when its changes are planned in the same
    request, the engine applies them first and asks again."""
    waiting = sorted(CA_TIER_CHANGES & set(ctx.planned))
    if waiting and not ctx.check_mode:
        return Decision.refuse(
            f"{SMARTCARD_USER} is reported after {', '.join(waiting)} applied its changes", warnings=warnings
        )
    entry = ctx.facts.value("template") or {}
    if not entry.get("exists"):
        if not ctx.check_mode:
            return Decision.refuse(not_in_ad(SMARTCARD_USER), warnings=warnings)
        warnings.append(assumed_in_check_mode(SMARTCARD_USER))
    state = model.view(model.record_from_ad(entry, links(oid_objects(ctx))), SMARTCARD_USER, published)
    return Decision(before=state, after=state, warnings=warnings)


def _link_warnings(p: dict, actual: dict[str, str | None]) -> list[str]:
    out = []
    for entry in p["issuance_policies"]:
        declared, linked = entry.get("linked_group") or None, actual.get(entry["oid"])
        if (declared or "") != (linked or ""):
            out.append(
                f"Issuance policy {entry['oid']} is linked to {linked or 'no group'}, not "
                f"{declared or 'no group'} as declared in templates_issuance_policies."
            )
    return out


def template_oid(previous: dict | None, base: str, taken: set[str], name: str) -> str:
    """The OID of a new template: the one an earlier, interrupted attempt recorded (so a retry
    leaves no second OID object behind), else one below the forest's base that no OID object
    uses (two random-looking 8-digit arcs, as AD CS makes them, derived from the name so the
    decision is reproducible)."""
    if previous and previous.get("oid"):
        return str(previous["oid"])
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{base}|{name.lower()}|{attempt}".encode()).digest()
        arcs = [10000000 + int.from_bytes(digest[i : i + 4], "big") % 90000000 for i in (0, 4)]
        oid = f"{base}.{arcs[0]}.{arcs[1]}"
        if oid not in taken:
            return oid
        attempt += 1


def oid_cn(oid: str) -> str:
    """The cn of an OID object: the OID's last arc and 32 hex digits (as AD CS names them)."""
    return f"{oid.rsplit('.', 1)[-1]}.{hashlib.md5(oid.encode()).hexdigest().upper()}"


def _new_template_attributes(source_raw: dict, after: dict, oid: str) -> dict[str, dict]:
    """The duplicate's attributes: the source's (Duplicate Template), the profile on top."""
    attributes = {}
    for name in model.COPIED:
        values = source_raw.get(name) or []
        if values:
            syntax = adcs.TEMPLATE_ATTRIBUTES[name]
            attributes[name] = typed(syntax, list(values) if syntax == "strings" else values[0])
    # A duplicate is not a default template (CT_FLAG_IS_DEFAULT) but a modified one.
    flags = adcs.uint32((source_raw.get("flags") or [0])[0])
    attributes["flags"] = typed("int", adcs.int32((flags & ~adcs.TEMPLATE_IS_DEFAULT) | adcs.TEMPLATE_IS_MODIFIED))
    for name, value in model.raw_values(after, source_raw).items():
        if value["value"] is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    attributes.update(
        {
            adcs.TEMPLATE_OID_ATTRIBUTE: typed("string", oid),
            "revision": typed("int", 100),
            "msPKI-Template-Minor-Revision": typed("int", 0),
        }
    )
    return attributes


def _copied_aces(dn: str, source: dict | None, warnings: list[str]) -> list[dict]:
    """Duplicate Template keeps the source's explicit permissions."""
    ops = []
    for ace in ((source or {}).get("acl") or {}).get("aces") or []:
        if ace.get("inherited"):
            continue
        if not ace.get("account"):
            warnings.append(
                f"The source template's entry for {ace.get('sid')} names no account that translates; it is not copied."
            )
            continue
        object_type = ace.get("object_type")
        ops.append(
            ace_add(
                dn,
                ace["account"],
                int(ace["rights"]),
                None if not object_type or object_type == adcs.ALL_EXTENDED_RIGHTS else object_type,
                bool(ace.get("allow", True)),
            )
        )
    return ops


def _duplicate(ctx: Context, issued: set[str], warnings: list[str]) -> Decision:
    p = ctx.params
    name, source_name = p["name"], p["source_template"]
    sids = ctx.facts.value("accounts") or {}
    for principal in principals(p):
        if not sids.get(principal):
            return Decision.refuse(
                f"Some or all identity references could not be translated: {principal}", warnings=warnings
            )
    objects = oid_objects(ctx)
    actual_links = links(objects)
    entry = ctx.facts.value("template") or {}
    existing = model.record_from_ad(entry, actual_links)
    before = model.view(existing, name, name.lower() in issued)
    source: dict = {}  # the source template's fact: read only when the template is created
    if existing is None:
        source = ctx.facts.value("source") or {}
        base = model.record_from_ad(source, actual_links)
        if base is None:
            if not ctx.check_mode:
                return Decision.refuse(not_in_ad(source_name), before=before, warnings=warnings)
            warnings.append(assumed_in_check_mode(source_name))
    else:
        base = existing
    warnings += _link_warnings(p, actual_links)
    desired = model.desired_record(p, base, actual_links, existing=existing is not None)
    after = model.view(desired, name, p["publish"])

    dn = adcs.template_dn(name)
    operations: list[dict] = []
    if existing is None:
        before["acl"] = {principal: None for principal in after["acl"]}  # one added line per principal
        recorded = records.parse(ctx.facts.get(records.FACT))
        rid = RECORD_PREFIX + name
        forest = _first(ctx.facts.value("oid_base"), adcs.TEMPLATE_OID_ATTRIBUTE) or ""
        oid = template_oid((recorded.get(rid) or {}).get("previous"), forest, set(actual_links), name)
        # The record (with the OID) comes first: an interrupted apply stays undoable, and a retry
        # does not take the half-made template for one that was there before.
        operations += records.record(recorded, rid, created=True, previous={"oid": oid})
        if oid not in actual_links:
            operations.append(
                ad_create(
                    adcs.OID_CONTAINER,
                    oid_cn(oid),
                    adcs.OID_CLASS,
                    {
                        "flags": typed("int", adcs.OID_TEMPLATE_TYPE),
                        "displayName": typed("string", p["display_name"]),
                        adcs.TEMPLATE_OID_ATTRIBUTE: typed("string", oid),
                    },
                )
            )
        operations.append(
            ad_create(
                adcs.TEMPLATES_CONTAINER,
                name,
                adcs.TEMPLATE_CLASS,
                _new_template_attributes(source.get("attributes") or {}, after, oid),
            )
        )
        operations += _copied_aces(dn, source, warnings)
        current_acl = model.view(base, source_name, False)["acl"] if base else {}
    else:
        raw = entry.get("attributes") or {}
        writes = model.changed_attributes(before, after, raw)
        if writes:
            # Clients and CAs pick up a changed template by its revision.
            minor = int((raw.get("msPKI-Template-Minor-Revision") or [0])[0] or 0)
            writes["msPKI-Template-Minor-Revision"] = typed("int", minor + 1)
            operations.append(ad_set(dn, writes))
        current_acl = before["acl"]
    for principal, right in model.missing_rights(current_acl, model.grants(p)):
        rights, object_type = model.RIGHT_ACES[right]
        operations.append(ace_add(dn, principal, rights, object_type))
    if p["publish"] and name.lower() not in issued:
        # Retried while the CA does not see the template yet (replication, its template cache).
        operations.append(
            cmdlet("Add-CATemplate", {"Name": name, "Force": True}, module=ADCS_MODULE, retry=PUBLISH_RETRY)
        )
    elif not p["publish"] and name.lower() in issued:
        operations.append(cmdlet("Remove-CATemplate", {"Name": name, "Force": True}, module=ADCS_MODULE))
    return Decision(before=before, after=after, operations=operations, warnings=warnings)


# -- templates.audit ------------------------------------------------------------------------
def audit_facts(p: dict) -> dict:
    return {
        **ca_facts(),
        **oid_facts(),
        "templates": ad_search_fact(
            adcs.TEMPLATES_CONTAINER, TEMPLATE_FILTER, TEMPLATE_ATTRIBUTES, scope="onelevel", acl=True
        ),
    }


def _by_name(entries: list[dict]) -> dict[str, dict]:
    return {str(_first(e, "cn") or "").lower(): e for e in entries or []}


def decide_audit(ctx: Context) -> Decision:
    name = active_ca(ctx.facts)
    if name is None:
        return Decision.refuse(NO_CA)
    published, refusal = published_names(ctx)
    if refusal:
        return Decision.refuse(refusal)
    entries = _by_name(ctx.facts.value("templates"))
    actual_links = links(oid_objects(ctx))
    templates = {
        t: model.view(model.record_from_ad(entries.get(t.lower()), actual_links), t, True) for t in sorted(published)
    }
    state = {"ca": name, "templates": templates}
    accepted = {a.lower() for a in ctx.params["accepted_findings"]}
    warnings, refused = [], []
    for template_name, template in templates.items():
        if not template["exists"]:
            continue
        for finding in esc.evaluate(template):
            key = f"{finding.rule}:{template_name}"
            note = " (accepted in templates_accepted_findings)" if key.lower() in accepted else ""
            warnings.append(f"[{finding.rule}] {finding.message}.{note} Fix: {finding.fix}")
            if not note:
                refused.append(key)
    if refused:
        return Decision(
            before=state,
            after=state,
            warnings=warnings,
            failed=True,
            msg=f"{len(refused)} ESC finding(s) on templates this CA issues: {', '.join(refused)}. "
            "Fix them, or accept one on purpose with templates_accepted_findings: "
            "['RULE:Template']",
        )
    return Decision(before=state, after=state, warnings=warnings)


# -- templates.rollback ---------------------------------------------------------------------
def rollback_facts(p: dict) -> dict:
    return {
        **ca_facts(),
        **oid_facts(),
        records.FACT: records.records_fact(),
        "templates": ad_search_fact(
            adcs.TEMPLATES_CONTAINER, TEMPLATE_FILTER, ("cn", adcs.TEMPLATE_OID_ATTRIBUTE), scope="onelevel"
        ),
    }


def decide_rollback(ctx: Context) -> Decision:
    """Unpublish and delete the templates lync2fa created, with their OID objects. The record is
    written before anything is created, so it may name a template that was never made, or an
    OID object whose template was not: whatever of them exists is removed."""
    recorded = records.with_prefix(records.parse(ctx.facts.get(records.FACT)), RECORD_PREFIX)
    if not recorded:
        return Decision(before={"templates": {}}, after={"templates": {}})
    published, refusal = published_names(ctx)
    if refusal:
        return Decision.refuse(refusal)
    issued = {n.lower() for n in published}
    entries = _by_name(ctx.facts.value("templates"))
    objects = oid_objects(ctx)
    before, after, operations = {}, {}, []
    for rid, data in recorded.items():
        name = rid[len(RECORD_PREFIX) :]
        entry = entries.get(name.lower())
        before[name] = {"exists": entry is not None, "published": name.lower() in issued}
        after[name] = {"exists": False, "published": False}
        if name.lower() in issued:
            operations.append(cmdlet("Remove-CATemplate", {"Name": name, "Force": True}, module=ADCS_MODULE))
        if entry is not None:
            operations.append(ad_delete(adcs.template_dn(name)))
        oids = {(data.get("previous") or {}).get("oid"), _first(entry, adcs.TEMPLATE_OID_ATTRIBUTE)} - {None, ""}
        for obj in objects:
            if set((obj.get("attributes") or {}).get(adcs.TEMPLATE_OID_ATTRIBUTE) or []) & oids:
                operations.append(ad_delete(obj["dn"]))
        operations.append(records.forget(rid))
    return Decision(before={"templates": before}, after={"templates": after}, operations=operations)
