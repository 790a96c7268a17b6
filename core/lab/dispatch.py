"""What a lab host does with a command: recognise what lync2fa sends and run its requests on the
Windows model (``lync2fa.lab.windows``).

The lab does not run PowerShell. A command is lync2fa's session loop (``open_session``: one
request per stdin line), Ansible's exec wrapper carrying ``lync2fa.twofactor.host_request``, or one of a few plain commands
(``hostname``, ``whoami``) so that Ansible ``raw`` tasks work. Anything else is refused.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import ansible_payload, hostscript
from . import costs, windows
from .estate import Estate
from .faults import FaultBook
from .logon import LogonInfo, logon_user
from .state import EstateStore
from .wsman import CommandOutcome

REQUEST_LOG = "requests.jsonl"  # beside the operations log: one line per lync2fa request, how it came

# runas become (Ansible's become_wrapper.ps1): the logon types whose token holds the account's
# network credentials (LogonUser with the password). A Network logon has none: the double hop stays.
RUNAS_DELEGATING = {"Interactive", "Batch", "Service", "NetworkCleartext", "NewCredentials", "Unlock"}


@dataclass
class Dispatcher:
    store: EstateStore
    estate: Estate
    faults: FaultBook
    log: list = field(default_factory=list)  # (host, task, check_mode) per script, for tests
    # Per host, every operation the lab executed, in order (tests compare it with the plan's).
    operations: dict = field(default_factory=dict)
    oplog: Path | None = None
    counters: costs.Counters | None = None
    _host_locks: dict = field(default_factory=dict, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, host: str, command: str, arguments: list[str], stdin: bytes, logon=None) -> CommandOutcome:
        words = [command, *arguments]
        lowered = [w.lower() for w in words]
        if "-encodedcommand" in lowered:
            encoded = words[lowered.index("-encodedcommand") + 1]
            script = ansible_payload.unwrap_nested(base64.b64decode(encoded).decode("utf-16-le"))
            if ansible_payload.is_bootstrap(script):
                return self.run_ansible_module(host, script, stdin, logon)
            return CommandOutcome(
                "",
                "lync2fa lab: this host runs lync2fa's session and the Ansible modules "
                "of lync2fa.twofactor; not this script.",
                1,
            )
        text = " ".join(words).strip().lower()
        if text in ("hostname", "hostname.exe"):
            return CommandOutcome(self.estate.host(host).name.upper() + "\r\n")
        if text in ("whoami", "whoami.exe"):
            return CommandOutcome(self.estate.account.lower() + "\r\n")
        return CommandOutcome("", f"'{command}' is not recognized in the lync2fa lab.", 1)

    def run_ansible_module(self, host_name: str, script: str, stdin: bytes, logon=None) -> CommandOutcome:
        """What Ansible's winrm connection sends for ``lync2fa.twofactor.host_request``: its
        bootstrap and exec wrapper carrying the module, lync2fa's primitive library as a module_util
        and the request in the module's options; with ``become: runas``, its become wrapper. The
        request runs as the CLI's do, under the logon the become makes; anything else is refused."""
        try:
            invocation = ansible_payload.parse_exec_wrapper(script, stdin)
            request = json.loads(str(invocation.args.get("request")))
            secret_values = json.loads(str(invocation.args.get("secrets") or "{}"))
            if not isinstance(request, dict) or not isinstance(secret_values, dict):
                raise ValueError("the request and the secrets must be JSON objects")
        except (ansible_payload.ExecWrapperError, ValueError) as exc:
            return CommandOutcome(json.dumps({"failed": True, "msg": f"lync2fa lab: {exc}"}) + "\r\n", "", 1)
        if invocation.become is not None:
            logon, error = self.runas(host_name, logon, invocation.become)
            if error:
                return CommandOutcome(json.dumps({"failed": True, "msg": error}) + "\r\n", "", 1)
        self.log.append((host_name, request.get("kind"), None))
        self.record_request(host_name, request, invocation.wrapper, logon, invocation.become, invocation.check_mode)
        if request.get("kind") != "facts" and invocation.check_mode:
            return self._module_exit(
                {"failed": True, "msg": "lync2fa: refused to apply operations in check mode"}, invocation
            )
        machine = self.machine(host_name, logon)
        version = machine.props.get("powershell_version", "5.1")
        # What Ansible's bootstrap wrapper itself prints on an older PowerShell (2.19: 5.1; 2.16: 3.0).
        minimum, text = ((3, 0), "v3.0 or newer") if "2.16" in invocation.wrapper else ((5, 1), "v5.1")
        if hostscript.version_tuple(version) < minimum:
            return CommandOutcome('{"failed":true,"msg":"Ansible requires PowerShell ' + text + '"}\r\n', "", 1)
        too_old = hostscript.powershell_too_old(version)  # host_request.ps1's own first check
        if too_old:
            return self._module_exit({"failed": True, "msg": too_old}, invocation)
        failure = injected_failure(self.faults, host_name, request)
        if failure is not None:
            return self._module_exit({"changed": True, "response": json.dumps(failure, sort_keys=True)}, invocation)
        with self.host_lock(host_name):
            response, executed = windows.primitives.run_request(machine, request, secret_values, self.store.transaction)
        self.record_operations(host_name, executed)
        return self._module_exit(
            {"changed": request.get("kind") == "apply", "response": json.dumps(response, sort_keys=True)}, invocation
        )

    @staticmethod
    def _module_exit(result: dict, invocation) -> CommandOutcome:
        """As Ansible.Basic's ExitJson/FailJson print it: the result and the invocation, no_log
        options masked."""
        shown = {k: v for k, v in invocation.args.items() if not k.startswith("_ansible_")}
        if "secrets" in shown:
            shown["secrets"] = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        return CommandOutcome(
            json.dumps({**result, "invocation": {"module_args": shown}}) + "\r\n", "", 1 if result.get("failed") else 0
        )

    def runas(self, host_name: str, logon, become: dict) -> tuple[object, str | None]:
        """Ansible's runas become on a lab host: LogonUser with the account's password. The logon
        type decides whether the new token holds network credentials (the double hop)."""
        estate = self.estate
        user = str(become.get("user") or "")
        wanted = user.split("\\")[-1].split("@")[0].lower()
        if wanted in ("system", "nt authority\\system", "localsystem"):
            # SYSTEM reaches the network as the computer account, not as the lab's admin.
            return LogonInfo(f"runas:{become.get('logon_type')}", "NT AUTHORITY\\SYSTEM", False), None
        if not logon_user(estate, user, str(become.get("password") or "")):
            return logon, (
                f"Failed to become user {user}: LogonUser failed (The user name or password is incorrect, "
                "Win32ErrorCode 1326 - 0x0000052E)"
            )
        logon_type = str(become.get("logon_type") or "Interactive")
        return LogonInfo(f"runas:{logon_type}", estate.account, logon_type in RUNAS_DELEGATING), None

    def record_request(
        self,
        host_name: str,
        request: dict,
        via: str,
        logon=None,
        become: dict | None = None,
        check_mode: bool | None = None,
    ) -> None:
        """One line per lync2fa request in the lab's request log (``requests.jsonl``): how it came
        (lync2fa's session loop or host script, or Ansible's exec wrapper) and under which logon."""
        if not self.oplog:
            return
        entry = {
            "host": host_name,
            "kind": request.get("kind"),
            "via": via,
            "logon": logon.as_dict() if logon is not None else None,
            "become": None if become is None else {k: v for k, v in become.items() if k != "password"},
            "check_mode": check_mode,
        }
        with self._locks_guard, self.oplog.with_name(REQUEST_LOG).open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True) + "\n")

    def open_session(self, host: str, command: str, arguments: list[str], logon=None) -> LabSession | None:
        """A long-lived lync2fa PowerShell process (hostscript.SESSION_LOOP), or None for a plain command."""
        words = [command, *arguments]
        lowered = [w.lower() for w in words]
        if "-encodedcommand" not in lowered:
            return None
        encoded = words[lowered.index("-encodedcommand") + 1]
        try:
            script = base64.b64decode(encoded).decode("utf-16-le")
        except ValueError:
            return None
        if script != hostscript.SESSION_LOOP:
            return None
        return LabSession(self, self.machine(host, logon), logon)

    def machine(self, host: str, logon=None):
        """A new powershell.exe on ``host``: it pays the start (and each first import) of the
        lab's cost profile, and the counters see it."""
        cost = costs.profile(self.store)
        counters = self.counters

        def imported(module: str) -> None:
            costs.pay(cost["imports_s"].get(module, 0.0))
            if counters:
                counters.imported(host)

        costs.pay(cost["process_start_s"])
        if counters:
            counters.process_started(host)
        return windows.Machine(
            self.store,
            self.estate,
            self.estate.host(host),
            delegated=True if logon is None else bool(logon.delegated),
            network_logon=True,  # every WinRM session is a network logon
            on_import=imported,
        )

    def record_operations(self, host_name: str, executed: list[dict]) -> None:
        self.operations.setdefault(host_name, []).extend(executed)
        if self.oplog and executed:
            with self._locks_guard, self.oplog.open("a", encoding="utf-8") as log:
                for operation in executed:
                    log.write(json.dumps({"host": host_name, "operation": operation}, sort_keys=True) + "\n")

    def host_lock(self, host_name: str):
        """Scripts on one host run one at a time here; hosts run concurrently (issue 12 item 17)."""
        with self._locks_guard:
            return self._host_locks.setdefault(host_name, threading.Lock())


