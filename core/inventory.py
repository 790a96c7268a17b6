"""Inventory: Ansible's own format, read with ansible-core's InventoryManager.

Groups name roles (``ca``, ``adfs``, ``lync_pools``, ``lync_edge``, ``clients``); connection
variables are Ansible's (``ansible_host``, ``ansible_user``, ``ansible_winrm_*`` ...);
vault-encrypted values are decrypted with a vault password file.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import get_file_vault_secret

try:  # ansible-core 2.19+: vaulted values decrypt lazily through a process-wide context
    from ansible.parsing.vault import VaultSecretsContext
except ImportError:  # ansible-core 2.16 to 2.18: the loader's secrets are enough
    VaultSecretsContext = None
try:  # ansible-core 2.19+: values carry their source (file, line) as a tag
    from ansible._internal._datatag._tags import Origin
except ImportError:  # ansible-core 2.16 to 2.18
    Origin = None
from ansible.template import Templar
from ansible.utils.display import Display
from ansible.vars.manager import VariableManager

ROLE_GROUPS = ("ca", "adfs", "lync_pools", "lync_edge", "clients")
# Variables whose values are secrets: their source lines are never shown (Ansible's parse errors
# and warnings quote the offending lines).
SECRET_VAR = re.compile(r"(?i)(password|passwd|_pass|pin|puk|secret|admin_key|token)$")


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
    inventory: Inventory

    def var(self, name: str, default: Any = None) -> Any:
        if name not in self._vars:
            return default
        try:
            with self.inventory.quiet(convert=False):
                return plain(self._templar.template(self._vars[name]))
        except Exception as exc:  # undecryptable vault data, broken templates ...
            vault = self.inventory._vault_message(exc)
            if vault:
                raise InventoryError(
                    f"{self.name}: variable {name}: {vault.removeprefix('cannot read inventory: ')}"
                ) from None
            raise InventoryError(f"{self.name}: cannot read variable {name}: {_first_line(exc)}") from None

    def has_var(self, name: str) -> bool:
        return name in self._vars

    def var_names(self) -> list[str]:
        return list(self._vars)

    @property
    def fqdn(self) -> str:
        """The host's DNS name as Windows knows it (``lync2fa_fqdn``, else the inventory name)."""
        return self.var("lync2fa_fqdn", self.name)


class _Manager(InventoryManager):
    """Ansible's InventoryManager, noting which sources it could parse (Ansible only warns)."""

    def __init__(self, *args, **kwargs):
        self.parsed_sources: list[tuple[str, bool]] = []
        super().__init__(*args, **kwargs)

    def parse_source(self, source, cache=False):
        parsed = super().parse_source(source, cache=cache)
        self.parsed_sources.append((str(source), bool(parsed)))
        return parsed


