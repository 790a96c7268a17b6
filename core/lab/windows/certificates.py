"""Certificate stores in the registry, as Windows keeps them, and root trust arriving with Group Policy.

* Machine enterprise stores: ``HKLM\\SOFTWARE\\Microsoft\\EnterpriseCertificates\\{Root,NTAuth,CA}\\
  Certificates\\<THUMBPRINT>`` value ``Blob``. A domain member gets them from AD (the enterprise
  CAs' certificates) only when autoenrollment runs: at a Group Policy refresh, or ``certutil -pulse``.
  Until then a new root CA is not trusted on the PC.
* The user's store: ``HKEY_USERS\\<SID>\\Software\\Microsoft\\SystemCertificates\\My\\Certificates\\
  <THUMBPRINT>`` ``Blob``, with the key's provider and container (CERT_KEY_PROV_INFO_PROP_ID).

A Blob is a list of serialized certificate properties (``lync2fa.adcs.read_certificate_blob``).
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ... import adcs
from ...adcs import signed_by
from .errors import WindowsError
from .machine import NATIVE, Machine, native

ENTERPRISE = "HKLM:\\SOFTWARE\\Microsoft\\EnterpriseCertificates"
LOCAL_ROOT = "HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\Root\\Certificates"
ENTERPRISE_STORES = ("Root", "NTAuth", "CA")
# 0x800B0109 CERT_E_UNTRUSTEDROOT: Windows' error (InstallResponse) for a chain ending in an untrusted
# root. The lab's model of Windows, apart from the client tier's UNTRUSTED_ROOT_HRESULT (the HResult
# its enrollment job reports for the same condition, checked before any key is made).
UNTRUSTED_ROOT = -2146762487


def store_path(store: str) -> str:
    return f"{ENTERPRISE}\\{store}\\Certificates"


def user_store_path(sid: str, store: str | None = None) -> str:
    """A user's store in their loaded hive; ``store`` relative to the hive (default: their My store)."""
    return f"Registry::HKEY_USERS\\{sid}\\{store or adcs.user_store_key()}"


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()


# -- blobs (lync2fa.adcs reads and writes them, for the tiers and the lab alike) ----------
def blob(cert: x509.Certificate, container: str | None = None, provider: str | None = None) -> str:
    """The registry Blob (base64, as a Binary value reads back) of a certificate."""
    return base64.b64encode(
        adcs.certificate_blob(cert.public_bytes(serialization.Encoding.DER), container, provider)
    ).decode()


def read_blob(value: str) -> dict:
    """{"der" (base64), "container", "provider"} of a Blob (base64)."""
    entry = adcs.read_certificate_blob(base64.b64decode(value))
    return {**entry, "der": base64.b64encode(entry["der"]).decode() if entry["der"] else None}


# -- machine stores -----------------------------------------------------------------------
def add(
    machine: Machine, path: str, cert: x509.Certificate, container: str | None = None, provider: str | None = None
) -> str:
    thumb = thumbprint(cert)
    machine.registry.set(f"{path}\\{thumb}", "Blob", blob(cert, container, provider), "Binary")
    return thumb


def certificates_in(machine: Machine, path: str) -> dict[str, x509.Certificate]:
    out = {}
    for thumb in machine.registry.subkeys(path):
        value = machine.registry.value(f"{path}\\{thumb}", "Blob")
        if value:
            der = read_blob(value)["der"]
            if der:
                out[thumb.upper()] = x509.load_der_x509_certificate(base64.b64decode(der))
    return out


def roots(machine: Machine) -> list[x509.Certificate]:
    return [*certificates_in(machine, store_path("Root")).values(), *certificates_in(machine, LOCAL_ROOT).values()]


def trusted(machine: Machine, cert: x509.Certificate) -> bool:
    """X509Chain.Build: the chain (through the enterprise CA store) ends in a trusted root."""
    intermediates = list(certificates_in(machine, store_path("CA")).values())
    current, seen = cert, 0
    while seen < 8:
        for root in roots(machine):
            if signed_by(current, root):
                return True
        parent = next((c for c in intermediates if signed_by(current, c)), None)
        if parent is None or parent == current:
            return False
        current, seen = parent, seen + 1
    return False


def _ad_certificates(machine: Machine, dn: str, children: bool) -> list[x509.Certificate]:
    directory = machine.directory
    objects = directory.children(dn) if children else [o for o in [directory.get(dn)] if o]
    out = []
    for obj in objects:
        for value in next((v for k, v in obj["attributes"].items() if k.lower() == "cacertificate"), []):
            try:
                out.append(x509.load_der_x509_certificate(base64.b64decode(value)))
            except ValueError:
                continue
    return out


def pulse(machine: Machine) -> None:
    """Autoenrollment (Group Policy refresh, ``certutil -pulse``), run by the machine with its own
    account (no delegation needed): the certificates under Certification Authorities in AD into the
    enterprise Root store, NTAuthCertificates into NTAuth. The host property ``autoenrollment:
    false`` models a PC where they do not arrive (the policy off, no DC reached)."""
    if machine.props.get("autoenrollment") is False:
        return
    for cert in _ad_certificates(machine, adcs.CERTIFICATION_AUTHORITIES, children=True):
        add(machine, store_path("Root"), cert)
    for cert in _ad_certificates(machine, adcs.NTAUTH_DN, children=False):
        add(machine, store_path("NTAuth"), cert)


_PREVIOUS_CERTUTIL = NATIVE.get("certutil.exe")


@native("certutil.exe")
def certutil(machine: Machine, args: list[str]) -> tuple[int, str]:
    if args and args[0].lower() == "-pulse":
        pulse(machine)
        return 0, "CertUtil: -pulse command completed successfully.\r\n"
    if _PREVIOUS_CERTUTIL is not None:
        return _PREVIOUS_CERTUTIL(machine, args)
    return 1, f"lab: certutil {' '.join(args[:1])} is not simulated"


