"""ca.templates_published: "Certificate Templates -> New -> Certificate Template to Issue" for each
template the procedure needs (reference section 3). Only adds; templates the CA already issues
are left alone.

A template written to AD moments before (``templates.smartcard``, or the Enterprise CA's own
installation) may not be visible to the CA yet: directory replication to the DC the CA reads,
and the CA's template cache (issue 7 defect 5). ``Add-CATemplate`` is therefore retried with
back-off (``RETRY``) while it fails; the exact error id of "template not found" is not documented,
so every ``Add-CATemplate`` error is retried, at most ``RETRY["attempts"]`` times.
"""

from __future__ import annotations

from lync2fa import adcs
from lync2fa.decision import Context, Decision
from lync2fa.hostops import ad_object_fact, cmdlet, cmdlet_fact, retry_policy

from .common import CA_CONFIG, active_ca, ca_config_fact, without_ca

# 1 + 2 + 4 + 8 + 16 s: half a minute for replication inside a site and the CA's cache.
RETRY = retry_policy(attempts=6, delay_s=1.0, on_error_id="AddCATemplateCommand")
NOT_IN_AD = "The certificate template {name} was not found in Active Directory."


def _template_fact(name: str) -> str:
    return f"template:{name}"


def facts(p: dict) -> dict:
    queries = {
        CA_CONFIG: ca_config_fact(),
        "issued": cmdlet_fact("Get-CATemplate", {}, ("Name",), module="ADCSAdministration"),
    }
    for name in p["templates"]:
        queries[_template_fact(name)] = ad_object_fact(adcs.template_dn(name), ("cn",))
    return queries


def decide(ctx: Context) -> Decision:
    p = ctx.params
    warnings: list[str] = []
    refused = without_ca(ctx, warnings)
    if refused is not None:
        return refused
    if active_ca(ctx.facts) is None:
        published = []
    else:
        published = sorted(str(row["Name"]) for row in ctx.facts.value("issued") or [])
    issued = {name.lower() for name in published}
    missing = [name for name in dict.fromkeys(p["templates"]) if name.lower() not in issued]
    before = {"published": published}
    if active_ca(ctx.facts) is not None:
        for name in missing:
            if not (ctx.facts.value(_template_fact(name)) or {}).get("exists"):
                return Decision.refuse(NOT_IN_AD.format(name=name), before=before, warnings=warnings)
    after = {"published": sorted({*published, *missing})}
    operations = [
        cmdlet("Add-CATemplate", {"Name": name, "Force": True}, module="ADCSAdministration", retry=RETRY)
        for name in missing
    ]
    return Decision(before=before, after=after, operations=operations, warnings=warnings)