class Inventory:
    def __init__(self, sources: Sequence[str | Path], vault_password_file: str | Path | None = None):
        for src in sources:
            if not Path(src).exists():
                raise InventoryError(f"inventory not found: {src}")
        self.sources = [str(s) for s in sources]
        self.warnings: list[str] = []  # Ansible's warnings, with secret lines redacted
        self._failures: dict[str, list[str]] = {}
        self._capture = threading.RLock()
        self.loader = DataLoader()
        vault_password_file = vault_password_file_or_env(vault_password_file)
        if vault_password_file:
            _add_vault_secret(self.loader, Path(vault_password_file).expanduser())
        try:
            with self.quiet():
                self.manager = _Manager(loader=self.loader, sources=self.sources)
        except AnsibleError as exc:
            raise InventoryError(f"cannot read inventory: {_describe(exc)}") from None
        unparsed = [src for src, ok in self.manager.parsed_sources if not ok]
        if unparsed:
            reasons = [(src, self._reason(src)) for src in unparsed]
            raise InventoryError(
                "cannot read inventory: "
                + "; ".join(reason if reason.startswith(src) else f"{src}: {reason}" for src, reason in reasons)
            )
        if not self.manager.get_hosts():
            raise InventoryError(f"inventory {', '.join(self.sources)} defines no host")
        self.variables = VariableManager(loader=self.loader, inventory=self.manager)
        self._hosts: dict[str, HostContext] = {}

    # -- Ansible's display, captured: it would quote inventory lines holding secrets ---------------
    @contextlib.contextmanager
    def quiet(self, convert: bool = True):
        """Ansible's warnings and deprecations while reading the inventory are kept (redacted) in
        ``warnings``, and its parse failures in ``_failures``, instead of being printed: every
        Display channel that takes an ``obj`` or an exception quotes the source lines around it
        (an INI host line, or the YAML lines above a key, PINs and passwords included)."""
        display = Display()
        handlers = {
            "warning": self._on_warning,
            "deprecated": self._on_deprecated,
            "error_as_warning": self._on_failure,
            "error": self._on_error,
        }
        with self._capture:
            saved = {attr: display.__dict__.get(attr) for attr in handlers}
            for attr, handler in handlers.items():
                setattr(display, attr, handler)
            try:
                yield
            except AnsibleError as exc:
                if not convert:
                    raise
                raise InventoryError(self._vault_message(exc) or f"cannot read inventory: {_describe(exc)}") from None
            finally:
                for attr, value in saved.items():
                    if value is None:
                        display.__dict__.pop(attr, None)
                    else:
                        setattr(display, attr, value)

    def _vault_message(self, exc: BaseException) -> str | None:
        """Which files need a vault password, when one is missing or does not decrypt them."""
        text = str(getattr(exc, "message", None) or exc)
        if "vault password must be specified" in text or "VaultSecretsContext" in text:
            need = "no vault password was given: pass --vault-password-file FILE or set ANSIBLE_VAULT_PASSWORD_FILE"
        elif "no vault secrets" in text.lower() or "decryption failed" in text.lower():
            need = "the vault password given does not decrypt it"
        else:
            return None
        files = _vault_files(self.sources)
        what = ", ".join(files) if files else "a vault-encrypted value in the inventory"
        return f"cannot read inventory: {what} is vault-encrypted and {need}"

    def _on_warning(self, msg, formatted=False, *, help_text=None, obj=None):
        text = str(msg).strip()
        if text.startswith(("Unable to parse ", "No inventory was parsed")):
            return  # reported as an error, with its reason
        self._keep(text, obj)

    def _on_deprecated(self, msg, version=None, removed=False, date=None, collection_name=None, **kwargs):
        if removed:  # what Ansible does with a removed feature
            raise AnsibleError(str(msg))
        self._keep(f"deprecated: {str(msg).strip()}", kwargs.get("obj"))

    def _on_error(self, msg, wrap_text=True, stderr=True):
        if isinstance(msg, BaseException):
            self._on_failure(None, msg)
        else:
            self._keep(str(msg).strip(), None)

    def _keep(self, text: str, obj) -> None:
        """A warning's first line, after the file and line it is about, with secret lines' words redacted."""
        origin = _origin_of(obj)
        where = f"{_where(origin)}: " if origin else ""
        self.warnings.append(redact(where + _first_line_text(text), _secret_tokens(origin.path if origin else None)))

    def _on_failure(self, msg, exception, *, help_text=None, obj=None):
        origin = _origin_of(getattr(exception, "obj", None)) or _origin_of(obj)
        path = origin.path if origin and origin.path else str(getattr(exception, "obj", ""))
        self._failures.setdefault(os.path.realpath(path) if path else "", []).append(_describe(exception))

    def _reason(self, source: str) -> str:
        if os.path.isdir(source):
            return "no inventory file in this directory could be parsed"
        reasons = self._failures.get(os.path.realpath(source), [])
        # The most precise reason first: the one with a line number.
        reasons = sorted(set(reasons), key=lambda r: (" line " not in r, reasons.index(r)))
        return redact(reasons[0] if reasons else "not an inventory (no plugin could read it)", _secret_tokens(source))

    def host(self, name: str) -> HostContext:
        if name not in self._hosts:
            h = self.manager.get_host(name)
            if h is None:
                raise InventoryError(f"no host {name!r} in the inventory")
            with self.quiet():
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
        """The hosts of a task's group: ``group`` is the name tasks declare (``ca``), read through
        the inventory's ``lync2fa_<group>_group`` variable (``lync2fa.groups``)."""
        group = self.group_name(group)
        names = [h.name for h in self.manager.get_hosts(pattern=group)] if group in self.groups() else []
        if limit is not None:
            names = [n for n in names if n in limit]
        return [self.host(n) for n in names]

    def group_name(self, group: str) -> str:
        """The inventory's name for a task's group: ``lync2fa_<group>_group`` (group_vars/all), else ``group``."""
        from .groups import actual

        hosts = self.all_hosts() if group != "all" else []
        return actual(group, self.host(hosts[0]).var) if hosts else group

    def groups(self) -> set[str]:
        return set(self.manager.groups)

    def all_hosts(self) -> list[str]:
        return [h.name for h in self.manager.get_hosts()]


