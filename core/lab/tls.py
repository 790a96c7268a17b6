"""A throwaway CA and server certificate for the lab's HTTPS endpoints (real X.509)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_PEM, CERT_PEM, KEY_PEM = "lab-ca.pem", "lab-server.pem", "lab-server.key"
CREDSSP_PEM = "credssp.pem"  # certificate and key of the CredSSP acceptor's TLS (inside HTTP auth)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def generate(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("lync2fa lab TLS CA"))
        .issuer_name(_name("lync2fa lab TLS CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / CA_PEM).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / CERT_PEM).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(directory / KEY_PEM, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def server_context(directory: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(directory / CERT_PEM, directory / KEY_PEM)
    return ctx


def credssp_certificate(directory: Path) -> tuple[Path, bytes]:
    """The self-signed certificate a WinRM service uses for CredSSP's inner TLS; made once, kept.

    Returns the PEM file (certificate then key, mode 0600) and the certificate's public key as
    CredSSP binds it (DER PKCS#1: CredSSP's pubKeyAuth is computed over it, so it must be RSA, as
    the certificate Windows generates for WSMan CredSSP is). Clients do not validate the
    certificate itself: the pubKeyAuth exchange proves the server holds it.
    """
    path = directory / CREDSSP_PEM
    if not path.exists():
        now = dt.datetime.now(dt.UTC)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = _name("WSMan CredSSP (lync2fa lab)")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{CREDSSP_PEM}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        os.replace(tmp, path)  # several servers sharing a directory: one certificate wins, whole
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return path, cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
