"""A WS-Management / WinRS server that simulates a whole Windows estate from one process.

Every simulated host is one TCP endpoint on 127.0.0.1 that speaks enough WS-Management for
unmodified pywinrm, pypsrp (``WinRS``/``Process``) and ansible-core's ``winrm`` connection:
Create, Command, Send, Receive, Signal and Delete on the ``windows/shell/cmd`` resource.
Commands are not run; they are handed to an :data:`Executor` callback that returns the output.

Design
------
* **One accept loop for all endpoints.** All listening sockets are registered with one
  ``selectors`` selector served by a single thread, so 2,000+ idle endpoints cost file
  descriptors, not threads. Each accepted connection gets its own handler thread that runs a
  ``BaseHTTPRequestHandler`` (HTTP/1.1 keep-alive). One handler instance per TCP connection is
  exactly what NTLM needs: it authenticates the connection, not single requests.
* **Auth.** Basic (checked on every request; local accounts only, as on Windows), NTLM via
  pyspnego's pure-Python acceptor, and CredSSP (as with ``Enable-WSManCredSSP -Role Server``) via
  pyspnego's CredSSP acceptor: a TLS handshake inside ``Authorization: CredSSP`` headers (TLS 1.2
  at most, with the service's own self-signed RSA certificate, see
  :func:`lync2fa.lab.tls.credssp_certificate`), SPNEGO/NTLM inside it, then the client's
  TSCredentials, which must be the account's own password.
  pyspnego looks NTLM credentials up in the file named by the process-global ``NTLM_USER_FILE``
  env var, so the variable is set, under a process-wide lock, right before every acceptor
  step; several servers with different credentials can then live in one process.
* **Logons** (:class:`lync2fa.lab.logon.LogonInfo`): every shell records how its session
  authenticated and whether it holds network credentials (CredSSP: yes; NTLM, Basic: no) and
  the executor gets it with every command, so the lab can fail what leaves the host as Windows
  does (the double hop). :meth:`WSManServer.request_log` keeps how each request authenticated.
* **Message encryption** (MS-WSMV 2.2.9.1, ``multipart/encrypted``): NTLM-sealed (SPNEGO) and
  CredSSP (TLS records, ``multipart/x-multi-encrypted`` in 16 KiB chunks beyond 16 KiB) requests
  are unwrapped, and responses are wrapped whenever the request was; plain SOAP after an NTLM
  handshake (``message_encryption='never'``) works as well.
* **HTTPS.** When an ``ssl.SSLContext`` is given, accepted sockets are wrapped (and the TLS
  handshake done) in the handler thread. pywinrm/pypsrp send NTLM channel bindings (CBT) over
  HTTPS; pyspnego's acceptor only checks bindings when it is given some, and it is not, so CBT
  is accepted but not verified (like ``CbtHardeningLevel=None`` on Windows).
* **Commands** run at the first Receive, once, with all stdin that arrived by then, as
  ``executor(host, command, arguments, stdin, logon=shell_logon)``. All output
  comes back in one ``ReceiveResponse`` with ``CommandState/Done``. stderr is rendered as
  PowerShell CLIXML, and both streams are encoded with the shell's ``WINRS_CODEPAGE``.
* **Faults** (:class:`Faults`) are looked up on every request, so tests can flip them live.
"""

from __future__ import annotations

import base64
import codecs
import collections
import errno
import hmac
import http.server
import logging
import os
import re
import resource
import selectors
import socket
import ssl
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape

import spnego
from spnego.tls import CredSSPTLSContext, default_tls_context

from . import tls as lab_tls
from .logon import LogonInfo

__all__ = ["CommandOutcome", "Executor", "Faults", "LogonInfo", "WSManServer"]

log = logging.getLogger(__name__)

# Namespaces (prefixes as Windows uses them in responses).
NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_X = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_F = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
CMD_URI = NS_RSP + "/cmd"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
DONE = NS_RSP + "/CommandState/Done"
RUNNING = NS_RSP + "/CommandState/Running"

ACTIONS = {
    NS_X + "/Create": "Create",
    NS_RSP + "/Command": "Command",
    NS_RSP + "/Send": "Send",
    NS_RSP + "/Receive": "Receive",
    NS_RSP + "/Signal": "Signal",
    NS_X + "/Delete": "Delete",
}

CODE_OPERATION_TIMEOUT = 2150858793
CODE_SHELL_NOT_FOUND = 2150858843

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
ENC_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
ENC_BOUNDARY = b"--Encrypted Boundary"
ENC_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENC_PROTOCOL}";boundary="Encrypted Boundary"'
ENCRYPTED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")
OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
CREDSSP_CHUNK = 16384  # a TLS record's plaintext at most: bigger CredSSP messages go in several parts
# The message protocol each connection-authenticating scheme encrypts with.
SEAL_PROTOCOL = {"ntlm": ENC_PROTOCOL, "credssp": CREDSSP_PROTOCOL}

# NTLM_USER_FILE is process-global; hold this lock while an acceptor may read it.
_NTLM_ENV_LOCK = threading.Lock()


