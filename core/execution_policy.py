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
GROUP_POLICY = ("MachinePolicy", "UserPolicy")  # the scopes Group Policy sets, in precedence order
ENABLE_SCRIPTS, EXECUTION_POLICY = "EnableScripts", "ExecutionPolicy"  # the registry value names
POLICIES = ("Restricted", "AllSigned", "RemoteSigned", "Unrestricted", "Bypass")
WORKSTATION = 1  # Win32_OperatingSystem.ProductType


def fact_queries(scopes: tuple[str, ...] = tuple(SCOPES)) -> dict[str, dict]:
    """The registry facts ``policy_<scope>`` the rules below read (every scope by default)."""
    return {f"policy_{scope}": registry_fact(SCOPES[scope], [ENABLE_SCRIPTS, EXECUTION_POLICY]) for scope in scopes}


def registry_from(facts) -> dict[str, dict | None]:
    """Scope -> its registry fact's value, from the facts read with ``fact_queries`` (``facts.get``)."""
    return {scope: facts.get(f"policy_{scope}") for scope in SCOPES}


def _canonical(value) -> str | None:
    for name in POLICIES:
        if str(value or "").strip().lower() == name.lower():
            return name
    return None


def _values(registry: dict[str, dict | None], scope: str) -> dict:
    return (registry.get(scope) or {}).get("values") or {}


def set_by_group_policy(registry: dict[str, dict | None]) -> list[tuple[str, str]]:
    """(policy, scope) for each Group Policy scope that sets one ("Turn on Script Execution"), in
    precedence order. ``registry`` maps scope -> the registry fact's value."""
    out = []
    for scope in GROUP_POLICY:
        values = _values(registry, scope)
        if ENABLE_SCRIPTS in values:
            policy = "Restricted" if int(values[ENABLE_SCRIPTS] or 0) == 0 else _canonical(values.get(EXECUTION_POLICY))
            if policy:
                out.append((policy, scope))
    return out


def group_policy_note(registry: dict[str, dict | None]) -> str:
    """What a scheduled job that wrote no result adds to its error ('' when Group Policy sets none):
    a policy such as AllSigned is the usual reason a job's script did not run."""
    found = set_by_group_policy(registry)
    if not found:
        return ""
    return " The execution policy set by Group Policy is " + ", ".join(f"{p} ({s})" for p, s in found) + "."


def effective(
    registry: dict[str, dict | None], product_type: int | None, process: str | None = None
) -> tuple[str, str]:
    """(policy, scope it comes from). ``registry`` maps scope -> the registry fact's value."""
    by_group_policy = set_by_group_policy(registry)
    if by_group_policy:
        return by_group_policy[0]
    process_policy = _canonical(process)
    if process_policy:
        return process_policy, "Process"
    for scope in ("CurrentUser", "LocalMachine"):
        policy = _canonical(_values(registry, scope).get(EXECUTION_POLICY))
        if policy and policy != "Undefined":
            return policy, scope
    return ("Restricted" if product_type == WORKSTATION else "RemoteSigned"), "default"
