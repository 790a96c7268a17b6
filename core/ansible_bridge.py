"""The Ansible face: run one engine task on the play's host from a controller-side action plugin.

Every module of the collection ``lync2fa.twofactor`` has an action plugin of the same name
(``plugins/action/<module>.py``) that is a subclass of :class:`EngineAction` naming its engine
task. The action never opens Ansible's own connection: it reads the host's ``ansible_*``
connection variables and the tier's inventory variables from the play (vault and templates
resolved by Ansible), then calls :func:`lync2fa.api.run_step`, which reaches the host over
WinRM exactly as ``lync2fa apply`` does. Both faces therefore plan, gate and run the same code.

:class:`PlayInventory` gives the engine the same view of a host that lync2fa's own inventory
does (``name``, ``fqdn``, ``groups``, ``var``, ``has_var``, ``inventory.hosts_in``), so host-derived
defaults come out identical.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from . import api
from .connection import ConnectionConfigError
from .findings import InsecurePlanError
from .inventory import InventoryError, plain
from .plugin_manager import default_plugin_manager
from .task import ParameterError, Task

COLLECTION = "lync2fa.twofactor"
BUILTIN_PLUGIN_PACKAGE = "lync2fa.plugins."
STATE_DIR_ENV = "LYNC2FA_STATE_DIR"

# Options every module has besides its task's parameters (documented by tools/gen_modules.py).
ENGINE_OPTIONS = {
    "allow_insecure": {"type": "list", "elements": "str", "default": [],
                       "description": "Accept these refused insecure settings by rule name (e.g. C(SHA1), "
                                      "C(ESC8)), as C(lync2fa --allow-insecure RULE) does; each is then "
                                      "reported as a warning."},
    "verify": {"type": "bool", "default": False,
               "description": "Change nothing and fail when the task would change something (the rollout is "
                              "not in place), as C(lync2fa verify) does; the C(verify) role runs every task "
                              "this way."},
    "state_dir": {"type": "path",
                  "description": "Directory of lync2fa's audit journal on the controller. Default: "
                                 f"the C({STATE_DIR_ENV}) environment variable, else C(.lync2fa) in the "
                                 "current directory (the same default as the C(lync2fa) command line)."},
}

USAGE_ERRORS = (ParameterError, InsecurePlanError, ConnectionConfigError, InventoryError)


def module_name(task_name: str) -> str:
    """``ca.authority`` -> ``ca_authority`` (the module and action plugin file name)."""
    return task_name.replace(".", "_")


def builtin_tasks(pm=None) -> dict[str, Task]:
    """The tasks of lync2fa's own tiers (the collection ships modules for exactly these)."""
    pm = pm or default_plugin_manager()
    tasks: dict[str, Task] = {}
    for _, plugin in pm.list_name_plugin():
        if plugin is None or not getattr(plugin, "__name__", "").startswith(BUILTIN_PLUGIN_PACKAGE):
            continue
        for task in plugin.lync2fa_tasks() if hasattr(plugin, "lync2fa_tasks") else ():
            tasks[task.name] = task
    return tasks


# Ansible imports action plugins in the controller process before it forks a worker per task
# and host: loading the plugins here, once, spares every worker from doing it again.
builtin_tasks()


class PlayHost:
    """One host as the engine sees it, read from Ansible's variables for the play."""

    def __init__(self, name: str, variables: Mapping, inventory: "PlayInventory",
                 template: Callable[[Any], Any] = lambda value: value):
        self.name = name
        self._vars = variables
        self._template = template
        self.inventory = inventory

    @property
    def groups(self) -> tuple[str, ...]:
        return self.inventory.groups_of(self.name)

    def var(self, name: str, default: Any = None) -> Any:
        if name not in self._vars:
            return default
        try:
            return plain(self._template(self._vars[name]))
        except Exception as exc:  # undecryptable vault data, broken templates ...
            raise InventoryError(f"{self.name}: cannot read variable {name}: {exc}") from None

    def has_var(self, name: str) -> bool:
        return name in self._vars

    @property
    def fqdn(self) -> str:
        return self.var("lync2fa_fqdn", self.name)


