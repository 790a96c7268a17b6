"""The Ansible face: run one engine task on the play's host from a controller-side action plugin.

Every module of the collection ``lync2fa.twofactor`` has an action plugin of the same name
(``plugins/action/<module>.py``) that is a subclass of :class:`EngineAction` naming its engine
task. The action reads the tier's inventory variables from the play (vault and templates
resolved by Ansible), validates, gates and decides on the controller with the engine, exactly as
``lync2fa apply`` does (:func:`lync2fa.api.run_step`), and sends each request (the facts it
reads, then the operations it applies) through the task's own Ansible connection: it executes
the collection's PowerShell module ``lync2fa.twofactor.host_request`` (``lync2fa.ansible_payload``)
with ``_execute_module``, so ``become``/``runas``, the connection plugin and its settings
(Kerberos, CredSSP, certificates) and its timeouts apply as for ``ansible.windows`` modules. A
host that cannot be reached is ``unreachable``. The task's ``timeout:`` is the step's deadline (the
engine keeps it: see :class:`PlayConnection`); ``delegate_to`` is refused unless ``force_group``,
which makes the task the delegated host's step (docs/ansible.md).

:class:`PlayInventory` gives the engine the same view of a host that lync2fa's own inventory
does (``name``, ``fqdn``, ``groups``, ``var``, ``has_var``, ``inventory.hosts_in``), so host-derived
defaults come out identical.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase

from . import ansible_payload, api, groups, hostscript
from .connection import ALLOW_INSECURE_VAR, ConnectionConfigError, ansible_bool, clear_text_risks, refuse_or_warn
from .findings import InsecurePlanError
from .gate_cache import GateCache
from .inventory import InventoryError, plain
from .journal import JournalError
from .plan import PlanError
from .plugin_manager import default_plugin_manager
from .runlock import RunLockError
from .task import ParameterError, Task
from .transport import ConnectionPool, TransportError

try:  # ansible-core 2.19: what the task's `timeout:` raises (SIGALRM) in the action's run
    from ansible._internal._errors._task_timeout import TaskTimeoutError
except ImportError:  # ansible-core 2.16 - 2.18: the same BaseException, in the task executor
    from ansible.executor.task_executor import TaskTimeoutError  # type: ignore[attr-defined,no-redef]

COLLECTION = "lync2fa.twofactor"
BUILTIN_PLUGIN_PACKAGE = "lync2fa.plugins."
STATE_DIR_ENV = "LYNC2FA_STATE_DIR"

# Options every module has besides its task's parameters (documented by tools/gen_modules.py).
ENGINE_OPTIONS = {
    "allow_insecure": {
        "type": "list",
        "elements": "str",
        "default": [],
        "description": "Accept these refused insecure settings by rule name (e.g. C(SHA1), "
        "C(ESC8)), as C(lync2fa --allow-insecure RULE) does; each is then "
        "reported as a warning.",
    },
    "verify": {
        "type": "bool",
        "default": False,
        "description": "Change nothing and fail when the task would change something (the rollout is "
        "not in place), as C(lync2fa verify) does; the C(verify) role runs every task "
        "this way.",
    },
    "state_dir": {
        "type": "path",
        "description": "Directory of lync2fa's audit journal on the controller (it must be writable "
        "there: under AWX, a persistent volume or a project directory). Default: the "
        "variable C(lync2fa_state_dir), else the C(" + STATE_DIR_ENV + ") environment "
        "variable, else C(.lync2fa) in the current directory (the same default as the "
        "C(lync2fa) command line).",
    },
    "force_group": {
        "type": "bool",
        "default": False,
        "description": "Run the task on a host outside its inventory group (see C(lync2fa_<group>_group)); "
        "without it such a host fails, so that a module cannot, say, plan a CA on a "
        "workstation.",
    },
}

USAGE_ERRORS = (
    ParameterError,
    InsecurePlanError,
    ConnectionConfigError,
    InventoryError,
    PlanError,
    JournalError,
    RunLockError,
)


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

    def __init__(
        self,
        name: str,
        variables: Mapping,
        inventory: PlayInventory,
        template: Callable[[Any], Any] = lambda value: value,
    ):
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
        except Exception as exc:  # noqa: BLE001 - undecryptable vault data, broken templates ...
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

    def __init__(
        self, task_vars: Mapping, current: str, template: Callable[[Any], Any], fallback: Mapping | None = None
    ):
        self._groups: Mapping[str, list] = task_vars.get("groups", {})
        self._hostvars: Mapping[str, Mapping] = task_vars.get("hostvars", {})
        variables = dict(fallback or {})
        variables.update(task_vars)
        self._hosts = {current: PlayHost(current, variables, self, template)}
        self.current = current

    def host(self, name: str) -> PlayHost:
        if name not in self._hosts:
            if name not in self._hostvars:
                raise InventoryError(f"no host {name!r} in the inventory")
            self._hosts[name] = PlayHost(name, self._hostvars[name], self)
        return self._hosts[name]

    def hosts_in(self, group: str, limit: set[str] | None = None) -> list[PlayHost]:
        """The hosts of a task's group: ``group`` is the name tasks declare (``ca``), read through
        the inventory's ``lync2fa_<group>_group`` variable (``lync2fa.groups``)."""
        group = self.group_name(group)
        names = [str(n) for n in self._groups.get(group, ())] if group != "all" else list(self.all_hosts())
        return [self.host(n) for n in names if limit is None or n in limit]

    def members(self, group: str) -> list[str]:
        """The host names of the inventory group ``group`` (its inventory name), as Ansible lists them."""
        return [str(n) for n in self._groups.get(group, ())]

    def group_name(self, group: str) -> str:
        """The inventory's name for a task's group (``lync2fa_<group>_group``, default ``group``)."""
        return groups.actual(group, self.host(self.current).var)

    def groups_of(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(str(g) for g, members in self._groups.items() if g != "all" and name in members))

    def groups(self) -> set[str]:
        return set(self._groups)

    def all_hosts(self) -> list[str]:
        return [str(n) for n in self._groups.get("all", ())]