def user_certificates(machine: Machine, sid: str, store: str) -> list[dict]:
    """What Read-Lync2faUserSession returns of a user's store: each certificate's thumbprint and Blob."""
    path = user_store_path(sid, store)
    out = []
    for thumb in machine.registry.subkeys(path):
        value = machine.registry.value(f"{path}\\{thumb}", "Blob")
        if value:
            out.append({"thumbprint": thumb.upper(), "blob": value})
    return sorted(out, key=lambda c: c["thumbprint"])


# -- a request to an enterprise CA over DCOM (ICertRequest), as its policy module answers ------
RPC_UNAVAILABLE = -2147023174  # 0x800706BA
CA_UNREACHABLE = "The RPC server is unavailable. 0x800706ba (WIN32: 1722 RPC_S_SERVER_UNAVAILABLE)"
UNSUPPORTED_TEMPLATE = (
    "The requested certificate template is not supported by this CA. 0x80094800 "
    "(-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)"
)
TEMPLATE_DENIED = (
    "Denied by Policy Module 0x80094012, The permissions on the certificate template do not allow "
    "the current user to enroll for this type of certificate."
)
KEY_LENGTH = (
    "The public key does not meet the minimum size required by the specified certificate template. "
    "0x80094811 (-2146875375 CERTSRV_E_KEY_LENGTH)"
)
SIGNATURES = (
    "The request is missing one or more required signatures. 0x80094809 (-2146875383 CERTSRV_E_SIGNATURE_COUNT)"
)
PENDING = "Taken Under Submission (the template requires CA manager approval)."
EVERYONE, AUTHENTICATED_USERS = "S-1-1-0", "S-1-5-11"


def find_ca(machine: Machine, ca_config: str, call: str) -> tuple[str, dict]:
    """The CA ``<host FQDN>\\<name>`` names, reached over RPC from this PC (``ca_offline`` on the
    PC or the CA host: the RPC server is unavailable; another host's CA from a logon without
    network credentials: access denied, the double hop)."""
    from ..faults import FaultBook
    from .adcs import ca_of

    fqdn, _, name = ca_config.partition("\\")
    faults = FaultBook(machine.store)
    for host in machine.estate.in_group("ca"):
        if host.fqdn.lower() != fqdn.lower():
            continue
        if host.name != machine.name:
            machine.require_network("ca", call)
        ca = ca_of(machine.store, host.name, machine.estate.domain)
        if ca and (ca.get("common_name") or "").lower() == name.lower() and ca.get("cert_pem"):
            if faults.get(machine.name).ca_offline or faults.get(host.name).ca_offline:
                break
            return host.name, ca
    raise WindowsError(f"{call}: {CA_UNREACHABLE}", "NotSpecified", "COMException", RPC_UNAVAILABLE)


def _attribute(obj: dict, name: str, default=None):
    values: list[Any] = next((v for k, v in obj["attributes"].items() if k.lower() == name.lower()), [])
    return values[0] if values else default


def may_enroll(machine: Machine, template: dict, sam: str, user: dict) -> bool:
    sids = {user["sid"], EVERYONE, AUTHENTICATED_USERS}
    for group in user.get("groups", []):
        entry = machine.store.get("ad_group", group)
        if entry:
            sids.add(entry["sid"])
    for ace in (template.get("acl") or {}).get("aces", []):
        if not ace.get("allow", True) or ace["sid"] not in sids:
            continue
        rights = int(ace["rights"])
        if rights & adcs.GENERIC_ALL == adcs.GENERIC_ALL:
            return True
        if rights & adcs.EXTENDED_RIGHT and ace.get("object_type") in (adcs.ENROLL, adcs.ALL_EXTENDED_RIGHTS):
            return True
    return False


def template_providers(template: dict) -> list[str]:
    values: list[Any] = next((v for k, v in template["attributes"].items() if k.lower() == "pkidefaultcsps"), [])
    return [str(v).split(",", 1)[-1] for v in sorted(values)]


def submit(machine: Machine, ca_host: str, ca: dict, template_name: str, csr, sam: str, user: dict) -> x509.Certificate:
    """ICertRequest::Submit as the user: the Enterprise policy module's checks, then the CA signs."""
    from .adcs import issue_certificate, record_issued

    template = machine.directory.get(adcs.template_dn(template_name))
    if template is None or template_name.lower() not in {t.lower() for t in ca.get("published", [])}:
        raise WindowsError(UNSUPPORTED_TEMPLATE, "NotSpecified", "COMException", -2146875392)
    if int(_attribute(template, "msPKI-Minimal-Key-Size", 2048) or 0) > csr.public_key().key_size:
        raise WindowsError(KEY_LENGTH, "NotSpecified", "COMException", -2146875375)
    if not may_enroll(machine, template, sam, user):
        raise WindowsError(TEMPLATE_DENIED, "NotSpecified", "COMException", -2146877422)
    if int(_attribute(template, "msPKI-RA-Signature", 0) or 0) > 0:
        raise WindowsError(SIGNATURES, "NotSpecified", "COMException", -2146875383)
    if int(_attribute(template, "msPKI-Enrollment-Flag", 0) or 0) & adcs.ENROLL_PEND_ALL_REQUESTS:
        raise WindowsError(f"The certificate request is pending: {PENDING}", "NotSpecified", "COMException", 0)
    cert = issue_certificate(ca, template, csr, sam, user, machine.estate.domain)
    record_issued(machine.store, ca_host, cert, f"{machine.estate.netbios}\\{sam}", template_name, machine.name)
    return cert
