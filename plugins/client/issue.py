"""The lab's certificate issuance for a smart-card request: the card's key signs a real
PKCS#10 request, the CA twin's key signs a real X.509 user certificate, the way an AD CS
Enterprise CA builds it from the template and the user's AD object."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..ca.builtin_templates import EKU


@lru_cache(maxsize=8)
def _ca_key(key_pem: str):
    """The CA's private key, parsed once per lab process: loading a 4096-bit RSA key checks its
    primes and costs a third of a second, which would dominate every enrollment."""
    return serialization.load_pem_private_key(key_pem.encode(), password=None)

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")          # szOID_NT_PRINCIPAL_NAME
SID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2")      # szOID_NTDS_CA_SECURITY_EXT
SID_OTHERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2.1")
TEMPLATE_NAME_EXT = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2")   # v1 templates: the name
TEMPLATE_INFO_EXT = x509.ObjectIdentifier("1.3.6.1.4.1.311.21.7")   # v2+ templates: OID + version
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + body


def _der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        while part > 0x7F:
            part >>= 7
            chunk.insert(0, 0x80 | (part & 0x7F))
        body += bytes(chunk)
    return _der(0x06, bytes(body))


def new_card_key() -> rsa.RSAPrivateKey:
    """The key the TPM virtual smart card generates (RSA 2048, the VSC's size)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def request(key: rsa.RSAPrivateKey, template: str) -> x509.CertificateSigningRequest:
    """What CertEnroll sends: a PKCS#10 signed by the card key, naming the template."""
    name_ext = x509.UnrecognizedExtension(TEMPLATE_NAME_EXT, _der(0x1E, template.encode("utf-16-be")))
    return (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
            .add_extension(name_ext, critical=False).sign(key, hashes.SHA256()))


def _template_extension(template: dict) -> x509.UnrecognizedExtension:
    if template.get("schema_version", 1) >= 2 and template.get("oid"):
        info = _der(0x30, _der_oid(template["oid"]) + _der(0x02, bytes([100])) + _der(0x02, bytes([0])))
        return x509.UnrecognizedExtension(TEMPLATE_INFO_EXT, info)
    return x509.UnrecognizedExtension(TEMPLATE_NAME_EXT, _der(0x1E, template["name"].encode("utf-16-be")))


def user_subject(sam: str, domain: str) -> x509.Name:
    """Subject built from AD: CN=<user>,CN=Users,DC=... (most significant RDN first)."""
    rdns = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc) for dc in domain.split(".")]
    rdns += [x509.NameAttribute(NameOID.COMMON_NAME, "Users"), x509.NameAttribute(NameOID.COMMON_NAME, sam)]
    return x509.Name([x509.RelativeDistinguishedName([r]) for r in rdns])


def issue(ca: dict, template: dict, csr: x509.CertificateSigningRequest, sam: str, user: dict,
          domain: str) -> x509.Certificate:
    """Sign the request with the CA's key: subject and UPN from AD, EKUs and validity from the
    template, the SID security extension unless the template turns it off (ESC9)."""
    if not csr.is_signature_valid:
        raise ValueError("the request is not signed by the key it carries")
    ca_key = _ca_key(ca["key_pem"])
    ca_cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ekus = [x509.ObjectIdentifier(EKU.get(e, e)) for e in template.get("ekus", [])]
    builder = (
        x509.CertificateBuilder().subject_name(user_subject(sam, domain)).issuer_name(ca_cert.subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=10))
        .not_valid_after(now + dt.timedelta(days=int(template.get("validity_days", 365))))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(_template_extension(template), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if template.get("upn_in_san", True):
        upn = x509.OtherName(UPN_OID, _der(0x0C, user["upn"].encode()))
        builder = builder.add_extension(x509.SubjectAlternativeName([upn]), critical=False)
    if not template.get("no_security_extension"):
        sid = x509.SubjectAlternativeName([x509.OtherName(SID_OTHERNAME, _der(0x04, user["sid"].encode()))])
        builder = builder.add_extension(x509.UnrecognizedExtension(SID_EXTENSION, sid.public_bytes()), critical=False)
    return builder.sign(ca_key, HASHES.get(ca.get("hash_algorithm"), hashes.SHA256)())


def thumbprint(cert: x509.Certificate) -> str:
    """Windows' thumbprint: SHA-1 of the DER, upper-case hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()
