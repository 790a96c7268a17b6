"""The ESC rules Certipy and Locksmith check on certificate templates, as pure functions.

``evaluate(template)`` takes a template record (``model.record_from_ad``: what AD holds, in the
tier's terms) or the tier's attribute view (whose ``acl`` is a ``{principal: rights}`` mapping) and returns
``lync2fa.findings.Finding`` objects. Every principal that is not in ``lync2fa.adcs.ADMIN_PRINCIPALS``
counts as low-privileged (unlike Certipy, which judges relative to one account's groups).
The same rules refuse a proposed template before anything is written and audit the
templates a CA already issues.
"""

from __future__ import annotations

from dataclasses import dataclass

from lync2fa.adcs import ADMIN_PRINCIPALS, EKU, PKINIT_CLIENT
from lync2fa.findings import Finding

_ADMINS = {a.lower() for a in ADMIN_PRINCIPALS}

# The rights vocabulary of a template ACL entry (Allow entries only).
RIGHTS = ("Read", "Write", "Enroll", "Autoenroll", "FullControl", "WriteOwner", "WriteDacl")
ENROLL_RIGHTS = frozenset({"Enroll", "Autoenroll", "FullControl"})
WRITE_RIGHTS = frozenset({"Write", "FullControl", "WriteOwner", "WriteDacl"})

CLIENT_AUTH_EKUS = frozenset({EKU["client_auth"], EKU["smart_card_logon"], PKINIT_CLIENT, EKU["any_purpose"]})
EKU_NAMES = {oid: name for name, oid in EKU.items()} | {PKINIT_CLIENT: "pkinit_client"}

RULES = ("ESC1", "ESC2", "ESC3", "ESC4", "ESC9", "ESC13", "ESC15", "ESC17")


def short_name(principal: str) -> str:
    """'CORP\\Domain Users' and 'Domain Users' name the same principal."""
    return principal.split("\\", 1)[-1]


def is_admin(principal: str) -> bool:
    return short_name(principal).lower() in _ADMINS


def acl_entries(template: dict) -> list[tuple[str, set[str]]]:
    """(principal, rights) pairs from either ACL shape: a list of entries or a mapping."""
    acl = template.get("acl") or []
    if isinstance(acl, dict):
        return [(p, set(r or ())) for p, r in acl.items()]
    return [(a["principal"], set(a.get("rights") or ())) for a in acl]


@dataclass(frozen=True)
class Facts:
    """What the rules look at, derived once from a template."""

    name: str
    ekus: frozenset
    enrollers: tuple  # low-privileged principals that may enroll
    writers: tuple  # (principal, why) pairs that may modify the template
    ess: bool
    approval: bool
    signatures: int
    ra_policies: frozenset
    schema_version: int
    no_security_extension: bool
    issuance_policies: tuple

    @property
    def any_purpose(self) -> bool:
        return not self.ekus or EKU["any_purpose"] in self.ekus

    @property
    def client_auth(self) -> bool:
        return self.any_purpose or bool(self.ekus & CLIENT_AUTH_EKUS)

    @property
    def unattended(self) -> bool:
        """Issued without a CA manager or an enrollment agent looking at the request."""
        return not self.approval and self.signatures == 0

    @property
    def who(self) -> str:
        return ", ".join(self.enrollers)


def facts(template: dict) -> Facts:
    entries = acl_entries(template)
    enrollers = sorted({short_name(p) for p, r in entries if r & ENROLL_RIGHTS and not is_admin(p)})
    writers = sorted(
        {
            (short_name(p), "/".join(sorted(r & WRITE_RIGHTS)))
            for p, r in entries
            if r & WRITE_RIGHTS and not is_admin(p)
        }
    )
    owner = template.get("owner")
    if owner and not is_admin(owner):
        writers.append((short_name(owner), "owner"))
    ekus = set(template.get("ekus") or ()) | set(template.get("application_policies") or ())
    return Facts(
        name=template.get("name", "?"),
        ekus=frozenset(ekus),
        enrollers=tuple(enrollers),
        writers=tuple(writers),
        ess=bool(template.get("enrollee_supplies_subject")),
        approval=bool(template.get("manager_approval")),
        signatures=int(template.get("authorized_signatures") or 0),
        ra_policies=frozenset(template.get("ra_application_policies") or ()),
        schema_version=int(template.get("schema_version") or 1),
        no_security_extension=bool(template.get("no_security_extension")),
        issuance_policies=tuple(template.get("issuance_policies") or ()),
    )


def _eku_list(f: Facts) -> str:
    return ", ".join(sorted(EKU_NAMES.get(e, e) for e in f.ekus)) or "no EKU"


ONLY_ADMINS = "or allow Enroll to Domain Admins/Enterprise Admins only"


def esc1(f: Facts):
    if f.enrollers and f.client_auth and f.ess and f.unattended:
        return (
            (
                f"template {f.name} lets {f.who} enroll, is usable for client authentication ({_eku_list(f)}) and "
                "the enrollee supplies the subject (msPKI-Certificate-Name-Flag ENROLLEE_SUPPLIES_SUBJECT; "
                "templates_enrollee_supplies_subject) with no manager approval or authorized signature: they can "
                "request a logon certificate for any user, Domain Admins included"
            ),
            (
                "build the subject from Active Directory (templates_enrollee_supplies_subject: false), or require "
                f"manager approval (templates_manager_approval: true), {ONLY_ADMINS}"
            ),
        )


