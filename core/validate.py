"""``lync2fa validate``: everything that can be known about an inventory without contacting a host.

The inventory's shape and types (with the file, line and key of each error), variables no task
declares (with the closest known name), cross-references between tiers (every pool has its AD FS
trust, every client a template the CA issues, URLs and DNS names well formed, the CA
configuration string names a CA host), every plugin's ``lync2fa_validate_plan`` findings placed at
the variable they concern, the WinRM transport's security, and the PowerShell scripts' static
checks (``lync2fa.pscheck``, when installed). Exit 0 clean, 1 findings at or above ``--fail-on``,
2 unusable input.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from .ansible_vars import ANSIBLE_VARS, WINRM_VARS
from .connection import ConnectionConfigError, ConnectionSettings, redact_url
from .findings import Finding
from .groups import DEFAULT_GROUPS, var_name
from .inventory import HostContext, Inventory, InventoryError, vault_password_file_or_env
from .inventory_map import Definition, InventoryMap, build, closest
from .meta import now
from .plan import Plan, PlanError, Step, check_coverage, order_tasks, params_for, select_tasks
from .plugin_manager import collect_tasks, default_plugin_manager
from .reach import RESOURCE_NAMES, WAYS_OUT_SHORT, unreachable
from .results import Redactor
from .sarif import SEVERITIES, Issue, at_or_above
from .task import ParameterError, Task, clip

FQDN = re.compile(r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+")
HOSTNAME = re.compile(r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
WORD = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]")
PASSWORD_VARS = frozenset({"ansible_password", "ansible_winrm_password"})

# Variables lync2fa reads besides the tasks' <tier>_<parameter> ones.
EXTRA_VARS = {
    "lync2fa_fqdn": "the host's DNS name as Windows knows it",
    "lync2fa_lync_role": "director for a Director pool",
    "lync2fa_domain": "the AD DNS domain",
    "lync2fa_allow_insecure_transport": "accept Basic over plain http",
    "adfs_federation_service_name": "the AD FS Federation Service Name",
    "adfs_version": "the AD FS version the lab simulates",
    "lync2fa_local_resources": "resources (ad, cms, ca) on the host itself: no double hop to them",
    # the Ansible face's role and playbook variables
    "lync2fa_state_dir": "the journal's directory (roles)",
    "lync2fa_allow_insecure": "rules accepted as warnings (roles)",
    "lync2fa_rollback_tiers": "tiers rollback_2fa.yml undoes",
    "lync2fa_allow_empty_groups": "skip a tier whose group is empty (playbooks)",
    "lync2fa_force_group": "run a module on a host outside its task's group (modules)",
} | {var_name(group): f"the inventory's name for the {group} group" for group in DEFAULT_GROUPS}


class UnusableInput(Exception):
    """The inventory cannot be read at all (exit code 2); ``issues`` say where, when known."""

    def __init__(self, message: str, issues: list[Issue] | None = None):
        super().__init__(message)
        self.issues = issues or []


@dataclass
class Validation:
    issues: list[Issue]
    sources: list[str]
    files: list[str] = field(default_factory=list)
    hosts: int = 0
    tasks: int = 0
    started: float = 0.0
    finished: float = 0.0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for issue in self.issues:
            counts[issue.severity] += 1
        return counts

    def failing(self, fail_on: str = "error") -> list[Issue]:
        return [i for i in self.issues if at_or_above(i.severity, fail_on)]

    def exit_code(self, fail_on: str = "error") -> int:
        return 1 if self.failing(fail_on) else 0


def validate(
    sources: list[str | Path], vault_password_file: str | Path | None = None, pm=None, scripts: bool = True
) -> Validation:
    started = now()
    vault_password_file = vault_password_file_or_env(vault_password_file)  # as plan reads it
    v = _Validator([str(s) for s in sources], vault_password_file, pm or default_plugin_manager())
    v.run(scripts)
    result = Validation(
        issues=v.issues(),
        sources=[str(s) for s in sources],
        files=v.imap.files,
        hosts=len(v.hosts),
        tasks=len(v.tasks),
        started=started,
        finished=now(),
    )
    return result


def _decryptor(vault_password_file):
    if not vault_password_file:
        return None
    from ansible.parsing.vault import VaultLib, VaultSecret

    path = Path(vault_password_file)
    if not path.is_file():
        raise UnusableInput(f"vault password file not found: {path}")
    secret = VaultSecret(path.read_bytes().strip())
    vault = VaultLib([("default", secret)])
    return lambda raw: vault.decrypt(raw).decode("utf-8")


class _Validator:
    def __init__(self, sources: list[str], vault_password_file, pm):
        for src in sources:
            if not Path(src).exists():
                raise UnusableInput(f"inventory not found: {src}")
        self.sources, self.pm = sources, pm
        self.imap: InventoryMap = build(sources, _decryptor(vault_password_file))
        self._issues: dict[tuple, Issue] = {}
        self._secrets: set[str] = set()
        syntax = [p for p in self.imap.problems if p.rule in ("YAML_SYNTAX", "INVENTORY_READ", "VAULT")]
        if syntax:
            raise UnusableInput("the inventory cannot be read", [self._problem_issue(p) for p in syntax])
        # Without the vault password (a pull request from a fork has no secrets), the encrypted files
        # are read as empty and what depends on them is a note: everything else is still checked.
        self.encrypted = [] if vault_password_file else self._encrypted_files()
        self._stubs = tempfile.TemporaryDirectory(prefix="lync2fa-validate-") if self.encrypted else None
        load = _stub_copy(sources, Path(self._stubs.name)) if self._stubs else sources
        try:
            self.inventory = Inventory(load, vault_password_file=vault_password_file)
            self.hosts = {name: self.inventory.host(name) for name in self.inventory.all_hosts()}
        except InventoryError as exc:
            raise UnusableInput(str(exc), [self._problem_issue(p) for p in self.imap.problems]) from None
        except Exception as exc:  # ansible's own errors while reading vars files
            raise UnusableInput(
                f"cannot read the inventory: {str(exc).splitlines()[0]}",
                [self._problem_issue(p) for p in self.imap.problems],
            ) from None
        finally:
            if self._stubs:  # ansible has read the files; values are in memory
                self._stubs.cleanup()
        self.depths = {
            name: {g.name: g.depth for g in self.inventory.manager.get_host(name).get_groups()} | {"all": 0}
            for name in self.hosts
        }
        self.tasks: dict[str, Task] = collect_tasks(pm)
        self.tiers = {t.tier for t in self.tasks.values()}
        self.known = {t.var_prefix + p.name for t in self.tasks.values() for p in t.params} | set(EXTRA_VARS)
        self.params: dict[tuple[str, str], dict] = {}
        # (task, host) whose parameters are not known: refused (PARAM, TEMPLATE) or built from a
        # malformed DNS name; the cross-references that need them are skipped, not guessed.
        self.unknown_params: set[tuple[str, str]] = set()
        self.bad_fqdns: set[str] = set()  # malformed lync2fa_fqdn values (BAD_FQDN)
        self._keys: set[tuple[str, str]] = set()  # (host, variable) with a finding

    # --- recording ---------------------------------------------------------------------------

    def _encrypted_files(self) -> list[str]:
        found = []
        for f in self.imap.files:
            try:
                with open(f, "rb") as fh:
                    if fh.read(64).lstrip().startswith(b"$ANSIBLE_VAULT"):
                        found.append(f)
            except OSError:
                continue
        return found

    def _problem_issue(self, p) -> Issue:
        return Issue(p.rule, p.severity, p.message, p.file, p.line, p.col, p.key, fix=p.fix)

    def add(
        self,
        rule: str,
        severity: str,
        message: str,
        loc: Definition | None = None,
        key: str = "",
        host: str = "",
        task: str = "",
        fix: str = "",
        kind: str = "inventory",
    ) -> None:
        # No message echoes a pasted 100 KB value whole, or a URL's password.
        message, fix = redact_url(clip(message, 2000)), redact_url(clip(fix, 2000))
        loc = loc or (self.imap.locate_host(host) if host else None)
        file, line, col = (loc.file, loc.line, loc.col) if loc else (self.imap.first_file(), 1, 1)
        key = key or (loc.key if loc else "")
        if host:
            self._keys.add((host, key))
        ident = (rule, file, line, key)
        if ident in self._issues:
            known = self._issues[ident]
            if host and host not in known.properties.setdefault("hosts", []):
                known.properties["hosts"].append(host)
            return
        issue = Issue(rule, severity, message, file, line, col, key, host, task, fix, kind)
        if host:
            issue.properties["hosts"] = [host]
        if loc and loc.encrypted:
            issue.properties["encrypted"] = True
        self._issues[ident] = issue

    def at(self, key: str, host: str) -> Definition | None:
        return self.imap.where(key, host, self.depths.get(host, {"all": 0}))

    def loc(self, key: str, host: str) -> Definition | None:
        """Where ``key`` is set for ``host``, else where the host is declared."""
        return self.at(key, host) or self.imap.locate_host(host)

    def issues(self) -> list[Issue]:
        redact = Redactor(self._secrets)
        out = sorted(self._issues.values(), key=lambda i: (SEVERITIES.index(i.severity), i.file, i.line, i.rule))
        for issue in out:
            issue.message, issue.fix = redact.text(issue.message), redact.text(issue.fix)
        return out

    # --- checks ------------------------------------------------------------------------------

    def run(self, scripts: bool) -> None:
        for path in self.encrypted:
            self.add(
                "VAULT",
                "note",
                "vault-encrypted, not read (no --vault-password-file): the variables it "
                "defines, and the values that use them, are not checked",
                Definition(path, 1, 1),
                "",
                fix="pass --vault-password-file (a CI secret) to check everything",
            )
        for p in self.imap.problems:
            i = self._problem_issue(p)
            self.add(i.rule, i.severity, i.message, Definition(p.file, p.line, p.col, p.key), p.key, fix=p.fix)
        self.collect_secrets()
        self.check_groups()
        self.check_names()
        self.check_dns_names()
        self.check_connections()
        self.check_params()
        self.check_urls()
        self.check_cross_references()
        self.check_plugin_findings()
        if scripts:
            self.check_scripts()

    def collect_secrets(self) -> None:
        secret_vars = {"ansible_password", "ansible_winrm_password", "ansible_become_password"} | {
            t.var_prefix + p for t in self.tasks.values() for p in t.secret_params
        }
        for host in self.hosts.values():
            for name in secret_vars:
                try:
                    value = host.var(name)
                except InventoryError:
                    continue
                if isinstance(value, str) and value:
                    self._secrets.add(value)

    def check_groups(self) -> None:
        """The task groups as plan resolves them (``lync2fa_<group>_group``): a group named like one
        but not it, and what plan refuses (a tier with no host) at the inventory file."""
        named = {group: self.inventory.group_name(group) for group in DEFAULT_GROUPS}
        roles = set(named.values())
        for group, where in self.imap.groups.items():
            if group in roles or group in ("all", "ungrouped"):
                continue
            near = closest(group, roles, cutoff=0.8)
            parents = self.inventory.manager.groups.get(group)
            under_role = parents is not None and any(a.name in roles for a in parents.get_ancestors())
            if near and not under_role:
                self.add(
                    "GROUP_NAME",
                    "warning",
                    f"group {group!r} is not a role group: no task targets its hosts",
                    where,
                    group,
                    fix=f"did you mean {near!r}?",
                )
        chosen = order_tasks(select_tasks(self.tasks, None))
        steps = [Step(t, h, {}, None) for t in chosen for h in self.inventory.hosts_in(t.group)]
        try:
            check_coverage(self.inventory, chosen, steps, None, None)
        except PlanError as exc:
            self.add(
                "NOTHING_TO_RUN",
                "error",
                str(exc),
                Definition(self._inventory_file(), 1, 1),
                fix="add the tier's hosts to its group (or name the group with lync2fa_<group>_group in "
                "group_vars/all), or run only the other tiers (--tasks)",
            )
        targeted = {t.group for t in self.tasks.values()}
        for role, name in named.items():
            if role not in targeted and not self.inventory.hosts_in(role):
                self.add(
                    "MISSING_GROUP",
                    "note",
                    f"no host in group {name}: no task runs there, and the settings derived from its hosts list none",
                    None,
                    name,
                )

    def _inventory_file(self) -> str:
        """The file that declares the inventory's hosts (a directory's hosts.yml), else the first read."""
        declared = next(iter(self.imap.hosts.values()), None) or next(iter(self.imap.groups.values()), None)
        return declared.file if declared else self.imap.first_file()

    def check_names(self) -> None:
        prefixes = tuple(f"{t}_" for t in self.tiers) + ("lync2fa_",)
        for d in self.imap.variables:
            key = d.key
            if key.startswith(prefixes) and key not in self.known:
                near = closest(key, self.known)
                self.add(
                    "UNKNOWN_VAR",
                    "error" if near else "warning",
                    f"{key} is not a variable of any task"
                    + (f"; did you mean {near}?" if near else " (it is ignored)"),
                    d,
                    key,
                    fix=f"rename it to {near}" if near else "remove it, or check `lync2fa plugins`",
                )
            elif key.startswith("ansible_winrm_") and key not in WINRM_VARS:
                near = closest(key, WINRM_VARS)
                self.add(
                    "UNKNOWN_VAR",
                    "warning",
                    f"{key} is not a WinRM connection variable Ansible knows"
                    + (f"; did you mean {near}?" if near else ""),
                    d,
                    key,
                    fix=f"rename it to {near}" if near else "remove it",
                )
            elif key not in self.known and key not in ANSIBLE_VARS:
                # Any other name may be the user's own (vault_*, a role's): only a near miss of a
                # known one is a finding. Never the value: it may be a secret.
                near = closest(key, self.known | ANSIBLE_VARS, cutoff=0.85)
                if near:
                    self.add(
                        "UNKNOWN_VAR",
                        "warning",
                        f"{key} is not a variable lync2fa or Ansible reads; did you mean {near}?",
                        d,
                        key,
                        fix=f"rename it to {near}, or ignore this if {key} is your own variable",
                    )

    def _unreadable(self, message: str) -> tuple[str, str]:
        """Severity and message of a value that cannot be read: a note when no vault password was
        given (the value may come from, or be, vault-encrypted data), else an error."""
        if self.encrypted:
            return "note", f"{message} (not checked: no --vault-password-file)"
        return "error", message

    def _var(self, host, name, default=None):
        try:
            return host.var(name, default)
        except InventoryError as exc:
            severity, message = self._unreadable(str(exc))
            self.add("TEMPLATE", severity, message, self.loc(name, host.name), name, host.name)
            return None

    def check_connections(self) -> None:
        """Each host's connection as plan reads and judges it (``ConnectionSettings.from_host``, one
        judgement for both faces): a refusal is an error at the variable it names, an allowed risk
        a warning (or a note: Basic to loopback). A variable that already has a finding (BAD_FQDN
        on ansible_host) is not reported twice."""
        for name, host in self.hosts.items():
            # Without the vault password the (vaulted) password reads as a placeholder: it decides nothing.
            readable = cast(HostContext, _Lenient(host, PASSWORD_VARS)) if self.encrypted else host
            try:
                settings = ConnectionSettings.from_host(readable)
            except ConnectionConfigError as exc:
                if (name, exc.var) not in self._keys:
                    where = self.loc(exc.var, name) if exc.var else self.imap.locate_host(name)
                    message = str(exc).removeprefix(f"{name}: ")
                    self.add(exc.rule, "error", message, where, exc.var, name, fix=exc.fix)
                continue
            except InventoryError as exc:
                self._template_issue(exc, name)
                continue
            for concern in settings.concerns:
                self.add(
                    concern.rule,
                    concern.severity,
                    concern.text,
                    self.loc(concern.var, name),
                    concern.var,
                    name,
                    fix=concern.fix,
                )

    def check_params(self) -> None:
        for task in order_tasks(self.tasks):
            for host in self.inventory.hosts_in(task.group):
                key = (task.name, host.name)
                try:
                    params = params_for(task, host)
                except ParameterError as exc:
                    self.unknown_params.add(key)
                    self._param_error(task, host, exc.problems)
                    continue
                except InventoryError as exc:
                    self.unknown_params.add(key)
                    self._template_issue(exc, host.name, task.name)
                    continue
                if self._names_bad_fqdn(" ".join(_texts(params.values()))):
                    self.unknown_params.add(key)  # a scope or URL built from it: BAD_FQDN says it
                else:
                    self.params[key] = params

    def _names_bad_fqdn(self, text: str) -> bool:
        """Whether ``text`` contains a malformed ``lync2fa_fqdn`` (already a BAD_FQDN finding)."""
        return any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text) for name in self.bad_fqdns)

    def _template_issue(self, exc: Exception, host: str, task: str = "") -> None:
        match = re.search(r"cannot read variable (\S+):", str(exc))
        var = match.group(1) if match else ""
        severity, message = self._unreadable(str(exc))
        self.add("TEMPLATE", severity, message, self.loc(var, host) if var else None, var, host, task)

    def _param_error(self, task: Task, host, problems: list[str]) -> None:
        """Each problem of a refused parameter set, at the variable it names."""
        names = [p.name for p in task.params]
        for part in problems:
            if self._names_bad_fqdn(part):
                continue  # e.g. adfs_pools' default, the pools' lync2fa_fqdn: BAD_FQDN is the finding
            by_var = _first_named(part, {task.var_prefix + n: n for n in names})
            param = by_var or _first_named(part, {n: n for n in names})
            if not param:
                defined = [n for n in names if self.at(task.var_prefix + n, host.name)]
                param = defined[0] if len(defined) == 1 else ""
            var = task.var_prefix + param if param else ""
            if self._follows_from_refused(task, host, param):
                continue
            if by_var or not var:
                message = part
            else:
                message = task.var_prefix + part if part.startswith(param) else f"{var}: {part}"
            self.add("PARAM", "error", message, self.loc(var, host.name) if var else None, var, host.name, task.name)

    def _follows_from_refused(self, task: Task, host, param: str) -> bool:
        """Whether ``param`` is a host-derived default (not set for ``host``) of a task that runs
        after one whose parameters were refused: its value came from there (client_key_length from
        templates_min_key_size), and that task's finding says what to fix."""
        if not param or param not in task.derived or host.has_var(task.var_prefix + param):
            return False
        return any(refused in task.after for refused, _ in self.unknown_params)

    def check_dns_names(self) -> None:
        for name, host in self.hosts.items():
            fqdn = self._var(host, "lync2fa_fqdn")
            if fqdn is not None and not (isinstance(fqdn, str) and FQDN.fullmatch(fqdn)):
                self.bad_fqdns.add(str(fqdn))
                self.add(
                    "BAD_FQDN",
                    "error",
                    f"lync2fa_fqdn {clip(repr(fqdn), 80)} is not a fully qualified DNS name",
                    self.loc("lync2fa_fqdn", name),
                    "lync2fa_fqdn",
                    name,
                )
            address = self._var(host, "ansible_host")
            if address is not None and not _is_address(str(address)):
                self.add(
                    "BAD_FQDN",
                    "error",
                    f"ansible_host {clip(repr(address), 80)} is neither a DNS name nor an IP address",
                    self.loc("ansible_host", name),
                    "ansible_host",
                    name,
                )
        for host in self.inventory.hosts_in("adfs"):
            service = self._var(host, "adfs_federation_service_name")
            if service is not None and not (isinstance(service, str) and FQDN.fullmatch(service)):
                self.add(
                    "BAD_FQDN",
                    "error",
                    f"adfs_federation_service_name {clip(repr(service), 80)} is not a fully qualified DNS name",
                    self.loc("adfs_federation_service_name", host.name),
                    "adfs_federation_service_name",
                    host.name,
                )

    def check_urls(self) -> None:
        for (task, host_name), p in self.params.items():
            for key, value in p.items():
                if isinstance(value, str) and key.endswith(("_uri", "_url")):
                    self._check_url(task, host_name, key, value)

    def _check_url(self, task: str, host: str, param: str, value: str) -> None:
        var = f"{task.split('.')[0]}_{param}"
        url = urlparse(value)
        try:
            _ = url.port
        except ValueError:
            url = urlparse("")
        if url.scheme not in ("http", "https") or not url.hostname or not FQDN.fullmatch(url.hostname):
            self.add(
                "BAD_URL",
                "error",
                f"{var} {clip(repr(value), 120)} is not an absolute URL with a DNS name",
                self.loc(var, host),
                var,
                host,
                task,
            )
            return
        if param == "metadata_uri":
            names = set()
            for adfs in self.inventory.hosts_in("adfs"):
                names.add(str(self._var(adfs, "adfs_federation_service_name", adfs.fqdn) or "").lower())
                names.add(str(adfs.fqdn).lower())
            if names and url.hostname.lower() not in names:
                self.add(
                    "METADATA_HOST",
                    "error",
                    f"{var} names {url.hostname}, which is no AD FS Federation "
                    f"Service Name of the inventory ({', '.join(sorted(n for n in names if n))})",
                    self.loc(var, host),
                    var,
                    host,
                    task,
                )

    def check_cross_references(self) -> None:
        self._pools_and_trusts()
        self._client_templates()
        self._ca_config()

    def _pools_and_trusts(self) -> None:
        pools = self.inventory.hosts_in("lync_pools")
        adfs = self.inventory.hosts_in("adfs")
        if pools and not adfs:
            self.add(
                "ADFS_MISSING",
                "error",
                "the inventory has Lync pools but no AD FS host: passive "
                "authentication would have no relying-party trust",
                self.imap.groups.get("lync_pools"),
                "lync_pools",
                fix="add the AD FS server to group adfs",
            )
            return
        trusted: dict[str, str] = {}
        complete = not any(("adfs.relying_party", server.name) in self.unknown_params for server in adfs)
        for server in adfs:
            listed = (self.params.get(("adfs.relying_party", server.name)) or {}).get("pools")
            if listed is None:
                continue
            for pool in listed:
                trusted[str(pool).lower()] = server.name
            pool_names = {str(p.fqdn).lower() for p in pools}
            for pool in listed:
                if str(pool).lower() not in pool_names:
                    self.add(
                        "TRUST_WITHOUT_POOL",
                        "warning",
                        f"adfs_pools lists {pool}, which is no host of lync_pools",
                        self.loc("adfs_pools", server.name),
                        "adfs_pools",
                        server.name,
                        "adfs.relying_party",
                    )
        if "adfs.relying_party" not in self.tasks or not complete:
            return
        for pool in pools:
            if str(pool.fqdn).lower() not in trusted:
                server_name = adfs[0].name
                self.add(
                    "POOL_WITHOUT_TRUST",
                    "error",
                    f"pool {pool.name} ({pool.fqdn}) has no AD FS relying-party trust: adfs_pools does not list it",
                    self.loc("adfs_pools", server_name),
                    "adfs_pools",
                    server_name,
                    "adfs.relying_party",
                    fix=f"add {pool.fqdn} to adfs_pools, or leave adfs_pools unset",
                )

    def _issued_templates(self) -> set[str] | None:
        """The templates the CA issues, None when unknown (no CA tier, or its parameters refused)."""
        if any(task in ("ca.templates_published", "templates.smartcard") for task, _ in self.unknown_params):
            return None
        issued: set[str] = set()
        found = False
        for (task, _host), p in self.params.items():
            if task == "ca.templates_published":
                found = True
                issued.update(str(t).lower() for t in p.get("templates") or ())
            elif task == "templates.smartcard":
                found = True
                if p.get("profile", "vsc") == "vsc" and p.get("publish", True):
                    issued.add(str(p.get("name", "")).lower())
                else:
                    issued.add("smartcarduser")
        return issued if found else None

    def _client_templates(self) -> None:
        issued = self._issued_templates()
        if issued is None:
            return
        for (task, host), p in self.params.items():
            if task not in ("client.enrollment", "client.verify") or not p.get("template"):
                continue
            if str(p["template"]).lower() not in issued:
                self.add(
                    "CLIENT_TEMPLATE",
                    "error",
                    f"client_template {p['template']!r} is not a template the CA issues ({', '.join(sorted(issued))})",
                    self.loc("client_template", host),
                    "client_template",
                    host,
                    task,
                )

    def _ca_config(self) -> None:
        cas = {}
        for ca in self.inventory.hosts_in("ca"):
            cas[str(ca.fqdn).lower()] = str(self._var(ca, "ca_common_name", "") or "")
        for (task, host), p in self.params.items():
            config = p.get("ca_config") if task.startswith("client.") else None
            if not config:
                continue
            server, _, name = str(config).partition("\\")
            if server.lower() not in cas:
                self.add(
                    "CA_CONFIG",
                    "error",
                    f"client_ca_config {config!r} names {server!r}, which is no host of "
                    f"group ca ({', '.join(sorted(cas)) or 'none'})",
                    self.loc("client_ca_config", host),
                    "client_ca_config",
                    host,
                    task,
                )
            elif cas[server.lower()] and name.lower() != cas[server.lower()].lower():
                self.add(
                    "CA_CONFIG",
                    "error",
                    f"client_ca_config names the CA {name!r}, but {server}'s ca_common_name is {cas[server.lower()]!r}",
                    self.loc("client_ca_config", host),
                    "client_ca_config",
                    host,
                    task,
                )

    def check_plugin_findings(self) -> None:
        steps: list[Step] = []
        # (where the transport is set, transport) -> {"hosts": [host], "tasks": {task: {resource}}}
        self._hops: dict[tuple[Definition | None, str], dict[str, Any]] = {}
        for task in order_tasks({n: t for n, t in self.tasks.items() if t.kind != "rollback"}):
            for host in self.inventory.hosts_in(task.group):
                params = self.params.get((task.name, host.name))
                if params is None:
                    continue
                try:
                    # A _Lenient host is the HostContext with var() (same signature) reading vault
                    # data as a placeholder; every other attribute is the HostContext's.
                    lenient = cast(HostContext, _Lenient(host)) if self.encrypted else host
                    connection = ConnectionSettings.from_host(lenient)
                except (ConnectionConfigError, InventoryError):
                    connection = None
                steps.append(Step(task, host, params, connection))
                if connection is not None:
                    self._double_hop(steps[-1], connection)
        self._report_double_hops()
        plan = Plan(tasks=[t for t in self.tasks.values() if any(s.task is t for s in steps)], steps=steps)
        try:
            batches = self.pm.hook.lync2fa_validate_plan(plan=plan)
        except Exception as exc:  # a plugin's bug must not hide the other findings
            self.add("PLUGIN", "error", f"a plugin's lync2fa_validate_plan failed: {type(exc).__name__}: {exc}")
            return
        for finding in (f for batch in batches for f in batch or ()):
            self._place_finding(finding)

    def _double_hop(self, step: Step, connection: ConnectionSettings) -> None:
        """A step that reaches AD, the CMS or a CA from a session without network credentials
        (``connection``: the step's)."""
        try:
            missing = unreachable(step)
        except (AttributeError, InventoryError):
            return
        if missing:
            where = self.loc("ansible_winrm_transport", step.host.name)
            entry = self._hops.setdefault((where, connection.transport), {"hosts": [], "tasks": {}})
            entry["hosts"].append(step.host.name)
            for r in missing:
                entry["tasks"].setdefault(step.task.name, set()).add(RESOURCE_NAMES.get(r, r))

    def _report_double_hops(self) -> None:
        for (where, transport), entry in self._hops.items():
            what = "; ".join(f"{task} reaches {', '.join(sorted(res))}" for task, res in entry["tasks"].items())
            for host in dict.fromkeys(entry["hosts"]):
                self.add(
                    "DOUBLE_HOP",
                    "error",
                    f"a {transport} session has no network credentials (the double hop), so plan refuses: {what}",
                    where,
                    "ansible_winrm_transport",
                    host,
                    fix=WAYS_OUT_SHORT,
                )

    def _place_finding(self, f: Finding) -> None:
        """At the variable the finding names (``var``), else the first the message names."""
        words = [f.var] if f.var else WORD.findall(f"{f.message} {f.fix}")
        candidates = [w for w in words if w in self.known or w.startswith("ansible_")]
        loc, key = None, ""
        if f.host:
            for var in candidates:
                if self.at(var, f.host):
                    loc, key = self.at(var, f.host), var
                    break
            else:
                key = candidates[0] if candidates else ""
        else:
            for var in candidates:
                defs = self.imap.definitions(var)
                if defs:
                    loc, key = defs[0], var
                    break
        severity = f.severity if f.severity in SEVERITIES else "error"
        self.add(f.rule, severity, f.message, loc, key, f.host, f.task, f.fix, kind="plan")

    def check_scripts(self) -> None:
        try:
            pscheck = importlib.import_module(f"{__package__}.pscheck")
        except ImportError:
            self.add(
                "PSCHECK",
                "note",
                "PowerShell scripts not checked: this lync2fa has no lync2fa.pscheck",
                None,
                "",
                kind="script",
            )
            return
        paths = script_paths(self.tasks)
        try:
            findings = pscheck.check_files(paths)
        except Exception as exc:  # the checker's bug: say so, keep the inventory findings
            self.add(
                "PSCHECK",
                "warning",
                f"PowerShell static checks failed: {type(exc).__name__}: {exc}",
                None,
                "",
                kind="script",
            )
            return
        # Findings in lync2fa's own scripts are warnings: nothing in the inventory can fix them
        # (--fail-on warning makes them fail a pipeline). Templates render a shared frame, so one
        # defect of the frame shows in every template at the same rendered line: reported once.
        first: dict[tuple, Issue] = {}
        for f in findings or ():
            get = f.get if isinstance(f, dict) else (lambda k, d=None, _f=f: getattr(_f, k, d))
            path = str(get("path", "") or get("file", "") or "")
            line, col, rule, message = (
                int(get("line", 0) or 0),
                int(get("col", 0) or 0),
                str(get("rule", "PSCHECK")),
                str(get("message", "")),
            )
            same = first.get((rule, line, col, message))
            if same is not None:
                same.properties.setdefault("also_in", []).append(path)
                continue
            self.add(
                rule,
                "warning",
                message,
                Definition(path, line, col),
                Path(path).name,
                kind="script",
                fix=f"a defect of lync2fa's script {Path(path).name}: report it (pscheck rule {rule})",
            )
            first[(rule, line, col, message)] = self._issues[(rule, path, line, Path(path).name)]