@dataclass(frozen=True)
class PlaySettings:
    """A step's connection as the engine needs to know it when Ansible's connection carries it:
    whether its session holds network credentials (the double hop), and how to name it."""

    host: str
    transport: str  # e.g. "winrm/ntlm", "winrm/credssp", "psrp/kerberos", "ssh", "winrm/ntlm+runas"
    delegates: bool
    endpoint: str = ""
    password: str = ""
    warnings: tuple = ()


# runas logon types whose token holds the account's network credentials (a Network logon has none).
RUNAS_DELEGATING = {"interactive", "batch", "service", "network_cleartext", "new_credentials", "unlock"}


def play_settings(action: ActionBase, host: str, task_vars: Mapping) -> PlaySettings:
    """What the task's Ansible connection (and its become) gives the session, read from the
    connection plugin's options as Ansible resolved them."""
    connection = action._connection
    kind = str(getattr(connection, "transport", "") or "").rsplit(".", 1)[-1]

    def option(name, default=None):
        try:
            value = connection.get_option(name)
        except (KeyError, AttributeError, AnsibleError):  # an option this connection plugin does not have
            return default
        return default if value is None else value

    auth, delegates, warnings = "", False, []
    wire: tuple | None = None  # (scheme, port, auths, message encryption, configured proxy)
    address = str(option("remote_addr") or getattr(action._play_context, "remote_addr", "") or host)
    if kind == "winrm":
        extras = option("_extras", {}) or {}
        port = int(option("port", 5986) or 5986)
        scheme = str(option("scheme") or ("http" if port == 5985 else "https")).lower()
        transports = option("transport") or []
        transports = [transports] if isinstance(transports, str) else [str(t) for t in transports if t]
        if not transports:  # what ansible.builtin.winrm picks when none is set (its _build_winrm_kwargs)
            user = str(option("remote_user") or "")
            transports = ["kerberos"] if "@" in user else (["ssl"] if scheme == "https" else ["plaintext"])
        auth = ",".join(transports)
        delegates = "credssp" in transports or (
            "kerberos" in transports
            and bool(option("kerberos_delegation", task_vars.get("ansible_winrm_kerberos_delegation", False)))
        )
        encryption = str(extras.get("ansible_winrm_message_encryption", "auto")).lower()
        wire = (scheme, port, transports, encryption, extras.get("ansible_winrm_proxy"))
    elif kind == "psrp":
        auth = str(option("auth", "negotiate"))
        delegates = auth == "credssp" or (auth in ("kerberos", "negotiate") and bool(option("negotiate_delegate")))
        port = int(option("port", 5986) or 5986)
        scheme = str(option("protocol") or ("http" if port == 5985 else "https")).lower()
        wire = (scheme, port, [auth], str(option("message_encryption", "auto")).lower(), option("proxy"))
    if wire is not None:  # what would cross the network in clear: judged as the CLI judges the inventory
        scheme, port, auths, encryption, proxy = wire
        endpoint = f"{scheme}://{address}:{port}{option('path') or '/wsman'}"
        risks = clear_text_risks(scheme, auths, encryption, endpoint, _proxy_for(endpoint, proxy))
        warnings += refuse_or_warn(
            host, endpoint, risks, _allowed_insecure(action, task_vars, host) if risks else False
        )
    become = action._connection.become if getattr(action._play_context, "become", False) else None
    if become is not None and getattr(become, "name", "").rsplit(".", 1)[-1] == "runas":
        flags = str(become.get_option("become_flags") or "")
        logon = dict(f.split("=", 1) for f in flags.split() if "=" in f).get("logon_type", "interactive")
        delegates = delegates or logon in RUNAS_DELEGATING
        auth = (auth + "+" if auth else "") + f"runas:{logon}"
    name = kind + (f"/{auth}" if auth else "")
    return PlaySettings(
        host=host, transport=name, delegates=delegates, endpoint=f"ansible:{kind}://{address}", warnings=tuple(warnings)
    )


