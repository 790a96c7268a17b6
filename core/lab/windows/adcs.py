"""Active Directory Certificate Services (ADCSDeployment and ADCSAdministration modules).

What Windows keeps, the lab keeps in the same places:

* the CA's registry under ``HKLM:\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration``:
  ``Active`` (the CA's name), ``<CA>\\CAType``, ``<CA>\\CACertHash`` (REG_MULTI_SZ, hex bytes
  separated by spaces, newest last), ``<CA>\\CommonName``, ``<CA>\\CAServerName``,
  ``<CA>\\ValidityPeriod(Units)`` (of the certificates it issues), ``<CA>\\CSP\\Provider``,
  ``<CA>\\CSP\\CNGHashAlgorithm``, ``<CA>\\CSP\\CNGPublicKeyAlgorithm``;
* the CA certificate in the machine's ``My`` and ``Root`` stores, where Windows keeps them: the
  registry key ``HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\MY\\Certificates\\<thumbprint>``,
  value ``Blob`` (``lync2fa.adcs.certificate_blob``), and its private key in the key storage
  provider (kind ``machine_key``, key ``<host>|<thumbprint>``); a real RSA key and a real
  self-signed certificate made with ``cryptography``;
* for an Enterprise CA, Active Directory's configuration partition: the pKIEnrollmentService
  object (``certificateTemplates``: the templates the CA issues, which ``Add-CATemplate``
  writes and ``Get-CATemplate`` reads), the CA certificate under Certification Authorities, AIA
  and NTAuthCertificates, and the built-in certificate templates
  (``lync2fa.lab.windows.adcs_templates.create_builtin_templates``);
* the CA database of issued certificates: kind ``ca_issued``, key ``<ca host>/<serial hex>``.

Windows' rules modelled: an Enterprise CA's installation and every template read/write go to a
domain controller (``Machine.require_network``: the double hop; the installation's ``-Credential``
logs on with its own password instead); ``Install-*`` without ``-Force``
prompts, which a non-interactive session refuses; a template written to AD moments ago is not yet
visible to the CA (directory replication and the CA's template cache, issue 7 defect 5): an
object whose ``whenCreated`` is less than ``replication_delay_s`` old (store kind ``lab_option``,
key ``ad_replication_delay_s``, default ``DEFAULT_REPLICATION_DELAY_S``), or that is not in the
CA's template cache (in the CA service's memory: loaded at installation or service start, reloaded
at most every ``replication_delay_s``), is "not found" for ``Add-CATemplate``.

Other lab components read the CA through ``ca_of(store, host)`` and sign with
``issue_certificate(...)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

from ... import adcs
from ..estate import Estate
from ..state import EstateStore
from .directory import Directory
from .errors import WindowsError, not_found
from .hosts import seeds
from .iis import (
    ACCESS,
    DEFAULT_SITE,
    WINDOWS_AUTH,
    add_application,
    applications,
    set_config,
)
from .machine import Machine, PSCredential, simulates
from .registry import Registry
from .servermanager import installed
from .services import add_service

MACHINE_KEY = "machine_key"
ISSUED = "ca_issued"
# The CA service's template cache lives in its memory, not in the estate: per (estate, CA host),
# {"names": [cn lower], "loaded_at": epoch s}; a lab restart is a service restart (reloaded).
_TEMPLATE_CACHES: dict[tuple[str, str], dict] = {}
LAB_OPTION = "lab_option"
REPLICATION_DELAY_OPTION = "ad_replication_delay_s"
DEFAULT_REPLICATION_DELAY_S = 0.5
HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# The templates a new Enterprise CA issues out of the box (when they exist in AD).
DEFAULT_ISSUED = (
    "DirectoryEmailReplication",
    "DomainControllerAuthentication",
    "KerberosAuthentication",
    "EFSRecovery",
    "EFS",
    "DomainController",
    "WebServer",
    "Machine",
    "User",
    "SubCA",
    "Administrator",
)
CERTSRV_PHYSICAL_PATH = "C:\\Windows\\system32\\CertSrv\\en-US"
NON_INTERACTIVE = "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."
TEMPLATE_NOT_FOUND_ID = "AddCATemplate,Microsoft.CertificateServices.Administration.Commands.CA.AddCATemplateCommand"


def _config_key(ca_name: str) -> str:
    return f"{adcs.CERTSVC_CONFIGURATION}\\{ca_name}"


def thumbprint(cert: x509.Certificate) -> str:
    """Windows' thumbprint: SHA-1 of the DER, upper-case hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def _spaced(thumb: str) -> str:
    return " ".join(thumb[i : i + 2].lower() for i in range(0, len(thumb), 2))


