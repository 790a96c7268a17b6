"""How to reach a host: Ansible's connection variables, with secure defaults.

Every value is parsed as Ansible parses it (booleans with Ansible's ``boolean``, the scheme
case-insensitively) and checked before any connection is made. Whether the credentials or the
payload would cross the network in clear is decided from the URL actually used (and the proxy
that URL would go through), never from ``ansible_host`` alone.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple
from urllib.parse import urlsplit

from ansible.module_utils.parsing.convert_bool import boolean

from .inventory import HostContext
from .task import clip

TRANSPORTS = ("ntlm", "basic", "plaintext", "kerberos", "credssp", "ssl", "certificate")
# Transports that send the password itself (HTTP Basic): in clear over http.
CLEAR_PASSWORD_TRANSPORTS = ("basic", "plaintext", "ssl")
BASIC_IN_CLEAR = "Basic authentication over plain http sends the password in clear text"
SCHEMES = ("http", "https")
MESSAGE_ENCRYPTION = ("auto", "always", "never")
CERT_VALIDATION = ("validate", "ignore")  # what pywinrm (and so Ansible) accepts
ALLOW_INSECURE_VAR = "lync2fa_allow_insecure_transport"
# Whether a logon over each transport holds network credentials (kerberos: with delegation only).
DELEGATES = {
    "credssp": True,
    "kerberos": False,
    "ntlm": False,
    "basic": False,
    "plaintext": False,
    "ssl": False,
    "certificate": False,
}


class ConnectionConfigError(ValueError):
    """A host's connection refused before any connection is made. ``var`` names the variable to
    fix and ``rule`` the kind of refusal (how ``lync2fa validate`` places and names its finding)."""

    def __init__(self, message: str, var: str = "", rule: str = "CONNECTION", fix: str = ""):
        super().__init__(message)
        self.var, self.rule, self.fix = var, rule, fix


@dataclass(frozen=True)
class Concern:
    """Something allowed about a host's connection that is still worth saying: a ``warning`` on
    every run (``str()``), or a ``note`` only ``lync2fa validate`` shows."""

    host: str
    rule: str
    var: str
    severity: str
    text: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.host}: {self.text}"


class Risk(NamedTuple):
    """What would cross the network in clear, why, and which variable causes it."""

    why: str
    fix: str
    rule: str
    var: str

    @property
    def allowed(self) -> str:
        """The warning every run gives when the host allows it."""
        return f"{self.why} ({ALLOW_INSECURE_VAR}: true)"


@dataclass(frozen=True)
class ConnectionSettings:
    host: str  # inventory name, for messages
    address: str
    port: int
    scheme: str
    transport: str
    user: str
    password: str = field(repr=False)
    cert_validation: str = "validate"
    ca_trust_path: str | None = None
    message_encryption: str = "auto"
    operation_timeout: int = 20
    read_timeout: int = 30
    path: str = "/wsman"
    concerns: tuple[Concern, ...] = ()
    # Delegation (the double hop): Ansible's ansible_winrm_kerberos_delegation and friends.
    kerberos_delegation: bool = False
    kerberos_hostname_override: str | None = None
    credssp_disable_tlsv1_2: bool = False
    # ansible_winrm_proxy: the only proxy lync2fa uses (never the environment's HTTP(S)_PROXY).
    proxy: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """What every run says about this connection (allowed risks, certificate validation off)."""
        return tuple(str(c) for c in self.concerns if c.severity == "warning")

    @property
    def delegates(self) -> bool:
        """Whether the remote session gets network credentials (can reach AD, a CMS, a remote CA).

        CredSSP sends the password to the host; Kerberos forwards a TGT when delegation is on. NTLM,
        Basic and certificate logons, and Kerberos without delegation, have none (the double hop).
        """
        return DELEGATES.get(self.transport, False) or (self.transport == "kerberos" and self.kerberos_delegation)

    @property
    def endpoint(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.path}"

    @classmethod
    def from_host(cls, host: HostContext) -> ConnectionSettings:
        """Read Ansible's winrm connection vars, with Ansible's defaults where it has them."""
        address = _address(host)
        port = _int(host, "ansible_port", 5986, 1, 65535)
        # Ansible: scheme is https unless the port is 5985.
        scheme = _choice(host, "ansible_winrm_scheme", "http" if port == 5985 else "https", SCHEMES)
        transport = _transport(host)
        user = host.var("ansible_user") or host.var("ansible_winrm_user")
        password = host.var("ansible_password") or host.var("ansible_winrm_password") or ""
        if not user:
            raise ConnectionConfigError(
                f"{host.name}: ansible_user is not set",
                "ansible_user",
                fix="set ansible_user (group_vars/all) for the WinRM logon",
            )
        validation = _choice(host, "ansible_winrm_server_cert_validation", "validate", CERT_VALIDATION)
        encryption = _choice(host, "ansible_winrm_message_encryption", "auto", MESSAGE_ENCRYPTION)
        path = _path(host)
        operation_timeout = _int(host, "ansible_winrm_operation_timeout_sec", 20, 1, 3600)
        read_timeout = _int(host, "ansible_winrm_read_timeout_sec", 30, 2, 7200)
        if read_timeout <= operation_timeout:
            raise ConnectionConfigError(
                f"{host.name}: ansible_winrm_read_timeout_sec ({read_timeout}) must be greater than "
                f"ansible_winrm_operation_timeout_sec ({operation_timeout})",
                "ansible_winrm_read_timeout_sec",
            )
        settings = cls(
            host=host.name,
            address=address,
            port=port,
            scheme=scheme,
            transport=transport,
            user=user,
            password=password,
            cert_validation=validation,
            ca_trust_path=_ca_trust_path(host),
            message_encryption=encryption,
            operation_timeout=operation_timeout,
            read_timeout=read_timeout,
            path=path,
            kerberos_delegation=_bool(host, "ansible_winrm_kerberos_delegation", False),
            kerberos_hostname_override=host.var("ansible_winrm_kerberos_hostname_override") or None,
            credssp_disable_tlsv1_2=_bool(host, "ansible_winrm_credssp_disable_tlsv1_2", False),
            proxy=_proxy(host),
        )
        return _judge(host, settings)


def _judge(host: HostContext, s: ConnectionSettings) -> ConnectionSettings:
    """Refuse (or, when allowed for this host, warn about) what would cross the network in clear."""
    endpoint = urlsplit(s.endpoint)
    if (endpoint.hostname or "").lower() != s.address.lower().strip("[]") or endpoint.port != s.port:
        raise ConnectionConfigError(
            f"{host.name}: ansible_host {_short(s.address)} is not a host name or IP address", "ansible_host"
        )
    concerns = []
    if s.scheme == "https" and s.cert_validation == "ignore":
        concerns.append(
            Concern(
                host.name,
                "CERT_VALIDATION_OFF",
                "ansible_winrm_server_cert_validation",
                "warning",
                "TLS certificate validation is off (ansible_winrm_server_cert_validation=ignore): anyone "
                "between the controller and the host can impersonate it and read the credentials",
                "validate against ansible_winrm_ca_trust_path",
            )
        )
    insecure = clear_text_risks(s.scheme, [s.transport], s.message_encryption, s.endpoint, s.proxy)
    if insecure:
        route = s.endpoint + (f" through ansible_winrm_proxy {s.proxy}" if s.proxy else "")
        refuse_or_warn(host.name, route, insecure, _bool(host, ALLOW_INSECURE_VAR, False))
        concerns += [Concern(host.name, r.rule, r.var, "warning", r.allowed, r.fix) for r in insecure]
    elif s.scheme == "http" and s.transport in CLEAR_PASSWORD_TRANSPORTS:
        concerns.append(
            Concern(
                host.name,
                "INSECURE_TRANSPORT",
                "ansible_winrm_transport",
                "note",
                f"{BASIC_IN_CLEAR} (loopback only: it never leaves this machine)",
            )
        )
    return replace(s, concerns=tuple(concerns))


def clear_text_risks(
    scheme: str, transports: list[str], message_encryption: str, endpoint: str, proxy: str | None = None
) -> list[Risk]:
    """What would cross the network in clear to ``endpoint``. Both faces judge with it: the CLI
    from the inventory, the Ansible face from the play's connection."""
    if scheme != "http" or _stays_on_this_machine(endpoint, proxy):
        return []
    if any(t in CLEAR_PASSWORD_TRANSPORTS for t in transports):
        return [Risk(BASIC_IN_CLEAR, "use ntlm (encrypted) or https", "INSECURE_TRANSPORT", "ansible_winrm_transport")]
    if message_encryption == "never":
        return [
            Risk(
                "ansible_winrm_message_encryption: never over plain http sends every script and its "
                "secrets (PINs, PUKs, passwords) in clear text",
                "remove ansible_winrm_message_encryption (auto encrypts over http) or use https",
                "UNENCRYPTED_TRANSPORT",
                "ansible_winrm_message_encryption",
            )
        ]
    return []


