"""Drive lync2fa.lab.wsman with the real clients (pywinrm, requests_ntlm, pypsrp) on loopback."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import socket
import ssl
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import winrm
import winrm.encryption
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypsrp.shell import Process, SignalCode, WinRS
from pypsrp.wsman import WSMan
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError, WSManFaultError
from winrm.protocol import Protocol

from lync2fa.lab.wsman import CommandOutcome, Faults, WSManServer, render_clixml, split_command_line

USER = "administrator"  # a local account: Basic logs on local accounts only
PASSWORD = "Sup3r-Secret!"
CREDENTIALS = {USER: PASSWORD}


def encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


class Recorder:
    """Test executor: runs tiny '-EncodedCommand' scripts, otherwise echoes what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str], bytes]] = []
        self.logons: list = []  # (host, LogonInfo) per command: the shell's logon
        self.lock = threading.Lock()

    def __call__(self, host: str, command: str, arguments: list[str], stdin: bytes, logon=None) -> CommandOutcome:
        with self.lock:
            self.logons.append((host, logon))
            self.calls.append((host, command, arguments, stdin))
        tokens = split_command_line(command) + arguments
        lowered = [t.lower() for t in tokens]
        if "-encodedcommand" in lowered:
            script = base64.b64decode(tokens[lowered.index("-encodedcommand") + 1]).decode("utf-16-le")
            verb, _, rest = script.partition(":")
            if verb == "err":
                return CommandOutcome("partial\r\n", rest, 3)
            if verb == "boom":
                raise RuntimeError(rest)
            if verb == "echo":
                return CommandOutcome(rest)
        return CommandOutcome(f"{host}|{command}|{' '.join(arguments)}|{len(stdin)}\r\n")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No proxy or CA bundle from CI may interfere with loopback; NTLM_USER_FILE is restored."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NTLM_USER_FILE", "")


@pytest.fixture
def faults():
    return {}


@pytest.fixture
def executor():
    return Recorder()


@pytest.fixture
def lab(tmp_path, faults, executor):
    server = WSManServer(
        {"web01": 0, "sql01": 0, "dc01": 0},
        executor,
        CREDENTIALS,
        tmp_path / "state",
        faults=lambda host: faults.get(host, Faults()),
    )
    ports = server.start()
    yield server, ports
    server.stop()


