"""What the CA tier's decisions share: reading the installed CA from the registry, and the
check-mode assumption that ``ca.authority`` installs it."""

from __future__ import annotations

from lync2fa import adcs
from lync2fa.decision import Facts
from lync2fa.hostops import registry_fact

CA_CONFIG = "ca_config"
NO_CA = "No certification authority is installed on this host; run ca.authority first."
NO_CA_CHECK_MODE = "No CA is installed yet (check mode): assuming ca.authority installs it."


def ca_config_fact() -> dict:
    """``CertSvc\\Configuration``: its ``Active`` value names the installed CA."""
    return registry_fact(adcs.CERTSVC_CONFIGURATION, ["Active"])


def active_ca(facts: Facts) -> str | None:
    """The installed CA's name, or None."""
    value = facts.value(CA_CONFIG) or {}
    return ((value.get("values") or {}).get("Active") or None) if value.get("exists") else None


def installed(rows) -> bool:
    """A Get-WindowsFeature fact: is the feature installed."""
    return any(bool(r.get("Installed")) for r in rows or [])
