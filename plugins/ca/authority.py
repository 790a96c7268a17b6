"""ca.authority: the AD CS role and an Enterprise Root CA (reference section 3).

A CA's identity (type, name, key, hash) cannot change after installation: drift is refused,
never "fixed" by reinstalling. The installed CA is read where Windows keeps it: the
``CertSvc\\Configuration`` registry (``Active``, ``<CA>\\CAType``, ``<CA>\\CACertHash``,
``<CA>\\CSP\\CNGHashAlgorithm``) and the CA certificate in the machine's My store (key length and
validity come from the certificate itself). Both are read in the step's first request: the
configuration key down to ``<CA>\\CSP`` (``depth=2``) and the My store with its certificates
(``depth=1``; a CA's My store holds few), so a re-run costs no further round trip.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from lync2fa import adcs
from lync2fa.decision import Context, Decision
from lync2fa.hostops import cmdlet, cmdlet_fact, credential, registry_fact, secret

from .common import CA_CONFIG, active_ca, installed

CA_TYPE = "EnterpriseRootCA"
IDENTITY = ("ca_type", "common_name", "key_length", "hash_algorithm")
EMPTY: dict[str, Any] = {
    "role_installed": False,
    "ca_type": None,
    "common_name": None,
    "key_length": None,
    "hash_algorithm": None,
    "validity_years": None,
}
DRIFT = (
    "A CA is already installed with different {drift}; lync2fa never reinstalls a certification authority. "
    "Adjust the ca_* variables to the installed CA or retire it by hand."
)
VALIDITY = "The CA certificate validity differs from ca_validity_years; it applies at the next CA certificate renewal."


CERTIFICATES = "certificates"
# Active on Configuration, CAType and CACertHash on Configuration\<CA>, CNGHashAlgorithm on <CA>\CSP.
CA_VALUES = ["Active", "CAType", "CACertHash", "CNGHashAlgorithm"]


def facts(p: dict) -> dict:
    return {
        "feature": cmdlet_fact(
            "Get-WindowsFeature", {"Name": adcs.FEATURE_CA}, ("Name", "Installed"), module="ServerManager"
        ),
        CA_CONFIG: registry_fact(adcs.CERTSVC_CONFIGURATION, CA_VALUES, depth=2),
        CERTIFICATES: registry_fact(adcs.machine_store_key("MY"), ["Blob"], depth=1),
    }


def _subkey(node: dict | None, name: str | None) -> dict:
    """A subkey read with the fact (registry key names are case-insensitive), else {}."""
    keys = (node or {}).get("keys") or {}
    return next((v for k, v in keys.items() if name is not None and k.lower() == name.lower()), None) or {}


def _thumbprint(ca_values: dict) -> str | None:
    hashes = ca_values.get("CACertHash") or []
    hashes = [hashes] if isinstance(hashes, str) else hashes
    return str(hashes[-1]).replace(" ", "").upper() if hashes else None  # newest renewal last


def state(ctx: Context) -> dict:
    """The CA as installed (the ``before`` view): its keys under CertSvc\\Configuration and its
    certificate (by the newest CACertHash) in the My store."""
    before = {**EMPTY, "role_installed": installed(ctx.facts.value("feature"))}
    name = active_ca(ctx.facts)
    if name is None:
        return before
    ca_key = _subkey(ctx.facts.value(CA_CONFIG), name)
    ca_values = ca_key.get("values") or {}
    thumb = _thumbprint(ca_values)
    ca_type = ca_values.get("CAType")
    csp_values = _subkey(ca_key, "CSP").get("values") or {}
    before.update(
        common_name=name,
        ca_type=adcs.CA_TYPES.get(int(ca_type)) if ca_type is not None else None,
        hash_algorithm=str(csp_values.get("CNGHashAlgorithm") or "").lower() or None,
    )
    certificate = _subkey(ctx.facts.value(CERTIFICATES), thumb) if thumb else {}
    blob = (certificate.get("values") or {}).get("Blob")
    der = adcs.certificate_from_blob(base64.b64decode(blob)) if blob else None
    if der:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, dsa.DSAPublicKey)):
            # AD CS makes a CA's key RSA, ECDSA or DSA: the kinds that have a size.
            raise TypeError(f"the CA certificate's {type(key).__name__} has no key size")
        before["key_length"] = key.key_size
        before["validity_years"] = round((cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365.25)
    return before


def decide(ctx: Context) -> Decision:
    p = ctx.params
    before = state(ctx)
    desired = {
        "role_installed": True,
        "ca_type": CA_TYPE,
        "common_name": p["common_name"],
        "key_length": p["key_length"],
        "hash_algorithm": p["hash_algorithm"].lower(),
        "validity_years": p["validity_years"],
    }
    if before["common_name"] is not None:
        drift = [k for k in IDENTITY if before[k] != desired[k]]
        if drift:
            return Decision.refuse(DRIFT.format(drift=", ".join(drift)), before=before)
        warnings = [VALIDITY] if before["validity_years"] != desired["validity_years"] else []
        return Decision(before=before, after=before, warnings=warnings)
    operations = []
    if not before["role_installed"]:
        operations.append(
            cmdlet(
                "Install-WindowsFeature",
                {"Name": adcs.FEATURE_CA, "IncludeManagementTools": True},
                module="ServerManager",
            )
        )
    operations.append(
        cmdlet(
            "Install-AdcsCertificationAuthority",
            {
                "CAType": CA_TYPE,
                "CACommonName": p["common_name"],
                "KeyLength": p["key_length"],
                "HashAlgorithmName": p["hash_algorithm"],
                "CryptoProviderName": p["crypto_provider"],
                "ValidityPeriod": "Years",
                "ValidityPeriodUnits": p["validity_years"],
                "Force": True,
                # AD is written as this account, not the session's (which may not reach AD: reach.py)
                **(
                    {"Credential": credential(p["install_user"], secret("install_password"))}
                    if p.get("install_user")
                    else {}
                ),
            },
            module="ADCSDeployment",
        )
    )
    return Decision(before=before, after=desired, operations=operations)
