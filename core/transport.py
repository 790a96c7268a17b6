"""WinRM transport: pywinrm, one shell and one long-lived PowerShell process per host.

The process runs ``hostscript.SESSION_LOOP`` (passed with ``-EncodedCommand``: WinRS limits a
command line to 8191 characters, the loop is small); each request is one line of JSON on its
stdin (the primitive library rides on the first) and each answer one line on its stdout. A no-op
host costs Create, Command, one Send, one Receive and Delete; deleting the shell ends the
process, so no Signal is sent.
"""

from __future__ import annotations

import base64
import logging
import threading
import time

import requests
import winrm
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from . import hostscript
from .connection import ConnectionSettings, missing_ca_bundle

log = logging.getLogger(__name__)

SESSION_ARGS = [
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    base64.b64encode(hostscript.SESSION_LOOP.encode("utf-16-le")).decode("ascii"),
]
STDIN_CHUNK = 100_000
UTF8_CODEPAGE = 65001
SHELL_NOT_FOUND = "2150858843"


# The client library a transport needs: pywinrm's extra of that name, which lync2fa's extra of that
# name installs. A message names pywinrm's (on the package index), never lync2fa's: lync2fa is on no
# index, and a bare name would fetch whatever a stranger registered under it.
EXTRAS = {"credssp": "pywinrm[credssp]", "kerberos": "pywinrm[kerberos]"}
try:  # CredSSP refusals come from requests-credssp's auth handler, not as HTTP 401 to pywinrm
    from requests_credssp.exceptions import AuthenticationException, NTStatusException

    CREDSSP_AUTH_ERRORS: tuple[type[Exception], ...] = (AuthenticationException, NTStatusException)
except ImportError:  # pragma: no cover - the credssp extra is not installed
    CREDSSP_AUTH_ERRORS = ()
# Authentication refusals, whichever library reports them.
AUTH_ERRORS: tuple[type[Exception], ...] = (InvalidCredentialsError, *CREDSSP_AUTH_ERRORS)


def protocol_kwargs(s: ConnectionSettings) -> dict:
    """The arguments of ``winrm.Protocol`` for a host, as Ansible's winrm connection passes them."""
    kwargs = dict(
        endpoint=s.endpoint,
        transport=s.transport,
        username=s.user,
        password=s.password,
        server_cert_validation=s.cert_validation,
        ca_trust_path=s.ca_trust_path or "legacy_requests",
        message_encryption=s.message_encryption,
        operation_timeout_sec=s.operation_timeout,
        read_timeout_sec=s.read_timeout,
        proxy=s.proxy,  # None: no proxy, and never one from the environment
    )
    if s.transport == "kerberos":
        # pywinrm's Kerberos uses the caller's ticket cache (kinit); delegation forwards the TGT.
        kwargs["kerberos_delegation"] = s.kerberos_delegation
        if s.kerberos_hostname_override:
            kwargs["kerberos_hostname_override"] = s.kerberos_hostname_override
    elif s.transport == "credssp":
        kwargs["credssp_disable_tlsv1_2"] = s.credssp_disable_tlsv1_2
    return kwargs


class Deadline(float):
    """Seconds a host has to answer a request, with how they were reckoned, which the "no answer"
    message shows: a host batch's requests get ``--step-timeout`` once per step ("4 steps × 5 s")."""

    reckoned: str

    def __new__(cls, seconds: float, reckoned: str) -> Deadline:
        deadline = super().__new__(cls, seconds)
        deadline.reckoned = reckoned
        return deadline


def no_answer(deadline_s: float) -> str:
    """The message "no answer in N s", with how N was reckoned when it was (a Deadline)."""
    reckoned = f" ({deadline_s.reckoned})" if isinstance(deadline_s, Deadline) else ""
    return f"no answer in {deadline_s:g} s{reckoned}"


class TransportError(Exception):
    """A host could not run a script: names the host, the operation and the cause.

    ``transient``: worth retrying; ``may_have_run``: the script may have started, so it is not
    re-sent (the next plan shows what it did); ``reachable``: the host answered.
    """

    def __init__(
        self,
        host: str,
        operation: str,
        cause: str,
        transient: bool = False,
        may_have_run: bool = False,
        reachable: bool = True,
    ):
        self.host, self.operation, self.cause = host, operation, cause
        self.transient, self.may_have_run, self.reachable = transient, may_have_run, reachable
        super().__init__(f"{host}: {operation} failed: {cause}")