def _proxy_for(endpoint: str, configured) -> str | None:
    """The proxy the play's connection goes through: the one configured, else (unlike lync2fa's own
    client) the environment's (HTTP_PROXY, ..., NO_PROXY): pywinrm and pypsrp use requests' defaults."""
    if configured:
        return str(configured)
    return requests.utils.select_proxy(endpoint, requests.utils.get_environ_proxies(endpoint)) or None  # ALL_PROXY too


def _allowed_insecure(action: ActionBase, task_vars: Mapping, host: str) -> bool:
    """The host's lync2fa_allow_insecure_transport, parsed as Ansible parses booleans."""
    return ansible_bool(action._templar.template(task_vars.get(ALLOW_INSECURE_VAR, False)), ALLOW_INSECURE_VAR, host)


def engine_budget(timeout: int) -> float:
    """Of a task's ``timeout`` (s), the time the engine gives the step: it stops a little before
    Ansible's alarm, so that the task ends with lync2fa's own answer (what was sent, what may have
    run), not with Ansible's "Timed out" over a step that went on."""
    return timeout - min(1.0, timeout / 4)


class PlayConnection:
    """The engine's connection (``request(request, secrets, deadline_s, idempotent)``) over the
    task's Ansible connection: each request runs the module ``lync2fa.twofactor.host_request``
    through Ansible's module machinery (exec wrapper, become, async, connection plugin).

    A request is waited for until its ``deadline_s`` or the task's ``timeout`` (see
    :func:`engine_budget`), whichever comes first: then it is "no answer in N s" (an apply: its
    operations may have run), and nothing more is sent on the connection."""

    def __init__(self, action: ActionBase, task_vars: Mapping, host: str | None = None, timeout: int = 0):
        self.action, self.task_vars = action, task_vars
        self.host = host or str(task_vars.get("inventory_hostname", ""))
        self.unreachable: str | None = None
        self.requests = 0
        self.timeout = timeout
        self.deadline_at = time.monotonic() + engine_budget(timeout) if timeout else None
        self.waiting: str | None = None  # a request left without an answer
        self.apply_sent = False  # an apply request went to the host: its operations may have run

    def remaining(self) -> float | None:
        """Seconds left before the task's deadline (None: the task has no timeout)."""
        return None if self.deadline_at is None else max(0.001, self.deadline_at - time.monotonic())

    def request(
        self, request: dict, secrets: dict | None = None, deadline_s: float | None = None, idempotent: bool = False
    ) -> dict:
        if self.requests == 0:
            _check_collection_library(self.action)
        if self.unreachable:
            raise TransportError(self.host, "request", self.unreachable, reachable=False)
        if self.waiting:
            raise TransportError(self.host, "send request", f"not sent: {self.waiting}")
        waits = [w for w in (deadline_s, self.deadline_at and self.deadline_at - time.monotonic()) if w is not None]
        wait = min(waits) if waits else None
        if wait is not None and wait <= 0:
            raise TransportError(self.host, "send request", f"not sent: the task's timeout ({self.timeout} s) is near")
        args = ansible_payload.module_args(request, secrets)
        self.requests += 1
        self.apply_sent = self.apply_sent or not idempotent
        try:
            result = self._execute(args, wait, idempotent)
        except AnsibleConnectionFailure as exc:
            self.unreachable = str(exc)
            raise TransportError(self.host, "request", self.unreachable, reachable=False) from None
        if result.get("unreachable"):
            self.unreachable = str(result.get("msg") or "unreachable")
            raise TransportError(self.host, "request", self.unreachable, reachable=False)
        if result.get("failed") and "response" not in result:
            detail = str(result.get("msg") or "failed")
            if result.get("module_stderr"):
                detail += ": " + str(result["module_stderr"]).strip()[:500]
            raise hostscript.HostScriptError(f"{ansible_payload.MODULE} failed: {detail}")
        return hostscript.parse_response(str(result.get("response") or ""))

    def _execute(self, args: dict, wait: float | None, idempotent: bool) -> dict:
        """The module's result; with a ``wait``, given up (left running, in a daemon thread) when
        it has not come in time: the module call itself cannot be interrupted."""

        def call() -> dict:
            return self.action._execute_module(
                module_name=ansible_payload.MODULE, module_args=args, task_vars=dict(self.task_vars), wrap_async=False
            )

        if wait is None:
            return call()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=run, name=f"lync2fa-request-{self.host}", daemon=True)
        worker.start()
        worker.join(wait)
        if worker.is_alive():
            cause = f"no answer in {wait:.3g} s" + (f" (the task's timeout: {self.timeout} s)" if self.timeout else "")
            self.waiting = f"an earlier request has no answer ({cause})"
            if not idempotent:
                cause += "; the operations may have run (the next plan shows the state)"
            raise TransportError(self.host, "receive answer", cause, may_have_run=not idempotent)
        if "error" in box:
            raise box["error"]
        return box["result"]

    def timed_out(self) -> dict:
        """The task's result when Ansible's ``timeout:`` interrupted the step (see ``EngineAction.run``)."""
        if self.apply_sent:
            return {
                "failed": True,
                "changed": True,
                "msg": f"Timed out after {self.timeout} second(s) while the host applied the task's operations: "
                "they may have run. `lync2fa journal` shows what was recorded; running the task again settles it.",
            }
        return {
            "failed": True,
            "changed": False,
            "msg": f"Timed out after {self.timeout} second(s), before any operation was sent: nothing was changed.",
        }

    def close(self) -> None:
        pass


