"""The effective PowerShell execution policy, decided from the registry as PowerShell does.

Precedence (about_Execution_Policies): MachinePolicy and UserPolicy (Group Policy "Turn on Script
Execution": ``EnableScripts`` 0 = Restricted, 1 with ``ExecutionPolicy``), then Process (the
``-ExecutionPolicy`` of powershell.exe), CurrentUser, LocalMachine; with nothing set, Restricted
on a workstation and RemoteSigned on Windows Server 2012 R2 and later. A Group Policy setting
overrides ``-ExecutionPolicy Bypass``. ``-EncodedCommand`` text is not a script file and is never
subject to the policy; script files (``-File``), module scripts (.psm1) and format files
(.ps1xml) are.
"""

from __future__ import annotations

from .hostops import registry_fact

SCOPES = {
    "MachinePolicy": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell",
    "UserPolicy": "HKCU:\\SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell",
    "CurrentUser": "HKCU:\\SOFTWARE\\Microsoft\\PowerShell\\1\\ShellIds\\Microsoft.PowerShell",
    "LocalMachine": "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\1\\ShellIds\\Microsoft.PowerShell",
}
POLICIES = ("Restricted", "AllSigned", "RemoteSigned", "Unrestricted", "Bypass")
WORKSTATION = 1  # Win32_OperatingSystem.ProductType


def fact_queries() -> dict[str, dict]:
    return {
        f"policy_{scope}": registry_fact(path, ["EnableScripts", "ExecutionPolicy"]) for scope, path in SCOPES.items()
    }


def _canonical(value) -> str | None:
    for name in POLICIES:
        if str(value or "").strip().lower() == name.lower():
            return name
    return None


def effective(
    registry: dict[str, dict | None], product_type: int | None, process: str | None = None
) -> tuple[str, str]:
    """(policy, scope it comes from). ``registry`` maps scope -> the registry fact's value."""
    for scope in ("MachinePolicy", "UserPolicy"):
        values = (registry.get(scope) or {}).get("values") or {}
        if "EnableScripts" in values:
            if int(values["EnableScripts"] or 0) == 0:
                return "Restricted", scope
            policy = _canonical(values.get("ExecutionPolicy"))
            if policy:
                return policy, scope
    process_policy = _canonical(process)
    if process_policy:
        return process_policy, "Process"
    for scope in ("CurrentUser", "LocalMachine"):
        policy = _canonical(((registry.get(scope) or {}).get("values") or {}).get("ExecutionPolicy"))
        if policy and policy != "Undefined":
            return policy, scope
    return ("Restricted" if product_type == WORKSTATION else "RemoteSigned"), "default"