def vault_password_file_or_env(given: str | Path | None) -> str | Path | None:
    """The vault password file given, else ``$ANSIBLE_VAULT_PASSWORD_FILE`` (as Ansible reads it)."""
    return given or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _first_line_text(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _origin_of(obj):
    """An Ansible Origin (path, line) from an error's ``obj``: an Origin, or a value tagged with one
    (ansible-core 2.19+)."""
    if obj is not None and hasattr(obj, "path") and hasattr(obj, "line_num"):
        return obj
    return Origin.get_tag(obj) if Origin is not None and obj is not None else None


def _where(origin) -> str:
    if not origin.path:
        return str(getattr(origin, "description", "") or "")
    parts = (
        [origin.path]
        + ([f"line {origin.line_num}"] if origin.line_num else [])
        + ([f"column {origin.col_num}"] if getattr(origin, "col_num", None) else [])
    )
    return ", ".join(parts)


def _describe(exc: BaseException) -> str:
    """An Ansible error as "file, line N: reason" without the source lines Ansible would quote."""
    origin = None
    seen: BaseException | None = exc
    while seen is not None and origin is None:
        candidate = _origin_of(getattr(seen, "obj", None))
        if candidate is not None and candidate.path:
            origin = candidate
        seen = seen.__cause__ or seen.__context__
    reason = _first_line_text(str(getattr(exc, "message", None) or exc).strip()) or type(exc).__name__
    reason = reason.removeprefix("Failed to parse inventory: ")
    if origin is None:
        return reason
    return redact(f"{_where(origin)}: {reason}", _secret_tokens(origin.path))


def _vault_files(sources: list[str]) -> list[str]:
    """Inventory files (and their group_vars/host_vars) holding vault-encrypted data."""
    found: list[str] = []
    for source in sources:
        base = Path(source)
        roots = [base] if base.is_dir() else [base.parent]
        files = [] if base.is_dir() else [base]
        for root in roots:
            for sub in ("group_vars", "host_vars"):
                if (root / sub).is_dir():
                    files.extend(sorted(p for p in (root / sub).rglob("*") if p.is_file()))
            if base.is_dir():
                files.extend(sorted(p for p in root.iterdir() if p.is_file()))
        for path in files:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.startswith("$ANSIBLE_VAULT") or "!vault" in text:
                found.append(str(path))
    return list(dict.fromkeys(found))


def _secret_tokens(path: str | None) -> set[str]:
    """The words on the lines of ``path`` that assign a secret variable (other than its name)."""
    if not path:
        return set()
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return set()
    tokens: set[str] = set()
    for line in text.splitlines():
        words = [w for w in re.split(r"[\s=:'\",{}\[\]]+", line) if w]
        if any(SECRET_VAR.search(w) for w in words):
            tokens.update(w for w in words if not SECRET_VAR.search(w) and len(w) >= 3)
    return tokens


def redact(text: str, tokens: set[str]) -> str:
    for token in sorted(tokens, key=len, reverse=True):
        text = text.replace(token, "[redacted]")
    return text


def _add_vault_secret(loader: DataLoader, password_file: Path) -> None:
    if not password_file.is_file():
        raise InventoryError(f"vault password file not found: {password_file}")
    try:
        secret = get_file_vault_secret(filename=str(password_file), loader=loader)
        secret.load()
    except AnsibleError as exc:
        if not os.access(password_file, os.X_OK) and not password_file.read_bytes().strip():
            raise InventoryError(f"vault password file {password_file} is empty") from None
        raise InventoryError(f"vault password file {password_file}: {_first_line(exc)}") from None
    loader.set_vault_secrets([("default", secret)])
    # ansible-core 2.19 decrypts vaulted values lazily through a process-wide context.
    if VaultSecretsContext is None:
        return
    current = VaultSecretsContext.current(optional=True)
    if current is None:
        VaultSecretsContext.initialize(VaultSecretsContext([("default", secret)]))
    else:
        current.secrets.append(("default", secret))
