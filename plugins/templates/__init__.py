"""Templates tier: the smart-card certificate template as declarative data, an ESC gate that
judges it before anything is written, an audit of the templates a CA issues, and rollback.

By default ``templates.smartcard`` duplicates Smartcard Logon into a "TPM Virtual Smart Card
Logon" template (reference/lync-2fa.md section 3.1); ``templates_profile: smartcard_user``
keeps to the Lync docs' plain path (the CA tier issues Smartcard User) and only checks it.
"""
from __future__ import annotations

from pathlib import Path

from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from ..ca import SAFE_NAME
from ..ca.builtin_templates import EKU, builtin_templates
from . import esc, model, twin

SCRIPTS = Path(__file__).parent / "scripts"
PROFILES = ("vsc", "smartcard_user")
# Templates an Enterprise CA installs; lync2fa never rewrites one of them in place.
BUILTIN_NAMES = {n.lower() for n in [*builtin_templates(), "Administrator", "CA", "CEPEncryption", "ClientAuth",
                                     "CodeSigning", "CrossCA", "CTLSigning", "DirectoryEmailReplication",
                                     "DomainController", "DomainControllerAuthentication", "EFS", "EFSRecovery",
                                     "EnrollmentAgentOffline", "ExchangeUser", "ExchangeUserSignature",
                                     "IPSECIntermediateOffline", "IPSECIntermediateOnline", "KerberosAuthentication",
                                     "KeyRecoveryAgent", "Machine", "MachineEnrollmentAgent", "OCSPResponseSigning",
                                     "OfflineRouter", "RASAndIASServer", "SubCA", "UserSignature", "Workstation"]}


def _names(p: dict) -> list[str]:
    problems = [f"{key} {p[key]!r} is not a valid certificate template name"
                for key in ("name", "source_template") if not SAFE_NAME.fullmatch(p[key])]
    if p["name"].lower() == p["source_template"].lower():
        problems.append("name must differ from source_template (the template is a duplicate)")
    elif p["name"].lower() in BUILTIN_NAMES:
        problems.append(f"name {p['name']!r} is a built-in template; choose a new name for the duplicate")
    if not 0 < len(p["display_name"]) <= 64:
        problems.append("display_name must be 1 to 64 characters")
    return problems


def _oids(p: dict) -> list[str]:
    return [f"{key} entry {value!r} is neither an EKU name ({', '.join(EKU)}) nor a dotted OID"
            for key in ("ekus", "ra_application_policies") for value in p[key]
            if value not in EKU and not model.OID.fullmatch(value)]


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
        if (set(entry) != {"principal", "rights"} or not str(entry["principal"]).strip()
                or not isinstance(rights, list) or not rights or set(rights) - set(esc.RIGHTS)):
            problems.append(f"extra_acl entry {entry!r} must be {{principal: <name>, rights: [...]}} with rights "
                            f"from {', '.join(esc.RIGHTS)}")
    return problems


def _numbers(p: dict) -> list[str]:
    """The bounds of each number are on its Param; here only how they relate."""
    if p["renewal_days"] >= p["validity_days"]:
        return [f"renewal_days ({p['renewal_days']}) must be less than validity_days ({p['validity_days']})"]
    return []


def _accepted(p: dict) -> list[str]:
    return [f"accepted_findings entry {a!r} must be RULE:Template, e.g. ESC1:WebServer"
            for a in p["accepted_findings"] if ":" not in a]


def audit_findings(result, params) -> None:
    """Run the ESC rules on each template the CA returned; fail on any not accepted."""
    accepted = {a.lower() for a in params["accepted_findings"]}
    refused = []
    for name, template in sorted((result.after.get("templates") or {}).items()):
        for finding in esc.evaluate(template):
            key = f"{finding.rule}:{name}"
            note = " (accepted in templates_accepted_findings)" if key.lower() in accepted else ""
            result.warnings.append(f"[{finding.rule}] {finding.message}.{note} Fix: {finding.fix}")
            if not note:
                refused.append(key)
    if refused:
        result.failed = True
        result.msg = (f"{len(refused)} ESC finding(s) on templates this CA issues: {', '.join(refused)}. Fix them, "
                      "or accept one on purpose with templates_accepted_findings: ['RULE:Template']")