def esc2(f: Facts):
    if f.enrollers and f.any_purpose and f.unattended:
        what = "the Any Purpose EKU" if f.ekus else "no EKU at all"
        return (
            (
                f"template {f.name} has {what} (pKIExtendedKeyUsage/msPKI-Certificate-Application-Policy; "
                f"templates_ekus) and {f.who} may enroll without manager approval or authorized signature: the "
                "certificate is good for any purpose, client authentication and enrollment agent included"
            ),
            (
                "list only the EKUs the template needs (templates_ekus: [client_auth, smart_card_logon]), "
                f"or require manager approval, {ONLY_ADMINS}"
            ),
        )


def esc3(f: Facts):
    agent = EKU["certificate_request_agent"]
    if f.enrollers and agent in f.ekus and f.unattended:
        return (
            (
                f"template {f.name} carries the Certificate Request Agent EKU (templates_ekus) and {f.who} may "
                "enroll without manager approval or authorized signature: they can enroll on behalf of any user"
            ),
            (
                "grant Enroll on enrollment-agent templates only to admins or a dedicated agent account, or "
                "require manager approval (templates_manager_approval: true)"
            ),
        )
    if (
        f.enrollers
        and f.client_auth
        and f.schema_version >= 2
        and f.signatures > 0
        and agent in f.ra_policies
        and not f.approval
    ):
        return (
            (
                f"template {f.name} is usable for client authentication, {f.who} may enroll, and it accepts "
                f"requests co-signed by any enrollment agent (msPKI-RA-Signature {f.signatures} with the "
                "Certificate Request Agent application policy in msPKI-RA-Application-Policies; "
                "templates_authorized_signatures, templates_ra_application_policies): an agent can obtain a "
                "logon certificate for any user"
            ),
            (
                "configure enrollment agent restrictions on the CA (which agents may enroll for whom) and then "
                f"accept with --allow-insecure ESC3, or require manager approval, {ONLY_ADMINS}"
            ),
        )


def esc4(f: Facts):
    if f.writers:
        who = ", ".join(f"{p} ({why})" for p, why in f.writers)
        return (
            (
                f"template {f.name} can be modified by {who} (nTSecurityDescriptor; templates_extra_acl): they "
                "can turn it into an ESC1 template"
            ),
            (
                "give Write, FullControl, WriteOwner, WriteDacl and ownership of certificate templates to "
                "Domain Admins/Enterprise Admins only; remove those rights from templates_extra_acl and from "
                "the template's ACL"
            ),
        )


def esc9(f: Facts):
    if f.enrollers and f.client_auth and f.no_security_extension:
        return (
            (
                f"template {f.name} sets CT_FLAG_NO_SECURITY_EXTENSION (msPKI-Enrollment-Flag; "
                f"templates_no_security_extension) on a client-authentication template that {f.who} may enroll "
                "in: its certificates carry no SID extension, so weak certificate mapping lets them impersonate "
                "other accounts"
            ),
            "keep the SID security extension (templates_no_security_extension: false)",
        )


def esc13(f: Facts):
    linked = [p for p in f.issuance_policies if p.get("linked_group")]
    if f.enrollers and f.client_auth and linked:
        links = ", ".join(f"{p['oid']} -> {p['linked_group']}" for p in linked)
        return (
            (
                f"template {f.name} is usable for client authentication, {f.who} may enroll, and its issuance "
                f"policy is linked to a group ({links}; msDS-OIDToGroupLink, templates_issuance_policies): "
                "logging on with the certificate grants that group's membership"
            ),
            (
                "remove the group link from the issuance policy OID or the policy from the template "
                f"(templates_issuance_policies), {ONLY_ADMINS}"
            ),
        )


def esc15(f: Facts):
    if f.enrollers and f.schema_version == 1 and f.ess and not f.approval:
        return (
            (
                f"template {f.name} is schema version 1 (msPKI-Template-Schema-Version; templates_schema_version) "
                f"with an enrollee-supplied subject and {f.who} may enroll without manager approval: "
                "CVE-2024-49019 (EKUwu) lets them add application policies such as client authentication"
            ),
            (
                "use schema version 2 or later (templates_schema_version: 2) with the subject built from Active "
                f"Directory, install the November 2024 CA update, {ONLY_ADMINS}"
            ),
        )


def esc17(f: Facts):
    if f.enrollers and EKU["server_auth"] in f.ekus and f.ess and f.unattended:
        return (
            (
                f"template {f.name} is usable for server authentication, the enrollee supplies the subject "
                f"(msPKI-Certificate-Name-Flag ENROLLEE_SUPPLIES_SUBJECT) and {f.who} may enroll without manager "
                "approval: they can obtain a certificate for any server name"
            ),
            f"require manager approval, {ONLY_ADMINS} or to a dedicated server-administrators group",
        )


_CHECKS = {
    "ESC1": esc1,
    "ESC2": esc2,
    "ESC3": esc3,
    "ESC4": esc4,
    "ESC9": esc9,
    "ESC13": esc13,
    "ESC15": esc15,
    "ESC17": esc17,
}


def evaluate(template: dict, host: str = "", task: str = "", var: str = "") -> list[Finding]:
    """Every ESC rule the template breaks, as error findings, in rule order (``var``: the inventory
    variable that put the template there, when known)."""
    f = facts(template)
    findings = []
    for rule in RULES:
        hit = _CHECKS[rule](f)
        if hit:
            findings.append(Finding(rule, hit[0], hit[1], severity="error", host=host, task=task, var=var))
    return findings