class WinRMConnection:
    """One host's WinRM shell, opened on first use and reused until ``close``."""

    def __init__(self, settings: ConnectionSettings, retries: int = 2, backoff_s: float = 0.2):
        self.settings = settings
        self.retries = retries
        self.backoff_s = backoff_s
        self._protocol: winrm.Protocol | None = None
        self._shell_id: str | None = None
        self._lock = threading.Lock()
        self.round_trips = 0
        self._session_id: str | None = None  # the long-lived PowerShell process's command id
        self._library_sent = False

    # -- public -----------------------------------------------------------------------
    def request(
        self, request: dict, secrets: dict | None = None, deadline_s: float | None = None, idempotent: bool = False
    ) -> dict:
        """Send one request to the host's lync2fa process (started on first use, kept for the
        host's later requests) and return its JSON answer.

        The process is one powershell.exe running ``hostscript.SESSION_LOOP``: per request one Send
        and (usually) one Receive, no new process and no module import twice. ``idempotent``
        requests (fact reads) are retried on transient errors in a new process; an apply never is
        (it may have run). ``deadline_s``: give up on a host that does not answer in time.
        """
        with self._lock:
            attempt = 0
            while True:
                try:
                    return self._request_once(request, secrets, deadline_s)
                except TransportError as err:
                    self._reset(close=err.reachable)
                    if err.may_have_run and not idempotent:
                        raise TransportError(
                            err.host,
                            err.operation,
                            f"{err.cause}; the operations may have run (the next plan shows the state)",
                        ) from None
                    if not err.transient:
                        raise
                    if attempt >= self.retries:
                        raise TransportError(
                            err.host, err.operation, f"{err.cause} (after {attempt + 1} attempts)"
                        ) from None
                    time.sleep(self.backoff_s * (2**attempt))
                    attempt += 1

    def close(self) -> None:
        with self._lock:
            self._reset(close=True)

    # -- internals --------------------------------------------------------------------
    def _reset(self, close: bool) -> None:
        """Forget the shell; ``close`` first asks the host to delete it (best effort), so that
        abandoned shells do not count against the host's MaxShellsPerUser. Whatever closing raises
        (CredSSP's AuthenticationException too) is dropped, unlogged: it must not replace the error
        that made us close, e.g. an apply that may have run (issue 12 item 14)."""
        if close and self._protocol and self._shell_id:
            try:  # deleting the shell ends its process: no Signal needed
                self.round_trips += 1
                self._protocol.close_shell(self._shell_id)
            except Exception as exc:  # best effort, see above (its type only: the text may quote the request)
                log.debug("closing the shell on %s failed: %s", self.settings.host, type(exc).__name__)
        self._protocol, self._shell_id = None, None
        self._session_id, self._library_sent = None, False

    def _shell(self) -> tuple[winrm.Protocol, str]:
        if self._shell_id is None:
            missing = missing_ca_bundle(self.settings)
            if missing:  # requests would say only "OSError: Could not find a suitable TLS CA certificate bundle"
                raise TransportError(self.settings.host, "open shell", missing, reachable=False)
            self._protocol = winrm.Protocol(**protocol_kwargs(self.settings))
            # The proxy is what the inventory says (ansible_winrm_proxy; pywinrm got proxy=None
            # otherwise, so none), and requests must not look the environment up on every call.
            transport = self._protocol.transport
            # Building the session may already authenticate (message encryption): errors translated too.
            transport.session = self._translate("open shell", transport.build_session)
            transport.session.trust_env = False
            self._shell_id = self._call("open shell", self._protocol.open_shell, codepage=UTF8_CODEPAGE)
        assert self._protocol is not None, "a shell id comes with its protocol (set together, _reset clears both)"
        return self._protocol, self._shell_id

    def _request_once(self, request: dict, secrets: dict | None, deadline_s: float | None) -> dict:
        protocol, shell_id = self._shell()
        if self._session_id is None:
            self._session_id = self._call(
                "start PowerShell", protocol.run_command, shell_id, "PowerShell", SESSION_ARGS, console_mode_stdin=False
            )
        data = hostscript.session_frame(request, secrets, with_library=not self._library_sent)
        chunks = [data[i : i + STDIN_CHUNK] for i in range(0, len(data), STDIN_CHUNK)]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            # The process acts on a complete line: until the last chunk, nothing has run.
            self._call(
                "send request",
                protocol.send_command_input,
                shell_id,
                self._session_id,
                chunk,
                end=False,
                may_have_run=last,
            )
        self._library_sent = True
        started = time.monotonic()
        stdout, stderr = bytearray(), bytearray()
        while not _answered(stdout):
            if deadline_s is not None and time.monotonic() - started > deadline_s:
                raise TransportError(self.settings.host, "receive answer", no_answer(deadline_s), may_have_run=True)
            try:
                out, err, code, done = self._call(
                    "receive answer", protocol.get_command_output_raw, shell_id, self._session_id, may_have_run=True
                )
            except TransportError as exc:
                if "timed out" in exc.cause:  # WinRM's OperationTimeout: the host is still working
                    continue
                raise
            stdout += out
            stderr += err
            if done and not _answered(stdout):
                detail = _clean_clixml(bytes(stderr)).decode("utf-8", "replace").strip() or f"exit code {code}"
                raise hostscript.HostScriptError(f"the host's PowerShell ended: {detail}")
        return hostscript.parse_response(bytes(stdout).decode("utf-8", "replace"))

    def _call(self, operation: str, func, *args, may_have_run: bool = False, **kwargs):
        self.round_trips += 1
        try:
            return self._translate(operation, func, *args, **kwargs)
        except TransportError as err:
            err.may_have_run = may_have_run
            raise

    def _translate(self, operation: str, func, *args, **kwargs):
        """pywinrm's and requests' exceptions as TransportError (host, operation, cause)."""
        try:
            return func(*args, **kwargs)
        except AUTH_ERRORS:
            raise TransportError(
                self.settings.host,
                operation,
                f"authentication refused for user {self.settings.user!r} "
                f"({self.settings.transport}); check ansible_user/ansible_password, and that "
                f"the host's WinRM accepts {self.settings.transport}",
            ) from None
        except PermissionError as exc:  # requests_ntlm: a 401 that offers NTLM but carries no challenge
            raise TransportError(
                self.settings.host,
                operation,
                f"authentication failed for user {self.settings.user!r} "
                f"({self.settings.transport}): {_first_line(exc)}; check the host's WinRM "
                "authentication settings (winrm get winrm/config/service/auth)",
            ) from None
        except WinRMOperationTimeoutError as exc:
            raise TransportError(
                self.settings.host, operation, f"WinRM operation timed out: {exc}", transient=True
            ) from None
        except WSManFaultError as exc:
            # The shell is gone (WinRM restarted, idle timeout): a new shell fixes it.
            raise TransportError(
                self.settings.host,
                operation,
                f"WinRM fault {exc.wsman_fault_code}: {exc.reason}",
                transient=str(exc.wsman_fault_code) == SHELL_NOT_FOUND,
            ) from None
        except WinRMTransportError as exc:
            raise TransportError(
                self.settings.host,
                operation,
                f"HTTP {exc.code} from {self.settings.endpoint}",
                transient=exc.code >= 500,
            ) from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                self.settings.host,
                operation,
                f"TLS verification failed for {self.settings.endpoint}: {_first_line(exc)}",
            ) from None
        except requests.ReadTimeout:
            # The host took the request and said nothing: slow or hung, not unreachable; a request
            # that may be running is never sent again.
            raise TransportError(
                self.settings.host, operation, f"no answer in {self.settings.read_timeout} s"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(
                self.settings.host,
                operation,
                f"host unreachable at {self.settings.endpoint} ({_first_line(exc)})",
                transient=True,
                reachable=False,
            ) from None
        except WinRMError as exc:
            cause = str(exc)
            if "not installed" in cause and self.settings.transport in EXTRAS:
                cause += f" (install it with: pip install '{EXTRAS[self.settings.transport]}')"
            raise TransportError(self.settings.host, operation, cause) from None


def _answered(stdout: bytearray) -> bool:
    """Whether the host has written its answer: a complete line that is the JSON response. Other
    lines (a console host writes stray warnings or Write-Host text to stdout) are not the answer:
    taking one for it would fail this request and hand its answer to the next."""
    complete = bytes(stdout).rsplit(b"\n", 1)[0] if b"\n" in stdout else b""
    return any(line.strip().startswith(b"{") and b'"lync2fa"' in line for line in complete.split(b"\n"))


def _clean_clixml(stderr: bytes) -> bytes:
    """PowerShell writes errors as CLIXML; pywinrm's Session knows how to read it."""
    return winrm.Session.__new__(winrm.Session)._clean_error_msg(stderr)


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


class ConnectionPool:
    """Per-run connections, one per host, closed together at the end."""

    def __init__(self, factory=WinRMConnection):
        self._factory = factory
        self._connections: dict[str, WinRMConnection] = {}
        self._lock = threading.Lock()

    def get(self, settings: ConnectionSettings) -> WinRMConnection:
        with self._lock:
            if settings.host not in self._connections:
                self._connections[settings.host] = self._factory(settings)
            return self._connections[settings.host]

    def close_host(self, host: str) -> None:
        """Close one host's shell once it has nothing more to run."""
        with self._lock:
            conn = self._connections.pop(host, None)
        if conn:
            conn.close()

    def close(self) -> None:
        for host in list(self._connections):
            self.close_host(host)