@dataclass
class Faults:
    """Faults injected into one host; read on every request."""

    latency_s: float = 0.0  # sleep before answering each request
    drop: bool = False  # close the TCP connection without any response
    http_status: int | None = None  # answer every request with this HTTP status, empty body
    receive_timeouts: int = 0  # per command: OperationTimeout faults before the real output
    reject_auth: bool = False  # always 401, as if credentials were wrong
    # A command that never answers: every Receive is held for the OperationTimeout the client asked
    # for (as Windows holds it while a command writes nothing) and then answered with the WinRM
    # OperationTimeout fault, forever; the command's input is never run.
    hang_receive: bool = False
    # Per shell: after serving this many requests (Command, Send, Receive, Signal), the shell is
    # gone, as after a WinRM service restart: later requests on it get "shell not found"
    # (WinRM fault 2150858843). 0: shells are never lost.
    lose_shell_after: int = 0
    # Per shell: the request after this many is carried out, then the connection drops before its
    # answer (a network cut at the worst moment: the host did it, the client cannot know). 0: never.
    drop_reply_after: int = 0


@dataclass
class CommandOutcome:
    stdout: str
    stderr: str = ""  # plain text; rendered as CLIXML when non-empty, as PowerShell does
    exit_code: int = 0


Executor = Callable[..., CommandOutcome]
"""``executor(host, command, arguments, stdin, logon=LogonInfo) -> CommandOutcome``; called from
handler threads. ``logon`` is the shell's: how its session authenticated and whether it holds
network credentials (``logon.delegated``)."""


class CommandSession(Protocol):
    """A long-lived process from the executor's ``open_session`` (e.g. the lab's LabSession)."""

    def feed(self, data: bytes) -> tuple[str, str, int | None]:
        """(stdout, stderr, exit code once the process ended) for the stdin received so far."""
        ...


@dataclass
class _Command:
    id: str
    command: str
    arguments: list[str]
    console_mode_stdin: bool
    stdin: bytearray = field(default_factory=bytearray)
    stdin_ended: bool = False
    timeouts_sent: int = 0
    output: tuple[bytes, bytes, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    session: CommandSession | None = None  # a long-lived process answering stdin as it arrives


@dataclass
class _Shell:
    id: str
    host: str
    codepage: int
    owner: str
    logon: LogonInfo | None = None
    commands: dict[str, _Command] = field(default_factory=dict)
    served: int = 0  # requests served on this shell (for Faults.lose_shell_after)


class _WSManFault(Exception):
    """A SOAP fault to send back (HTTP 500)."""

    def __init__(self, value: str, subcode: str, reason: str, wsman_code: int | None = None):
        super().__init__(reason)
        self.value, self.subcode, self.reason, self.wsman_code = value, subcode, reason, wsman_code


@dataclass
class _Endpoint:
    host: str
    port: int
    wsman: WSManServer
    sock: socket.socket


# --------------------------------------------------------------------------- helpers


def split_command_line(text: str) -> list[str]:
    """Split a Windows command line on whitespace, keeping double-quoted runs together.

    WinRS joins Command and Arguments into one command line, so pywinrm's single space-joined
    ``Arguments`` element and pypsrp's one-element-per-argument end up as the same list.
    (Backslash escapes of CommandLineToArgvW are not modelled.)
    """
    return [tok.replace('"', "") for tok in re.findall(r'(?:[^\s"]|"[^"]*"?)+', text)]


def _codec(codepage: int) -> str:
    if codepage == 65001:
        return "utf-8"
    try:
        return codecs.lookup(f"cp{codepage}").name
    except LookupError:
        return "utf-8"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")


def render_clixml(text: str) -> str:
    """Render plain stderr text the way PowerShell serialises an error stream (CLIXML)."""
    parts = []
    for line in text.splitlines():
        body = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", escape(line))
        parts.append(f'<S S="Error">{body}_x000D__x000A_</S>')
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        + "".join(parts)
        + "</Objs>"
    )


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS_S}" xmlns:a="{NS_A}" xmlns:x="{NS_X}" '
        f'xmlns:w="{NS_W}" xmlns:rsp="{NS_RSP}" xmlns:p="{NS_P}">'
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_body(fault: _WSManFault, machine: str) -> str:
    detail = ""
    if fault.wsman_code is not None:
        detail = (
            f'<s:Detail><f:WSManFault xmlns:f="{NS_F}" Code="{fault.wsman_code}" Machine="{escape(machine)}">'
            f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail>"
        )
    return (
        f"<s:Fault><s:Code><s:Value>{fault.value}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f"{detail}</s:Fault>"
    )


def _shell_not_found(shell_id: str) -> _WSManFault:
    return _WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was "
        "not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no "
        "longer exists on the server. Provide the correct ShellId or create a new shell and retry the "
        "operation.",
        CODE_SHELL_NOT_FOUND,
    )


_DURATION = re.compile(r"^PT(\d+(?:\.\d*)?)S$", re.IGNORECASE)


def _operation_timeout(header: ET.Element, default: float = 60.0) -> float:
    """The request's ``w:OperationTimeout`` (``PT20.000S``) in seconds (pywinrm always sends one)."""
    match = _DURATION.match((header.findtext(f"{{{NS_W}}}OperationTimeout") or "").strip())
    return min(float(match.group(1)), 3600.0) if match else default