def _b64_der(cert_pem: str) -> str:
    return base64.b64encode(
        x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    ).decode()


def generalized_time(when: dt.datetime | None = None) -> str:
    """GeneralizedTime as AD writes whenCreated; the lab keeps milliseconds (AD writes ".0Z") so
    that a replication delay below a second can be modelled."""
    when = when or dt.datetime.now(dt.UTC)
    return when.strftime("%Y%m%d%H%M%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_generalized_time(text: str) -> dt.datetime:
    whole, _, fraction = str(text).rstrip("Z").partition(".")
    when = dt.datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return when + dt.timedelta(seconds=float(f"0.{fraction or '0'}"))


def replication_delay_s(store: EstateStore) -> float:
    value = store.get(LAB_OPTION, REPLICATION_DELAY_OPTION)
    return DEFAULT_REPLICATION_DELAY_S if value is None else float(value)


# -- the CA certificate ---------------------------------------------------------------------
def _signing_hash(algorithm: hashes.HashAlgorithm) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """A hash of HASHES that certificates can be signed with. SHA1 is a name the CA setup knows
    (and refuses), but cryptography cannot sign with it: the error its sign() raises."""
    if isinstance(algorithm, (hashes.SHA256, hashes.SHA384, hashes.SHA512)):
        return algorithm
    raise UnsupportedAlgorithm(f'Hash algorithm "{algorithm.name}" not supported for signatures')


def make_ca_certificate(common_name: str, key_length: int, hash_algorithm: str, years: int) -> tuple[str, str]:
    """A real root CA: RSA key and self-signed certificate (PEM strings)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_length)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=round(365.25 * years)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, _signing_hash(HASHES[hash_algorithm]()))
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


# -- AD skeleton ------------------------------------------------------------------------------
PKI_CONTAINERS = (
    "CN=Services",
    "CN=Public Key Services,CN=Services",
    *(
        f"{c},CN=Public Key Services,CN=Services"
        for c in (
            "CN=Certificate Templates",
            "CN=Enrollment Services",
            "CN=Certification Authorities",
            "CN=AIA",
            "CN=OID",
            "CN=KRA",
            "CN=CDP",
        )
    ),
)


@seeds
def seed_pki_containers(store: EstateStore, estate: Estate) -> None:
    """Every forest has the configuration partition's Public Key Services containers (empty until
    the first Enterprise CA) and NTAuthCertificates."""
    directory = Directory(store, estate.domain)
    config = directory.resolve(adcs.CONFIG_NC)
    for rdn in ("", *PKI_CONTAINERS):
        dn = f"{rdn},{config}" if rdn else config
        if directory.get(dn) is None:
            cn = dn.split(",", 1)[0].split("=", 1)[1]
            directory.put(
                {
                    "dn": dn,
                    "class": "configuration" if not rdn else "container",
                    "attributes": {"cn": [cn], "whenCreated": ["20200101000000.0Z"]},
                    "acl": {"owner": f"{estate.netbios}\\Enterprise Admins", "aces": []},
                }
            )
    ntauth = directory.resolve(adcs.NTAUTH_DN)
    if directory.get(ntauth) is None:
        directory.put(
            {
                "dn": ntauth,
                "class": "certificationAuthority",
                "attributes": {"cn": ["NTAuthCertificates"], "cACertificate": [], "whenCreated": ["20200101000000.0Z"]},
                "acl": {"owner": f"{estate.netbios}\\Enterprise Admins", "aces": []},
            }
        )


# -- reading the CA (for other lab components) -------------------------------------------------
def ca_name(machine_or_store, host: str | None = None) -> str | None:
    registry = machine_or_store.registry if host is None else Registry(machine_or_store, host)
    return registry.value(adcs.CERTSVC_CONFIGURATION, "Active")


def ca_of(store: EstateStore, host_name: str, domain: str | None = None) -> dict | None:
    """The CA installed on ``host_name`` as the rest of the lab needs it, or None:
    ``{common_name, ca_type, cert_pem, key_pem, thumbprint, hash_algorithm, key_length,
    validity_years, crypto_provider, published}`` (``published``: the templates it issues,
    sorted, from its enrollment service object in AD)."""
    registry = Registry(store, host_name)
    name = registry.value(adcs.CERTSVC_CONFIGURATION, "Active")
    if not name:
        return None
    key = _config_key(name)
    hashes_ = registry.value(key, "CACertHash") or []
    thumb = (hashes_[-1] if hashes_ else "").replace(" ", "").upper()
    blob = registry.value(adcs.machine_store_key("MY", thumb), "Blob") if thumb else None
    der = adcs.certificate_from_blob(base64.b64decode(blob)) if blob else None
    cert_pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode() if der else None
    key_pem = (store.get(MACHINE_KEY, f"{host_name}|{thumb}") or {}).get("key_pem")
    out = {
        "common_name": name,
        "ca_type": adcs.CA_TYPES.get(registry.value(key, "CAType")),
        "cert_pem": cert_pem,
        "key_pem": key_pem,
        "thumbprint": thumb,
        "hash_algorithm": str(registry.value(f"{key}\\CSP", "CNGHashAlgorithm") or "").lower() or None,
        "crypto_provider": registry.value(f"{key}\\CSP", "Provider"),
        "key_length": None,
        "validity_years": None,
        "published": [],
    }
    if cert_pem:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        public_key = cert.public_key()
        if not isinstance(public_key, (rsa.RSAPublicKey, dsa.DSAPublicKey, ec.EllipticCurvePublicKey)):
            raise ValueError(f"the certificate of CA {name} has a {type(public_key).__name__}, which has no key length")
        out["key_length"] = public_key.key_size
        out["validity_years"] = round((cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365.25)
    service = _enrollment_service(store, name, domain)
    if service is not None:
        out["published"] = sorted(_attr(service, adcs.ISSUED_TEMPLATES_ATTRIBUTE))
    return out


def _attr(obj: dict, name: str) -> list:
    return next((list(v) for k, v in obj["attributes"].items() if k.lower() == name.lower()), [])


def _enrollment_service(store: EstateStore, name: str, domain: str | None) -> dict | None:
    if domain is not None:
        return Directory(store, domain).get(adcs.enrollment_service_dn(name))
    prefix = f"cn={name.lower()},cn=enrollment services,"
    return next((o for k, o in store.items("ad").items() if k.startswith(prefix)), None)


def _require_ca(machine: Machine, what: str) -> str:
    name = ca_name(machine)
    if not name:
        raise WindowsError(
            f"{what}: The Certification Authority Service is not installed or not running on this "
            "computer. 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)",
            "ObjectNotFound",
            f"{what},Microsoft.CertificateServices.Administration.Commands.CA",
        )
    return name


def _non_interactive(p: dict) -> None:
    if not p.get("Force"):
        raise WindowsError(
            NON_INTERACTIVE, "InvalidOperation", "System.Management.Automation.PSInvalidOperationException"
        )


# -- Install-AdcsCertificationAuthority --------------------------------------------------------
LOGON_FAILURE = "The user name or password is incorrect. 0x8007052e (WIN32: 1326 ERROR_LOGON_FAILURE)"


def _reach_directory(machine: Machine, credential: PSCredential | None) -> None:
    """An Enterprise CA's installation writes the configuration partition on a DC: as the
    session (the double hop), or as ``-Credential`` ("a user account that is a member of the
    Enterprise Admin group is required": the cmdlet's documentation), a logon of its own that
    holds network credentials over any transport."""
    if credential is None:
        machine.require_network("ad")
    elif not machine.logon_user(credential):
        raise WindowsError(
            LOGON_FAILURE,
            "SecurityError",
            "Install-AdcsCertificationAuthority,Microsoft.CertificateServices.Deployment.Commands.CA."
            "InstallADCSCertificationAuthority",
            -2147023570,  # 0x8007052E
        )


@simulates("Install-AdcsCertificationAuthority")
def install_adcs_certification_authority(machine: Machine, p: dict) -> dict:
    if not installed(machine.store, machine.name, adcs.FEATURE_CA):
        raise WindowsError(
            "The Certification Authority role service is not installed. Install it with "
            "Install-WindowsFeature ADCS-Cert-Authority first.",
            "InvalidOperation",
            "Install-AdcsCertificationAuthority,Microsoft.CertificateServices.Deployment.Commands.CA."
            "InstallADCSCertificationAuthority",
        )
    _non_interactive(p)
    if ca_name(machine):
        raise WindowsError(
            "The Certification Authority is already installed.",
            "InvalidOperation",
            "Install-AdcsCertificationAuthority,Microsoft.CertificateServices.Deployment.Commands.CA."
            "InstallADCSCertificationAuthority",
        )
    ca_type = str(p.get("CAType") or "EnterpriseRootCA")
    if ca_type not in ("EnterpriseRootCA", "StandaloneRootCA"):
        raise WindowsError(f"lab: a {ca_type} needs a parent CA, which the lab does not model")
    enterprise = ca_type.startswith("Enterprise")
    if enterprise:
        _reach_directory(machine, p.get("Credential"))
    name = str(p.get("CACommonName") or f"{machine.estate.netbios}-{machine.name.upper()}-CA")
    provider = str(p.get("CryptoProviderName") or "RSA#Microsoft Software Key Storage Provider")
    algorithm, _, provider_name = provider.rpartition("#")
    hash_name = str(p.get("HashAlgorithmName") or "SHA256").lower()
    if hash_name not in HASHES:
        raise WindowsError(
            f"The hash algorithm {hash_name} is not supported by the provider {provider_name}.", "InvalidArgument"
        )
    if hash_name == "sha1":
        raise WindowsError("lab: the lab's OpenSSL refuses sha1 signatures; a sha1 CA cannot be simulated.")
    units = int(p.get("ValidityPeriodUnits") or 5)
    period = str(p.get("ValidityPeriod") or "Years")
    years = units if period.lower() == "years" else max(1, round(units / 12)) if period.lower() == "months" else 1
    cert_pem, key_pem = make_ca_certificate(name, int(p.get("KeyLength") or 2048), hash_name, years)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    thumb = thumbprint(cert)
    machine.store.put(
        MACHINE_KEY, f"{machine.name}|{thumb}", {"key_pem": key_pem, "provider": provider_name, "container": name}
    )
    blob = base64.b64encode(adcs.certificate_blob(cert.public_bytes(serialization.Encoding.DER))).decode()
    for store_name in ("MY", "ROOT"):
        machine.registry.set(adcs.machine_store_key(store_name, thumb), "Blob", blob, "Binary")

    registry, key = machine.registry, _config_key(name)
    registry.set(adcs.CERTSVC_CONFIGURATION, "Active", name, "String")
    add_service(machine.store, machine.name, "CertSvc", "Active Directory Certificate Services")
    registry.set(key, "CAType", adcs.CA_TYPE_CODES[ca_type], "DWord")
    registry.set(key, "CACertHash", [_spaced(thumb)], "MultiString")
    registry.set(key, "CommonName", name, "String")
    registry.set(key, "CAServerName", machine.host.fqdn, "String")
    registry.set(key, "ValidityPeriod", "Years", "String")
    registry.set(key, "ValidityPeriodUnits", 2, "DWord")
    registry.set(f"{key}\\CSP", "Provider", provider_name, "String")
    registry.set(f"{key}\\CSP", "CNGPublicKeyAlgorithm", algorithm or "RSA", "String")
    registry.set(f"{key}\\CSP", "CNGHashAlgorithm", hash_name.upper(), "String")
    registry.set(f"{key}\\CSP", "ProviderType", 0, "DWord")
    if enterprise:
        _publish_in_ad(machine, name, cert_pem)
        _load_template_cache(machine)
    return {"ErrorId": 0, "ErrorString": ""}


def _publish_in_ad(machine: Machine, name: str, cert_pem: str) -> None:
    directory = machine.directory
    der = _b64_der(cert_pem)
    now = generalized_time(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    builtin_templates: Callable[[Machine], list[str]] | None
    try:
        from .adcs_templates import (
            create_builtin_templates,  # the templates component, when present
        )

        builtin_templates = create_builtin_templates
    except ImportError:
        builtin_templates = None
    if builtin_templates is not None:
        builtin_templates(machine)
    for container in (adcs.CERTIFICATION_AUTHORITIES, adcs.AIA_CONTAINER):
        dn = f"CN={name},{container}"
        if not directory.exists(dn):
            directory.create(container, name, "certificationAuthority", {"cACertificate": [der], "whenCreated": [now]})
    ntauth = directory.get(adcs.NTAUTH_DN)
    if ntauth is not None:
        directory.set_attributes(adcs.NTAUTH_DN, {"cACertificate": [*_attr(ntauth, "cACertificate"), der]})
    existing = {o["attributes"].get("cn", [""])[0].lower() for o in directory.children(adcs.TEMPLATES_CONTAINER)}
    issued = [t for t in DEFAULT_ISSUED if t.lower() in existing]
    service = adcs.enrollment_service_dn(name)
    if directory.exists(service):
        directory.delete(service)
    directory.create(
        adcs.ENROLLMENT_SERVICES,
        name,
        adcs.ENROLLMENT_SERVICE_CLASS,
        {
            "cACertificate": [der],
            "dNSHostName": [machine.host.fqdn],
            "displayName": [name],
            adcs.ISSUED_TEMPLATES_ATTRIBUTE: issued,
            "whenCreated": [now],
        },
    )


# -- templates the CA issues ---------------------------------------------------------------------
def _load_template_cache(machine: Machine) -> dict:
    """What the CA's template cache holds after it reads the templates from its DC."""
    names = sorted(
        {_attr(o, "cn")[0].lower() for o in machine.directory.children(adcs.TEMPLATES_CONTAINER) if _attr(o, "cn")}
    )
    cache = {"names": names, "loaded_at": time.time()}
    _TEMPLATE_CACHES[(str(machine.store.path), machine.name)] = cache
    return cache


def _template_visible(machine: Machine, template: str) -> dict | None:
    """The template's AD object as the CA sees it, or None: missing; created so recently
    (``whenCreated``) that it has not replicated to the CA's DC; or not in the CA's template cache,
    which the CA reloads from its DC at most every ``replication_delay_s``."""
    obj = machine.directory.get(adcs.template_dn(template))
    if obj is None:
        return None
    delay = replication_delay_s(machine.store)
    created = _attr(obj, "whenCreated")
    if created:
        try:
            age = (dt.datetime.now(dt.UTC) - parse_generalized_time(created[0])).total_seconds()
        except ValueError:
            age = delay
        if age < delay:
            return None
    cache = _TEMPLATE_CACHES.get((str(machine.store.path), machine.name))
    if cache is not None and template.lower() not in cache["names"]:
        if time.time() - float(cache["loaded_at"]) < delay:
            return None
        cache = None
    if cache is None:
        _load_template_cache(machine)
    return obj


@simulates("Get-CATemplate")
def get_ca_template(machine: Machine, p: dict) -> list[dict]:
    name = _require_ca(machine, "Get-CATemplate")
    machine.require_network("ad")
    service = machine.directory.get(adcs.enrollment_service_dn(name))
    out = []
    for template in _attr(service, adcs.ISSUED_TEMPLATES_ATTRIBUTE) if service else []:
        obj = machine.directory.get(adcs.template_dn(template)) or {"attributes": {}}
        oid = (_attr(obj, "msPKI-Cert-Template-OID") or [""])[0]
        out.append({"Name": template, "Oid": oid})
    return out


@simulates("Add-CATemplate")
def add_ca_template(machine: Machine, p: dict) -> None:
    name = _require_ca(machine, "Add-CATemplate")
    machine.require_network("ad")
    _non_interactive(p)
    template = str(p["Name"])
    obj = _template_visible(machine, template)
    if obj is None:
        raise not_found(
            f"The requested certificate template '{template}' was not found in Active Directory. "
            "0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)",
            TEMPLATE_NOT_FOUND_ID,
        )
    cn = _attr(obj, "cn")[0] if _attr(obj, "cn") else template
    dn = adcs.enrollment_service_dn(name)
    service = machine.directory.get(dn)
    issued = _attr(service, adcs.ISSUED_TEMPLATES_ATTRIBUTE) if service else []
    if cn.lower() in {t.lower() for t in issued}:
        raise WindowsError(
            "Cannot create a file when that file already exists. 0x800700b7 (WIN32: 183 ERROR_ALREADY_EXISTS)",
            "ResourceExists",
            TEMPLATE_NOT_FOUND_ID,
        )
    machine.directory.set_attributes(dn, {adcs.ISSUED_TEMPLATES_ATTRIBUTE: [*issued, cn]})


@simulates("Remove-CATemplate")
def remove_ca_template(machine: Machine, p: dict) -> None:
    name = _require_ca(machine, "Remove-CATemplate")
    machine.require_network("ad")
    _non_interactive(p)
    dn = adcs.enrollment_service_dn(name)
    service = machine.directory.get(dn)
    issued = _attr(service, adcs.ISSUED_TEMPLATES_ATTRIBUTE) if service else []
    template = str(p.get("Name") or "")
    if template.lower() not in {t.lower() for t in issued}:
        raise not_found(f"The certificate template '{template}' is not issued by this CA.", TEMPLATE_NOT_FOUND_ID)
    machine.directory.set_attributes(
        dn, {adcs.ISSUED_TEMPLATES_ATTRIBUTE: [t for t in issued if t.lower() != template.lower()]}
    )


# -- Web Enrollment ------------------------------------------------------------------------------
@simulates("Install-AdcsWebEnrollment")
def install_adcs_web_enrollment(machine: Machine, p: dict) -> dict:
    if not installed(machine.store, machine.name, adcs.FEATURE_WEB_ENROLLMENT):
        raise WindowsError(
            "The Certification Authority Web Enrollment role service is not installed. Install it "
            "with Install-WindowsFeature ADCS-Web-Enrollment first.",
            "InvalidOperation",
            "Install-AdcsWebEnrollment,Microsoft.CertificateServices.Deployment.Commands.WEP.InstallADCSWebEnrollment",
        )
    _non_interactive(p)
    if not p.get("CAConfig"):
        _require_ca(machine, "Install-AdcsWebEnrollment")
    if any(a["path"].lower() == "/certsrv" for a in applications(machine)):
        raise WindowsError(
            "The Certification Authority Web Enrollment role service is already configured.",
            "InvalidOperation",
            "Install-AdcsWebEnrollment,Microsoft.CertificateServices.Deployment.Commands.WEP.InstallADCSWebEnrollment",
        )
    add_application(machine, DEFAULT_SITE, "/CertSrv", CERTSRV_PHYSICAL_PATH)
    set_config(machine, f"{DEFAULT_SITE}/CertSrv", WINDOWS_AUTH, "enabled", True)
    set_config(machine, f"{DEFAULT_SITE}/CertSrv", ACCESS, "sslFlags", "None")
    return {"ErrorId": 0, "ErrorString": ""}


# -- issuing (used by the client enrollment component) --------------------------------------------
@lru_cache(maxsize=8)
def _ca_key(key_pem: str):
    """The CA's private key, parsed once per lab process (loading a 4096-bit key checks its primes)."""
    return serialization.load_pem_private_key(key_pem.encode(), password=None)


UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")  # szOID_NT_PRINCIPAL_NAME
SID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2")  # szOID_NTDS_CA_SECURITY_EXT
SID_OTHERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2.1")
TEMPLATE_NAME_EXT = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2")  # v1 templates: the name
TEMPLATE_INFO_EXT = x509.ObjectIdentifier("1.3.6.1.4.1.311.21.7")  # v2+ templates: OID + version


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + body


def _der_oid(dotted: str) -> bytes:
    parts = [int(x) for x in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        while part > 0x7F:
            part >>= 7
            chunk.insert(0, 0x80 | (part & 0x7F))
        body += bytes(chunk)
    return _der(0x06, bytes(body))


def template_view(template: dict) -> dict:
    """What the CA reads from a template: its AD object (attributes as LDAP has them) or a plain
    dict of the same meaning (``name, ekus, schema_version, oid, validity_days, upn_in_san,
    no_security_extension``)."""
    if "attributes" not in template:
        return {
            "name": template.get("name"),
            "ekus": [adcs.EKU.get(e, e) for e in template.get("ekus", [])],
            "schema_version": int(template.get("schema_version", 1)),
            "oid": template.get("oid"),
            "validity_days": int(template.get("validity_days", 365)),
            "upn_in_san": bool(template.get("upn_in_san", True)),
            "no_security_extension": bool(template.get("no_security_extension")),
        }

    def first(name, default=None):
        values = _attr(template, name)
        return values[0] if values else default

    days = 365
    period = first("pKIExpirationPeriod")
    if period:
        raw = int.from_bytes(base64.b64decode(period), "little", signed=True)
        days = max(1, round(-raw / 10_000_000 / 86400))
    name_flag = int(first("msPKI-Certificate-Name-Flag", adcs.NAME_FLAG_SUBJECT_ALT_REQUIRE_UPN))
    enrollment_flag = int(first("msPKI-Enrollment-Flag", 0))
    return {
        "name": first("cn"),
        "ekus": [str(e) for e in _attr(template, "pKIExtendedKeyUsage")],
        "schema_version": int(first("msPKI-Template-Schema-Version", 1)),
        "oid": first("msPKI-Cert-Template-OID"),
        "validity_days": days,
        "upn_in_san": bool(name_flag & adcs.NAME_FLAG_SUBJECT_ALT_REQUIRE_UPN),
        "no_security_extension": bool(enrollment_flag & adcs.ENROLLMENT_FLAG_NO_SECURITY_EXTENSION),
    }


def user_subject(sam: str, domain: str) -> x509.Name:
    """Subject built from AD: CN=<user>,CN=Users,DC=... (most significant RDN first)."""
    rdns = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc) for dc in domain.split(".")]
    rdns += [x509.NameAttribute(NameOID.COMMON_NAME, "Users"), x509.NameAttribute(NameOID.COMMON_NAME, sam)]
    return x509.Name([x509.RelativeDistinguishedName([r]) for r in rdns])


