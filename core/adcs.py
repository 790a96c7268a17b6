"""The AD CS directory vocabulary, once, for every tier and for the lab.

What belongs here: facts about how Active Directory Certificate Services lays out and secures its
objects that more than one place needs — the containers under ``CN=Public Key Services`` and the
DNs of templates and enrollment services, the extended-right GUIDs (Enroll, Autoenroll), the
``ActiveDirectoryRights`` bits ACEs carry, EKU OIDs, the CA's registry layout and CA types, the
built-in administrative principals and the principals that mean "everyone", and the name rule a
CA or template name must pass. Windows defines these; lync2fa only names them.

What does not: wanted settings of a task (they live with the task's decision), anything of the
lab (``lync2fa.lab`` imports from here, never the other way round).

DNs use the ``{configurationNamingContext}`` placeholder the primitive library resolves on the
host (``lync2fa.hostops.CONFIG_NC``).
"""

from __future__ import annotations

import datetime as dt
import re
import struct

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .hostops import CONFIG_NC

# -- containers and DNs -------------------------------------------------------------------
PUBLIC_KEY_SERVICES = f"CN=Public Key Services,CN=Services,{CONFIG_NC}"
TEMPLATES_CONTAINER = f"CN=Certificate Templates,{PUBLIC_KEY_SERVICES}"
ENROLLMENT_SERVICES = f"CN=Enrollment Services,{PUBLIC_KEY_SERVICES}"
CERTIFICATION_AUTHORITIES = f"CN=Certification Authorities,{PUBLIC_KEY_SERVICES}"
AIA_CONTAINER = f"CN=AIA,{PUBLIC_KEY_SERVICES}"
OID_CONTAINER = f"CN=OID,{PUBLIC_KEY_SERVICES}"
NTAUTH_DN = f"CN=NTAuthCertificates,{PUBLIC_KEY_SERVICES}"

TEMPLATE_CLASS = "pKICertificateTemplate"
ENROLLMENT_SERVICE_CLASS = "pKIEnrollmentService"
# On the enrollment service object: the templates the CA issues (Add-CATemplate writes it).
ISSUED_TEMPLATES_ATTRIBUTE = "certificateTemplates"


def template_dn(name: str) -> str:
    """The AD object of certificate template ``name`` (its cn, not its display name)."""
    return f"CN={name},{TEMPLATES_CONTAINER}"


def enrollment_service_dn(ca_name: str) -> str:
    """The pKIEnrollmentService object an Enterprise CA publishes under its common name."""
    return f"CN={ca_name},{ENROLLMENT_SERVICES}"


# -- rights (System.DirectoryServices.ActiveDirectoryRights) and extended rights -----------
CREATE_CHILD = 0x1
DELETE_CHILD = 0x2
LIST_CHILDREN = 0x4
SELF = 0x8
READ_PROPERTY = 0x10
WRITE_PROPERTY = 0x20
LIST_OBJECT = 0x80
EXTENDED_RIGHT = 0x100  # ADS_RIGHT_DS_CONTROL_ACCESS; object_type names the right
DELETE = 0x10000
READ_CONTROL = 0x20000
WRITE_DACL = 0x40000
WRITE_OWNER = 0x80000
GENERIC_READ = READ_CONTROL | LIST_CHILDREN | READ_PROPERTY | LIST_OBJECT  # 0x20094
GENERIC_WRITE = READ_CONTROL | SELF | WRITE_PROPERTY  # 0x20028
GENERIC_ALL = 0xF01FF

ENROLL = "0e10c968-78fb-11d2-90d4-00c04f79dc55"  # Certificate-Enrollment
AUTOENROLL = "a05b8cc2-17bc-4802-a710-e7c15ab866a2"  # Certificate-AutoEnrollment
ALL_EXTENDED_RIGHTS = "00000000-0000-0000-0000-000000000000"

# -- EKUs / application policies ----------------------------------------------------------
EKU = {
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "secure_email": "1.3.6.1.5.5.7.3.4",
    "efs": "1.3.6.1.4.1.311.10.3.4",
    "smart_card_logon": "1.3.6.1.4.1.311.20.2.2",
    "certificate_request_agent": "1.3.6.1.4.1.311.20.2.1",
    "any_purpose": "2.5.29.37.0",
}

# -- the CA's registry (what Install-AdcsCertificationAuthority writes) -------------------
CERTSVC_CONFIGURATION = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration"
# CertSvc\Configuration\<CA>\CAType (ENUM_CATYPES)
CA_TYPES = {0: "EnterpriseRootCA", 1: "EnterpriseSubordinateCA", 3: "StandaloneRootCA", 4: "StandaloneSubordinateCA"}
CA_TYPE_CODES = {name: code for code, name in CA_TYPES.items()}

# -- Windows features (Server Manager) ----------------------------------------------------
FEATURE_CA = "ADCS-Cert-Authority"
FEATURE_WEB_ENROLLMENT = "ADCS-Web-Enrollment"

