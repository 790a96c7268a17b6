"""Templates tier: the smart-card certificate template as declarative data, an ESC gate that
judges it before anything is written, an audit of the templates a CA issues, and rollback.

By default ``templates.smartcard`` duplicates Smartcard Logon into a "TPM Virtual Smart Card
Logon" template (reference/lync-2fa.md section 3.1); ``templates_profile: smartcard_user``
keeps to the Lync docs' plain path (the CA tier issues Smartcard User) and only checks it.
"""

from __future__ import annotations

from lync2fa.adcs import EKU, SAFE_NAME
from lync2fa.adcs_builtin import BUILTIN_TEMPLATES, as_fact, builtin_name, is_builtin
from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from . import decide, esc, model

PROFILES = ("vsc", "smartcard_user")


def _names(p: dict) -> list[str]:
    problems = [
        f"{key} {p[key]!r} is not a valid certificate template name"
        for key in ("name", "source_template")
        if not SAFE_NAME.fullmatch(p[key])
    ]
    if p["name"].lower() == p["source_template"].lower():
        problems.append("name must differ from source_template (the template is a duplicate)")
    elif is_builtin(p["name"]):
        problems.append(f"name {p['name']!r} is a built-in template; choose a new name for the duplicate")
    if not 0 < len(p["display_name"]) <= 64:
        problems.append("display_name must be 1 to 64 characters")
    return problems


def _oids(p: dict) -> list[str]:
    return [
        f"{key} entry {value!r} is neither an EKU name ({', '.join(EKU)}) nor a dotted OID"
        for key in ("ekus", "ra_application_policies")
        for value in p[key]
        if value not in EKU and not model.OID.fullmatch(value)
    ]


def _issuance_policies(p: dict) -> list[str]:
    problems = []
    for entry in p["issuance_policies"]:
        if set(entry) - {"oid", "linked_group"} or not model.OID.fullmatch(str(entry.get("oid", ""))):
            problems.append(f"issuance_policies entry {entry!r} must be {{oid: <dotted OID>, linked_group: <group>}}")
    return problems


def _extra_acl(p: dict) -> list[str]:
    problems = []
    for entry in p["extra_acl"]:
        rights = entry.get("rights")
        if (
            set(entry) != {"principal", "rights"}
            or not str(entry["principal"]).strip()
            or not isinstance(rights, list)
            or not rights
            or set(rights) - set(esc.RIGHTS)
        ):
            problems.append(
                f"extra_acl entry {entry!r} must be {{principal: <name>, rights: [...]}} with rights "
                f"from {', '.join(esc.RIGHTS)}"
            )
    return problems


def _numbers(p: dict) -> list[str]:
    """The bounds of each number are on its Param; here only how they relate."""
    if p["renewal_days"] >= p["validity_days"]:
        return [f"renewal_days ({p['renewal_days']}) must be less than validity_days ({p['validity_days']})"]
    return []


def _accepted(p: dict) -> list[str]:
    return [
        f"accepted_findings entry {a!r} must be RULE:Template, e.g. ESC1:WebServer"
        for a in p["accepted_findings"]
        if ":" not in a
    ]


TASKS = [
    Task(
        name="templates.smartcard",
        group="ca",
        facts=decide.smartcard_facts,
        decide=decide.decide_smartcard,
        reaches=("ad",),
        # After the CA tier's grants too, so the smartcard_user profile reports their result.
        after=("ca.authority", "ca.templates_published", "ca.template_permissions"),
        description="Duplicate Smartcard Logon into the TPM virtual smart card logon template, grant Enroll and "
        "issue it (or, profile smartcard_user, only check the built-in Smartcard User)",
        params=(
            Param(
                "profile",
                default="vsc",
                choices=PROFILES,
                description="vsc: the duplicated TPM VSC template; smartcard_user: the docs' plain path",
            ),
            Param("name", default="TPMVirtualSmartCardLogon", description="Template common name (cn)"),
            Param("display_name", default="TPM Virtual Smart Card Logon", description="Template display name"),
            Param("source_template", default="SmartcardLogon", description="Template to duplicate"),
            Param(
                "ekus",
                "list",
                elements="str",
                default=["client_auth", "smart_card_logon"],
                description="EKUs/application policies, by name (see lync2fa.adcs.EKU) or OID",
            ),
            Param(
                "schema_version",
                "int",
                default=2,
                choices=(1, 2),
                description="msPKI-Template-Schema-Version: 2 (Windows Server 2003 compatibility, the one for "
                "CSPs such as the smart card provider); 1 is legacy and ESC15-prone",
            ),
            Param(
                "min_key_size",
                "int",
                default=2048,
                minimum=2048,
                maximum=16384,
                description="msPKI-Minimal-Key-Size in bits",
            ),
            Param(
                "providers",
                "list",
                elements="str",
                default=["Microsoft Base Smart Card Crypto Provider"],
                description="pKIDefaultCSPs: the only providers requests may use, in order",
            ),
            Param("exportable_key", "bool", default=False, description="Allow the private key to be exported"),
            Param(
                "subject_from_ad",
                "bool",
                default=True,
                description="Subject built from Active Directory (the UPN goes into the SAN unless the "
                "enrollee supplies the subject)",
            ),
            Param(
                "enrollee_supplies_subject",
                "bool",
                default=False,
                description="The requester names the subject (ESC1 on a client-auth template)",
            ),
            Param("manager_approval", "bool", default=False, description="CA certificate manager approval"),
            Param("prompt_user", "bool", default=True, description="Prompt the user during enrollment (PIN)"),
            Param(
                "no_security_extension",
                "bool",
                default=False,
                description="Leave out the SID security extension (ESC9)",
            ),
            Param(
                "authorized_signatures",
                "int",
                default=0,
                minimum=0,
                maximum=10,
                description="msPKI-RA-Signature: enrollment agent signatures a request needs",
            ),
            Param(
                "ra_application_policies",
                "list",
                elements="str",
                default=[],
                description="Application policies the agent's certificate must carry",
            ),
            Param(
                "issuance_policies",
                "list",
                elements="dict",
                default=[],
                description="Issuance policies [{oid, linked_group}]; linked_group declares an "
                "msDS-OIDToGroupLink (ESC13); lync2fa does not create links",
            ),
            Param("validity_days", "int", default=365, minimum=1, maximum=3650, description="Validity period in days"),
            Param("renewal_days", "int", default=42, minimum=0, maximum=3650, description="Renewal period in days"),
            Param("enroll_principal", default="Lync 2FA Users", description="Group granted Read and Enroll"),
            Param("autoenroll", "bool", default=False, description="Also grant Autoenroll"),
            Param(
                "extra_acl",
                "list",
                elements="dict",
                default=[],
                description="More Allow entries [{principal, rights}]; rights from " + ", ".join(esc.RIGHTS),
            ),
            Param("publish", "bool", default=True, description="Issue the template on this CA"),
        ),
        checks=(_names, _oids, _issuance_policies, _extra_acl, _numbers),
    ),
    Task(
        name="templates.audit",
        group="ca",
        facts=decide.audit_facts,
        decide=decide.decide_audit,
        kind="verify",
        reaches=("ad",),
        description="Evaluate the ESC rules on every template the CA issues",
        params=(
            Param(
                "accepted_findings",
                "list",
                elements="str",
                default=[],
                description="Findings accepted on purpose, as RULE:Template (e.g. ESC1:WebServer)",
            ),
        ),
        checks=(_accepted,),
    ),
    Task(
        name="templates.rollback",
        group="ca",
        facts=decide.rollback_facts,
        decide=decide.decide_rollback,
        kind="rollback",
        reaches=("ad",),
        description="Unpublish and delete the templates lync2fa created (and their OID objects), nothing else",
    ),
]


