"""Issue 12 items 3/4 and 10/14, as an auditor reproduced them on a loopback lab.

Names: a space at either end of a name got past the ESC gate and the built-in template check
(AD finds "WebServer " as WebServer), so every name-like parameter refuses it, and the built-in
lookups compare names as AD does. Journal: an error while closing the shell replaced the "may
have run" transport error, and the runner's catch-all then dropped what had been decided.

No traffic beyond 127.0.0.0/8: remote hosts are under ``.invalid`` and are never connected to.
"""

from __future__ import annotations

import json

import pytest
import yaml
from requests_credssp.exceptions import AuthenticationException
from session_executor import EchoExecutor, facts
from test_runner_unit import CA, FakeConnection, FakePool, Hooks, make_plan
from winrm.exceptions import WinRMTransportError

from lync2fa import api, hostscript
from lync2fa.adcs_builtin import is_builtin
from lync2fa.connection import ConnectionSettings
from lync2fa.findings import InsecurePlanError
from lync2fa.journal import Journal
from lync2fa.lab.wsman import WSManServer
from lync2fa.plan import PlanError
from lync2fa.plugins.templates import builtin_record
from lync2fa.runner import Runner
from lync2fa.transport import TransportError, WinRMConnection

CA_HOST = "ca01.corp.invalid"
BASE = {"ansible_user": "CORP\\admin", "ansible_password": "S3cret-Passw0rd", "ansible_winrm_transport": "credssp"}


def _plan(tmp_path, **host_vars):
    path = tmp_path / "hosts.yml"
    hosts = {CA_HOST: {**BASE, "ca_common_name": "Contoso Root CA", **host_vars}}
    path.write_text(yaml.safe_dump({"all": {"children": {"ca": {"hosts": hosts}}}}))
    return api.plan(api.load_inventory(path), only=["ca", "templates"])


# -- names: refused with a space at either end, compared as AD compares them ----------------------
def test_a_ca_template_with_a_trailing_space_is_refused_at_plan_time(tmp_path):
    """Before: only a BROAD_ENROLL warning, and apply granted Enroll on the built-in WebServer."""
    with pytest.raises(PlanError) as err:
        _plan(tmp_path, ca_template="WebServer ", ca_principal="Authenticated Users")
    message = str(err.value)
    assert CA_HOST in message and "ca_template 'WebServer ' has a space at its end: refused, not stripped" in message
    assert "Active Directory" in message, "the message says why"


def test_a_template_name_in_another_case_is_judged_as_the_built_in_one(tmp_path):
    with pytest.raises(InsecurePlanError) as err:
        _plan(tmp_path, ca_template="webserver", ca_principal="Authenticated Users")
    rules = {f.rule for f in err.value.findings if f.task == "ca.template_permissions"}
    assert {"ESC15", "ESC17"} <= rules, err.value.findings


def test_templates_name_smartcardlogon_with_a_trailing_space_is_refused():
    """Before: it passed "name must differ from source_template", and apply rewrote the built-in
    SmartcardLogon in place."""
    with pytest.raises(Exception, match=r"templates_name 'SmartcardLogon ' has a space at its end: refused"):
        api.tasks()["templates.smartcard"].validate({"name": "SmartcardLogon "})


def test_built_in_templates_are_recognised_as_ad_finds_them_whatever_the_case_and_outer_spaces():
    assert is_builtin(" smartcardlogon ") and is_builtin("WebServer ")
    assert builtin_record("webserver ") == builtin_record("WebServer") is not None
    assert not is_builtin("WebServer2")


def _untrimmed_values():
    """Every non-secret text parameter of every task, with a space at one end (in a list element or
    a dict value where the parameter is a list)."""
    cases = []
    for task in api.tasks().values():
        for p in task.params:
            if p.secret:
                continue
            if p.type == "str":
                cases.append((task.name, {p.name: " value"}, f"{task.var_prefix}{p.name}"))
            elif p.type == "list" and p.elements == "str":
                cases.append((task.name, {p.name: ["value "]}, f"{task.var_prefix}{p.name}"))
            elif p.type == "list" and p.elements == "dict":
                cases.append((task.name, {p.name: [{"principal": "Lync 2FA Users\t"}]}, f"{task.var_prefix}{p.name}"))
    return cases


