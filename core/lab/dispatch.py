"""What a lab host does with a command: recognise the lync2fa script and apply its twin.

The lab does not run PowerShell. A command is either our stdin bootstrap (the script comes
on stdin), an ``-EncodedCommand`` script (``Session.run_ps``), or one of a few plain commands
(``hostname``, ``whoami``) so that Ansible ``raw`` tasks work.
"""
from __future__ import annotations

import base64
import json
import traceback
from dataclasses import dataclass, field

from ..script import ScriptContractError, read_input
from ..transport import BOOTSTRAP, SECRETS_SEPARATOR
from .estate import Estate
from .faults import FaultBook
from .state import EstateStore
from .twin import TwinContext, TwinFailure, failure
from .wsman import CommandOutcome


@dataclass
class Dispatcher:
    store: EstateStore
    estate: Estate
    twins: dict
    faults: FaultBook
    log: list = field(default_factory=list)   # (host, task, check_mode) per script, for tests

    def __call__(self, host: str, command: str, arguments: list[str], stdin: bytes) -> CommandOutcome:
        words = [command, *arguments]
        lowered = [w.lower() for w in words]
        if "-encodedcommand" in lowered:
            encoded = words[lowered.index("-encodedcommand") + 1]
            script, secrets = base64.b64decode(encoded).decode("utf-16-le"), ""
            if script.strip() == BOOTSTRAP.strip():   # as the bootstrap does: script, then secrets
                script, _, secrets = stdin.decode("utf-8-sig").partition(SECRETS_SEPARATOR)
            return self.run_script(host, script, secrets)
        text = " ".join(words).strip().lower()
        if text in ("hostname", "hostname.exe"):
            return CommandOutcome(self.estate.host(host).name.upper() + "\r\n")
        if text in ("whoami", "whoami.exe"):
            return CommandOutcome(self.estate.account.lower() + "\r\n")
        return CommandOutcome("", f"'{command}' is not recognized in the lync2fa lab.", 1)

    def run_script(self, host_name: str, script: str, secrets: str = "") -> CommandOutcome:
        try:
            task, document = read_input(script)
            if secrets.strip():   # as the base frame does: secrets merged into the parameters
                document["params"].update(json.loads(secrets))
        except (ScriptContractError, ValueError):
            return CommandOutcome("", "The lync2fa lab runs lync2fa resource scripts only.", 1)
        twin = self.twins.get(task)
        if twin is None:
            return CommandOutcome("", f"No lab twin implements {task}.", 1)
        check_mode = bool(document.get("check_mode"))
        self.log.append((host_name, task, check_mode))
        injected = self.faults.get(host_name)
        if task in injected.fail_tasks:
            # As a script that throws half-way: an error record, exit code 1, nothing kept.
            return CommandOutcome("", f"{task}: injected failure (lab fault)", 1)
        ctx = TwinContext(self.store, self.estate, self.estate.host(host_name), check_mode)
        try:
            with self.store.transaction(commit=not check_mode):
                if injected.ca_offline and task.startswith(("client.", "templates.")):
                    raise TwinFailure("The RPC server is unavailable. 0x800706ba (WIN32: 1722 RPC_S_SERVER_UNAVAILABLE)")
                result = twin(ctx, document["params"])
        except TwinFailure as exc:
            result = failure(str(exc), warnings=ctx.warnings)
        except Exception as exc:  # a twin bug: report it like a PowerShell exception
            result = failure(f"lab twin error: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        result["warnings"] = list(dict.fromkeys([*ctx.warnings, *result.get("warnings", [])]))
        return CommandOutcome(json.dumps(result, sort_keys=True) + "\r\n")
