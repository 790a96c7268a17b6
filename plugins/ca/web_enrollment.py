"""ca.web_enrollment: the Certificate Authority Web Enrollment role service (reference section 3),
with HTTPS required and Extended Protection (channel binding) on /certsrv, so that NTLM relay to
web enrollment (ESC8) is not possible.

Requiring SSL on a site without an https binding makes /certsrv answer 403.4 to every request
(``Install-AdcsWebEnrollment`` creates no binding, issue 7 defect 6): the decision reads the
Default Web Site's https bindings and refuses until one exists.

The /CertSrv application and its two settings are read in the step's first request, whether or
not the role service is installed (a re-run costs no further round trip): without IIS those
cmdlet facts fail (no WebAdministration module), and the decision only looks at them once the
role service is installed.
"""

from __future__ import annotations

from lync2fa import adcs
from lync2fa.decision import Context, Decision
from lync2fa.hostops import cmdlet, cmdlet_fact

from .common import CA_CONFIG, ca_config_fact, installed, without_ca

SITE = "Default Web Site"
APPLICATION = "CertSrv"
LOCATION = f"{SITE}/{APPLICATION}"
ACCESS = "system.webServer/security/access"
EXTENDED_PROTECTION = "system.webServer/security/authentication/windowsAuthentication/extendedProtection"
SSL_REQUIRED, SSL_NONE = "Ssl", "None"
NO_HTTPS_BINDING = (
    f"The {SITE} has no https binding: requiring SSL on /{APPLICATION} would make it answer 403.4 "
    "(SSL required) to every request. Bind a server certificate to https on the site (IIS Manager, or "
    f"New-WebBinding -Name '{SITE}' -Protocol https -Port 443 and the certificate), then run again."
)


def facts(p: dict) -> dict:
    return {
        CA_CONFIG: ca_config_fact(),
        "feature": cmdlet_fact(
            "Get-WindowsFeature", {"Name": adcs.FEATURE_WEB_ENROLLMENT}, ("Name", "Installed"), module="ServerManager"
        ),
        "https": cmdlet_fact(
            "Get-WebBinding",
            {"Name": SITE, "Protocol": "https"},
            ("protocol", "bindingInformation"),
            module="WebAdministration",
        ),
        **_configured_facts(),
    }


def _configured_facts() -> dict:
    return {
        "application": cmdlet_fact(
            "Get-WebApplication", {"Site": SITE, "Name": APPLICATION}, ("path",), module="WebAdministration"
        ),
        "ssl": cmdlet_fact(
            "Get-WebConfiguration",
            {"PSPath": "IIS:\\", "Location": LOCATION, "Filter": ACCESS},
            ("sslFlags",),
            module="WebAdministration",
        ),
        "epa": cmdlet_fact(
            "Get-WebConfiguration",
            {"PSPath": "IIS:\\", "Location": LOCATION, "Filter": EXTENDED_PROTECTION},
            ("tokenChecking",),
            module="WebAdministration",
        ),
    }


def requires_ssl(flags) -> bool:
    """sslFlags is a flags enum ("Ssl, SslNegotiateCert", "Ssl128"): is SSL itself required."""
    return any(f.strip() in ("Ssl", "Ssl128") for f in str(flags or "").split(","))


def decide(ctx: Context) -> Decision:
    p = ctx.params
    warnings: list[str] = []
    refused = without_ca(ctx, warnings)
    if refused is not None:
        return refused
    before = {
        "role_installed": installed(ctx.facts.value("feature")),
        "configured": False,
        "require_ssl": False,
        "extended_protection": "None",
    }
    # Without the role service IIS may be missing: its facts failed then, and say nothing.
    if before["role_installed"] and ctx.facts.value("application"):
        before["configured"] = True
        before["require_ssl"] = requires_ssl((ctx.facts.value("ssl") or [{}])[0].get("sslFlags"))
        before["extended_protection"] = str((ctx.facts.value("epa") or [{}])[0].get("tokenChecking") or "None")
    desired = {
        "role_installed": True,
        "configured": True,
        "require_ssl": p["require_ssl"],
        "extended_protection": p["extended_protection"],
    }
    # Without IIS (WebAdministration absent) there is no binding either.
    if p["require_ssl"] and not ctx.facts.get("https"):
        return Decision.refuse(NO_HTTPS_BINDING, before=before, warnings=warnings)
    if before == desired:
        return Decision(before=before, after=before, warnings=warnings)
    operations = []
    if not before["role_installed"]:
        operations.append(
            cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_WEB_ENROLLMENT}, module="ServerManager")
        )
    if not before["configured"]:
        operations.append(cmdlet("Install-AdcsWebEnrollment", {"Force": True}, module="ADCSDeployment"))
    if before["require_ssl"] != desired["require_ssl"]:
        operations.append(
            cmdlet(
                "Set-WebConfigurationProperty",
                {
                    "PSPath": "IIS:\\",
                    "Location": LOCATION,
                    "Filter": ACCESS,
                    "Name": "sslFlags",
                    "Value": SSL_REQUIRED if desired["require_ssl"] else SSL_NONE,
                },
                module="WebAdministration",
            )
        )
    if before["extended_protection"] != desired["extended_protection"]:
        operations.append(
            cmdlet(
                "Set-WebConfigurationProperty",
                {
                    "PSPath": "IIS:\\",
                    "Location": LOCATION,
                    "Filter": EXTENDED_PROTECTION,
                    "Name": "tokenChecking",
                    "Value": desired["extended_protection"],
                },
                module="WebAdministration",
            )
        )
    return Decision(before=before, after=desired, operations=operations, warnings=warnings)
