"""The built-in AD CS templates that installing an Enterprise CA puts in Active Directory,
as the lab models them (the settings the ESC rules and the procedure look at)."""
from __future__ import annotations

from lync2fa.adcs import EKU  # noqa: E402,F401  (the OIDs live in lync2fa.adcs; re-exported)

_ADMIN_ACL = [
    {"principal": "Domain Admins", "rights": ["Read", "Write", "Enroll"]},
    {"principal": "Enterprise Admins", "rights": ["Read", "Write", "Enroll"]},
    {"principal": "Authenticated Users", "rights": ["Read"]},
]


def _v1(name: str, display: str, ekus: list[str], acl=None, **extra) -> dict:
    template = {
        "name": name, "display_name": display, "schema_version": 1, "ekus": ekus,
        "enrollee_supplies_subject": False, "manager_approval": False, "authorized_signatures": 0,
        "ra_application_policies": [], "min_key_size": 2048, "exportable_key": False,
        "providers": [], "no_security_extension": False, "issuance_policies": [],
        "validity_days": 365, "renewal_days": 42, "owner": "Enterprise Admins",
        "acl": [dict(a) for a in (acl or _ADMIN_ACL)], "created_by": "ad-cs",
    }
    template.update(extra)
    return template


def builtin_templates() -> dict[str, dict]:
    user_acl = _ADMIN_ACL[:2] + [{"principal": "Domain Users", "rights": ["Read", "Enroll"]},
                                 {"principal": "Authenticated Users", "rights": ["Read"]}]
    templates = [
        _v1("SmartcardUser", "Smartcard User", [EKU["secure_email"], EKU["client_auth"], EKU["smart_card_logon"]],
            providers=["Microsoft Base Smart Card Crypto Provider"]),
        _v1("SmartcardLogon", "Smartcard Logon", [EKU["client_auth"], EKU["smart_card_logon"]],
            providers=["Microsoft Base Smart Card Crypto Provider"]),
        _v1("EnrollmentAgent", "Enrollment Agent", [EKU["certificate_request_agent"]]),
        _v1("User", "User", [EKU["efs"], EKU["secure_email"], EKU["client_auth"]], acl=user_acl, exportable_key=True),
        _v1("WebServer", "Web Server", [EKU["server_auth"]], enrollee_supplies_subject=True, validity_days=730),
    ]
    return {t["name"]: t for t in templates}
