"""An example third-party plugin: sets the CA's audit filter (AD CS auditing, Locksmith's
"Auditing" check) after the CA is installed.

It follows the seam every tier follows (docs/writing-a-tier.md): the facts it needs are
declared as data, a pure function decides, and the operations are the primitive library's.
No PowerShell of its own, no lab code: the lab simulates Windows (the registry, the CertSvc
service) for every plugin alike.
"""

from lync2fa.decision import Context, Decision, More
from lync2fa.hookspecs import hookimpl
from lync2fa.hostops import cmdlet, registry_fact, registry_set
from lync2fa.task import Param, Task

# Where AD CS keeps its configuration: CertSvc\Configuration\<CA name>\AuditFilter (REG_DWORD).
CONFIGURATION = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration"


def facts(params: dict) -> dict:
    return {"configuration": registry_fact(CONFIGURATION, ["Active"])}


def decide(ctx: Context):
    active = (ctx.facts.value("configuration") or {}).get("values", {}).get("Active")
    wanted = ctx.params["audit_filter"]
    if not active:
        if ctx.check_mode:
            return Decision(
                {"audit_filter": 0},
                {"audit_filter": wanted},
                warnings=["No CA is installed yet (check mode): assuming ca.authority installs it."],
            )
        # Not knowable before the CA exists (its name is the key): when ca.authority's changes are
        # pending in the same request, the engine applies them and asks again.
        return Decision.refuse("No certification authority is installed on this host; run ca.authority first.")
    key = f"{CONFIGURATION}\\{active}"
    if "ca" not in ctx.facts.raw:
        return More({"ca": registry_fact(key, ["AuditFilter"])})
    current = int((ctx.facts.value("ca") or {}).get("values", {}).get("AuditFilter") or 0)
    operations = (
        []
        if current == wanted
        else [
            registry_set(key, "AuditFilter", wanted, "DWord"),
            cmdlet("Restart-Service", {"Name": "CertSvc", "Force": True}),  # the CA reads it at start
        ]
    )
    return Decision({"audit_filter": current}, {"audit_filter": wanted}, operations)


@hookimpl
def lync2fa_tasks():
    return [
        Task(
            name="example.audit_filter",
            group="ca",
            after=("ca.authority",),
            description="Set the CA audit filter",
            facts=facts,
            decide=decide,
            params=(
                Param("audit_filter", "int", default=127, minimum=0, maximum=127, description="CA AuditFilter bits"),
            ),
        )
    ]
