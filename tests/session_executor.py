"""A WinRM executor for transport tests: it answers lync2fa's session loop like a host would
(one JSON answer per request line), without the Windows model, and records what arrived."""

from __future__ import annotations

import json

from lync2fa import hostscript
from lync2fa.lab.wsman import CommandOutcome


class EchoSession:
    def __init__(self, owner, host, logon):
        self.owner, self.host, self.logon = owner, host, logon
        self.pending, self.library = bytearray(), False

    def feed(self, data: bytes):
        self.pending += data
        out = []
        while b"\n" in self.pending:
            line, _, rest = bytes(self.pending).partition(b"\n")
            self.pending = bytearray(rest)
            request, secrets, self.library = hostscript.parse_frame(line.decode(), self.library)
            self.owner.requests.append((self.host, request, secrets, self.logon, len(line)))
            if request.get("kind") == "THROW":
                return "", "Something went wrong on the host", 1
            if request.get("kind") == "WARN":  # a console host writes a stray warning to stdout first
                out.append("WARNING: Windows automatic updating is not enabled.\r\n")
            facts = {name: {"ok": True, "value": {"line": len(line)}} for name in request.get("facts", {})}
            out.append(json.dumps({"lync2fa": 1, "facts": facts}) + "\r\n")
        return "".join(out), "", None


class EchoExecutor:
    """``executor(host, command, arguments, stdin, logon)`` for plain commands (their host name), and
    ``open_session`` for lync2fa's session loop."""

    def __init__(self) -> None:
        self.calls: list = []  # (host, command, logon) of every command
        self.requests: list = []  # (host, request, secrets, logon, line length) of every request
        self.sessions = 0

    def __call__(self, host, command, arguments, stdin, logon=None) -> CommandOutcome:
        self.calls.append((host, command, logon))
        if command == "big":
            return CommandOutcome("x" * 100_000 + "\r\n")
        return CommandOutcome(f"{host.upper()}\r\n")

    def open_session(self, host, command, arguments, logon=None):
        words = [w.lower() for w in arguments]
        if "-encodedcommand" not in words:
            return None
        self.calls.append((host, command, logon))
        self.sessions += 1
        return EchoSession(self, host, logon)


def facts(*names: str) -> dict:
    return hostscript.facts_request({n: {"kind": "host"} for n in names})