# -- principals ---------------------------------------------------------------------------
ADMIN_PRINCIPALS = (
    "Domain Admins",
    "Enterprise Admins",
    "Administrators",
    "SYSTEM",
    "Enterprise Domain Controllers",
    "Domain Controllers",
)
# Granting enrollment to these means every account (or computer) of the domain may enroll.
BROAD_PRINCIPALS = ("Domain Users", "Authenticated Users", "Everyone", "Domain Computers")


def is_broad(principal: str) -> bool:
    return principal.split("\\")[-1].lower() in {p.lower() for p in BROAD_PRINCIPALS}


# -- names --------------------------------------------------------------------------------
# A CA common name or a template cn lync2fa accepts (use fullmatch): inner spaces only, as AD
# ignores one at either end when it looks the name up (lync2fa.adcs_builtin.builtin_name).
SAFE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?")


# -- certificate templates (MS-CRTD) ------------------------------------------------------
# msPKI-Certificate-Name-Flag
NAME_ENROLLEE_SUPPLIES_SUBJECT = 0x00000001
NAME_SUBJECT_ALT_REQUIRE_UPN = 0x02000000
NAME_SUBJECT_ALT_REQUIRE_EMAIL = 0x04000000
NAME_SUBJECT_REQUIRE_EMAIL = 0x20000000
NAME_SUBJECT_REQUIRE_DIRECTORY_PATH = 0x80000000
# msPKI-Enrollment-Flag
ENROLL_INCLUDE_SYMMETRIC_ALGORITHMS = 0x00000001
ENROLL_PEND_ALL_REQUESTS = 0x00000002
ENROLL_PUBLISH_TO_DS = 0x00000008
ENROLL_AUTO_ENROLLMENT = 0x00000020
ENROLL_USER_INTERACTION_REQUIRED = 0x00000100
ENROLL_NO_SECURITY_EXTENSION = 0x00080000
# msPKI-Private-Key-Flag
KEY_EXPORTABLE = 0x00000010
# flags (the template's general flags)
TEMPLATE_IS_DEFAULT = 0x00010000
TEMPLATE_IS_MODIFIED = 0x00020000

PKINIT_CLIENT = "1.3.6.1.5.2.3.4"
OID_CLASS = "msPKI-Enterprise-Oid"
OID_TEMPLATE_TYPE = 1  # flags of an msPKI-Enterprise-Oid naming a template
OID_LINK_ATTRIBUTE = "msDS-OIDToGroupLink"
# The forest's base OID for templates and policies is on the CN=OID container itself.
TEMPLATE_OID_ATTRIBUTE = "msPKI-Cert-Template-OID"

# A template's attributes and their LDAP syntax as lync2fa reads and writes them
# (lync2fa.hostops.typed): int (Integer, signed 32-bit), string, strings (multi-valued),
# bytes (Octet String: pKIExpirationPeriod/pKIOverlapPeriod are negative FILETIME intervals).
TEMPLATE_ATTRIBUTES = {
    "displayName": "string",
    "flags": "int",
    "revision": "int",
    "msPKI-Template-Schema-Version": "int",
    "msPKI-Template-Minor-Revision": "int",
    "msPKI-Cert-Template-OID": "string",
    "pKIDefaultKeySpec": "int",
    "pKIKeyUsage": "bytes",
    "pKIMaxIssuingDepth": "int",
    "pKICriticalExtensions": "strings",
    "pKIExtendedKeyUsage": "strings",
    "pKIExpirationPeriod": "bytes",
    "pKIOverlapPeriod": "bytes",
    "pKIDefaultCSPs": "strings",
    "msPKI-RA-Signature": "int",
    "msPKI-Enrollment-Flag": "int",
    "msPKI-Private-Key-Flag": "int",
    "msPKI-Certificate-Name-Flag": "int",
    "msPKI-Minimal-Key-Size": "int",
    "msPKI-Certificate-Application-Policy": "strings",
    "msPKI-RA-Application-Policies": "strings",
    "msPKI-RA-Policies": "strings",
    "msPKI-Certificate-Policy": "strings",
}
TICKS_PER_DAY = 864_000_000_000


def int32(value: int) -> int:
    """A flag word as AD's Integer syntax holds it (signed 32-bit: 0x80000000 is negative)."""
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x80000000 else value


def uint32(value) -> int:
    """A flag word read from AD as its unsigned bits."""
    return int(value or 0) & 0xFFFFFFFF


def period_bytes(days: int) -> str:
    """pKIExpirationPeriod/pKIOverlapPeriod for ``days``: a negative FILETIME interval, 8 bytes
    little-endian, base64 (how the primitive library carries Octet Strings)."""
    import base64

    return base64.b64encode((-days * TICKS_PER_DAY).to_bytes(8, "little", signed=True)).decode()


def period_days(value: str | None) -> int | None:
    """The days of a pKIExpirationPeriod/pKIOverlapPeriod value (base64), None when absent."""
    if not value:
        return None
    import base64

    ticks = int.from_bytes(base64.b64decode(value), "little", signed=True)
    return round(-ticks / TICKS_PER_DAY)