class PlayInventory:
    """The play's inventory through ``groups`` and ``hostvars`` (templated on access by Ansible).

    The current host is read from the task's own variables, templated with the action's
    templar, so vaulted values, templates and ``-e`` extra vars resolve as they do in the play.
    """

    def __init__(self, task_vars: Mapping, current: str, template: Callable[[Any], Any],
                 fallback: Mapping | None = None):
        self._groups: Mapping[str, list] = task_vars.get("groups", {})
        self._hostvars: Mapping[str, Mapping] = task_vars.get("hostvars", {})
        variables = dict(fallback or {})
        variables.update(task_vars)
        self._hosts = {current: PlayHost(current, variables, self, template)}

    def host(self, name: str) -> PlayHost:
        if name not in self._hosts:
            if name not in self._hostvars:
                raise InventoryError(f"no host {name!r} in the inventory")
            self._hosts[name] = PlayHost(name, self._hostvars[name], self)
        return self._hosts[name]

    def hosts_in(self, group: str, limit: set[str] | None = None) -> list[PlayHost]:
        names = [str(n) for n in self._groups.get(group, ())] if group != "all" else list(self.all_hosts())
        return [self.host(n) for n in names if limit is None or n in limit]

    def groups_of(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(str(g) for g, members in self._groups.items()
                            if g != "all" and name in members))

    def groups(self) -> set[str]:
        return set(self._groups)

    def all_hosts(self) -> list[str]:
        return [str(n) for n in self._groups.get("all", ())]


class EngineAction(ActionBase):
    """Base of every ``lync2fa.twofactor`` action plugin: subclasses set ``TASK``."""

    TASK = ""
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        task = builtin_tasks().get(self.TASK)
        if task is None:
            raise AnsibleActionFail(f"the installed lync2fa Python package has no task {self.TASK!r}; "
                                    "install the lync2fa version this collection was built with")
        args = {str(k): plain(v) for k, v in self._task.args.items()}
        unknown = sorted(set(args) - {p.name for p in task.params} - set(ENGINE_OPTIONS))
        if unknown:
            supported = ", ".join(sorted({p.name for p in task.params} | set(ENGINE_OPTIONS)))
            raise AnsibleActionFail(f"Unsupported parameters for ({self._task.action}) module: "
                                    f"{', '.join(unknown)}. Supported parameters include: {supported}.")
        allow = args.pop("allow_insecure", None) or []
        if not isinstance(allow, list):
            allow = [a.strip() for a in str(allow).split(",") if a.strip()]
        state_dir = args.pop("state_dir", None) or os.environ.get(STATE_DIR_ENV) or api.DEFAULT_STATE_DIR
        verify = bool(args.pop("verify", False))
        host = str(task_vars.get("inventory_hostname", self._play_context.remote_addr))
        inventory = PlayInventory(task_vars, host, self._templar.template, self._connection_fallback())
        check_mode = bool(self._task.check_mode)
        try:
            outcome = api.run_step(inventory, self.TASK, host, overrides=args, check_mode=check_mode or verify,
                                   allow_insecure={str(a) for a in allow}, state_dir=Path(state_dir).expanduser(),
                                   verify=verify)
        except USAGE_ERRORS as exc:
            msg = str(exc)
            if isinstance(exc, InsecurePlanError):
                msg += ("\nWith Ansible: list the rule in the task's allow_insecure option, or in "
                        "lync2fa_allow_insecure for the roles and playbooks.")
            return {**result, "failed": True, "changed": False, "msg": msg}
        result.update(to_ansible_result(outcome, check_mode, bool(self._task.diff)))
        return result

    def _connection_fallback(self) -> dict:
        """Credentials given on the command line (``-u``, ``-k``) when the inventory has none."""
        fallback = {}
        if getattr(self._play_context, "remote_user", None):
            fallback["ansible_user"] = self._play_context.remote_user
        if getattr(self._play_context, "password", None):
            fallback["ansible_password"] = self._play_context.password
        return fallback


def to_ansible_result(outcome, check_mode: bool, diff_mode: bool) -> dict:
    """An engine :class:`~lync2fa.results.Result` as an Ansible task result."""
    result = {
        "changed": bool(outcome.changed), "failed": bool(outcome.failed or outcome.skipped),
        "msg": outcome.msg or _summary(outcome, check_mode),
        "engine_task": outcome.task, "before": outcome.before, "after": outcome.after,
        "changes": outcome.diff, "duration": outcome.duration,
    }
    if outcome.warnings:
        result["warnings"] = [str(w) for w in outcome.warnings]
    if diff_mode and outcome.changed:
        header = f"{outcome.task} on {outcome.host}"
        result["diff"] = {"before": outcome.before, "after": outcome.after,
                          "before_header": header, "after_header": header}
    return result


def _summary(outcome, check_mode: bool) -> str:
    if not outcome.changed:
        return f"{outcome.task}: in the desired state"
    verb = "would change" if check_mode else "changed"
    return f"{outcome.task}: {verb} " + ", ".join(c["path"] for c in outcome.diff)