def refuse_or_warn(host: str, endpoint: str, risks: list[Risk], allowed: bool) -> list[str]:
    """Refuse the first risk unless ``allowed`` (lync2fa_allow_insecure_transport for this host);
    allowed, each becomes a warning."""
    if risks and not allowed:
        risk = risks[0]
        raise ConnectionConfigError(
            f"{host}: {risk.why} to {redact_url(endpoint)}; {risk.fix}, or set {ALLOW_INSECURE_VAR}: true for this host",
            risk.var,
            risk.rule,
            fix=f"{risk.fix}, or set {ALLOW_INSECURE_VAR}: true for this host",
        )
    return [f"{host}: {risk.allowed}" for risk in risks]


def _stays_on_this_machine(url: str, proxy: str | None = None) -> bool:
    """The URL's host is loopback and the proxy, if the inventory names one, is loopback too (the
    environment's proxies are never used: lync2fa gives pywinrm ``proxy=None``)."""
    hostname = (urlsplit(url).hostname or "").lower()
    if not is_loopback(hostname):
        return False
    return proxy is None or is_loopback((urlsplit(proxy).hostname or "").lower())


def _ca_trust_path(host: HostContext) -> str | None:
    """The CA bundle that validates the host's certificate (a file or a directory of certificates on
    this controller). Whether it exists is checked when connecting (``missing_ca_bundle``), not here:
    ``validate`` in CI runs where the bundle is not installed."""
    value = host.var("ansible_winrm_ca_trust_path")
    return None if value in (None, "") else os.path.expanduser(str(value))