def _first_named(text: str, names: dict[str, str]) -> str:
    """The value of the ``names`` key that ``text`` names first, as a whole word (``_`` is part of
    one: ``min_key_size`` is not named by ``templates_min_key_size``), else ""."""
    hits = sorted(
        (m.start(), value)
        for word, value in names.items()
        if (m := re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text))
    )
    return hits[0][1] if hits else ""


def _texts(values) -> list[str]:
    """The strings among parameter values (a list's elements included)."""
    found: list[str] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                found.append(item)
    return found


class _Lenient:
    """A host whose unreadable values (vault data without its password) read as a placeholder,
    so the transport's own checks (the double hop) still run; with ``only``, just those variables."""

    def __init__(self, host, only: frozenset[str] | None = None):
        self._host, self._only = host, only

    def var(self, name, default=None):
        try:
            return self._host.var(name, default)
        except InventoryError:
            if self._only is not None and name not in self._only:
                raise
            return "********"

    def __getattr__(self, name):
        return getattr(self._host, name)


def _stub_copy(sources: list[str], into: Path) -> list[str]:
    """A copy of the inventory where every vault-encrypted file is an empty mapping."""
    copies = []
    for index, src in enumerate(sources):
        path, root = Path(src).resolve(), into / str(index)
        if path.is_dir():
            shutil.copytree(path, root / path.name, symlinks=False)
            copies.append(str(root / path.name))
        else:
            root.mkdir(parents=True)
            shutil.copy2(path, root / path.name)
            for sub in ("group_vars", "host_vars"):
                if (path.parent / sub).is_dir():
                    shutil.copytree(path.parent / sub, root / sub, dirs_exist_ok=True)
            copies.append(str(root / path.name))
        for copied in root.rglob("*"):
            if copied.is_file():
                with open(copied, "rb") as fh:
                    head = fh.read(64)
                if head.lstrip().startswith(b"$ANSIBLE_VAULT"):
                    copied.write_text("{}\n")
    return copies


def script_paths(tasks: dict[str, Task]) -> list[str]:
    """Every PowerShell file that can reach a host: the primitive library (``lync2fa/ps``) the
    deciding tasks run, and the legacy tasks' own script templates (rendered by pscheck)."""
    found: list[str] = []
    if any(getattr(t, "decide", None) for t in tasks.values()):
        found += sorted(str(p) for p in (Path(__file__).resolve().parent / "ps").glob("*.ps1"))
    for task in tasks.values():
        template = getattr(task, "template", None)
        if isinstance(template, Path) and template.exists() and str(template.resolve()) not in found:
            found.append(str(template.resolve()))
    return found


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(HOSTNAME.fullmatch(value))