def injected_failure(faults: FaultBook, host: str, request: dict) -> dict | None:
    """The answer of an apply whose groups include a task with a ``fail_tasks`` lab fault: that
    task's first operation fails, as a script that throws half-way; nothing is executed."""
    failing = set(faults.get(host).fail_tasks)
    groups = request.get("groups") or []
    if request.get("kind") != "apply" or not failing & {g["id"] for g in groups}:
        return None
    return {
        "lync2fa": 1,
        "groups": [
            {
                "id": g["id"],
                "skipped": False,
                "operations": [{"ok": False, "error": {"message": f"{g['id']}: injected failure (lab fault)"}}]
                if g["id"] in failing
                else [],
            }
            for g in groups
        ],
    }


class LabSession:
    """One simulated powershell.exe running the session loop: each complete stdin line is a
    request, answered with one line on stdout; imported modules stay loaded for the process."""

    def __init__(self, dispatcher: Dispatcher, machine, logon=None):
        self.dispatcher, self.machine, self.logon = dispatcher, machine, logon
        self.pending = bytearray()
        self.library_loaded = False
        # The loop's first check: below Windows PowerShell 5.1 every request gets this failure.
        self.too_old = hostscript.powershell_too_old(machine.props.get("powershell_version", "5.1"))

    def feed(self, data: bytes) -> tuple[str, str, int | None]:
        """(stdout, stderr, exit code when the process ended) for the lines complete so far."""
        self.pending += data
        out = []
        while b"\n" in self.pending:
            line, _, rest = bytes(self.pending).partition(b"\n")
            self.pending = bytearray(rest)
            out.append(self._answer(line.decode("utf-8")))
        return "".join(out), "", None

    def _answer(self, line: str) -> str:
        if self.too_old:
            return json.dumps({"lync2fa": 1, "failed": True, "error": {"message": self.too_old}}) + "\r\n"
        host = self.machine.name
        try:
            request, secrets, self.library_loaded = hostscript.parse_frame(line, self.library_loaded)
        except (hostscript.HostScriptError, ValueError) as exc:
            return json.dumps({"lync2fa": 1, "failed": True, "error": {"message": str(exc)}}) + "\r\n"
        dispatcher = self.dispatcher
        dispatcher.log.append((host, request.get("kind"), None))
        dispatcher.record_request(host, request, "lync2fa session loop", self.logon)
        answer = injected_failure(dispatcher.faults, host, request)
        if answer is not None:
            return json.dumps(answer, sort_keys=True) + "\r\n"
        with dispatcher.host_lock(host):
            response, executed = windows.primitives.run_request(
                self.machine, request, secrets, dispatcher.store.transaction
            )
        dispatcher.record_operations(host, executed)
        return json.dumps(response, sort_keys=True) + "\r\n"
