"""The CA tier's lab twin: the same contract as the scripts, on the lab's state.

The CA holds a real RSA key and a real self-signed certificate made with ``cryptography``.
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lync2fa.lab.directory import principal_exists, short_name
from lync2fa.lab.twin import TwinContext, TwinFailure, outcome

from .builtin_templates import builtin_templates

HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
EMPTY_CA = {"role_installed": False, "ca_type": None, "common_name": None, "key_length": None,
            "hash_algorithm": None, "validity_years": None}
IDENTITY = ("ca_type", "common_name", "key_length", "hash_algorithm")


def _view(ca: dict | None) -> dict:
    return {k: (ca or {}).get(k, v) for k, v in EMPTY_CA.items()}


def make_ca_certificate(common_name: str, key_length: int, hash_algorithm: str, years: int):
    """A real root CA: RSA key and self-signed certificate (PEM strings)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_length)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=round(365.25 * years)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, HASHES[hash_algorithm]())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def require_ca(ctx: TwinContext) -> dict | None:
    """The CA on this host, or None in check mode (with a warning); raises otherwise."""
    ca = ctx.store.get("ca", ctx.host.name)
    if ca and ca.get("common_name"):
        return ca
    if ctx.check_mode:
        ctx.warn("No CA is installed yet (check mode): assuming ca.authority installs it.")
        return None
    raise TwinFailure("No certification authority is installed on this host; run ca.authority first.")


def authority(ctx: TwinContext, p: dict) -> dict:
    ca = ctx.store.get("ca", ctx.host.name)
    before = _view(ca)
    desired = {"role_installed": True, "ca_type": "EnterpriseRootCA", "common_name": p["common_name"],
               "key_length": p["key_length"], "hash_algorithm": p["hash_algorithm"].lower(),
               "validity_years": p["validity_years"]}
    if before["common_name"]:
        drift = [k for k in IDENTITY if before[k] != desired[k]]
        if drift:
            raise TwinFailure(f"A CA is already installed with different {', '.join(drift)}; lync2fa never "
                              "reinstalls a certification authority. Adjust the ca_* variables to the installed "
                              "CA or retire it by hand.")
        if before["validity_years"] != desired["validity_years"]:
            ctx.warn("The CA certificate validity differs from ca_validity_years; it applies at the next CA "
                     "certificate renewal.")
        return outcome(before, before, warnings=ctx.warnings)
    if ctx.check_mode:
        return outcome(before, desired)
    if desired["hash_algorithm"] == "sha1":
        raise TwinFailure("The lab's OpenSSL refuses sha1 signatures; a sha1 CA cannot be simulated.")
    cert_pem, key_pem = make_ca_certificate(p["common_name"], p["key_length"], desired["hash_algorithm"],
                                            p["validity_years"])
    ctx.store.put("ca", ctx.host.name, {**desired, "crypto_provider": p["crypto_provider"],
                                        "cert_pem": cert_pem, "key_pem": key_pem, "published": [],
                                        "web_enrollment": {}})
    # Installing an Enterprise CA puts the built-in templates into AD (when missing).
    for name, template in builtin_templates().items():
        if ctx.store.get("template", name) is None:
            ctx.store.put("template", name, template)
    return outcome(before, desired)


def web_enrollment(ctx: TwinContext, p: dict) -> dict:
    ca = require_ca(ctx) or {}
    current = ca.get("web_enrollment") or {}
    before = {"role_installed": current.get("role_installed", False), "configured": current.get("configured", False),
              "require_ssl": current.get("require_ssl", False),
              "extended_protection": current.get("extended_protection", "None")}
    desired = {"role_installed": True, "configured": True, "require_ssl": p["require_ssl"],
               "extended_protection": p["extended_protection"]}
    if before != desired and not ctx.check_mode:
        ca["web_enrollment"] = desired
        ctx.store.put("ca", ctx.host.name, ca)
    return outcome(before, desired, warnings=ctx.warnings)


def templates_published(ctx: TwinContext, p: dict) -> dict:
    ca = require_ca(ctx)
    published = sorted((ca or {}).get("published", []))
    missing = [t for t in p["templates"] if t not in published]
    for name in missing:
        if ctx.store.get("template", name) is None and ca is not None:
            raise TwinFailure(f"The certificate template {name} was not found in Active Directory.")
    after = sorted(set(published) | set(missing))
    if missing and ca is not None and not ctx.check_mode:
        ca["published"] = after
        ctx.store.put("ca", ctx.host.name, ca)
    return outcome({"published": published}, {"published": after}, warnings=ctx.warnings)


def template_in_ad(ctx: TwinContext, name: str) -> dict | None:
    """A certificate template from AD; in check mode a missing one is assumed to come with the
    Enterprise CA's installation (None, with a warning), otherwise it is an error."""
    template = ctx.store.get("template", name)
    if template is None:
        if not ctx.check_mode:
            raise TwinFailure(f"Certificate template {name} does not exist in Active Directory.")
        ctx.warn(f"Template {name} is not in Active Directory yet (check mode): assuming the "
                 "Enterprise CA installation creates it.")
    return template


def template_permissions(ctx: TwinContext, p: dict) -> dict:
    template = template_in_ad(ctx, p["template"]) or {"acl": []}
    if not principal_exists(ctx.store, p["principal"]):
        raise TwinFailure(f"Some or all identity references could not be translated: {p['principal']}")
    name = short_name(p["principal"])
    rights = set()
    for ace in template["acl"]:
        if ace["principal"] == name:
            rights.update(ace["rights"])
    view = {"template": p["template"], "principal": p["principal"]}
    before = {**view, "read": "Read" in rights, "enroll": "Enroll" in rights, "autoenroll": "Autoenroll" in rights}
    wanted = rights | {"Read", "Enroll"} | ({"Autoenroll"} if p["autoenroll"] else set())
    after = {**view, "read": True, "enroll": True, "autoenroll": "Autoenroll" in wanted}
    if wanted != rights and not ctx.check_mode:
        others = [a for a in template["acl"] if a["principal"] != name]
        template["acl"] = others + [{"principal": name, "rights": sorted(wanted)}]
        ctx.store.put("template", p["template"], template)
    return outcome(before, after, warnings=ctx.warnings)
