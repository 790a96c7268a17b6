"""ca.template_permissions: Read + Enroll (Allow) on the Smartcard User template for the
smart-card users' group (reference section 3, the template's Security tab), optionally
Autoenroll: ACEs on the template's object in the configuration partition, only the missing ones.
"""

from __future__ import annotations

from lync2fa import adcs
from lync2fa.decision import Context, Decision
from lync2fa.hostops import ace_add, ad_object_fact

MISSING = "Certificate template {name} does not exist in Active Directory."
MISSING_CHECK_MODE = (
    "Template {name} is not in Active Directory yet (check mode): assuming the Enterprise CA installation creates it."
)


def facts(p: dict) -> dict:
    return {"template": ad_object_fact(adcs.template_dn(p["template"]), ("cn",), acl=True)}


def _same_principal(account: str | None, principal: str) -> bool:
    if not account:
        return False
    return account.split("\\")[-1].lower() == principal.split("\\")[-1].lower()


def rights(acl: dict | None, principal: str) -> dict:
    """What ``principal``'s own Allow ACEs grant on the template (explicit or inherited)."""
    aces = [
        a for a in (acl or {}).get("aces", []) if a.get("allow", True) and _same_principal(a.get("account"), principal)
    ]

    def extended(guid: str) -> bool:
        return any(a["rights"] & adcs.EXTENDED_RIGHT and str(a.get("object_type") or "").lower() == guid for a in aces)

    return {
        "read": any(a["rights"] & adcs.GENERIC_READ == adcs.GENERIC_READ for a in aces),
        "enroll": extended(adcs.ENROLL),
        "autoenroll": extended(adcs.AUTOENROLL),
    }


def decide(ctx: Context) -> Decision:
    p = ctx.params
    template = ctx.facts.value("template") or {}
    view = {"template": p["template"], "principal": p["principal"]}
    warnings = []
    if not template.get("exists"):
        if not ctx.check_mode:
            return Decision.refuse(
                MISSING.format(name=p["template"]), before={**view, "read": False, "enroll": False, "autoenroll": False}
            )
        warnings.append(MISSING_CHECK_MODE.format(name=p["template"]))
    have = rights(template.get("acl"), p["principal"])
    before = {**view, **have}
    after = {**view, "read": True, "enroll": True, "autoenroll": have["autoenroll"] or p["autoenroll"]}
    dn = adcs.template_dn(p["template"])
    operations = []
    if not have["read"]:
        operations.append(ace_add(dn, p["principal"], adcs.GENERIC_READ))
    if not have["enroll"]:
        operations.append(ace_add(dn, p["principal"], adcs.EXTENDED_RIGHT, adcs.ENROLL))
    if p["autoenroll"] and not have["autoenroll"]:
        operations.append(ace_add(dn, p["principal"], adcs.EXTENDED_RIGHT, adcs.AUTOENROLL))
    return Decision(before=before, after=after, operations=operations, warnings=warnings)
