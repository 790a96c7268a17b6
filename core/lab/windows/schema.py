"""The Active Directory schema as far as lync2fa writes to it: the classes it creates and the
attributes it sets (core/adcs.py, plugins/templates), each with its syntax and whether it is
single-valued, from the schema documentation (MS-ADA1..3 attributes, MS-ADSC classes).

An LDAP write through ADSI (core/ps/Lync2fa.Directory.ps1) that this schema refuses fails as the
domain controller answers it, mapped by ADSI to the Win32 error of the LDAP result (MS-ADTS
3.1.1.5.1.1 "Enforce Schema Constraints"):

* an attribute the schema does not define: noSuchAttribute, 0x8007200A
* a value not of the attribute's syntax: invalidAttributeSyntax, 0x8007200B (a DN: invalidDNSyntax,
  0x80072032)
* several values on a single-valued attribute: constraintViolation, 0x8007202F
* a class the schema does not define: objectClassViolation, 0x80072014
"""

from __future__ import annotations

import base64
import re

from .errors import WindowsError

INTEGER, UNICODE, OCTETS, DN = "Integer", "Unicode String", "Octet String", "DN"

# lDAPDisplayName: (syntax, single-valued)
ATTRIBUTES: dict[str, tuple[str, bool]] = {
    "cn": (UNICODE, True),
    "displayName": (UNICODE, True),
    "flags": (INTEGER, True),
    "revision": (INTEGER, True),
    "msPKI-Template-Schema-Version": (INTEGER, True),
    "msPKI-Template-Minor-Revision": (INTEGER, True),
    "msPKI-Cert-Template-OID": (UNICODE, True),
    "msDS-OIDToGroupLink": (DN, True),
    "pKIDefaultKeySpec": (INTEGER, True),
    "pKIKeyUsage": (OCTETS, True),
    "pKIMaxIssuingDepth": (INTEGER, True),
    "pKICriticalExtensions": (UNICODE, False),
    "pKIExtendedKeyUsage": (UNICODE, False),
    "pKIExpirationPeriod": (OCTETS, True),
    "pKIOverlapPeriod": (OCTETS, True),
    "pKIDefaultCSPs": (UNICODE, False),
    "msPKI-RA-Signature": (INTEGER, True),
    "msPKI-Enrollment-Flag": (INTEGER, True),
    "msPKI-Private-Key-Flag": (INTEGER, True),
    "msPKI-Certificate-Name-Flag": (INTEGER, True),
    "msPKI-Minimal-Key-Size": (INTEGER, True),
    "msPKI-Certificate-Application-Policy": (UNICODE, False),
    "msPKI-RA-Application-Policies": (UNICODE, False),
    "msPKI-RA-Policies": (UNICODE, False),
    "msPKI-Certificate-Policy": (UNICODE, False),
}
CLASSES = (
    "configuration",
    "container",
    "certificationAuthority",
    "pKIEnrollmentService",
    "pKICertificateTemplate",
    "msPKI-Enterprise-Oid",
)
_ATTRIBUTES = {name.lower(): name for name in ATTRIBUTES}
_CLASSES = {name.lower(): name for name in CLASSES}
_DN = re.compile(r"^\s*[A-Za-z][\w-]*\s*=(?:[^,\\]|\\.)+(?:,\s*[A-Za-z][\w-]*\s*=(?:[^,\\]|\\.)+)*$")


def _ds_error(message: str, hresult: int, dn: str) -> WindowsError:
    return WindowsError(
        message + "\r\n",
        "NotSpecified",
        f"System.DirectoryServices.DirectoryServicesCOMException ({dn})",
        hresult,
    )


def object_class(name: str, dn: str) -> str:
    """The class as the schema spells it, or the DC's objectClassViolation."""
    if name.lower() not in _CLASSES:
        raise _ds_error(
            "The requested operation did not satisfy one or more constraints associated with the class of the object.",
            -2147016684,  # 0x80072014 ERROR_DS_OBJ_CLASS_VIOLATION
            dn,
        )
    return _CLASSES[name.lower()]


def ldap_values(dn: str, attributes: dict[str, list | None]) -> dict[str, list | None]:
    """Values as ADSI hands them over (int, str, bytes; None clears) checked against the schema,
    as the directory stores them (octet strings as base64), under the schema's names."""
    out: dict[str, list | None] = {}
    for name, values in attributes.items():
        if name.lower() not in _ATTRIBUTES:
            raise _ds_error(
                "The specified directory service attribute or value does not exist.",
                -2147016694,  # 0x8007200A ERROR_DS_NO_ATTRIBUTE_OR_VALUE
                dn,
            )
        canonical = _ATTRIBUTES[name.lower()]
        syntax, single = ATTRIBUTES[canonical]
        if values is None:
            out[canonical] = None
            continue
        stored = [_value(syntax, value, dn) for value in values]
        if single and len(stored) > 1:
            raise _ds_error("A constraint violation occurred.", -2147016657, dn)  # 0x8007202F
        out[canonical] = stored
    return out


def _value(syntax: str, value, dn: str):
    if syntax == DN:
        if isinstance(value, str) and _DN.match(value):
            return value
        if isinstance(value, str):
            raise _ds_error("An invalid dn syntax has been specified.", -2147016654, dn)  # 0x80072032
    elif syntax == INTEGER:
        # Integer syntax (2.5.5.9) is a signed 32-bit number; the DC reads a decimal string as one.
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
            return value
    elif syntax == OCTETS:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
    elif isinstance(value, str):
        return value
    raise _ds_error(
        "The attribute syntax specified to the directory service is invalid.",
        -2147016693,  # 0x8007200B ERROR_DS_INVALID_ATTRIBUTE_SYNTAX
        dn,
    )
