"""What the CA tier's decisions share: reading the installed CA from the registry, and the
check-mode assumption that ``ca.authority`` installs it."""

from __future__ import annotations

from lync2fa import adcs
from lync2fa.decision import Context, Decision, Facts
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


def without_ca(ctx: Context, warnings: list[str]) -> Decision | None:
    """With no CA installed: refused when applying; in check mode a warning that ca.authority
    installs it (appended to ``warnings``) and the decision goes on. None when a CA is there."""
    if active_ca(ctx.facts) is not None:
        return None
    if not ctx.check_mode:
        return Decision.refuse(NO_CA)
    warnings.append(NO_CA_CHECK_MODE)
    return None


def installed(rows) -> bool:
    """A Get-WindowsFeature fact: is the feature installed."""
    return any(bool(r.get("Installed")) for r in rows or [])