@pytest.mark.parametrize("task,values,variable", _untrimmed_values(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_text_parameter_refuses_a_space_at_either_end_naming_the_variable(task, values, variable):
    with pytest.raises(Exception, match=rf"{variable} .* has (a space|whitespace) at its (start|end): refused"):
        api.tasks()[task].validate(values)


def test_a_name_with_inner_spaces_is_still_accepted():
    params = api.tasks()["ca.template_permissions"].validate({"principal": "CORP\\Lync 2FA Users"})
    assert params["principal"] == "CORP\\Lync 2FA Users"


# -- journal: what was decided and sent stays on record -------------------------------------------
USER, PASSWORD = "admin", "S3cret-for-tests"
DECIDED_DIFF = [{"path": "x", "before": 0, "after": 1}]  # test_runner_unit's decision


@pytest.fixture
def endpoint(tmp_path):
    server = WSManServer({"win01": 0}, EchoExecutor(), {USER: PASSWORD}, tmp_path)
    port = server.start()["win01"]
    yield server, port
    server.stop()


def _connection(port: int) -> WinRMConnection:
    return WinRMConnection(
        ConnectionSettings(
            host="win01", address="127.0.0.1", port=port, scheme="http", transport="ntlm", user=USER, password=PASSWORD
        )
    )


def _lose_the_answer_and_fail_the_close(conn: WinRMConnection, closes: list | None = None) -> None:
    """The apply's answer is lost, then deleting the shell fails with CredSSP's own exception
    (each attempt counted in ``closes``)."""

    def lost_reply(*args):
        raise WinRMTransportError("http", 503, "reply lost")

    def close_refused(*args):
        if closes is not None:
            closes.append(args)
        raise AuthenticationException("Server did not respond with a CredSSP token after step TLS Handshake")

    assert conn._protocol is not None
    conn._protocol.get_command_output_raw = lost_reply
    conn._protocol.close_shell = close_refused


def test_an_error_closing_the_shell_does_not_replace_the_may_have_run_error(endpoint):
    server, port = endpoint
    conn = _connection(port)
    conn.request(facts("a"))
    closes: list = []
    _lose_the_answer_and_fail_the_close(conn, closes)
    with pytest.raises(TransportError) as err:
        conn.request(hostscript.apply_request([]))
    assert closes, "the shell's deletion was attempted and raised"
    assert "may have run" in str(err.value) and "HTTP 503" in str(err.value)
    conn.close()  # the shell is forgotten: closing again raises nothing
    assert "b" in conn.request(facts("b"))["facts"], "a new shell next time"


def _decided_operations(report) -> list:
    (result,) = report.results
    return [op["detail"] for op in result.operations]


def _journal_row(journal: Journal, run_id: int) -> dict:
    return [r for r in journal.results(run_id) if r["status"] != "started"][-1]


def test_an_unexpected_error_after_the_apply_was_sent_keeps_the_decision_on_record(tmp_path):
    """The connection raises something the runner does not expect once the apply was sent: the
    step is failed with "may have run", and its decided operations and diff stay on record."""

    class Unexpected(FakeConnection):
        def request(self, request, secrets=None, deadline_s=None, idempotent=False):
            answer = super().request(request, secrets, deadline_s, idempotent)  # the host ran it
            if request["kind"] == "apply":
                raise AuthenticationException("Server did not respond with a CredSSP token")
            return answer

    pool = FakePool()
    pool.get = lambda settings: Unexpected(pool, settings.host)
    journal = Journal(tmp_path)
    report = Runner(Hooks(), journal=journal, pool=pool).run(make_plan([CA], {"ca": ["ca01"]}), False)
    (result,) = report.results
    assert pool.ran == [("ca.a", "ca01")], "the operations were sent and ran"
    assert result.failed and "may have run" in result.msg and "AuthenticationException" in result.msg
    assert [op["op"] for op in _decided_operations(report)] == ["registry_set"]
    row = _journal_row(journal, report.run_id)
    assert row["status"] == "failed" and "may have run" in row["msg"]
    assert json.loads(row["diff"]) == DECIDED_DIFF, "what was decided is on record"
    assert journal.started_then_failed(report.run_id) == {("ca.a", "ca01")}, "a resumed run settles it"
    journal.close()


def test_a_bug_before_anything_was_sent_is_an_internal_error_not_may_have_run(tmp_path):
    class Broken(FakeConnection):
        def request(self, request, secrets=None, deadline_s=None, idempotent=False):
            raise KeyError("facts")

    pool = FakePool()
    pool.get = lambda settings: Broken(pool, settings.host)
    report = Runner(Hooks(), pool=pool).run(make_plan([CA], {"ca": ["ca01"]}), False)
    (result,) = report.results
    assert result.failed and result.msg.startswith("internal error: KeyError") and "may have run" not in result.msg


def test_a_lost_answer_then_a_failed_close_is_journaled_with_its_decision(endpoint, tmp_path, monkeypatch):
    """End to end through the WinRM transport: the auditor's run (failed, changed False, diff [],
    "internal error: AuthenticationException") now keeps the decision and says it may have run."""
    _, port = endpoint
    conn = _connection(port)

    class OneHost:
        def get(self, settings):
            return conn

        def close_host(self, host):
            conn.close()

        def close(self):
            conn.close()

    send = WinRMConnection.request

    def request(self, request, secrets=None, deadline_s=None, idempotent=False):
        if request["kind"] == "apply":
            _lose_the_answer_and_fail_the_close(self)
        return send(self, request, secrets, deadline_s, idempotent)

    monkeypatch.setattr(WinRMConnection, "request", request)
    journal = Journal(tmp_path)
    report = Runner(Hooks(), journal=journal, pool=OneHost()).run(make_plan([CA], {"ca": ["win01"]}), False)
    (result,) = report.results
    assert result.failed and "may have run" in result.msg and "internal error" not in result.msg, result.msg
    assert [op["op"] for op in _decided_operations(report)] == ["registry_set"]
    row = _journal_row(journal, report.run_id)
    assert row["status"] == "failed" and json.loads(row["diff"]) == DECIDED_DIFF
    journal.close()
