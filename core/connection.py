"""How to reach a host: Ansible's connection variables, with secure defaults."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .inventory import HostContext

TRANSPORTS = ("ntlm", "basic", "plaintext", "kerberos", "credssp", "ssl", "certificate")


class ConnectionConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ConnectionSettings:
    host: str                 # inventory name, for messages
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
    warnings: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}{self.path}"

    @classmethod
    def from_host(cls, host: HostContext) -> "ConnectionSettings":
        """Read Ansible's winrm connection vars, with Ansible's defaults where it has them."""
        address = host.var("ansible_host", host.name)
        port = int(host.var("ansible_port", 5986))
        # Ansible: scheme is https unless the port is 5985.
        scheme = host.var("ansible_winrm_scheme", "http" if port == 5985 else "https")
        transport = str(host.var("ansible_winrm_transport", "ntlm")).split(",")[0].strip()
        if transport not in TRANSPORTS:
            raise ConnectionConfigError(f"{host.name}: unknown ansible_winrm_transport {transport!r}")
        user = host.var("ansible_user") or host.var("ansible_winrm_user")
        password = host.var("ansible_password") or host.var("ansible_winrm_password") or ""
        if not user:
            raise ConnectionConfigError(f"{host.name}: ansible_user is not set")
        validation = host.var("ansible_winrm_server_cert_validation", "validate")
        warnings = []
        if scheme == "https" and validation == "ignore":
            warnings.append(f"{host.name}: TLS certificate validation is off "
                            "(ansible_winrm_server_cert_validation=ignore)")
        if scheme == "http" and transport in ("basic", "plaintext") and not _is_loopback(address):
            if not host.var("lync2fa_allow_insecure_transport", False):
                raise ConnectionConfigError(
                    f"{host.name}: Basic authentication over plain http sends the password in clear "
                    "text; use ntlm (encrypted) or https, or set lync2fa_allow_insecure_transport: true")
            warnings.append(f"{host.name}: Basic authentication over plain http (allowed explicitly)")
        return cls(
            host=host.name, address=address, port=port, scheme=scheme, transport=transport,
            user=user, password=password, cert_validation=validation,
            ca_trust_path=host.var("ansible_winrm_ca_trust_path"),
            message_encryption=host.var("ansible_winrm_message_encryption", "auto"),
            operation_timeout=int(host.var("ansible_winrm_operation_timeout_sec", 20)),
            read_timeout=int(host.var("ansible_winrm_read_timeout_sec", 30)),
            path=host.var("ansible_winrm_path", "/wsman"),
            warnings=tuple(warnings),
        )


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
