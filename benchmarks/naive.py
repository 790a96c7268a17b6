"""The baseline of issue 11: what people write by hand with pywinrm -- a new session per step.

    python benchmarks/naive.py -i lab/hosts.yml --forks 50 [--check]

For every step of the rollout (task x host, in dependency order, hosts concurrently) it opens a
new ``winrm.Protocol`` (a new HTTP session, so a new NTLM/CredSSP handshake), a new shell and a
new ``powershell.exe``, reads the step's facts, applies its operations, then does what
``winrm.Session.run_ps`` does at the end: Signal (terminate) and Delete. Each step therefore pays
a process start and its module imports on the host, and the handshake, every time.

To be comparable it makes the same decisions as lync2fa (the engine's tasks decide on the facts,
one step at a time) and speaks the lab's request protocol (the lab does not run arbitrary
PowerShell): only the session handling differs. No journal, no reports, no retries.
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import winrm

from lync2fa import api, execute, hostscript
from lync2fa.runner import phases, secret_values
from lync2fa.transport import SESSION_ARGS, UTF8_CODEPAGE, protocol_kwargs


class StepSession:
    """One step's session: Protocol, shell and PowerShell process opened on first request,
    Signal + Delete on close (pywinrm's run_ps)."""

    def __init__(self, settings):
        self.settings = settings
        self.protocol = None
        self.shell_id = self.command_id = None
        self.library_sent = False

    def request(
        self, request: dict, secrets: dict | None = None, deadline_s: float | None = None, idempotent: bool = False
    ) -> dict:
        if self.protocol is None:
            self.protocol = winrm.Protocol(**protocol_kwargs(self.settings))
            self.shell_id = self.protocol.open_shell(codepage=UTF8_CODEPAGE)
            self.command_id = self.protocol.run_command(
                self.shell_id, "PowerShell", SESSION_ARGS, console_mode_stdin=False
            )
        frame = hostscript.session_frame(request, secrets, with_library=not self.library_sent)
        for i in range(0, len(frame), 100_000):
            self.protocol.send_command_input(self.shell_id, self.command_id, frame[i : i + 100_000], end=False)
        self.library_sent = True
        out = bytearray()
        while b"\n" not in out:
            stdout, _stderr, code, done = self.protocol.get_command_output_raw(self.shell_id, self.command_id)
            out += stdout
            if done and b"\n" not in out:
                raise hostscript.HostScriptError(f"PowerShell ended with exit code {code}")
        return hostscript.parse_response(bytes(out).split(b"\n", 1)[0].decode("utf-8", "replace"))

    def close(self) -> None:
        if self.protocol is None:
            return
        try:
            self.protocol.cleanup_command(self.shell_id, self.command_id)
        finally:
            self.protocol.close_shell(self.shell_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--check", action="store_true", help="decide only, apply nothing")
    args = parser.parse_args()
    plan = api.plan(api.load_inventory(args.inventory))
    failed: set[tuple[str, str]] = set()
    counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
    lock = threading.Lock()

    def run_host(steps) -> None:
        for step in steps:
            blocked = any(
                (dep, s.host.name) in failed
                for dep in step.task.after
                for s in plan.steps_for(dep)
                if s.task.group != step.task.group or s.host.name == step.host.name
            )
            if blocked:
                with lock:
                    failed.add(step.key)
                    counts["skipped"] += 1
                continue
            session = StepSession(step.connection)
            try:
                outcome = execute.HostBatch(
                    session, args.check, secrets_of=secret_values, started=lambda pending: None
                ).run([step])[step.key]
                status = (
                    "failed"
                    if outcome.failed
                    else "skipped"
                    if outcome.skipped
                    else "changed"
                    if outcome.changed
                    else "ok"
                )
            except Exception as exc:  # noqa: BLE001 - a script would print and go on
                print(f"{step.host.name} {step.task.name}: {exc}", file=sys.stderr)
                status = "failed"
            finally:
                try:
                    session.close()
                except Exception:  # noqa: BLE001
                    pass
            with lock:
                counts[status] += 1
                if status in ("failed", "skipped"):
                    failed.add(step.key)

    with ThreadPoolExecutor(max_workers=args.forks) as pool:
        for tasks in phases(plan):
            by_host: dict[str, list] = {}
            for task in tasks:
                for step in plan.steps_for(task.name):
                    by_host.setdefault(step.host.name, []).append(step)
            list(pool.map(run_host, by_host.values()))
    print("naive: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
