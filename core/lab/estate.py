"""The lab estate's layout: which simulated hosts exist, their roles, ports and credentials.

Saved as ``lab.json`` (mode 0600, it holds the lab's own admin password) in the lab
directory, with ``hosts.yml``, the Ansible inventory that points at the endpoints.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

LAB_JSON = "lab.json"
HOSTS_YML = "hosts.yml"
# How the inventory reaches the lab: CredSSP by default, since the rollout's AD-, CMS- and
# CA-reaching tasks need a session with network credentials (the double hop).
LAB_TRANSPORTS = ("credssp", "ntlm", "basic")
DEFAULT_TRANSPORT = "credssp"
LOCAL_USER = "lync2fa-local"


@dataclass
class LabHost:
    name: str
    groups: list[str]
    fqdn: str
    port: int = 0
    vars: dict = field(default_factory=dict)


@dataclass
class Estate:
    domain: str
    netbios: str
    admin_user: str
    password: str
    hosts: list[LabHost]
    https: bool = False
    transport: str = DEFAULT_TRANSPORT  # ansible_winrm_transport written into hosts.yml
    # A local account on every lab host, for Basic (which logs on local accounts only).
    local_user: str = LOCAL_USER
    local_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def in_group(self, group: str) -> list[LabHost]:
        return [h for h in self.hosts if group in h.groups]

    def first(self, group: str) -> LabHost | None:
        hosts = self.in_group(group)
        return hosts[0] if hosts else None

    @property
    def account(self) -> str:
        return f"{self.netbios}\\{self.admin_user}"

    @property
    def credentials(self) -> dict[str, str]:
        """What every lab host's WinRM service accepts: the domain admin and the local account."""
        return {self.account: self.password, self.local_user: self.local_password}

    def login(self, transport: str) -> tuple[str, str]:
        """(user, password) for the inventory: Basic takes local accounts only, the rest the domain admin."""
        if transport == "basic":
            return self.local_user, self.local_password
        return self.account, self.password

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        path = directory / LAB_JSON
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2)

    @classmethod
    def load(cls, directory: Path) -> Estate:
        data = json.loads((directory / LAB_JSON).read_text())
        data["hosts"] = [LabHost(**h) for h in data["hosts"]]
        data.setdefault("transport", "ntlm")  # a lab made before the transport was kept used NTLM
        estate = cls(**data)
        if "local_password" not in data:  # a lab made before it had a local account: keep the new one
            estate.save(directory)
        return estate


def default_estate(clients: int = 2, https: bool = False, transport: str = DEFAULT_TRANSPORT) -> Estate:
    """A small dedicated-2FA topology: CA, AD FS, a pool, a Director, an Edge, N clients."""
    domain = "corp.lync2fa.test"

    def fq(name: str) -> str:
        return f"{name}.{domain}"

    hosts = [
        LabHost("ca01", ["ca"], fq("ca01"), vars={"ca_common_name": "Lync2FA Lab Root CA"}),
        LabHost(
            "adfs01", ["adfs"], fq("adfs01"), vars={"adfs_federation_service_name": fq("sts"), "adfs_version": "3.0"}
        ),
        LabHost("pool01", ["lync_pools"], fq("pool01")),
        LabHost("dir01", ["lync_pools"], fq("dir01"), vars={"lync2fa_lync_role": "director"}),
        LabHost("edge01", ["lync_edge"], fq("edge01")),
    ]
    width = max(4, len(str(clients)))
    # Each client: its Lync-enabled user (the lab AD has user01..user04) and its own random card PIN.
    hosts += [
        LabHost(
            f"cl{i:0{width}d}",
            ["clients"],
            fq(f"cl{i:0{width}d}"),
            vars={
                "client_user": f"user{(i - 1) % 4 + 1:02d}",
                "client_pin": "".join(secrets.choice("0123456789") for _ in range(8)),
            },
        )
        for i in range(1, clients + 1)
    ]
    return Estate(
        domain=domain,
        netbios="CORP",
        admin_user="lync2fa-admin",
        password=secrets.token_urlsafe(18),
        hosts=hosts,
        https=https,
        transport=transport,
    )


def write_inventory(estate: Estate, directory: Path, transport: str | None = None) -> Path:
    """An Ansible inventory with the connection vars for every lab endpoint.

    ``transport`` (default: the estate's) becomes ``ansible_winrm_transport``; over http NTLM and
    CredSSP encrypt every message (pywinrm's ``message_encryption: auto``). Basic signs in with
    the hosts' local account, the others with the domain admin.
    """
    transport = transport or estate.transport
    if transport not in LAB_TRANSPORTS:
        raise ValueError(f"the lab accepts {', '.join(LAB_TRANSPORTS)}, not {transport!r}")
    user, password = estate.login(transport)
    conn = {
        "ansible_connection": "winrm",
        "ansible_user": user,
        "ansible_password": password,
        "ansible_winrm_transport": transport,
        "ansible_winrm_scheme": "https" if estate.https else "http",
        "lync2fa_domain": estate.domain,
    }
    if estate.https:
        conn["ansible_winrm_server_cert_validation"] = "validate"
        conn["ansible_winrm_ca_trust_path"] = str((directory / "lab-ca.pem").resolve())
    groups: dict[str, dict] = {}
    for h in estate.hosts:
        for g in h.groups:
            groups.setdefault(g, {"hosts": {}})["hosts"][h.name] = {
                "ansible_host": "127.0.0.1",
                "ansible_port": h.port,
                "lync2fa_fqdn": h.fqdn,
                **h.vars,
            }
    doc = {"all": {"vars": conn, "children": groups}}
    path = directory / HOSTS_YML
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Written by `lync2fa lab up`: the lab's endpoints and its own admin credentials.\n")
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path
