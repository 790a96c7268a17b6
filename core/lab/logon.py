"""How a lab shell's session logged on: the Windows rule behind the double hop.

A WinRM shell runs under a logon made from the way its connection authenticated. Whether that
logon holds *network credentials* decides whether anything the shell runs can leave the host
(ADSI/LDAP to a domain controller, the Lync CMS in SQL on another server, a remote CA over
DCOM). Windows' rules, as the lab models them:

============  ===========  ============================================================
auth          delegated    why
============  ===========  ============================================================
``ntlm``      no           a network logon from a challenge/response: no password, no ticket
``basic``     no           local accounts only (Windows' WinRM service answers 401 to a
                           domain account); the session holds no network credentials;
                           Ansible's table: local accounts, no delegation
``credssp``   yes          the client sends the password itself (TSCredentials) after the
                           handshake; the lab checks it is the account's password
``kerberos``  if asked     only with a forwarded TGT (``ansible_winrm_kerberos_delegation``)
                           and an account trusted for delegation (the lab has no KDC)
============  ===========  ============================================================

The WS-Management server (``wsman.py``) records a :class:`LogonInfo` when a shell is created and
passes it with every command: ``executor(host, command, arguments, stdin, logon=logon)``. The
lab's dispatcher gives ``logon.delegated`` to the host's ``Machine``, whose ``require_network``
fails what leaves the host with the error Windows gives (:func:`network_error`), unless the
resource is on the host itself (a domain controller's AD, a Standard Edition server's CMS, the
host's own CA).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .estate import Estate

# What Windows answers when a session without network credentials reaches beyond its host.
NETWORK_ERRORS = {
    # ADSI / System.DirectoryServices bind to a DC as ANONYMOUS LOGON (ERROR_DS_OPERATIONS_ERROR)
    "ad": "An operations error occurred. (Exception from HRESULT: 0x80072020)",
    # The Lync/SfB Central Management Store in SQL Server with Windows authentication
    "cms": 'Cannot open database "xds" requested by the login. The login failed.\r\n'
    "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'.",
    # A certification authority on another server over DCOM (ICertRequest, certutil -config): the
    # CertSrv Request interface grants access to the CERTSVC_DCOM_ACCESS group (Everyone, Domain
    # Users, Domain Computers: KB 903220, "DCOM security enhancements in Windows Server 2003 SP1"),
    # which ANONYMOUS LOGON is not in: the call fails E_ACCESSDENIED. The caller prefixes its method.
    "ca": "Access is denied. 0x80070005 (WIN32: 5 ERROR_ACCESS_DENIED)",
}


def network_error(reach: str, delegated: bool) -> str | None:
    """Windows' error for an operation that reaches ``reach`` ("ad", "cms" or "ca") beyond the
    host from a session with (``delegated``) or without network credentials; None when it can."""
    if reach not in NETWORK_ERRORS:
        raise ValueError(f"unknown reach {reach!r} (one of {', '.join(NETWORK_ERRORS)})")
    return None if delegated else NETWORK_ERRORS[reach]


def logon_user(estate: Estate, user: str, password: str) -> bool:
    """LogonUser with an explicit password (a cmdlet's -Credential, runas become): the lab's domain
    account as ``CORP\\name``, ``name@domain`` or ``name``, with its password (compared in
    constant time)."""
    domain, _, name = user.lower().rpartition("\\")
    name, _, upn_domain = name.partition("@")
    return (
        name == estate.admin_user.lower()
        and domain in ("", estate.netbios.lower())
        and upn_domain in ("", estate.domain.lower())
        and hmac.compare_digest(password.encode(), estate.password.encode())
    )


@dataclass(frozen=True)
class LogonInfo:
    """One WinRM session's logon: ``auth`` as the connection authenticated, the ``user`` as the
    lab knows the account (``CORP\\lync2fa-admin``), and whether it holds network credentials."""

    auth: str  # "ntlm" | "basic" | "credssp" | "kerberos"
    user: str
    delegated: bool = False

    @property
    def domain(self) -> str:
        """The account's domain (NetBIOS name), or "" for a bare (local) name."""
        return self.user.rpartition("\\")[0]

    def as_dict(self) -> dict:
        return {"auth": self.auth, "user": self.user, "delegated": self.delegated}