def missing_ca_bundle(s: ConnectionSettings) -> str | None:
    """Why the CA bundle cannot validate the host's certificate (it does not exist), or None."""
    if (
        s.scheme == "https"
        and s.cert_validation == "validate"
        and s.ca_trust_path
        and not os.path.exists(s.ca_trust_path)
    ):
        return (
            f"ansible_winrm_ca_trust_path {_short(s.ca_trust_path)} does not exist on this controller "
            "(a PEM file or a directory of CA certificates)"
        )
    return None


def _proxy(host: HostContext) -> str | None:
    value = host.var("ansible_winrm_proxy")
    if value in (None, ""):
        return None
    try:
        parts = urlsplit(str(value))
        scheme, hostname = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed '[' or a bad IPv6 literal
        scheme, hostname = "", None
    if scheme not in ("http", "https") or not hostname:
        raise ConnectionConfigError(
            f"{host.name}: ansible_winrm_proxy {_short(redact_url(str(value)))} is not an http(s) URL",
            "ansible_winrm_proxy",
        )
    return str(value)


def _address(host: HostContext) -> str:
    address = host.var("ansible_host", host.name)
    if not isinstance(address, str) or not address.strip():
        raise ConnectionConfigError(f"{host.name}: ansible_host must be a host name or IP address", "ansible_host")
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    bad = set(address) & set("/@?#\\ \t\r\n%")
    if bad or any(ord(c) < 0x20 for c in address) or len(address) > 253:
        raise ConnectionConfigError(
            f"{host.name}: ansible_host {_short(address)} is not a host name or IP address", "ansible_host"
        )
    if ":" in address and not _is_ipv6(address):
        raise ConnectionConfigError(
            f"{host.name}: ansible_host {_short(address)} is not a host name or IP address "
            "(the port goes in ansible_port)",
            "ansible_host",
        )
    return address


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def _path(host: HostContext) -> str:
    path = host.var("ansible_winrm_path", "/wsman")
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or "@" in path
        or "://" in path
        or "\\" in path
        or any(c in path for c in "?# ")
        or any(ord(c) < 0x20 for c in path)
    ):
        raise ConnectionConfigError(
            f"{host.name}: ansible_winrm_path {_short(path)} is not a URL path "
            "(it must start with '/', e.g. /wsman, without '@', '://', '?' or '#')",
            "ansible_winrm_path",
        )
    return path


def _transport(host: HostContext) -> str:
    raw = host.var("ansible_winrm_transport", "ntlm")
    first = raw[0] if isinstance(raw, list) and raw else str(raw).split(",")[0]
    transport = str(first).strip().lower()
    if transport not in TRANSPORTS:
        near = difflib.get_close_matches(transport, TRANSPORTS, n=1, cutoff=0.6)
        raise ConnectionConfigError(
            f"{host.name}: unknown ansible_winrm_transport {_short(first)} (one of {', '.join(TRANSPORTS)})",
            "ansible_winrm_transport",
            fix=f"did you mean {near[0]}?" if near else "",
        )
    return transport


def _choice(host: HostContext, name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = host.var(name, default)
    value = str(raw).strip().lower() if isinstance(raw, str) else None
    if value not in allowed:
        raise ConnectionConfigError(f"{host.name}: {name} must be one of {', '.join(allowed)}, not {_short(raw)}", name)
    return value


def _int(host: HostContext, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = host.var(name, default)
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError):
        raise ConnectionConfigError(
            f"{host.name}: {name} must be an integer from {minimum} to {maximum}, not {_short(raw)}", name
        ) from None
    if not minimum <= value <= maximum:
        raise ConnectionConfigError(f"{host.name}: {name} must be from {minimum} to {maximum}, not {value}", name)
    return value


def _bool(host: HostContext, name: str, default: bool) -> bool:
    return ansible_bool(host.var(name, default), name, host.name)


def ansible_bool(raw, name: str, host: str) -> bool:
    """``raw`` as Ansible reads a boolean (``false``/``no``/``off``/``0`` are false in INI and YAML
    alike); anything else is an error naming the host and the variable."""
    try:
        return boolean(raw, strict=True)
    except TypeError:
        raise ConnectionConfigError(
            f"{host}: {name} must be a boolean (true/false, yes/no), not {_short(raw)}", name
        ) from None


def _short(value, limit: int = 80) -> str:
    return clip(repr(value), limit)


# scheme://userinfo@ in a URL: a proxy's (or any URL's) user and password.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@")


def redact_url(text: str) -> str:
    """``text`` with the user and password of every URL in it masked (``socks5://***@proxy``)."""
    return _USERINFO.sub(r"\1***@", text)


def is_loopback(address: str) -> bool:
    """localhost or an address in 127.0.0.0/8 or ::1 (what never leaves this machine)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
