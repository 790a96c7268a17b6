"""The built-in certificate templates an Enterprise CA installs in Active Directory, as Windows
ships them: the raw attributes of each ``pKICertificateTemplate`` object and its default
security descriptor (owner and ACEs as rights bits and extended-right GUIDs).

Two readers need Windows' defaults before anything runs or without asking a host: the ESC gate
(``plugins/templates``) judges a duplicate of a built-in, or a built-in the CA tier grants on,
at plan time; the lab (``lync2fa.lab.windows.adcs_templates``) creates these objects when it
simulates ``Install-AdcsCertificationAuthority``. The values are the ones the procedure and the
ESC rules look at (MS-CRTD section 2.1 and a default Windows Server 2019 forest); the lab keeps
the key size of the smart-card templates at 2048 bits.
"""

from __future__ import annotations

from . import adcs
from .adcs import EKU

SMART_CARD_CSP = "Microsoft Base Smart Card Crypto Provider"
ADMIN_READ_WRITE = adcs.GENERIC_READ | adcs.GENERIC_WRITE

# The default security descriptor of a built-in template: (principal, rights, object_type).
_ADMIN_ACES = (
    ("Domain Admins", ADMIN_READ_WRITE, None),
    ("Domain Admins", adcs.EXTENDED_RIGHT, adcs.ENROLL),
    ("Enterprise Admins", ADMIN_READ_WRITE, None),
    ("Enterprise Admins", adcs.EXTENDED_RIGHT, adcs.ENROLL),
    ("Authenticated Users", adcs.GENERIC_READ, None),
)
_DOMAIN_USERS_ENROLL = (("Domain Users", adcs.GENERIC_READ, None), ("Domain Users", adcs.EXTENDED_RIGHT, adcs.ENROLL))
OWNER = "Enterprise Admins"

_FROM_AD = adcs.NAME_SUBJECT_REQUIRE_DIRECTORY_PATH | adcs.NAME_SUBJECT_ALT_REQUIRE_UPN
_FROM_AD_EMAIL = _FROM_AD | adcs.NAME_SUBJECT_ALT_REQUIRE_EMAIL | adcs.NAME_SUBJECT_REQUIRE_EMAIL


def _v1(
    display: str,
    number: int,
    ekus: list[str],
    flags: int,
    name_flag: int,
    enroll_flag: int = 0,
    key_flag: int = 0,
    csps: tuple[str, ...] = ("Microsoft Enhanced Cryptographic Provider v1.0",),
    validity_days: int = 365,
    key_usage: str = "oAA=",
    aces=_ADMIN_ACES,
    revision: int = 4,
) -> dict:
    """A schema version 1 template; ``number`` is its arc below the forest's template OID."""
    return {
        "attributes": {
            "displayName": [display],
            "flags": [flags],
            "revision": [revision],
            "msPKI-Template-Schema-Version": [1],
            "msPKI-Template-Minor-Revision": [1],
            "pKIDefaultKeySpec": [1],
            "pKIKeyUsage": [key_usage],
            "pKIMaxIssuingDepth": [0],
            "pKICriticalExtensions": ["2.5.29.15"],
            "pKIExtendedKeyUsage": list(ekus),
            "pKIExpirationPeriod": [adcs.period_bytes(validity_days)],
            "pKIOverlapPeriod": [adcs.period_bytes(42)],
            "pKIDefaultCSPs": [f"{i},{csp}" for i, csp in enumerate(csps, 1)],
            "msPKI-RA-Signature": [0],
            "msPKI-Enrollment-Flag": [adcs.int32(enroll_flag)],
            "msPKI-Private-Key-Flag": [adcs.int32(key_flag)],
            "msPKI-Certificate-Name-Flag": [adcs.int32(name_flag)],
            "msPKI-Minimal-Key-Size": [2048],
        },
        "oid_arc": number,
        "owner": OWNER,
        "aces": list(aces),
    }