def issue_certificate(
    ca: dict, template: dict, csr: x509.CertificateSigningRequest, sam: str, user: dict, domain: str
) -> x509.Certificate:
    """Sign a request as an Enterprise CA does: ``ca`` from ``ca_of``, ``template`` its AD object
    (or a plain view), ``user`` ``{"upn", "sid"}``. Subject and UPN from AD, EKUs and validity
    from the template, the SID security extension unless the template turns it off (ESC9)."""
    if not csr.is_signature_valid:
        raise ValueError("the request is not signed by the key it carries")
    view = template_view(template)
    ca_key = _ca_key(ca["key_pem"])
    ca_cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if view["schema_version"] >= 2 and view["oid"]:
        info = _der(0x30, _der_oid(view["oid"]) + _der(0x02, bytes([100])) + _der(0x02, bytes([0])))
        template_ext = x509.UnrecognizedExtension(TEMPLATE_INFO_EXT, info)
    else:
        template_ext = x509.UnrecognizedExtension(TEMPLATE_NAME_EXT, _der(0x1E, str(view["name"]).encode("utf-16-be")))
    builder = (
        x509.CertificateBuilder()
        .subject_name(user_subject(sam, domain))
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=10))
        .not_valid_after(now + dt.timedelta(days=view["validity_days"]))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(e) for e in view["ekus"]]), critical=False)
        .add_extension(template_ext, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if view["upn_in_san"]:
        upn = x509.OtherName(UPN_OID, _der(0x0C, user["upn"].encode()))
        builder = builder.add_extension(x509.SubjectAlternativeName([upn]), critical=False)
    if not view["no_security_extension"]:
        sid = x509.SubjectAlternativeName([x509.OtherName(SID_OTHERNAME, _der(0x04, user["sid"].encode()))])
        builder = builder.add_extension(x509.UnrecognizedExtension(SID_EXTENSION, sid.public_bytes()), critical=False)
    return builder.sign(ca_key, _signing_hash(HASHES.get(ca.get("hash_algorithm") or "sha256", hashes.SHA256)()))


def record_issued(
    store: EstateStore, ca_host: str, cert: x509.Certificate, requester: str, template: str, client: str
) -> None:
    """The CA database row of an issued certificate (kind ``ca_issued``)."""
    store.put(
        ISSUED,
        f"{ca_host}/{cert.serial_number:x}",
        {"requester": requester, "template": template, "thumbprint": thumbprint(cert), "client": client},
    )