def _receive_response(cid: str, stdout: bytes, stderr: bytes, rc: int | None) -> str:
    """A ReceiveResponse carrying what the command wrote; ``rc`` None: still running, else Done
    with both streams ended and the exit code."""
    streams = "".join(
        f'<rsp:Stream Name="{name}" CommandId="{cid}">{_b64(data)}</rsp:Stream>'
        for name, data in (("stdout", stdout), ("stderr", stderr))
        if data
    )
    if rc is None:
        return f'<rsp:ReceiveResponse>{streams}<rsp:CommandState CommandId="{cid}" State="{RUNNING}"/></rsp:ReceiveResponse>'
    return (
        f"<rsp:ReceiveResponse>{streams}"
        f'<rsp:Stream Name="stdout" CommandId="{cid}" End="true"/>'
        f'<rsp:Stream Name="stderr" CommandId="{cid}" End="true"/>'
        f'<rsp:CommandState CommandId="{cid}" State="{DONE}"><rsp:ExitCode>{rc}</rsp:ExitCode>'
        f"</rsp:CommandState></rsp:ReceiveResponse>"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- server


class WSManServer:
    """Serve one WinRM endpoint per simulated host, all from one accept loop."""

    BIND_ADDRESS = "127.0.0.1"

    def __init__(
        self,
        endpoints: dict[str, int],
        executor: Executor,
        credentials: dict[str, str],
        state_dir: Path,
        tls: ssl.SSLContext | None = None,
        faults: Callable[[str], Faults] = lambda host: Faults(),
        rebind_busy_ports: bool = False,
        credssp: bool = True,
        on_request: Callable[[str, str], None] | None = None,
    ):
        """``rebind_busy_ports``: an endpoint whose port is taken gets a free one instead of
        failing the start (``start`` returns the ports actually bound). ``credssp``: the service
        accepts CredSSP (``Enable-WSManCredSSP -Role Server``), as lync2fa's rollout needs."""
        self._rebind_busy_ports = rebind_busy_ports
        for user, password in credentials.items():
            if any(c in s for s in (user, password) for c in ":\r\n"):
                raise ValueError(f"credential for {user!r}: ':' and line breaks cannot go into NTLM_USER_FILE")
        self._endpoint_ports = dict(endpoints)
        self._executor = executor
        self._credentials = dict(credentials)
        self._state_dir = Path(state_dir)
        self._tls = tls
        self._faults = faults
        self._user_file = self._state_dir / "ntlm_users"
        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._ops: dict[str, collections.deque[str]] = collections.defaultdict(lambda: collections.deque(maxlen=500))
        self._request_log: dict[str, collections.deque[dict]] = collections.defaultdict(
            lambda: collections.deque(maxlen=500)
        )
        self._credssp = credssp
        self._on_request = on_request  # (host, WS-Management action) for each SOAP request
        self._credssp_tls: CredSSPTLSContext | None = None
        self._requests = 0
        self._encrypted = 0
        self._accepted = 0
        self._endpoints: list[_Endpoint] = []
        self._connections: set[socket.socket] = set()
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> dict[str, int]:
        """Bind all endpoints, start the accept loop and return host -> bound port."""
        if self._thread is not None:
            raise RuntimeError("WSManServer already started")
        _raise_nofile_limit()
        self._write_user_file()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for host, port in self._endpoint_ports.items():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    try:
                        sock.bind((self.BIND_ADDRESS, port))
                    except OSError as exc:
                        if not (self._rebind_busy_ports and port and exc.errno == errno.EADDRINUSE):
                            raise
                        log.warning("port %d of %s is taken; using a free one", port, host)
                        sock.bind((self.BIND_ADDRESS, 0))
                    sock.listen(socket.SOMAXCONN)
                    sock.setblocking(False)
                except OSError:
                    sock.close()
                    raise
                ep = _Endpoint(host, sock.getsockname()[1], self, sock)
                self._endpoints.append(ep)
                self._selector.register(sock, selectors.EVENT_READ, ep)
        except BaseException:
            self._close_listeners()
            raise
        self._thread = threading.Thread(target=self._accept_loop, name="wsman-accept", daemon=True)
        self._thread.start()
        log.info("WSMan server listening on %d endpoints", len(self._endpoints))
        return self.ports

    def stop(self) -> None:
        """Stop accepting, close listening sockets and open connections. Idempotent."""
        if self._thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        if self._wake_w is None:  # start() makes it before it starts the thread
            raise RuntimeError("WSManServer.stop: the server was started without its wake-up socket")
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._close_listeners()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> WSManServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ports(self) -> dict[str, int]:
        return {ep.host: ep.port for ep in self._endpoints}

    @property
    def requests_served(self) -> int:
        """HTTP requests received so far (including 401 challenges and injected faults)."""
        return self._requests

    @property
    def encrypted_requests(self) -> int:
        """Requests that arrived NTLM-sealed (multipart/encrypted)."""
        return self._encrypted

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted on all endpoints."""
        return self._accepted

    def request_log(self, host: str) -> list[dict]:
        """How the last HTTP requests to ``host`` authenticated, oldest first: for each,
        ``status`` (HTTP), ``scheme`` (the Authorization header's scheme, None when the connection
        was authenticated earlier), ``auth``/``user``/``delegated`` (the logon the request ran
        under, None until authenticated) and ``encryption`` (the message protocol, e.g.
        ``application/HTTP-CredSSP-session-encrypted``, or None for plain SOAP)."""
        with self._lock:
            return list(self._request_log.get(host, ()))

    def operations(self, host: str) -> list[str]:
        """The last WinRS operations seen for ``host`` (e.g. ``['Create', 'Command', ...]``)."""
        with self._lock:
            return list(self._ops.get(host, ()))

    def _close_listeners(self) -> None:
        for ep in self._endpoints:
            if self._selector is not None:
                try:
                    self._selector.unregister(ep.sock)
                except (KeyError, ValueError):
                    pass
            ep.sock.close()
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        if self._selector is not None:
            self._selector.close()

    def _write_user_file(self) -> None:
        """Write Heimdal-style ``DOMAIN:USER:PASSWORD`` lines for pyspnego's NTLM acceptor.

        ``DOM\\user`` also gets a domain-less line, so NTLM (like Basic) accepts the bare name.
        """
        self._state_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for name, password in self._credentials.items():
            domain, _, user = name.rpartition("\\")
            lines.append(f"{domain}:{user}:{password}\n")
            if domain:
                lines.append(f":{user}:{password}\n")
        fd = os.open(self._user_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.writelines(lines)

    # ----------------------------------------------------------------- accept loop

    def _accept_loop(self) -> None:
        assert self._selector is not None
        while not self._stopping.is_set():
            try:
                events = self._selector.select()
            except OSError:
                break
            for key, _ in events:
                ep = key.data
                if ep is None:  # wake-up from stop()
                    continue
                self._accept_all(ep)

    def _accept_all(self, ep: _Endpoint) -> None:
        while True:
            try:
                conn, addr = ep.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: back off instead of spinning
                log.warning("accept failed on %s:%d: %s", ep.host, ep.port, exc)
                time.sleep(0.05)
                return
            conn.setblocking(True)
            self._accepted += 1  # only the accept thread writes this
            threading.Thread(
                target=self._serve_connection, args=(conn, addr, ep), name=f"wsman-{ep.host}", daemon=True
            ).start()

    def _serve_connection(self, conn: socket.socket, addr: tuple, ep: _Endpoint) -> None:
        with self._lock:
            self._connections.add(conn)
        try:
            if self._tls is not None:
                conn.settimeout(10)
                raw = conn
                conn = self._tls.wrap_socket(raw, server_side=True)  # handshake happens here
                with self._lock:
                    self._connections.discard(raw)
                    self._connections.add(conn)
            _Handler(conn, addr, ep)  # type: ignore[arg-type]  # socketserver only stores "server"; _Handler reads an _Endpoint
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection to %s from %s ended: %s", ep.host, addr, exc)
        except Exception:
            log.exception("handler for %s crashed", ep.host)
        finally:
            with self._lock:
                self._connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    # ----------------------------------------------------------------- auth

    def _check_basic(self, token: str, host: str) -> str | None:
        """The local account a valid Basic token names, else None (a 401).

        WinRM's Basic authentication logs on local accounts only: "You can supply UserName and
        Password for a domain account when using negotiate or Kerberos authentication, or for a
        local account with Basic authentication" (learn.microsoft.com/windows/win32/winrm/
        connectionoptions-username). So ``DOMAIN\\user`` and ``user@domain`` are refused whatever
        the password; ``user``, ``.\\user`` and ``HOST\\user`` name the host's own (local) accounts,
        the credentials without a domain part.
        """
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        domain, _, name = user.rpartition("\\")
        if "@" in name or domain.lower() not in ("", ".", host.lower()):
            return None
        for account, known in self._credentials.items():
            if "\\" not in account and account.lower() == name.lower():
                return account if hmac.compare_digest(password.encode(), known.encode()) else None
        return None

    def _check_password(self, domain: str, user: str, password: str) -> str | None:
        """The credential name for ``DOMAIN\\user`` (or a bare ``user``) with this password, else None."""
        account = self._account(domain, user)
        if account is not None and hmac.compare_digest(password.encode(), self._credentials[account].encode()):
            return account
        return None

    def _account(self, domain: str, user: str) -> str | None:
        """The credential name for ``DOMAIN\\user`` or a bare ``user`` (case-insensitive), else None."""
        for name in self._credentials:
            known_domain, _, known_user = name.rpartition("\\")
            if user.lower() == known_user.lower() and domain.lower() in ("", known_domain.lower()):
                return name
        return None

    def _principal_account(self, principal: str) -> str:
        """The credential name an acceptor's ``client_principal`` (``DOMAIN\\user``) stands for."""
        domain, _, user = (principal or "").rpartition("\\")
        return self._account(domain, user) or principal or ""

    def _credssp_context(self) -> CredSSPTLSContext:
        """The acceptor's TLS context (TLS 1.2 at most, as SChannel's CredSSP), made on first use."""
        with self._lock:
            if self._credssp_tls is None:
                pem, public_key = lab_tls.credssp_certificate(self._state_dir)
                ctx = default_tls_context(usage="accept")
                ctx.context.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.context.load_cert_chain(pem)
                ctx.public_key = public_key
                self._credssp_tls = ctx
            return self._credssp_tls

    def _credssp_step(self, ctx: spnego.ContextProxy | None, token: bytes) -> tuple[spnego.ContextProxy, bytes | None]:
        """Create (for a TLS ClientHello) or advance a CredSSP acceptor context.

        The inner authentication is SPNEGO with pyspnego's own Negotiate provider (NTLM, against
        ``NTLM_USER_FILE``), whatever GSSAPI libraries are installed: the lab has no KDC.
        """
        hello = token[:1] == b"\x16" and token[5:6] == b"\x01"
        tls_context = self._credssp_context() if ctx is None or hello else None
        with _NTLM_ENV_LOCK:
            os.environ["NTLM_USER_FILE"] = str(self._user_file)
            if tls_context is not None:
                inner = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate)
                ctx = spnego.server(
                    protocol="credssp", credssp_tls_context=tls_context, credssp_negotiate_context=inner
                )
            if ctx is None:  # cannot happen: without a context, tls_context was made above
                raise RuntimeError("CredSSP: no acceptor context to advance")
            return ctx, ctx.step(token)

    def _ntlm_step(self, ctx: spnego.ContextProxy | None, token: bytes) -> tuple[spnego.ContextProxy, bytes | None]:
        """Create (for a NEGOTIATE message) or advance an NTLM acceptor context."""
        with _NTLM_ENV_LOCK:
            os.environ["NTLM_USER_FILE"] = str(self._user_file)
            if ctx is None or token[8:9] == b"\x01":
                ctx = spnego.server(protocol="ntlm")
            return ctx, ctx.step(token)

    # ----------------------------------------------------------------- WinRS

    def _dispatch(self, host: str, port: int, logon: LogonInfo, payload: bytes) -> tuple[int | None, bytes]:
        """Handle one SOAP request; return (HTTP status, response envelope); status None: drop the
        connection without an answer (an injected fault)."""
        try:
            root = ET.fromstring(payload)
        except ET.ParseError:
            fault = _WSManFault("s:Sender", "w:SchemaValidationError", "The SOAP XML in the message is invalid.")
            return 500, _envelope(FAULT_ACTION, "", _fault_body(fault, host))
        header = root.find(f"{{{NS_S}}}Header")
        header = header if header is not None else ET.Element("h")
        body = root.find(f"{{{NS_S}}}Body")
        body = body if body is not None else ET.Element("b")
        action = (header.findtext(f"{{{NS_A}}}Action") or "").strip()
        message_id = (header.findtext(f"{{{NS_A}}}MessageID") or "").strip()
        op = ACTIONS.get(action)
        with self._lock:
            self._ops[host].append(op or action)
        if self._on_request is not None:
            self._on_request(host, op or action)
        try:
            resource_uri = (header.findtext(f"{{{NS_W}}}ResourceURI") or "").strip()
            if op is None or resource_uri != CMD_URI:
                raise _WSManFault(
                    "s:Sender", "a:ActionNotSupported", f"Action {action!r} on {resource_uri!r} is not supported."
                )
            options = {o.get("Name"): (o.text or "").strip() for o in header.iter(f"{{{NS_W}}}Option")}
            if op == "Create":
                result = self._create(host, port, logon, options, body)
            else:
                shell = self._find_shell(host, header)
                drop_reply = op != "Delete" and self._injected_shell_faults(host, shell, op, header)
                result = getattr(self, f"_{op.lower()}")(shell, options, body)
                if drop_reply:
                    return None, b""
        except _WSManFault as fault:
            return 500, _envelope(FAULT_ACTION, message_id, _fault_body(fault, host))
        return 200, _envelope(action + "Response", message_id, result)

    def _find_shell(self, host: str, header: ET.Element) -> _Shell:
        shell_id = ""
        for sel in header.iter(f"{{{NS_W}}}Selector"):
            if sel.get("Name") == "ShellId":
                shell_id = (sel.text or "").strip()
        with self._lock:
            shell = self._shells.get(shell_id.upper())
        if shell is None or shell.host != host:
            raise _shell_not_found(shell_id)
        return shell

    def _injected_shell_faults(self, host: str, shell: _Shell, op: str, header: ET.Element) -> bool:
        """Faults.lose_shell_after and Faults.hang_receive (see :class:`Faults`); True when the
        request's answer is to be dropped (Faults.drop_reply_after)."""
        faults = self._faults(host)
        with self._lock:
            shell.served += 1
            served = shell.served
            lost = 0 < faults.lose_shell_after < served
            if lost:
                self._shells.pop(shell.id, None)
        if lost:
            raise _shell_not_found(shell.id)
        if op == "Receive" and faults.hang_receive:
            self._stopping.wait(_operation_timeout(header))
            raise _WSManFault(
                "s:Receiver",
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time specified "
                "in OperationTimeout.",
                CODE_OPERATION_TIMEOUT,
            )
        return 0 < faults.drop_reply_after and served == faults.drop_reply_after + 1

    @staticmethod
    def _find_command(shell: _Shell, command_id: str | None) -> _Command:
        cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise _WSManFault(
                "s:Sender", "w:InvalidParameter", f"The command {command_id} was not found in shell {shell.id}."
            )
        return cmd

    def _create(self, host: str, port: int, logon: LogonInfo, options: dict, body: ET.Element) -> str:
        req = body.find(f"{{{NS_RSP}}}Shell")
        req = req if req is not None else ET.Element("s")
        try:
            codepage = int(options.get("WINRS_CODEPAGE") or 437)
        except ValueError:
            codepage = 437
        owner = logon.user
        shell = _Shell((req.get("ShellId") or str(uuid.uuid4())).upper(), host, codepage, owner, logon)
        with self._lock:
            self._shells[shell.id] = shell
        inputs = req.findtext(f"{{{NS_RSP}}}InputStreams") or "stdin"
        outputs = req.findtext(f"{{{NS_RSP}}}OutputStreams") or "stdout stderr"
        scheme = "https" if self._tls is not None else "http"
        return (
            f"<x:ResourceCreated><a:Address>{scheme}://{self.BIND_ADDRESS}:{port}/wsman</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{CMD_URI}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f"</x:ResourceCreated>"
            f'<rsp:Shell xmlns:rsp="{NS_RSP}"><rsp:ShellId>{shell.id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{CMD_URI}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
            f"<rsp:ClientIP>{self.BIND_ADDRESS}</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(inputs)}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{escape(outputs)}</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            f"</rsp:Shell>"
        )

    def _command(self, shell: _Shell, options: dict, body: ET.Element) -> str:
        line = body.find(f"{{{NS_RSP}}}CommandLine")
        if line is None:
            raise _WSManFault("s:Sender", "w:InvalidParameter", "The Command request has no CommandLine.")
        args = " ".join((a.text or "") for a in line.findall(f"{{{NS_RSP}}}Arguments"))
        cmd = _Command(
            id=(line.get("CommandId") or str(uuid.uuid4())).upper(),
            command=(line.findtext(f"{{{NS_RSP}}}Command") or "").strip(),
            arguments=split_command_line(args),
            console_mode_stdin=options.get("WINRS_CONSOLEMODE_STDIN", "TRUE").upper() != "FALSE",
        )
        opener = getattr(self._executor, "open_session", None)
        if opener is not None:
            cmd.session = opener(shell.host, cmd.command, list(cmd.arguments), logon=shell.logon)
        with self._lock:
            shell.commands[cmd.id] = cmd
        return f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, shell: _Shell, options: dict, body: ET.Element) -> str:
        for stream in body.iter(f"{{{NS_RSP}}}Stream"):
            if stream.get("Name", "stdin") != "stdin":
                continue
            cmd = self._find_command(shell, stream.get("CommandId"))
            with cmd.lock:
                if cmd.stdin_ended or cmd.output is not None:
                    raise _WSManFault("s:Sender", "w:InvalidParameter", "The stdin stream is already closed.")
                cmd.stdin += base64.b64decode(stream.text or "")
                cmd.stdin_ended = stream.get("End", "false").lower() == "true"
        return "<rsp:SendResponse/>"

    def _receive(self, shell: _Shell, options: dict, body: ET.Element) -> str:
        desired = body.find(f"{{{NS_RSP}}}Receive/{{{NS_RSP}}}DesiredStream")
        cmd = self._find_command(shell, desired.get("CommandId") if desired is not None else None)
        with cmd.lock:
            if cmd.timeouts_sent < self._faults(shell.host).receive_timeouts:
                cmd.timeouts_sent += 1
                raise _WSManFault(
                    "s:Receiver",
                    "w:TimedOut",
                    "The WS-Management service cannot complete the operation within the time specified in "
                    "OperationTimeout.",
                    CODE_OPERATION_TIMEOUT,
                )
            if cmd.session is not None and cmd.output is None:
                return self._receive_session(shell, cmd, cmd.session)
            output = cmd.output
            first = output is None
            if output is None:
                output = cmd.output = self._execute(shell, cmd)
        stdout, stderr, rc = output if first else (b"", b"", output[2])
        return _receive_response(cmd.id, stdout, stderr, rc)

    def _receive_session(self, shell: _Shell, cmd: _Command, session: CommandSession) -> str:
        """A running process (``session``, the command's): what it wrote for the stdin received so
        far; Done once stdin ended (or the process died)."""
        data, cmd.stdin = bytes(cmd.stdin), bytearray()
        stdout, stderr, rc = session.feed(data)
        if rc is None and cmd.stdin_ended:
            rc = 0
        enc = _codec(shell.codepage)
        if stderr and not stderr.startswith("#< CLIXML"):
            stderr = render_clixml(stderr)
        out, err = stdout.encode(enc, errors="replace"), stderr.encode(enc, errors="replace")
        if rc is not None:
            cmd.output = (b"", b"", rc)
        return _receive_response(cmd.id, out, err, rc)

    def _execute(self, shell: _Shell, cmd: _Command) -> tuple[bytes, bytes, int]:
        """Run the executor once; its exceptions become exit code 1 with the text on stderr."""
        try:
            outcome = self._executor(shell.host, cmd.command, list(cmd.arguments), bytes(cmd.stdin), logon=shell.logon)
            stdout, stderr, rc = outcome.stdout, outcome.stderr, int(outcome.exit_code)
        except Exception as exc:
            log.warning("executor failed on %s: %s: %s", shell.host, type(exc).__name__, exc)
            stdout, stderr, rc = "", f"{type(exc).__name__}: {exc}", 1
        if stderr and not stderr.startswith("#< CLIXML"):
            stderr = render_clixml(stderr)
        enc = _codec(shell.codepage)
        return stdout.encode(enc, errors="replace"), stderr.encode(enc, errors="replace"), rc

    def _signal(self, shell: _Shell, options: dict, body: ET.Element) -> str:
        sig = body.find(f"{{{NS_RSP}}}Signal")
        if sig is not None:
            with self._lock:
                shell.commands.pop((sig.get("CommandId") or "").upper(), None)
        return "<rsp:SignalResponse/>"

    def _delete(self, shell: _Shell, options: dict, body: ET.Element) -> str:
        with self._lock:
            self._shells.pop(shell.id, None)
        return ""