# name (cn) -> {"attributes": {attribute: [values]}, "oid_arc", "owner", "aces"}
BUILTIN_TEMPLATES: dict[str, dict] = {
    "SmartcardUser": _v1(
        "Smartcard User",
        5,
        [EKU["secure_email"], EKU["client_auth"], EKU["smart_card_logon"]],
        0x1023A,
        _FROM_AD_EMAIL,
        adcs.ENROLL_INCLUDE_SYMMETRIC_ALGORITHMS | adcs.ENROLL_PUBLISH_TO_DS,
        csps=(SMART_CARD_CSP,),
    ),
    "SmartcardLogon": _v1(
        "Smartcard Logon", 6, [EKU["client_auth"], EKU["smart_card_logon"]], 0x10222, _FROM_AD, csps=(SMART_CARD_CSP,)
    ),
    "EnrollmentAgent": _v1(
        "Enrollment Agent", 9, [EKU["certificate_request_agent"]], 0x10222, _FROM_AD, key_usage="gAA="
    ),
    "User": _v1(
        "User",
        1,
        [EKU["efs"], EKU["secure_email"], EKU["client_auth"]],
        0x1023A,
        _FROM_AD_EMAIL,
        adcs.ENROLL_INCLUDE_SYMMETRIC_ALGORITHMS | adcs.ENROLL_PUBLISH_TO_DS | adcs.ENROLL_AUTO_ENROLLMENT,
        adcs.KEY_EXPORTABLE,
        aces=_ADMIN_ACES[:4] + _DOMAIN_USERS_ENROLL + _ADMIN_ACES[4:],
    ),
    "WebServer": _v1(
        "Web Server", 16, [EKU["server_auth"]], 0x10241, adcs.NAME_ENROLLEE_SUPPLIES_SUBJECT, validity_days=730
    ),
}

# Every template an Enterprise CA installs (lync2fa never rewrites one of them in place).
BUILTIN_NAMES = (
    *BUILTIN_TEMPLATES,
    "Administrator",
    "CA",
    "CEPEncryption",
    "ClientAuth",
    "CodeSigning",
    "CrossCA",
    "CTLSigning",
    "DirectoryEmailReplication",
    "DomainController",
    "DomainControllerAuthentication",
    "EFS",
    "EFSRecovery",
    "EnrollmentAgentOffline",
    "ExchangeUser",
    "ExchangeUserSignature",
    "IPSECIntermediateOffline",
    "IPSECIntermediateOnline",
    "KerberosAuthentication",
    "KeyRecoveryAgent",
    "Machine",
    "MachineEnrollmentAgent",
    "OCSPResponseSigning",
    "OfflineRouter",
    "RASAndIASServer",
    "SubCA",
    "UserSignature",
    "Workstation",
)


def builtin_name(name: str, names: tuple[str, ...] = BUILTIN_NAMES) -> str | None:
    """The built-in template ``name`` finds in AD, or None. AD matches a cn case-insensitively, and
    an unescaped space at either end of a DN's value is not part of it (RFC 4514 section 3): "webserver"
    and "WebServer " are WebServer. Parameters refuse such spaces; this judges a name as AD will."""
    key = name.strip().lower()
    return next((n for n in names if n.lower() == key), None)


def is_builtin(name: str) -> bool:
    return builtin_name(name) is not None


def as_fact(name: str, netbios: str = "CORP") -> dict:
    """A built-in template as an ``ad_object_fact`` would return it (attributes and ACL with
    account names), so the gate judges it with the same code as a template read from AD."""
    spec = BUILTIN_TEMPLATES[name]
    aces = [
        {
            "sid": None,
            "account": _account(principal, netbios),
            "rights": rights,
            "object_type": object_type or adcs.ALL_EXTENDED_RIGHTS,
            "allow": True,
            "inherited": False,
        }
        for principal, rights, object_type in spec["aces"]
    ]
    return {
        "exists": True,
        "dn": adcs.template_dn(name),
        "attributes": {"cn": [name], **{k: list(v) for k, v in spec["attributes"].items()}},
        "acl": {"owner": _account(spec["owner"], netbios), "aces": aces},
    }


WELL_KNOWN = {"Authenticated Users": "NT AUTHORITY", "Everyone": "", "SYSTEM": "NT AUTHORITY"}


def _account(principal: str, netbios: str) -> str:
    domain = WELL_KNOWN.get(principal, netbios)
    return f"{domain}\\{principal}" if domain else principal
