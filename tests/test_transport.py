"""lync2fa's WinRM transport (pywinrm underneath) against an in-process lab endpoint: one
long-lived PowerShell process per host, one Send and one Receive per request."""

from __future__ import annotations

import base64

import pytest
from session_executor import EchoExecutor, facts
from winrm.exceptions import WinRMTransportError

from lync2fa import hostscript
from lync2fa.connection import ConnectionSettings
from lync2fa.lab.wsman import WSManServer
from lync2fa.transport import SESSION_ARGS, TransportError, WinRMConnection

USER, PASSWORD = "admin", "S3cret-for-tests"  # a local account: Basic takes no domain account


@pytest.fixture
def endpoint(tmp_path):
    executor = EchoExecutor()
    server = WSManServer({"win01": 0}, executor, {USER: PASSWORD}, tmp_path)
    port = server.start()["win01"]
    yield server, port, executor
    server.stop()


def settings(port, transport="ntlm", password=PASSWORD, **kw):
    return ConnectionSettings(
        host="win01",
        address="127.0.0.1",
        port=port,
        scheme="http",
        transport=transport,
        user=USER,
        password=password,
        **kw,
    )


@pytest.mark.parametrize("transport", ["ntlm", "basic", "credssp"])
def test_one_process_serves_every_request_with_one_send_and_one_receive(endpoint, transport):
    server, port, executor = endpoint
    conn = WinRMConnection(settings(port, transport))
    answers = [conn.request(facts("a")), conn.request(facts("b", "c")), conn.request(facts())]
    conn.close()
    assert [sorted(a["facts"]) for a in answers] == [["a"], ["b", "c"], []]
    ops = list(server.operations("win01"))
    assert ops.count("Create") == 1 and ops.count("Command") == 1 and ops.count("Delete") == 1
    assert ops.count("Send") == 3 and ops.count("Receive") == 3 and "Signal" not in ops
    assert executor.sessions == 1
    encoded = SESSION_ARGS[SESSION_ARGS.index("-EncodedCommand") + 1]
    assert base64.b64decode(encoded).decode("utf-16-le") == hostscript.SESSION_LOOP


def test_the_library_rides_on_the_first_request_only(endpoint):
    _, port, executor = endpoint
    conn = WinRMConnection(settings(port))
    conn.request(facts("a"))
    conn.request(facts("b"))
    first, second = executor.requests[0][4], executor.requests[1][4]
    assert first > 10_000 > second  # the gzip'd library, then the request alone


def test_a_large_request_arrives_in_several_sends(endpoint):
    server, port, executor = endpoint
    conn = WinRMConnection(settings(port))
    big = hostscript.facts_request({f"f{i}": {"kind": "file", "path": "C:\\" + "x" * 200} for i in range(1200)})
    assert len(conn.request(big)["facts"]) == 1200
    assert list(server.operations("win01")).count("Send") >= 3


def test_a_process_that_dies_is_an_error_with_its_stderr(endpoint):
    _, port, _ = endpoint
    with pytest.raises(hostscript.HostScriptError, match="Something went wrong on the host"):
        WinRMConnection(settings(port)).request({"kind": "THROW"})


def test_errors_name_host_operation_and_cause(endpoint):
    server, port, _ = endpoint
    with pytest.raises(TransportError) as bad_password:
        WinRMConnection(settings(port, password="wrong")).request(facts("a"))
    assert str(bad_password.value).startswith("win01: open shell failed: authentication refused for user")
    assert bad_password.value.transient is False
    server.stop()
    with pytest.raises(TransportError) as unreachable:
        WinRMConnection(settings(port), backoff_s=0.01).request(facts("a"), idempotent=True)
    assert "host unreachable" in str(unreachable.value) and "(after 3 attempts)" in str(unreachable.value)


def test_a_shell_lost_on_the_host_is_reopened_for_a_fact_read(endpoint):
    server, port, executor = endpoint
    conn = WinRMConnection(settings(port), backoff_s=0.01)
    conn.request(facts("a"), idempotent=True)
    server._shells.clear()  # the host forgot the shell (e.g. WinRM service restarted)
    assert "b" in conn.request(facts("b"), idempotent=True)["facts"]  # in a new shell and process
    assert list(server.operations("win01")).count("Create") == 2 and executor.sessions == 2
    assert executor.requests[-1][4] > 10_000  # the new process got the library again


def test_secrets_travel_beside_the_request_never_in_it(endpoint):
    _, port, executor = endpoint
    WinRMConnection(settings(port)).request(facts("a"), {"pin": "739164825"})
    _, request, secrets, _, _ = executor.requests[-1]
    assert "739164825" not in str(request) and secrets == {"pin": "739164825"}


def test_an_apply_that_may_have_started_is_never_sent_twice(endpoint):
    server, port, executor = endpoint
    conn = WinRMConnection(settings(port), backoff_s=0.01)
    conn.request(facts("a"))

    def lost_reply(*args):
        raise WinRMTransportError("http", 503, "reply lost")

    conn._protocol.get_command_output_raw = lost_reply
    sent = list(server.operations("win01")).count("Send")
    with pytest.raises(TransportError) as err:
        conn.request(hostscript.apply_request([]))
    assert "may have run" in str(err.value) and "after" not in str(err.value)
    assert list(server.operations("win01")).count("Send") == sent + 1  # not retried
    assert "b" in conn.request(facts("b"))["facts"]  # a new shell next time


def test_a_host_that_never_answers_fails_at_the_deadline(endpoint):
    server, port, _ = endpoint
    conn = WinRMConnection(settings(port))
    conn.request(facts("a"))

    def still_working(*args):  # WinRM's OperationTimeout, again and again
        from winrm.exceptions import WinRMOperationTimeoutError

        raise WinRMOperationTimeoutError()

    conn._protocol.get_command_output_raw = still_working
    with pytest.raises(TransportError, match="no answer in 0.3 s"):
        conn.request(facts("b"), deadline_s=0.3)


def test_a_stray_line_before_the_answer_is_not_taken_for_it(endpoint):
    """A console host prints "WARNING: ..." to stdout: the answer is still the JSON line, and the
    next request gets its own answer, not this one's (no desynchronised session)."""
    _, port, _ = endpoint
    conn = WinRMConnection(settings(port))
    first = conn.request({"kind": "WARN", "facts": {"a": {}}})
    second = conn.request(facts("b"))
    conn.close()
    assert sorted(first["facts"]) == ["a"] and sorted(second["facts"]) == ["b"]
