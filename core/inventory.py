"""Inventory: Ansible's own format, read with ansible-core's InventoryManager.

Groups name roles (``ca``, ``adfs``, ``lync_pools``, ``lync_edge``, ``clients``); connection
variables are Ansible's (``ansible_host``, ``ansible_user``, ``ansible_winrm_*`` ...);
vault-encrypted values are decrypted with a vault password file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecretsContext, get_file_vault_secret
from ansible.template import Templar
from ansible.vars.manager import VariableManager

ROLE_GROUPS = ("ca", "adfs", "lync_pools", "lync_edge", "clients")


class InventoryError(ValueError):
    """The inventory cannot be read (a usage/config error: exit code 2)."""


def plain(value: Any) -> Any:
    """Ansible's tagged/encrypted values as plain Python types (str, int, list, dict ...)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return str(value)  # EncryptedString and friends decrypt on str()


@dataclass
class HostContext:
    """One inventory host as tasks see it: its name, groups and (templated) variables."""

    name: str
    groups: tuple[str, ...]
    _vars: dict
    _templar: Templar
    inventory: "Inventory"

    def var(self, name: str, default: Any = None) -> Any:
        if name not in self._vars:
            return default
        try:
            return plain(self._templar.template(self._vars[name]))
        except Exception as exc:  # undecryptable vault data, broken templates ...
            raise InventoryError(f"{self.name}: cannot read variable {name}: {_first_line(exc)}") from None

    def has_var(self, name: str) -> bool:
        return name in self._vars

    @property
    def fqdn(self) -> str:
        """The host's DNS name as Windows knows it (``lync2fa_fqdn``, else the inventory name)."""
        return self.var("lync2fa_fqdn", self.name)


class Inventory:
    def __init__(self, sources: list[str | Path], vault_password_file: str | Path | None = None):
        for src in sources:
            if not Path(src).exists():
                raise InventoryError(f"inventory not found: {src}")
        self.loader = DataLoader()
        if vault_password_file:
            _add_vault_secret(self.loader, Path(vault_password_file))
        try:
            self.manager = InventoryManager(loader=self.loader, sources=[str(s) for s in sources])
        except Exception as exc:  # ansible raises its own error types
            raise InventoryError(f"cannot read inventory: {exc}") from exc
        self.variables = VariableManager(loader=self.loader, inventory=self.manager)
        self._hosts: dict[str, HostContext] = {}

    def host(self, name: str) -> HostContext:
        if name not in self._hosts:
            h = self.manager.get_host(name)
            if h is None:
                raise InventoryError(f"no host {name!r} in the inventory")
            hostvars = self.variables.get_vars(host=h)
            self._hosts[name] = HostContext(
                name=name,
                groups=tuple(sorted(g.name for g in h.get_groups() if g.name != "all")),
                _vars=hostvars,
                _templar=Templar(loader=self.loader, variables=hostvars),
                inventory=self,
            )
        return self._hosts[name]

    def hosts_in(self, group: str, limit: set[str] | None = None) -> list[HostContext]:
        names = [h.name for h in self.manager.get_hosts(pattern=group)] if group in self.groups() else []
        if limit is not None:
            names = [n for n in names if n in limit]
        return [self.host(n) for n in names]

    def groups(self) -> set[str]:
        return set(self.manager.groups)

    def all_hosts(self) -> list[str]:
        return [h.name for h in self.manager.get_hosts()]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _add_vault_secret(loader: DataLoader, password_file: Path) -> None:
    if not password_file.exists():
        raise InventoryError(f"vault password file not found: {password_file}")
    secret = get_file_vault_secret(filename=str(password_file), loader=loader)
    secret.load()
    loader.set_vault_secrets([("default", secret)])
    # ansible-core 2.19 decrypts vaulted values lazily through a process-wide context.
    current = VaultSecretsContext.current(optional=True)
    if current is None:
        VaultSecretsContext.initialize(VaultSecretsContext([("default", secret)]))
    else:
        current.secrets.append(("default", secret))