def url(port: int, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{port}/wsman"


def protocol(port: int, transport: str = "basic", password: str = PASSWORD, **kw) -> Protocol:
    kw.setdefault("server_cert_validation", "ignore")
    return Protocol(url(port), transport=transport, username=USER, password=password, proxy=None, **kw)


def run(p: Protocol, command: str, args=(), codepage: int = 65001) -> tuple[bytes, bytes, int]:
    shell = p.open_shell(codepage=codepage)
    cid = p.run_command(shell, command, args)
    out = p.get_command_output(shell, cid)
    p.cleanup_command(shell, cid)
    p.close_shell(shell)
    return out


# --------------------------------------------------------------------------- WinRS over Basic


def test_basic_command_with_arguments_and_multichunk_stdin(lab, executor):
    server, ports = lab
    p = protocol(ports["web01"])
    shell = p.open_shell(codepage=65001)
    cid = p.run_command(shell, "PowerShell", ["-NoProfile", "-Command", "-"], console_mode_stdin=False)
    p.send_command_input(shell, cid, b"first chunk;", end=False)
    p.send_command_input(shell, cid, b"second", end=True)
    stdout, stderr, rc = p.get_command_output(shell, cid)
    p.cleanup_command(shell, cid)
    p.close_shell(shell)

    assert (stdout, stderr, rc) == (b"web01|PowerShell|-NoProfile -Command -|18\r\n", b"", 0)
    assert executor.calls == [("web01", "PowerShell", ["-NoProfile", "-Command", "-"], b"first chunk;second")]
    assert server.operations("web01") == ["Create", "Command", "Send", "Send", "Receive", "Signal", "Delete"]


def test_output_is_encoded_with_the_shell_codepage(lab):
    _, ports = lab
    script = ["-EncodedCommand", encoded("echo:Grüße ✓")]
    assert run(protocol(ports["web01"]), "powershell", script, codepage=65001)[0] == "Grüße ✓".encode()
    assert run(protocol(ports["web01"]), "powershell", script, codepage=437)[0] == "Grüße ?".encode("cp437")


def test_shell_reuse_five_commands_on_one_connection(lab, executor):
    server, ports = lab
    p = protocol(ports["sql01"])
    shell = p.open_shell()
    for i in range(5):
        cid = p.run_command(shell, "cmd.exe", ["/c", f"step{i}"])
        assert p.get_command_output(shell, cid) == (f"sql01|cmd.exe|/c step{i}|0\r\n".encode(), b"", 0)
        p.cleanup_command(shell, cid)
    p.close_shell(shell)
    assert [c[2] for c in executor.calls] == [["/c", f"step{i}"] for i in range(5)]
    assert server.connections_accepted == 1


def test_deleted_or_unknown_shell_is_a_wsman_fault(lab):
    _, ports = lab
    p = protocol(ports["dc01"])
    shell = p.open_shell()
    p.close_shell(shell, close_session=False)
    with pytest.raises(WSManFaultError) as err:
        p.run_command(shell, "hostname")
    assert err.value.code == 500
    assert err.value.wsman_fault_code == 2150858843


def test_shells_are_per_host(lab):
    _, ports = lab
    shell = protocol(ports["web01"]).open_shell()
    with pytest.raises(WSManFaultError) as err:
        protocol(ports["sql01"]).run_command(shell, "hostname")
    assert err.value.wsman_fault_code == 2150858843


def test_wrong_basic_password_is_rejected(lab, executor):
    _, ports = lab
    with pytest.raises(InvalidCredentialsError):
        protocol(ports["web01"], password="wrong").open_shell()
    with pytest.raises(InvalidCredentialsError):  # a domain account: Basic takes local accounts only
        Protocol(
            url(ports["web01"]), transport="basic", username="LAB\\administrator", password=PASSWORD, proxy=None
        ).open_shell()
    ok = Protocol(
        url(ports["web01"]), transport="basic", username="WEB01\\administrator", password=PASSWORD, proxy=None
    )
    assert ok.open_shell()  # HOST\\user: the host's own (local) account


def test_run_ps_stderr_comes_back_as_clixml_and_is_cleaned(lab):
    _, ports = lab
    session = winrm.Session(f"127.0.0.1:{ports['web01']}", auth=(USER, PASSWORD), transport="basic", proxy=None)
    result = session.run_ps("err:Cannot find path 'C:\\x' <because> & it does not exist.\nsecond line")
    assert result.status_code == 3
    assert result.std_out == b"partial\r\n"
    assert result.std_err == b"Cannot find path 'C:\\x' <because> & it does not exist.\nsecond line"
    raw = protocol(ports["web01"])
    _, stderr, _ = run(raw, "powershell", ["-EncodedCommand", encoded("err:oops")])
    assert stderr.startswith(b"#< CLIXML\r\n<Objs ") and b'<S S="Error">oops_x000D__x000A_</S>' in stderr


def test_executor_exception_becomes_exit_code_1(lab):
    server, ports = lab
    session = winrm.Session(f"127.0.0.1:{ports['web01']}", auth=(USER, PASSWORD), transport="basic", proxy=None)
    result = session.run_ps("boom:disk on fire")
    assert (result.status_code, result.std_err) == (1, b"RuntimeError: disk on fire")
    assert session.run_ps("echo:still alive").std_out == b"still alive"


# --------------------------------------------------------------------------- NTLM


def test_ntlm_with_message_encryption(lab, monkeypatch):
    server, ports = lab
    decrypted = []  # pywinrm silently accepts plaintext replies, so prove it had to unseal them
    real_decrypt = winrm.encryption.Encryption._decrypt_response
    monkeypatch.setattr(
        winrm.encryption.Encryption,
        "_decrypt_response",
        lambda self, *a: decrypted.append(1) or real_decrypt(self, *a),
    )
    assert run(protocol(ports["web01"], "ntlm", message_encryption="auto"), "hostname") == (
        b"web01|hostname||0\r\n",
        b"",
        0,
    )
    # Create, Command, Receive, Signal, Delete (the blank setup POST is plain)
    assert server.encrypted_requests == 5
    assert len(decrypted) == 5


def test_ntlm_without_message_encryption(lab):
    server, ports = lab
    p = protocol(ports["sql01"], "ntlm", message_encryption="never")
    assert run(p, "whoami", ["/all"]) == (b"sql01|whoami|/all|0\r\n", b"", 0)
    assert server.encrypted_requests == 0


def test_ntlm_accepts_bare_user_name(lab):
    _, ports = lab
    p = Protocol(url(ports["dc01"]), transport="ntlm", username="administrator", password=PASSWORD, proxy=None)
    assert run(p, "hostname")[0] == b"dc01|hostname||0\r\n"


def test_wrong_ntlm_password_is_rejected(lab):
    _, ports = lab
    for encryption in ("auto", "never"):
        with pytest.raises(InvalidCredentialsError):
            protocol(ports["web01"], "ntlm", password="wrong", message_encryption=encryption).open_shell()


def test_ntlm_user_file_is_private(lab, tmp_path):
    mode = stat.S_IMODE((tmp_path / "state" / "ntlm_users").stat().st_mode)
    assert mode == 0o600


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("transport", ["basic", "ntlm"])  # ntlm: the faults (HTTP 500) are sealed too
def test_receive_timeouts_are_retried_by_pywinrm(lab, faults, transport):
    server, ports = lab
    faults["web01"] = Faults(receive_timeouts=2)
    assert run(protocol(ports["web01"], transport), "hostname")[0] == b"web01|hostname||0\r\n"
    assert server.operations("web01").count("Receive") == 3


def test_http_status_fault(lab, faults):
    _, ports = lab
    faults["web01"] = Faults(http_status=503)
    with pytest.raises(WinRMTransportError) as err:
        protocol(ports["web01"]).open_shell()
    assert err.value.code == 503


def test_drop_fault(lab, faults):
    _, ports = lab
    faults["sql01"] = Faults(drop=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol(ports["sql01"]).open_shell()


def test_reject_auth_fault(lab, faults):
    _, ports = lab
    faults["dc01"] = Faults(reject_auth=True)
    with pytest.raises(InvalidCredentialsError):
        protocol(ports["dc01"]).open_shell()


def test_latency_fault(lab, faults):
    server, ports = lab
    faults["dc01"] = Faults(latency_s=0.2)
    p = protocol(ports["dc01"])
    start = time.monotonic()
    p.open_shell()
    assert time.monotonic() - start >= 0.2
    faults["dc01"] = Faults()  # faults are read on every request
    start = time.monotonic()
    p.open_shell()
    assert time.monotonic() - start < 0.2


# --------------------------------------------------------------------------- HTTPS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lync2fa test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return d


@pytest.fixture
def tls_lab(tmp_path, pki, executor):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    server = WSManServer({"edge01": 0}, executor, CREDENTIALS, tmp_path / "state", tls=ctx)
    ports = server.start()
    yield server, ports["edge01"]
    server.stop()


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_https_with_validated_certificate(tls_lab, pki, transport):
    server, port = tls_lab
    p = Protocol(
        url(port, "https"),
        transport=transport,
        username=USER,
        password=PASSWORD,
        server_cert_validation="validate",
        ca_trust_path=str(pki / "ca.pem"),
        proxy=None,
    )
    # NTLM over https: pywinrm sends channel bindings (send_cbt=True) and no message encryption
    assert run(p, "hostname") == (b"edge01|hostname||0\r\n", b"", 0)
    assert server.encrypted_requests == 0


def test_https_untrusted_certificate_fails(tls_lab):
    _, port = tls_lab
    p = Protocol(
        url(port, "https"),
        transport="basic",
        username=USER,
        password=PASSWORD,
        server_cert_validation="validate",
        ca_trust_path=None,
        proxy=None,
    )
    with pytest.raises(requests.exceptions.SSLError):
        p.open_shell()


# --------------------------------------------------------------------------- pypsrp


@pytest.mark.parametrize("auth,encryption", [("basic", "never"), ("ntlm", "auto")])
def test_pypsrp_winrs_process(lab, auth, encryption):
    server, ports = lab
    wsman = WSMan(
        "127.0.0.1",
        port=ports["web01"],
        username=USER,
        password=PASSWORD,
        ssl=False,
        auth=auth,
        encryption=encryption,
        no_proxy=True,
    )
    with wsman, WinRS(wsman, codepage=65001) as shell:
        proc = Process(shell, "cmd.exe", ["/c", "echo", "hi"])
        proc.begin_invoke()
        proc.send(b"some stdin", end=True)
        proc.end_invoke()
        proc.signal(SignalCode.TERMINATE)
        assert (proc.stdout, proc.rc) == (b"web01|cmd.exe|/c echo hi|10\r\n", 0)
        assert shell.owner == USER
    assert (server.encrypted_requests > 0) == (encryption == "auto")


# --------------------------------------------------------------------------- scale


def _raw_post(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return s.recv(4096)


def test_many_endpoints_one_accept_loop(tmp_path, executor):
    baseline = threading.active_count()
    hosts = {f"host{i:03d}": 0 for i in range(300)}
    with WSManServer(hosts, executor, CREDENTIALS, tmp_path / "state") as server:
        ports = server.ports
        assert len(set(ports.values())) == 300
        assert threading.active_count() <= baseline + 1  # just the accept loop

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(_raw_post, ports.values()))
        assert all(a.startswith(b"HTTP/1.1 401") for a in answers)

        sample = [f"host{i:03d}" for i in range(0, 300, 30)]
        with ThreadPoolExecutor(len(sample)) as pool:
            outputs = list(pool.map(lambda h: run(protocol(ports[h]), "hostname")[0], sample))
        assert outputs == [f"{h}|hostname||0\r\n".encode() for h in sample]

        deadline = time.monotonic() + 5
        while threading.active_count() > baseline + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert threading.active_count() < 40
        assert threading.active_count() <= baseline + 1  # connection threads are gone when idle
    for port in list(ports.values())[:5]:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


# --------------------------------------------------------------------------- helpers


def test_split_command_line_and_clixml():
    assert split_command_line('-a "C:\\Program Files\\x" b') == ["-a", "C:\\Program Files\\x", "b"]
    assert render_clixml("a<b\x07") == (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">a&lt;b_x0007__x000D__x000A_</S></Objs>'
    )