def builtin_record(name: str) -> dict | None:
    """A built-in template as Windows installs it (Windows' documented defaults), in the tier's terms."""
    real = builtin_name(name, tuple(BUILTIN_TEMPLATES))
    return model.record_from_ad(as_fact(real)) if real else None


# The variable that puts a planned template in front of the ESC rules, by the task blamed for it:
# the CA tier's grant (ca_template, e.g. WebServer) or its published built-ins (ca_templates).
# This tier's own template has no single cause: validate places it by the message's variables.
CAUSE = {"ca.template_permissions": "ca_template", "ca.templates_published": "ca_templates"}


def planned_templates(plan) -> list[tuple[str, str, dict]]:
    """Every template the plan touches, as it will be after every planned change from every tier
    (issue 12 item 3): (host, task to blame, record). The built-ins the CA tier issues with their
    default ACL, the CA tier's Enroll grants on top, and this tier's template (a duplicate of its
    source with the profile applied, or Smartcard User as the CA tier leaves it)."""
    hosts = sorted(
        {
            s.host.name
            for name in ("ca.templates_published", "ca.template_permissions", "templates.smartcard")
            for s in plan.steps_for(name)
        }
    )
    out = []
    for host in hosts:
        planned: dict[str, tuple[str, dict]] = {}
        for step in plan.steps_for("ca.templates_published"):
            if step.host.name == host:
                for name in step.params.get("templates") or []:
                    record = builtin_record(name)
                    if record is not None:
                        planned.setdefault(name.lower(), ("ca.templates_published", record))
        for step in plan.steps_for("templates.smartcard"):
            if step.host.name != host:
                continue
            p = step.params
            if p["profile"] == "smartcard_user":
                smartcard_user = builtin_record(decide.SMARTCARD_USER)
                assert smartcard_user is not None, "Smartcard User is a built-in template"
                planned[decide.SMARTCARD_USER.lower()] = (step.task.name, smartcard_user)
            else:
                planned[p["name"].lower()] = (
                    step.task.name,
                    model.desired_record(p, builtin_record(p["source_template"])),
                )
        for step in plan.steps_for("ca.template_permissions"):
            if step.host.name != host:
                continue
            name = str(step.params.get("template") or "")
            task, record = planned.get(name.lower()) or ("ca.template_permissions", builtin_record(name))
            if record is None:
                continue  # a template the plan neither creates nor knows: verify audits it
            rights = ["Read", "Enroll"] + (["Autoenroll"] if step.params.get("autoenroll") else [])
            record = {
                **record,
                "acl": model.merge_acl(
                    record.get("acl", []), [{"principal": step.params["principal"], "rights": rights}]
                ),
            }
            planned[name.lower()] = (task if task == "templates.smartcard" else step.task.name, record)
        out += [(host, task, record) for task, record in planned.values()]
    return out


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    findings = []
    for host, task, record in planned_templates(plan):
        findings += esc.evaluate(record, host=host, task=task, var=CAUSE.get(task, ""))
    for step in plan.steps_for("templates.smartcard"):
        if step.params["profile"] == "vsc" and step.params["exportable_key"]:
            findings.append(
                Finding(
                    "EXPORTABLE_KEY",
                    f"templates_exportable_key is true on {step.params['name']}: a smart-card logon "
                    "key that can leave the card is no second factor",
                    "keep templates_exportable_key: false",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    return findings
