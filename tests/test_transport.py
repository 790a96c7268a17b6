"""lync2fa's WinRM transport (pywinrm underneath) against an in-process lab endpoint."""
from __future__ import annotations

import json

import pytest

from lync2fa.connection import ConnectionSettings
from lync2fa.lab.wsman import CommandOutcome, WSManServer
from lync2fa.transport import BOOTSTRAP, SECRETS_SEPARATOR, TransportError, WinRMConnection
from winrm.exceptions import WinRMTransportError

USER, PASSWORD = "LAB\\admin", "S3cret-for-tests"


@pytest.fixture
def endpoint(tmp_path):
    received = []

    def executor(host, command, arguments, stdin, logon=None):
        script, _, secrets = stdin.decode("utf-8").partition(SECRETS_SEPARATOR)
        received.append((command, arguments, script, secrets))
        if "THROW" in script:
            return CommandOutcome("", "Something went wrong on the host", 1)
        return CommandOutcome(f"{len(script)} chars\r\n")

    server = WSManServer({"win01": 0}, executor, {USER: PASSWORD}, tmp_path)
    port = server.start()["win01"]
    yield server, port, received
    server.stop()


def settings(port, transport="ntlm", password=PASSWORD):
    return ConnectionSettings(host="win01", address="127.0.0.1", port=port, scheme="http", transport=transport,
                              user=USER, password=password)


@pytest.mark.parametrize("transport", ["ntlm", "basic", "credssp"])
def test_one_shell_serves_every_script_and_scripts_travel_on_stdin(endpoint, transport):
    server, port, received = endpoint
    conn = WinRMConnection(settings(port, transport))
    big = "# " + "x" * 250_000 + "\nWrite-Output 'end'"   # over 8191 chars and over one stdin chunk
    outputs = [conn.run_script(s) for s in ("Write-Output 1", big, "Write-Output 3")]
    conn.close()
    assert [o.stdout.strip() for o in outputs] == ["14 chars", f"{len(big)} chars", "14 chars"]
    assert all(o.exit_code == 0 for o in outputs)
    ops = list(server.operations("win01"))
    assert ops.count("Create") == 1 and ops.count("Delete") == 1 and ops.count("Command") == 3
    assert ops.count("Send") >= 4   # the big script arrived in several chunks
    command, arguments, script, secrets = received[1]
    assert secrets == ""
    assert command == "PowerShell" and "-EncodedCommand" in arguments
    assert script == big
    import base64
    encoded = arguments[arguments.index("-EncodedCommand") + 1]
    assert base64.b64decode(encoded).decode("utf-16-le") == BOOTSTRAP


def test_stderr_clixml_is_cleaned_and_exit_code_kept(endpoint):
    _, port, _ = endpoint
    out = WinRMConnection(settings(port)).run_script("THROW")
    assert out.exit_code == 1 and out.stderr == "Something went wrong on the host"


def test_errors_name_host_operation_and_cause(endpoint):
    server, port, _ = endpoint
    with pytest.raises(TransportError) as bad_password:
        WinRMConnection(settings(port, password="wrong")).run_script("x")
    assert str(bad_password.value).startswith("win01: open shell failed: authentication refused for user")
    assert bad_password.value.transient is False
    server.stop()
    with pytest.raises(TransportError) as unreachable:
        WinRMConnection(settings(port), backoff_s=0.01).run_script("x")
    assert "host unreachable" in str(unreachable.value) and "(after 3 attempts)" in str(unreachable.value)


def test_a_shell_lost_on_the_host_is_reopened_transparently(endpoint):
    server, port, _ = endpoint
    conn = WinRMConnection(settings(port), backoff_s=0.01)
    assert conn.run_script("one").exit_code == 0
    server._shells.clear()   # the host forgot the shell (e.g. WinRM service restarted)
    assert conn.run_script("two").exit_code == 0   # retried in a new shell
    assert list(server.operations("win01")).count("Create") == 2


def test_secrets_travel_after_the_script_never_inside_it(endpoint):
    _, port, received = endpoint
    WinRMConnection(settings(port)).run_script("Write-Output $P.pin", {"pin": "739164825"})
    _, _, script, secrets = received[-1]
    assert "739164825" not in script and json.loads(secrets) == {"pin": "739164825"}


def test_a_script_that_may_have_started_is_never_sent_twice(endpoint):
    server, port, _ = endpoint
    conn = WinRMConnection(settings(port), backoff_s=0.01)
    conn.run_script("one")

    def lost_reply(*args):
        raise WinRMTransportError("http", 503, "reply lost")
    conn._protocol.get_command_output = lost_reply
    commands = list(server.operations("win01")).count("Command")
    with pytest.raises(TransportError) as err:
        conn.run_script("two")
    assert "the script may have run" in str(err.value) and "after" not in str(err.value)
    assert list(server.operations("win01")).count("Command") == commands + 1   # not retried
    assert conn.run_script("three").exit_code == 0


def test_a_failed_command_cleanup_keeps_the_output_and_opens_a_new_shell(endpoint):
    server, port, _ = endpoint
    conn = WinRMConnection(settings(port))
    conn.run_script("one")

    def refused(*args):
        raise WinRMTransportError("http", 500, "cleanup refused")
    conn._protocol.cleanup_command = refused
    assert conn.run_script("two").stdout.strip() == "3 chars"
    assert conn.run_script("three").exit_code == 0
    assert list(server.operations("win01")).count("Create") == 2
