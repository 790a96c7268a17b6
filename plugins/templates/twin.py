"""The templates tier's lab twin: the scripts' contract on the lab's state.

Templates are store kind ``template`` (the shape of ``plugins/ca/builtin_templates.py``),
the OID objects under CN=OID are kind ``pki_oid`` (key: the OID), and what a CA issues is the
``published`` list of its ``ca`` object.
"""
from __future__ import annotations

import hashlib
import secrets

from lync2fa.lab.directory import principal_exists
from lync2fa.lab.twin import TwinContext, TwinFailure, outcome

from ..ca.twin import require_ca, template_in_ad
from . import model

SMARTCARD_USER = "SmartcardUser"
CREATED_PREFIX = "template/"


def _published(ca: dict | None, name: str) -> bool:
    return name in (ca or {}).get("published", [])


def _set_published(ctx: TwinContext, ca: dict | None, name: str, wanted: bool) -> None:
    if ca is None or _published(ca, name) == wanted:
        return
    names = set(ca.get("published", []))
    ca["published"] = sorted(names | {name} if wanted else names - {name})
    ctx.store.put("ca", ctx.host.name, ca)


def _forest_oid(ctx: TwinContext) -> str:
    """The forest's msPKI-Cert-Template-OID base (fixed per lab domain, as AD CS makes it once)."""
    digest = hashlib.sha256(ctx.estate.domain.encode()).digest()
    return "1.3.6.1.4.1.311.21.8." + ".".join(str(int.from_bytes(digest[i:i + 3], "big")) for i in range(0, 18, 3))


def _template_oid(ctx: TwinContext, record_id: str) -> str:
    """The OID an earlier, failed attempt recorded, or a fresh unused one (Get-TemplateOid)."""
    recorded = (ctx.records(record_id).get(record_id) or {}).get("previous") or {}
    if recorded.get("oid"):
        return recorded["oid"]
    while True:
        oid = f"{_forest_oid(ctx)}.{secrets.randbelow(90000000) + 10000000}.{secrets.randbelow(90000000) + 10000000}"
        if ctx.store.get("pki_oid", oid) is None:
            return oid


def _new_template(ctx: TwinContext, record_id: str, display_name: str) -> str:
    """The OID of a new template, recorded before anything is created (New-TemplateFromSource)."""
    oid = _template_oid(ctx, record_id)
    ctx.record(record_id, created=True, previous={"oid": oid})
    if ctx.store.get("pki_oid", oid) is None:
        ctx.store.put("pki_oid", oid, {"display_name": display_name, "type": "template", "linked_group": None})
    return oid


def _links(ctx: TwinContext, p: dict) -> dict:
    """msDS-OIDToGroupLink of each issuance policy OID; warns where it differs from the declaration."""
    links = {}
    for entry in p["issuance_policies"]:
        actual = (ctx.store.get("pki_oid", entry["oid"]) or {}).get("linked_group")
        links[entry["oid"]] = actual
        if (entry.get("linked_group") or None) != actual:
            ctx.warn(f"Issuance policy {entry['oid']} is linked to {actual or 'no group'}, not "
                     f"{entry.get('linked_group') or 'no group'} as declared in templates_issuance_policies.")
    return links


def smartcard(ctx: TwinContext, p: dict) -> dict:
    ca = require_ca(ctx)
    if p["profile"] == "smartcard_user":
        return _smartcard_user(ctx, ca)
    _check_principals(ctx, p)
    existing = ctx.store.get("template", p["name"])
    before = model.view(existing, p["name"], _published(ca, p["name"]))
    base = existing
    if existing is None:
        base = template_in_ad(ctx, p["source_template"])
    desired = model.desired_record(p, base, _links(ctx, p), existing=existing is not None)
    if existing is None:
        desired.update({"oid": _new_template(ctx, CREATED_PREFIX + p["name"], p["display_name"]),
                        "created_by": "lync2fa", "source_template": p["source_template"]})
    if desired != existing:
        ctx.store.put("template", p["name"], desired)
    _set_published(ctx, ca, p["name"], p["publish"])
    after = model.view(desired, p["name"], p["publish"])
    if existing is None:  # a new template's ACL shows as one added line per principal
        before["acl"] = {principal: None for principal in after["acl"]}
    return outcome(before, after, warnings=ctx.warnings)


def _check_principals(ctx: TwinContext, p: dict) -> None:
    for principal in [p["enroll_principal"], *(a["principal"] for a in p["extra_acl"])]:
        if not principal_exists(ctx.store, principal):
            raise TwinFailure(f"Some or all identity references could not be translated: {principal}")


def _smartcard_user(ctx: TwinContext, ca: dict | None) -> dict:
    """The docs' plain path: the CA tier issues Smartcard User; nothing to write here."""
    record = template_in_ad(ctx, SMARTCARD_USER)
    state = model.view(record, SMARTCARD_USER, _published(ca, SMARTCARD_USER))
    return outcome(state, state, warnings=ctx.warnings)


def audit(ctx: TwinContext, p: dict) -> dict:
    ca = ctx.store.get("ca", ctx.host.name)
    if not ca or not ca.get("common_name"):
        raise TwinFailure("No certification authority is installed on this host; run ca.authority first.")
    templates = {name: model.view(ctx.store.get("template", name), name, True) for name in ca.get("published", [])}
    state = {"ca": ca["common_name"], "templates": templates}
    return outcome(state, state, warnings=ctx.warnings)


def rollback(ctx: TwinContext, p: dict) -> dict:
    ca = ctx.store.get("ca", ctx.host.name)
    before, after = {}, {}
    for rid, data in ctx.records(CREATED_PREFIX).items():
        name = rid[len(CREATED_PREFIX):]
        record = ctx.store.get("template", name)
        before[name] = {"exists": record is not None, "published": _published(ca, name)}
        after[name] = {"exists": False, "published": False}
        _set_published(ctx, ca, name, False)
        oids = {(data.get("previous") or {}).get("oid"), (record or {}).get("oid")}
        if record is not None:
            ctx.store.delete("template", name)
        for oid in oids - {None, ""}:
            ctx.store.delete("pki_oid", oid)    # a missing one is no error, as in the script
        ctx.unmark_created(rid)
    return outcome({"templates": before}, {"templates": after}, warnings=ctx.warnings)