def _raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise RLIMIT_NOFILE from %d to %d: %s", soft, hard, exc)


# --------------------------------------------------------------------------- HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    """One instance per TCP connection; carries that connection's NTLM or CredSSP context.

    NTLM and CredSSP authenticate the connection: later requests on it carry no Authorization
    header and run under the logon made by the handshake. Basic is checked on every request.
    """

    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Endpoint  # type: ignore[assignment]

    def setup(self) -> None:
        super().setup()
        self.ctx: spnego.ContextProxy | None = None  # the connection's NTLM or CredSSP acceptor
        self.ctx_kind = ""  # "ntlm" | "credssp"
        self.conn_logon: LogonInfo | None = None  # the connection's logon once NTLM/CredSSP completed
        self.logon: LogonInfo | None = None  # the current request's logon
        self._scheme: str | None = None  # the current request's Authorization scheme
        self._encryption: str | None = None  # the current request's message protocol

    @property
    def user(self) -> str:
        return self.logon.user if self.logon else ""

    def version_string(self) -> str:
        return "Microsoft-HTTPAPI/2.0"

    def log_message(self, format: str, *args: object) -> None:
        # The request line and status only; never headers (Authorization) or bodies.
        log.debug("%s %s", self.server.host, format % args)

    def do_POST(self) -> None:
        ep = self.server
        wsman = ep.wsman
        with wsman._lock:
            wsman._requests += 1
        self.logon, self._encryption = None, None
        self._scheme = self.headers.get("Authorization", "").strip().partition(" ")[0].lower() or None
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        faults = wsman._faults(ep.host)
        if faults.latency_s > 0:
            time.sleep(faults.latency_s)
        if faults.drop:
            self.close_connection = True
            return
        if faults.http_status is not None:
            self._reply(faults.http_status)
            return
        if faults.reject_auth:
            self._unauthorized()
            return
        if not self._authenticate():
            return

        content_type = self.headers.get("Content-Type", "")
        encrypted = content_type.lower().startswith(ENCRYPTED_TYPES)
        if encrypted:
            protocol = SEAL_PROTOCOL.get(self.ctx_kind) if self.logon is self.conn_logon else None
            self._encryption = protocol
            try:
                if protocol is None or f'protocol="{protocol}"'.lower() not in content_type.lower():
                    raise ValueError(f"{content_type!r} does not match the connection's {self.ctx_kind or 'auth'}")
                body = self._unwrap(body)
            except Exception as exc:  # bad framing or signature, or the wrong protocol
                log.info("could not decrypt a request for %s: %s", ep.host, exc)
                self._reply(400)
                return
            with wsman._lock:
                wsman._encrypted += 1
        if not body.strip():  # e.g. the blank POST that sets up message encryption
            self._reply(200)
            return
        if self.logon is None:  # _authenticate returned True, so it set the request's logon
            raise RuntimeError(f"WSMan {ep.host}: a request authenticated without a logon")
        status, payload = wsman._dispatch(ep.host, ep.port, self.logon, body)
        if status is None:  # Faults.drop_reply_after: done, but the answer never leaves
            self.close_connection = True
            return
        if encrypted:
            sealed, sealed_type = self._wrap(payload)
            self._reply(status, sealed, sealed_type)
        else:
            self._reply(status, payload, SOAP_CONTENT_TYPE)

    def _reply(self, status: int, body: bytes = b"", content_type: str | None = None, headers=()) -> None:
        wsman = self.server.wsman
        logon = self.logon
        with wsman._lock:
            wsman._request_log[self.server.host].append(
                {
                    "status": status,
                    "scheme": self._scheme,
                    "encryption": self._encryption,
                    "auth": logon.auth if logon else None,
                    "user": logon.user if logon else None,
                    "delegated": logon.delegated if logon else None,
                }
            )
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _unauthorized(self, headers=()) -> None:
        offered = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", 'Basic realm="WSMAN"')]
        if self.server.wsman._credssp:
            offered.append(("WWW-Authenticate", "CredSSP"))
        self._reply(401, headers=list(headers) or offered)

    def _forget(self) -> None:
        self.ctx, self.ctx_kind, self.conn_logon = None, "", None

    def _authenticate(self) -> bool:
        """Check the request's credentials; on False a 401 has already been sent."""
        wsman = self.server.wsman
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            user = wsman._check_basic(token.strip(), self.server.host)
            if user is not None:
                # Basic: a cleartext network logon; the session holds no network credentials.
                self.logon = LogonInfo("basic", user, delegated=False)
                return True
        elif scheme in ("negotiate", "ntlm"):
            try:
                raw = base64.b64decode(token.strip())
                ctx = self.ctx if self.ctx_kind == "ntlm" else None
                self.ctx, out = wsman._ntlm_step(ctx, raw)
                self.ctx_kind, self.conn_logon = "ntlm", None
            except Exception as exc:  # wrong password, unknown user, malformed token
                log.info("NTLM authentication to %s failed: %s", self.server.host, type(exc).__name__)
                self._forget()
            else:
                if self.ctx.complete:
                    user = wsman._principal_account(self.ctx.client_principal or "")
                    self.conn_logon = self.logon = LogonInfo("ntlm", user, delegated=False)
                    return True
                label = "NTLM" if scheme == "ntlm" else "Negotiate"
                self._reply(401, headers=[("WWW-Authenticate", f"{label} {_b64(out or b'')}")])
                return False
        elif scheme == "credssp" and wsman._credssp:
            return self._authenticate_credssp(token.strip())
        elif not scheme and self.conn_logon is not None:
            self.logon = self.conn_logon  # NTLM or CredSSP authenticated this connection earlier
            return True
        self._unauthorized()
        return False

    def _authenticate_credssp(self, token: str) -> bool:
        """One CredSSP leg: TLS handshake, SPNEGO/NTLM inside it, then the delegated credentials."""
        wsman = self.server.wsman
        try:
            raw = base64.b64decode(token)
            # ctx_kind is set only together with ctx (and _forget clears both)
            ctx = self.ctx if self.ctx is not None and self.ctx_kind == "credssp" and not self.ctx.complete else None
            self.ctx, out = wsman._credssp_step(ctx, raw)
            self.ctx_kind, self.conn_logon = "credssp", None
        except Exception as exc:  # TLS failure, bad token, public key mismatch
            log.info("CredSSP authentication to %s failed: %s: %s", self.server.host, type(exc).__name__, exc)
            self._forget()
            self._unauthorized()
            return False
        if self.ctx.complete:
            account = self._delegated_account()
            if account is None:
                self._forget()
                self._unauthorized()
                return False
            self.conn_logon = self.logon = LogonInfo("credssp", account, delegated=True)
            return True
        stage = self.ctx.get_extra_info("auth_stage", "")
        if stage == "Authentication failure" or not out:
            # The inner NTLM refused the password: the error TSRequest goes back (CredSSP 3+).
            log.info("CredSSP authentication to %s failed at %s", self.server.host, stage or "an empty step")
            self._forget()
        self._reply(401, headers=[("WWW-Authenticate", f"CredSSP {_b64(out or b'')}")] if out else ())
        return False

    def _delegated_account(self) -> str | None:
        """The account whose password the client delegated (TSCredentials), if it is the account
        that authenticated and the password is right; else None (Windows: the logon fails)."""
        wsman = self.server.wsman
        if self.ctx is None:  # only called once the CredSSP context completed
            raise RuntimeError("CredSSP: no context to read the delegated credentials from")
        creds = self.ctx.get_extra_info("client_credential")
        if not all(hasattr(creds, a) for a in ("domain_name", "username", "password")):
            log.info("CredSSP to %s: no password credentials delegated", self.server.host)
            return None
        account = wsman._check_password(creds.domain_name or "", creds.username or "", creds.password or "")
        authenticated = wsman._principal_account(self.ctx.client_principal or "")
        if account is None or account != authenticated:
            log.info("CredSSP to %s: the delegated credentials are not the authenticated account's", self.server.host)
            return None
        return account

    def _unwrap(self, body: bytes) -> bytes:
        """Decrypt an MS-WSMV ``multipart/encrypted`` body (one or more sealed parts).

        NTLM parts are cut by the declared plaintext Length (RC4 keeps sizes), not by searching
        for the boundary, which could in theory occur inside ciphertext; CredSSP parts are TLS
        records, which carry their own lengths.
        """
        if self.ctx is None or not self.ctx.complete:
            raise ValueError("no authenticated context on this connection")
        plain, pos = [], 0
        while (i := body.find(b"Length=", pos)) >= 0:
            j = body.index(b"\r\n", i)
            length = int(body[i + 7 : j])
            k = body.index(OCTET_STREAM, j) + len(OCTET_STREAM)
            (head_len,) = struct.unpack_from("<I", body, k)  # NTLM: signature length; CredSSP: TLS trailer
            start = k + 4
            end = _tls_records_end(body, start) if self.ctx_kind == "credssp" else start + head_len + length
            data = self.ctx.unwrap(body[start:end]).data
            if len(data) != length:
                raise ValueError(f"decrypted {len(data)} bytes, the part declared {length}")
            plain.append(data)
            pos = end
        if not plain:
            raise ValueError("no encrypted part found")
        return b"".join(plain)

    def _wrap(self, payload: bytes) -> tuple[bytes, str]:
        """Seal a response as the request was sealed; returns (body, Content-Type)."""
        if self.ctx is None:  # only called for a request _unwrap opened with this context
            raise ValueError("no authenticated context on this connection")
        protocol = SEAL_PROTOCOL[self.ctx_kind]
        if self.ctx_kind == "credssp":
            chunks = [payload[i : i + CREDSSP_CHUNK] for i in range(0, len(payload), CREDSSP_CHUNK)] or [b""]
            streams = []
            for chunk in chunks:
                sealed = self.ctx.wrap_winrm(chunk)  # header = the TLS trailer length's worth of record
                streams.append((len(chunk), struct.pack("<I", len(sealed.header)) + sealed.header + sealed.data))
            kind = "multipart/x-multi-encrypted" if len(chunks) > 1 else "multipart/encrypted"
        else:
            signed_sealed = self.ctx.wrap(payload, encrypt=True).data  # 16-byte signature + RC4-sealed data
            streams = [(len(payload), struct.pack("<I", 16) + signed_sealed)]
            kind = "multipart/encrypted"
        body = b"".join(
            ENC_BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n"
            % length
            + ENC_BOUNDARY
            + b"\r\n"
            + OCTET_STREAM
            + stream
            for length, stream in streams
        )
        return body + ENC_BOUNDARY + b"--\r\n", f'{kind};protocol="{protocol}";boundary="Encrypted Boundary"'


def _tls_records_end(body: bytes, pos: int) -> int:
    """The end of the TLS records starting at ``pos`` (each: type, version, 16-bit length)."""
    start = pos
    while pos + 5 <= len(body) and body[pos] in (20, 21, 22, 23) and not body.startswith(ENC_BOUNDARY, pos):
        pos += 5 + int.from_bytes(body[pos + 3 : pos + 5], "big")
    if pos == start or pos > len(body):
        raise ValueError("no complete TLS record in a CredSSP-encrypted part")
    return pos
