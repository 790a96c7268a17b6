"""ca.authority: the AD CS role and an Enterprise Root CA (reference section 3).

A CA's identity (type, name, key, hash) cannot change after installation: drift is refused,
never "fixed" by reinstalling. The installed CA is read where Windows keeps it: the
``CertSvc\\Configuration`` registry (``Active``, ``<CA>\\CAType``, ``<CA>\\CACertHash``,
``<CA>\\CSP\\CNGHashAlgorithm``) and the CA certificate in the machine's My store (key length and
validity come from the certificate itself).
"""
from __future__ import annotations

import base64

from cryptography import x509
from lync2fa import adcs
from lync2fa.decision import Context, Decision, More
from lync2fa.hostops import cmdlet, cmdlet_fact, registry_fact

from .common import CA_CONFIG, active_ca, ca_config_fact, installed

CA_TYPE = "EnterpriseRootCA"
IDENTITY = ("ca_type", "common_name", "key_length", "hash_algorithm")
EMPTY = {"role_installed": False, "ca_type": None, "common_name": None, "key_length": None,
         "hash_algorithm": None, "validity_years": None}
DRIFT = ("A CA is already installed with different {drift}; lync2fa never reinstalls a certification authority. "
         "Adjust the ca_* variables to the installed CA or retire it by hand.")
VALIDITY = ("The CA certificate validity differs from ca_validity_years; it applies at the next CA certificate "
            "renewal.")


def facts(p: dict) -> dict:
    return {"feature": cmdlet_fact("Get-WindowsFeature", {"Name": adcs.FEATURE_CA}, ("Name", "Installed"),
                                   module="ServerManager"),
            CA_CONFIG: ca_config_fact()}


def _key(name: str) -> str:
    return f"{adcs.CERTSVC_CONFIGURATION}\\{name}"


def _values(ctx: Context, name: str) -> dict:
    value = ctx.facts.value(name) or {}
    return value.get("values") or {}


def _thumbprint(ca_values: dict) -> str | None:
    hashes = ca_values.get("CACertHash") or []
    hashes = [hashes] if isinstance(hashes, str) else hashes
    return str(hashes[-1]).replace(" ", "").upper() if hashes else None   # newest renewal last


def state(ctx: Context) -> dict | More:
    """The CA as installed (the ``before`` view), asking for the CA's own keys when there is one."""
    before = {**EMPTY, "role_installed": installed(ctx.facts.value("feature"))}
    name = active_ca(ctx.facts)
    if name is None:
        return before
    if "ca" not in ctx.facts.raw:
        return More({"ca": registry_fact(_key(name), ["CAType", "CACertHash"]),
                     "csp": registry_fact(f"{_key(name)}\\CSP", ["CNGHashAlgorithm"])})
    ca_values = _values(ctx, "ca")
    thumb = _thumbprint(ca_values)
    if thumb and "certificate" not in ctx.facts.raw:
        return More({"certificate": registry_fact(adcs.machine_store_key("MY", thumb), ["Blob"])})
    ca_type = ca_values.get("CAType")
    before.update(common_name=name, ca_type=adcs.CA_TYPES.get(int(ca_type)) if ca_type is not None else None,
                  hash_algorithm=str(_values(ctx, "csp").get("CNGHashAlgorithm") or "").lower() or None)
    blob = _values(ctx, "certificate").get("Blob") if thumb else None
    der = adcs.certificate_from_blob(base64.b64decode(blob)) if blob else None
    if der:
        cert = x509.load_der_x509_certificate(der)
        before["key_length"] = cert.public_key().key_size
        before["validity_years"] = round((cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365.25)
    return before


def decide(ctx: Context) -> Decision | More:
    p = ctx.params
    before = state(ctx)
    if isinstance(before, More):
        return before
    desired = {"role_installed": True, "ca_type": CA_TYPE, "common_name": p["common_name"],
               "key_length": p["key_length"], "hash_algorithm": p["hash_algorithm"].lower(),
               "validity_years": p["validity_years"]}
    if before["common_name"] is not None:
        drift = [k for k in IDENTITY if before[k] != desired[k]]
        if drift:
            return Decision.refuse(DRIFT.format(drift=", ".join(drift)), before=before)
        warnings = [VALIDITY] if before["validity_years"] != desired["validity_years"] else []
        return Decision(before=before, after=before, warnings=warnings)
    operations = []
    if not before["role_installed"]:
        operations.append(cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_CA, "IncludeManagementTools": True},
                                 module="ServerManager"))
    operations.append(cmdlet("Install-AdcsCertificationAuthority", {
        "CAType": CA_TYPE, "CACommonName": p["common_name"], "KeyLength": p["key_length"],
        "HashAlgorithmName": p["hash_algorithm"], "CryptoProviderName": p["crypto_provider"],
        "ValidityPeriod": "Years", "ValidityPeriodUnits": p["validity_years"], "Force": True},
        module="ADCSDeployment"))
    return Decision(before=before, after=desired, operations=operations)