# -- template flags (MS-CRTD) the CA reads when it issues ---------------------------------
# (the same bits as NAME_SUBJECT_ALT_REQUIRE_UPN and ENROLL_NO_SECURITY_EXTENSION above: one value each)
NAME_FLAG_SUBJECT_ALT_REQUIRE_UPN = NAME_SUBJECT_ALT_REQUIRE_UPN  # msPKI-Certificate-Name-Flag
ENROLLMENT_FLAG_NO_SECURITY_EXTENSION = ENROLL_NO_SECURITY_EXTENSION  # msPKI-Enrollment-Flag (ESC9)


# -- certificate stores as Windows keeps them in the registry -----------------------------
# <hive>\SOFTWARE\Microsoft\SystemCertificates\<STORE>\Certificates\<THUMBPRINT>, value "Blob":
# serialized properties {id: u32, reserved: u32 = 1, length: u32, data}; id 32 is the DER
# certificate (CERT_CERT_PROP_ID), id 2 the key's provider (CERT_KEY_PROV_INFO_PROP_ID: a
# CRYPT_KEY_PROV_INFO whose first two fields are offsets of the container and provider names).
# The library only reads a Blob's bytes; they are parsed here, once.
SYSTEM_CERTIFICATES_KEY = "SOFTWARE\\Microsoft\\SystemCertificates"
SYSTEM_CERTIFICATES = f"HKLM:\\{SYSTEM_CERTIFICATES_KEY}"
CERT_CERT_PROP_ID = 32
CERT_KEY_PROV_INFO_PROP_ID = 2
_PROPERTY_HEAD = struct.Struct("<III")  # id, reserved, length


def machine_store_key(store: str = "MY", thumbprint: str | None = None) -> str:
    key = f"{SYSTEM_CERTIFICATES}\\{store.upper()}\\Certificates"
    return f"{key}\\{thumbprint.upper()}" if thumbprint else key


def user_store_key(store: str = "My") -> str:
    """A user's certificate store, relative to the root of their registry hive (HKEY_USERS\\<SID>)."""
    return f"{SYSTEM_CERTIFICATES_KEY}\\{store}\\Certificates"


def _key_prov_info(container: str, provider: str) -> bytes:
    """A serialized CRYPT_KEY_PROV_INFO: offsets of the two names, provider type 1 (PROV_RSA_FULL),
    no flags or parameters, key spec 1 (AT_KEYEXCHANGE), then the names (UTF-16, NUL-terminated)."""
    head = 7 * 4
    names = [(text + "\0").encode("utf-16-le") for text in (container, provider)]
    return struct.pack("<7I", head, head + len(names[0]), 1, 0, 0, 0, 1) + b"".join(names)


def certificate_blob(der: bytes, container: str | None = None, provider: str | None = None) -> bytes:
    """The registry "Blob" of a certificate: its DER, after its key's provider when given."""
    props = [] if container is None else [(CERT_KEY_PROV_INFO_PROP_ID, _key_prov_info(container, provider or ""))]
    props.append((CERT_CERT_PROP_ID, der))
    return b"".join(_PROPERTY_HEAD.pack(pid, 1, len(data)) + data for pid, data in props)


def read_certificate_blob(blob: bytes) -> dict:
    """A registry "Blob" read: {"der": bytes | None, "container": str | None, "provider": str | None}."""
    out: dict = {"der": None, "container": None, "provider": None}
    offset = 0
    while offset + _PROPERTY_HEAD.size <= len(blob):
        prop, _, size = _PROPERTY_HEAD.unpack_from(blob, offset)
        data = blob[offset + _PROPERTY_HEAD.size : offset + _PROPERTY_HEAD.size + size]
        if prop == CERT_CERT_PROP_ID:
            out["der"] = data
        if prop == CERT_KEY_PROV_INFO_PROP_ID and size >= 8:
            for name, at in (("container", 0), ("provider", 4)):
                start = struct.unpack_from("<I", data, at)[0]
                if 0 < start < size:
                    out[name] = data[start:].decode("utf-16-le", errors="replace").split("\0")[0]
        offset += _PROPERTY_HEAD.size + size
    return out


def certificate_from_blob(blob: bytes) -> bytes | None:
    """The DER certificate in a registry "Blob", or None."""
    return read_certificate_blob(blob)["der"]


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` names ``issuer`` as its issuer, carries its valid RSA signature, and the issuer is
    within its validity now (one link of a chain, as X509Chain checks it)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
        # A PKCS#1 v1.5 signature verifies with an RSA key and a hash; any other kind of key, or a
        # signature without a hash, is no such signature (verify() would refuse it with a TypeError).
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        algorithm = cert.signature_hash_algorithm
        if algorithm is None:
            return False
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, TypeError, ValueError, AttributeError):
        return False
    now = dt.datetime.now(dt.UTC)
    return issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc
