"""CA tier: AD CS Enterprise Root CA, Web Enrollment, the templates the procedure issues and
Read+Enroll on Smartcard User (reference/lync-2fa.md section 3)."""

from __future__ import annotations

from lync2fa.adcs import SAFE_NAME, is_broad
from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from . import authority, template_permissions, templates_published, web_enrollment


def _key_length(p: dict) -> list[str]:
    return [] if p["key_length"] >= 2048 else [f"key_length {p['key_length']} is below 2048 bits"]


def _template_names(p: dict) -> list[str]:
    names = p.get("templates") or [p.get("template")]
    return [
        f"template name {n!r} is not a valid certificate template name" for n in names if not SAFE_NAME.fullmatch(n)
    ]


def _ca_name(p: dict) -> list[str]:
    return [] if SAFE_NAME.fullmatch(p["common_name"]) else [f"common_name {p['common_name']!r} is not a valid CA name"]


def _install_credential(p: dict) -> list[str]:
    """The installation credential is a pair: a user without its password (or the reverse) is a
    mistake, never a prompt."""
    if bool(p.get("install_user")) == bool(p.get("install_password")):
        return []
    return ["ca_install_user and ca_install_password go together (the password from ansible-vault)"]


TASKS = [
    Task(
        name="ca.authority",
        group="ca",
        facts=authority.facts,
        decide=authority.decide,
        reaches=("ad",),
        description="Install the AD CS role and an Enterprise Root CA",
        params=(
            Param("common_name", required=True, description="CA common name, e.g. 'Contoso Root CA'"),
            Param("key_length", "int", default=4096, choices=(2048, 3072, 4096), description="RSA key length"),
            Param(
                "hash_algorithm",
                default="sha256",
                choices=("sha256", "sha384", "sha512", "sha1"),
                description="CA signing hash; sha1 is refused unless allowed explicitly",
            ),
            Param(
                "validity_years",
                "int",
                default=10,
                minimum=1,
                maximum=50,
                description="CA certificate validity in years",
            ),
            Param(
                "crypto_provider",
                default="RSA#Microsoft Software Key Storage Provider",
                description="Key storage provider for the CA key",
            ),
            Param(
                "install_user",
                description="Enterprise Admin account Install-AdcsCertificationAuthority -Credential "
                "writes AD as, e.g. 'CORP\\pki-admin'; with it an NTLM session needs no delegation",
            ),
            Param(
                "install_password",
                secret=True,
                description="Password of ca_install_user, from a vault-encrypted ca_install_password",
            ),
        ),
        checks=(_key_length, _ca_name, _install_credential),
    ),
    Task(
        name="ca.web_enrollment",
        group="ca",
        facts=web_enrollment.facts,
        decide=web_enrollment.decide,
        reaches=(),
        after=("ca.authority",),
        description="Install Certificate Authority Web Enrollment with HTTPS and Extended Protection",
        params=(
            Param("require_ssl", "bool", default=True, description="Require HTTPS on /certsrv (ESC8)"),
            Param(
                "extended_protection",
                default="Require",
                choices=("None", "Allow", "Require"),
                description="IIS Extended Protection for Authentication on /certsrv (ESC8)",
            ),
        ),
    ),
    Task(
        name="ca.templates_published",
        group="ca",
        facts=templates_published.facts,
        decide=templates_published.decide,
        reaches=("ad",),
        after=("ca.authority",),
        description="Issue the Enrollment Agent, Smartcard User and Smartcard Logon templates on the CA",
        params=(
            Param(
                "templates",
                "list",
                elements="str",
                default=["EnrollmentAgent", "SmartcardUser", "SmartcardLogon"],
                description="Template common names the CA must issue",
            ),
        ),
        checks=(_template_names,),
    ),
    Task(
        name="ca.template_permissions",
        group="ca",
        facts=template_permissions.facts,
        decide=template_permissions.decide,
        reaches=("ad",),
        after=("ca.authority",),
        description="Grant Read and Enroll on the Smartcard User template to the smart-card users",
        params=(
            Param("template", default="SmartcardUser", description="Template common name"),
            Param(
                "principal",
                default="Lync 2FA Users",
                description="Group (or user) that may enroll, e.g. 'CONTOSO\\Lync 2FA Users'",
            ),
            Param("autoenroll", "bool", default=False, description="Also grant Autoenroll"),
        ),
        checks=(_template_names,),
    ),
]


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    findings = []
    for step in plan.steps_for("ca.authority"):
        if step.params["hash_algorithm"] == "sha1":
            findings.append(
                Finding(
                    "SHA1",
                    "ca_hash_algorithm is sha1, which is broken for signatures",
                    "use sha256 or stronger",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    for step in plan.steps_for("ca.web_enrollment"):
        p = step.params
        if not p["require_ssl"] or p["extended_protection"] != "Require":
            findings.append(
                Finding(
                    "ESC8",
                    "web enrollment without HTTPS and required Extended Protection allows NTLM relay to /certsrv",
                    "keep ca_require_ssl: true and ca_extended_protection: Require",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    for step in plan.steps_for("ca.template_permissions"):
        if is_broad(step.params["principal"]):
            findings.append(
                Finding(
                    "BROAD_ENROLL",
                    f"every account in {step.params['principal']} may enroll for {step.params['template']}",
                    "grant a dedicated smart-card users group instead",
                    severity="warning",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    return findings