TASKS = [
    Task(
        name="templates.smartcard", group="ca", template=SCRIPTS / "smartcard.ps1.j2",
        # After the CA tier's grants too, so the smartcard_user profile reports their result.
        after=("ca.authority", "ca.templates_published", "ca.template_permissions"),
        description="Duplicate Smartcard Logon into the TPM virtual smart card logon template, grant Enroll and "
                    "issue it (or, profile smartcard_user, only check the built-in Smartcard User)",
        params=(
            Param("profile", default="vsc", choices=PROFILES,
                  description="vsc: the duplicated TPM VSC template; smartcard_user: the docs' plain path"),
            Param("name", default="TPMVirtualSmartCardLogon", description="Template common name (cn)"),
            Param("display_name", default="TPM Virtual Smart Card Logon", description="Template display name"),
            Param("source_template", default="SmartcardLogon", description="Template to duplicate"),
            Param("ekus", "list", elements="str", default=["client_auth", "smart_card_logon"],
                  description="EKUs/application policies, by name (see builtin_templates.EKU) or OID"),
            Param("schema_version", "int", default=2, choices=(1, 2),
                  description="msPKI-Template-Schema-Version: 2 (Windows Server 2003 compatibility, the one for "
                              "CSPs such as the smart card provider); 1 is legacy and ESC15-prone"),
            Param("min_key_size", "int", default=2048, minimum=2048, maximum=16384,
                  description="msPKI-Minimal-Key-Size in bits"),
            Param("providers", "list", elements="str", default=["Microsoft Base Smart Card Crypto Provider"],
                  description="pKIDefaultCSPs: the only providers requests may use, in order"),
            Param("exportable_key", "bool", default=False, description="Allow the private key to be exported"),
            Param("subject_from_ad", "bool", default=True,
                  description="Subject built from Active Directory (the UPN goes into the SAN unless the "
                              "enrollee supplies the subject)"),
            Param("enrollee_supplies_subject", "bool", default=False,
                  description="The requester names the subject (ESC1 on a client-auth template)"),
            Param("manager_approval", "bool", default=False, description="CA certificate manager approval"),
            Param("prompt_user", "bool", default=True, description="Prompt the user during enrollment (PIN)"),
            Param("no_security_extension", "bool", default=False,
                  description="Leave out the SID security extension (ESC9)"),
            Param("authorized_signatures", "int", default=0, minimum=0, maximum=10,
                  description="msPKI-RA-Signature: enrollment agent signatures a request needs"),
            Param("ra_application_policies", "list", elements="str", default=[],
                  description="Application policies the agent's certificate must carry"),
            Param("issuance_policies", "list", elements="dict", default=[],
                  description="Issuance policies [{oid, linked_group}]; linked_group declares an "
                              "msDS-OIDToGroupLink (ESC13); lync2fa does not create links"),
            Param("validity_days", "int", default=365, minimum=1, maximum=3650, description="Validity period in days"),
            Param("renewal_days", "int", default=42, minimum=0, maximum=3650, description="Renewal period in days"),
            Param("enroll_principal", default="Lync 2FA Users", description="Group granted Read and Enroll"),
            Param("autoenroll", "bool", default=False, description="Also grant Autoenroll"),
            Param("extra_acl", "list", elements="dict", default=[],
                  description="More Allow entries [{principal, rights}]; rights from " + ", ".join(esc.RIGHTS)),
            Param("publish", "bool", default=True, description="Issue the template on this CA"),
        ),
        checks=(_names, _oids, _issuance_policies, _extra_acl, _numbers),
    ),
    Task(
        name="templates.audit", group="ca", template=SCRIPTS / "audit.ps1.j2", kind="verify",
        description="Evaluate the ESC rules on every template the CA issues",
        params=(Param("accepted_findings", "list", elements="str", default=[],
                      description="Findings accepted on purpose, as RULE:Template (e.g. ESC1:WebServer)"),),
        checks=(_accepted,),
        interpret=audit_findings,
    ),
    Task(
        name="templates.rollback", group="ca", template=SCRIPTS / "rollback.ps1.j2", kind="rollback",
        description="Unpublish and delete the templates lync2fa created (and their OID objects), nothing else",
    ),
]


def proposed_template(step, plan) -> dict:
    """The template a templates.smartcard step would leave, as the gate can know it before
    touching the estate: a built-in source's settings and ACL, the profile's on top."""
    p = step.params
    if p["profile"] == "smartcard_user":
        template = builtin_templates()["SmartcardUser"]
        for perm in plan.steps_for("ca.template_permissions"):
            if perm.host.name == step.host.name and perm.params["template"].lower() == "smartcarduser":
                rights = ["Read", "Enroll"] + (["Autoenroll"] if perm.params["autoenroll"] else [])
                template["acl"] = model.merge_acl(template["acl"], [{"principal": perm.params["principal"],
                                                                      "rights": rights}])
        return template
    return model.desired_record(p, builtin_templates().get(p["source_template"]))


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    findings = []
    for step in plan.steps_for("templates.smartcard"):
        findings += esc.evaluate(proposed_template(step, plan), host=step.host.name, task=step.task.name)
        if step.params["profile"] == "vsc" and step.params["exportable_key"]:
            findings.append(Finding(
                "EXPORTABLE_KEY", f"templates_exportable_key is true on {step.params['name']}: a smart-card logon "
                "key that can leave the card is no second factor", "keep templates_exportable_key: false",
                host=step.host.name, task=step.task.name))
    return findings


@hookimpl
def lync2fa_lab_twins():
    return {"templates.smartcard": twin.smartcard, "templates.audit": twin.audit,
            "templates.rollback": twin.rollback}
