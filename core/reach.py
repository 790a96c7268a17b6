"""The double hop: which steps a session's credentials cannot carry beyond its host.

A WinRM logon over NTLM, Basic, a certificate, or Kerberos without delegation has no network
credentials: Windows refuses whatever then leaves the host (LDAP to a domain controller, the Lync
Central Management Store in SQL on another server, a CA over DCOM) with "An operations error
occurred." or access denied. Tasks declare what they reach (``Task.reaches``); the planner
refuses such steps before anything runs, naming the ways out, unless the resource is on the host
itself (``lync2fa_local_resources``) or the step gives its cmdlet an explicit credential.
Lync finds its CMS through a service connection point in AD (Get-CsConfigurationStoreLocation), so
a step that reaches the CMS reaches AD too: a Standard Edition server's own CMS is no way out
unless that server is also a domain controller.
"""

from __future__ import annotations

RESOURCE_NAMES = {"ad": "Active Directory", "cms": "the Lync Central Management Store", "ca": "a remote CA"}
LOCAL_VAR = "lync2fa_local_resources"
# Steps whose cmdlet takes an explicit credential for what it reaches: task -> (the resource, the
# parameters giving the user and the password). The cmdlet logs on with them itself, so the
# session's lack of network credentials does not matter for that resource.
EXPLICIT_CREDENTIALS = {
    "ca.authority": ("ad", "install_user", "install_password"),  # Install-AdcsCertificationAuthority -Credential
}
WAYS_OUT = (
    "use a transport that delegates: ansible_winrm_transport: credssp, or kerberos with "
    "ansible_winrm_kerberos_delegation: true (docs/real-estate.md);",
    f"or, when the resource is on that host itself (a CA on a domain controller, a Standard Edition "
    f"server holding its CMS), say so with {LOCAL_VAR}: [ad, cms, ca] (Lync finds its CMS through AD, "
    "so a Standard Edition server's own CMS helps only when that server is also a domain controller: [ad, cms]);",
    "or give an explicit credential where the cmdlet takes one, such as "
    "Install-AdcsCertificationAuthority -Credential (ca_install_user and a vaulted ca_install_password);",
    "with Ansible, become: true and become_method: runas give the task a network logon.",
)

# The same ways out in one line, for a finding's fix (lync2fa validate).
WAYS_OUT_SHORT = (
    "ansible_winrm_transport: credssp, or kerberos with ansible_winrm_kerberos_delegation: true, or "
    f"{LOCAL_VAR} when the resource is on the host itself, or for ca.authority ca_install_user and a "
    "vaulted ca_install_password (its cmdlet's -Credential)"
)


def unreachable(step) -> list[str]:
    """What ``step`` needs beyond its host that its session cannot reach (empty when fine)."""
    if step.connection.delegates:
        return []
    return needs_network(step.task, step.host, step.params.get)


def needs_network(task, host, param) -> list[str]:
    """What ``task`` on ``host`` reaches beyond the host with the session's own credentials: its
    ``reaches`` less the resources on the host itself and the one an explicit credential covers
    (``param(name)``: the task's parameter value). Reaching the CMS means reaching AD first (its
    service connection point). The planner and preflight both ask this."""
    covered = local_resources(host)
    resource, user, password = EXPLICIT_CREDENTIALS.get(task.name, (None, "", ""))
    if resource is not None and param(user) and param(password):
        covered.add(resource)
    reaches = [*task.reaches, *(["ad"] if "cms" in task.reaches and "ad" not in task.reaches else [])]
    return [r for r in reaches if r not in covered]


def local_resources(host) -> set[str]:
    """What the inventory says is on ``host`` itself (``lync2fa_local_resources``: ad, cms, ca)."""
    local = host.var(LOCAL_VAR) or []
    return {
        str(v).strip().lower() for v in (local if isinstance(local, list) else str(local).split(",")) if str(v).strip()
    }


def refusals(steps) -> list[str]:
    """One line per step that would fail on the double hop."""
    lines = []
    for step in steps:
        missing = unreachable(step)
        if missing:
            what = ", ".join(RESOURCE_NAMES[r] for r in missing)
            lines.append(
                f"{step.host.name}: {step.task.name} reaches {what}, but a "
                f"{step.connection.transport} session has no network credentials (the double hop)"
            )
    return lines


def message(lines: list[str]) -> str:
    return "refused before anything ran:\n  " + "\n  ".join(lines) + "\nWays out: " + " ".join(WAYS_OUT)