_LIBRARY_CHECKED: set[str] = set()


def _check_collection_library(action: ActionBase) -> None:
    """The collection's module_util must be the engine's primitive library: a collection and an
    engine of different versions would send operations the library on the host does not know."""
    module = sys.modules.get(type(action).__module__)
    path = getattr(module, "__file__", None)
    if not path or not type(action).__module__.startswith("ansible_collections."):
        return
    util = Path(path).resolve().parent.parent / "module_utils" / f"{ansible_payload.UTIL_NAME}.psm1"
    if str(util) in _LIBRARY_CHECKED:
        return
    try:
        shipped = util.read_text(encoding="utf-8")
    except OSError as exc:
        raise hostscript.HostScriptError(f"cannot read the collection's {util}: {exc}") from None
    if shipped.replace("\r\n", "\n") != ansible_payload.module_util():
        raise hostscript.HostScriptError(
            f"the collection's {util.name} is not the primitive library of the installed lync2fa engine: install "
            "the lync2fa version this collection was built with (or, in a checkout, run tools/gen_modules.py)"
        )
    _LIBRARY_CHECKED.add(str(util))


class EngineAction(ActionBase):
    """Base of every ``lync2fa.twofactor`` action plugin: subclasses set ``TASK``."""

    TASK = ""
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        task = builtin_tasks().get(self.TASK)
        if task is None:
            raise AnsibleActionFail(
                f"the installed lync2fa Python package has no task {self.TASK!r}; "
                "install the lync2fa version this collection was built with"
            )
        args = {str(k): plain(v) for k, v in self._task.args.items()}
        unknown = sorted(set(args) - {p.name for p in task.params} - set(ENGINE_OPTIONS))
        if unknown:
            supported = ", ".join(sorted({p.name for p in task.params} | set(ENGINE_OPTIONS)))
            raise AnsibleActionFail(
                f"Unsupported parameters for ({self._task.action}) module: "
                f"{', '.join(unknown)}. Supported parameters include: {supported}."
            )
        allow = args.pop("allow_insecure", None) or []
        if not isinstance(allow, list):
            allow = [a.strip() for a in str(allow).split(",") if a.strip()]
        state_dir = Path(
            str(
                args.pop("state_dir", None)
                or self._var(task_vars, "lync2fa_state_dir")
                or os.environ.get(STATE_DIR_ENV)
                or api.DEFAULT_STATE_DIR
            )
        ).expanduser()
        host = str(task_vars.get("inventory_hostname", self._play_context.remote_addr))
        try:  # as Ansible reads a module's bool options: "false" is false, "maybe" an error
            verify = ansible_bool(args.pop("verify", False), "verify", host)
            force_group = ansible_bool(args.pop("force_group", False), "force_group", host)
        except ConnectionConfigError as exc:
            raise AnsibleActionFail(str(exc)) from None
        view: Mapping = task_vars
        delegated = self._delegated_host(host)
        if delegated:
            if not force_group:
                return {
                    **result,
                    "failed": True,
                    "changed": False,
                    "msg": f"{self._task.action} on {host} is delegated to {delegated}: lync2fa decides on a host from "
                    "that host's facts and inventory variables (and journals it), so a task runs on its own host, "
                    f"not through another; remove delegate_to (or set force_group: true to run it as {delegated}'s "
                    "task, judged and journaled there)",
                }
            # The host reached is the delegated one: its variables, its group check, its journal entry.
            view = {
                **(task_vars.get("ansible_delegated_vars") or {}).get(delegated, {}),
                "groups": task_vars.get("groups", {}),
                "hostvars": task_vars.get("hostvars", {}),
            }
            host = delegated
        inventory = PlayInventory(view, host, self._templar.template, self._connection_fallback())
        outside = groups.outside(task, inventory, host)
        if outside and not force_group:
            return {
                **result,
                "failed": True,
                "changed": False,
                "msg": outside + "; set force_group: true to run it there anyway",
            }
        connection = PlayConnection(self, task_vars, host, timeout=int(self._task.timeout or 0))
        stop = threading.Event()  # set at the task's deadline: no operation is sent after it
        timer = threading.Timer(connection.remaining() or 0, stop.set) if connection.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            return self._run_step(result, connection, stop, inventory, host, view, args, allow, state_dir, verify)
        except TaskTimeoutError:  # Ansible's alarm came first (the engine waited for a request in flight)
            return {**result, **connection.timed_out()}
        finally:
            if timer is not None:
                timer.cancel()

    def _run_step(
        self,
        result: dict,
        connection: PlayConnection,
        stop: threading.Event,
        inventory: Any,  # a PlayInventory: what run_step reads of an Inventory
        host: str,
        task_vars: Mapping,
        args: dict,
        allow: list,
        state_dir: Path,
        verify: bool,
    ) -> dict:
        """The engine's step and its result (``run`` set up the host, its connection and deadline)."""
        check_mode = bool(self._task.check_mode)
        try:
            outcome = api.run_step(
                inventory,
                self.TASK,
                host,
                overrides=args,
                check_mode=check_mode or verify,
                allow_insecure={str(a) for a in allow},
                state_dir=state_dir,
                verify=verify,
                settings=play_settings(self, host, task_vars),
                pool=ConnectionPool(factory=lambda _settings: connection),
                gate_cache=self._gate_cache(state_dir),
                step_timeout_s=connection.remaining(),
                stop=stop,
            )
        except USAGE_ERRORS as exc:
            msg = str(exc)
            if isinstance(exc, InsecurePlanError):
                msg += (
                    "\nWith Ansible: list the rule in the task's allow_insecure option, or in "
                    "lync2fa_allow_insecure for the roles and playbooks."
                )
            if isinstance(exc, JournalError) or (isinstance(exc, RunLockError) and "another lync2fa run" not in msg):
                msg += (
                    f"\nlync2fa's audit journal needs a writable directory on the controller: set "
                    f"lync2fa_state_dir (or the module's state_dir, or {STATE_DIR_ENV}) to one."
                )
            return {**result, "failed": True, "changed": False, "msg": msg}
        if connection.unreachable:
            return {
                **result,
                "unreachable": True,
                "changed": False,
                "msg": f"{host} is unreachable through the play's connection: {connection.unreachable}",
            }
        result.update(to_ansible_result(outcome, check_mode, bool(self._task.diff)))
        if stop.is_set() and outcome.skipped:
            result["msg"] = (
                f"the task's timeout ({connection.timeout} s) came before its operations were sent: nothing was changed"
            )
        return result

    def _delegated_host(self, host: str) -> str | None:
        """The host a ``delegate_to`` task reaches instead of ``host`` (None: not delegated)."""
        delegated = getattr(self._task, "delegate_to", None)
        return str(delegated) if delegated and str(delegated) != host else None

    def _var(self, task_vars: Mapping, name: str):
        if name not in task_vars:
            return None
        return self._templar.template(task_vars[name])

    def _gate_cache(self, state_dir: Path) -> GateCache | None:
        """The gate's findings, once per play (``lync2fa.gate_cache``); None outside a play."""
        play = getattr(getattr(self._task, "_parent", None), "_play", None)
        uuid = getattr(play, "_uuid", None)
        if not uuid:
            return None
        return GateCache(state_dir, f"{uuid}-{os.getppid()}")

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
        "changed": bool(outcome.changed),
        "failed": bool(outcome.failed or outcome.skipped),
        "msg": outcome.msg or _summary(outcome, check_mode),
        "engine_task": outcome.task,
        "before": outcome.before,
        "after": outcome.after,
        "changes": outcome.diff,
        "duration": outcome.duration,
    }
    if outcome.warnings:
        result["warnings"] = [str(w) for w in outcome.warnings]
    if diff_mode and outcome.changed:
        header = f"{outcome.task} on {outcome.host}"
        result["diff"] = {
            "before": outcome.before,
            "after": outcome.after,
            "before_header": header,
            "after_header": header,
        }
    return result


def _summary(outcome, check_mode: bool) -> str:
    if not outcome.changed:
        return f"{outcome.task}: in the desired state"
    verb = "would change" if check_mode else "changed"
    return f"{outcome.task}: {verb} " + ", ".join(c["path"] for c in outcome.diff)
