"""Transports that delegate (issue 7, the double hop): CredSSP against the lab, Kerberos settings.

The lab accepts CredSSP as a Windows WinRM service with ``Enable-WSManCredSSP -Role Server``
does, so unmodified pywinrm (``transport='credssp'``, requests-credssp underneath) talks to it,
with CredSSP message encryption over http. Every shell records its logon (how it authenticated
and whether it holds network credentials) and hands it to the executor with each command.
Kerberos needs a KDC, which the lab does not have: its settings are checked on the arguments
given to ``winrm.Protocol``, without a connection.
"""

from __future__ import annotations

import base64
import dataclasses

import pytest
import winrm
import yaml
from requests_credssp.exceptions import NTStatusException
from session_executor import EchoExecutor, facts
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

from lync2fa import api, hostscript
from lync2fa.connection import ConnectionSettings
from lync2fa.lab.logon import LogonInfo, network_error
from lync2fa.lab.wsman import CREDSSP_PROTOCOL, WSManServer
from lync2fa.transport import TransportError, WinRMConnection, protocol_kwargs

USER, PASSWORD = "CORP\\lync2fa-admin", "Delegate-Me-42"
LOCAL_USER, LOCAL_PASSWORD = "localadmin", "Local-Only-7"


# -- settings: which transports delegate, and what pywinrm is given ------------------------------
def _settings(tmp_path, **host_vars) -> ConnectionSettings:
    path = tmp_path / "hosts.yml"
    host = {
        "ansible_host": "127.0.0.1",
        "ansible_port": 5985,
        "ansible_user": USER,
        "ansible_password": PASSWORD,
        **host_vars,
    }
    path.write_text(yaml.safe_dump({"all": {"children": {"ca": {"hosts": {"ca01": host}}}}}))
    return ConnectionSettings.from_host(api.load_inventory(path).host("ca01"))


@pytest.mark.parametrize(
    "transport, extra, delegates",
    [
        ("credssp", {}, True),
        ("kerberos", {"ansible_winrm_kerberos_delegation": True}, True),
        ("kerberos", {"ansible_winrm_kerberos_delegation": "yes"}, True),  # Ansible's booleans
        ("kerberos", {"ansible_winrm_kerberos_delegation": "false"}, False),
        ("kerberos", {}, False),
        ("ntlm", {}, False),
        ("basic", {}, False),
        ("plaintext", {}, False),
        ("certificate", {}, False),
    ],
)
def test_settings_delegates_only_for_credssp_and_delegated_kerberos(tmp_path, transport, extra, delegates):
    assert _settings(tmp_path, ansible_winrm_transport=transport, **extra).delegates is delegates


def test_kerberos_delegation_must_be_a_boolean(tmp_path):
    from lync2fa.connection import ConnectionConfigError

    with pytest.raises(ConnectionConfigError, match="ansible_winrm_kerberos_delegation must be a boolean"):
        _settings(tmp_path, ansible_winrm_transport="kerberos", ansible_winrm_kerberos_delegation="perhaps")


def test_kerberos_delegation_reaches_pywinrm_protocol_kwargs(tmp_path):
    s = _settings(
        tmp_path,
        ansible_winrm_transport="kerberos",
        ansible_winrm_kerberos_delegation="true",
        ansible_winrm_kerberos_hostname_override="ca01.corp.example",
    )
    kwargs = protocol_kwargs(s)
    assert kwargs["transport"] == "kerberos"
    assert kwargs["kerberos_delegation"] is True
    assert kwargs["kerberos_hostname_override"] == "ca01.corp.example"
    assert kwargs["message_encryption"] == "auto"
    protocol = Protocol(**kwargs)  # pywinrm takes them as they are (no connection is made)
    assert protocol.transport.kerberos_delegation is True
    assert protocol.transport.auth_method == "kerberos"
    assert protocol_kwargs(_settings(tmp_path, ansible_winrm_transport="kerberos"))["kerberos_delegation"] is False


def test_credssp_settings_reach_pywinrm_protocol_kwargs(tmp_path):
    kwargs = protocol_kwargs(
        _settings(tmp_path, ansible_winrm_transport="credssp", ansible_winrm_credssp_disable_tlsv1_2="no")
    )
    assert kwargs["transport"] == "credssp" and kwargs["credssp_disable_tlsv1_2"] is False
    assert "kerberos_delegation" not in kwargs
    assert Protocol(**kwargs).transport.auth_method == "credssp"
    assert "credssp_disable_tlsv1_2" not in protocol_kwargs(_settings(tmp_path, ansible_winrm_transport="ntlm"))


# -- the lab accepts CredSSP as Windows does ------------------------------------------------------
Executor = EchoExecutor  # plain commands answer their host name; lync2fa's session loop answers requests


@pytest.fixture
def lab(tmp_path):
    executor = Executor()
    server = WSManServer(
        {"ca01": 0, "cl01": 0}, executor, {USER: PASSWORD, LOCAL_USER: LOCAL_PASSWORD}, tmp_path / "state"
    )
    ports = server.start()
    yield server, ports, executor
    server.stop()


def session(port: int, transport: str, user: str = USER, password: str = PASSWORD, **kw) -> winrm.Session:
    return winrm.Session(f"http://127.0.0.1:{port}/wsman", auth=(user, password), transport=transport, proxy=None, **kw)


def test_unmodified_pywinrm_credssp_runs_hostname_with_credssp_encrypted_messages(lab):
    server, ports, executor = lab
    result = session(ports["ca01"], "credssp").run_cmd("hostname")
    assert (result.status_code, result.std_out) == (0, b"CA01\r\n")
    log = server.request_log("ca01")
    handshake = [r for r in log if r["scheme"] == "credssp"]
    assert handshake and handshake[-1]["status"] == 200 and all(r["status"] == 401 for r in handshake[:-1])
    soap = [r for r in log if r["scheme"] is None and r["status"] != 401]
    # Create, Command, Receive, Signal, Delete: every SOAP message sealed with CredSSP's TLS
    assert len(soap) == 5 and all(r["encryption"] == CREDSSP_PROTOCOL for r in soap)
    assert server.encrypted_requests == 5
    assert server.operations("ca01") == ["Create", "Command", "Receive", "Signal", "Delete"]


def test_credssp_shell_logon_is_delegated(lab):
    server, ports, executor = lab
    session(ports["ca01"], "credssp").run_cmd("hostname")
    assert executor.calls == [("ca01", "hostname", LogonInfo("credssp", USER, delegated=True))]
    assert network_error("ad", executor.calls[0][2].delegated) is None
    assert {r["delegated"] for r in server.request_log("ca01") if r["status"] == 200} == {True}


def test_ntlm_shell_logon_is_not_delegated(lab):
    server, ports, executor = lab
    session(ports["ca01"], "ntlm").run_cmd("hostname")
    logon = executor.calls[0][2]
    assert logon == LogonInfo("ntlm", USER, delegated=False)
    assert network_error("ad", logon.delegated) == "An operations error occurred. (Exception from HRESULT: 0x80072020)"
    assert "ANONYMOUS LOGON" in network_error("cms", logon.delegated)
    assert {r["encryption"] for r in server.request_log("ca01") if r["status"] == 200 and not r["scheme"]} == {
        "application/HTTP-SPNEGO-session-encrypted"
    }


@pytest.mark.parametrize("user", [LOCAL_USER, ".\\" + LOCAL_USER, "CL01\\" + LOCAL_USER])
def test_basic_logon_of_a_local_account_is_accepted_but_never_delegated(lab, user):
    server, ports, executor = lab
    assert session(ports["cl01"], "basic", user, LOCAL_PASSWORD).run_cmd("hostname").std_out == b"CL01\r\n"
    assert executor.calls[0][2] == LogonInfo("basic", LOCAL_USER, delegated=False)


@pytest.mark.parametrize("user", [USER, "lync2fa-admin@corp.lync2fa.test", "lync2fa-admin", "CA01\\" + LOCAL_USER])
def test_basic_refuses_a_domain_account_with_401_whatever_the_password(lab, user):
    """WinRM's Basic logs on local accounts only: DOMAIN\\user and user@domain get a 401 although
    the password is right, and a bare name is looked up among the host's local accounts only."""
    server, ports, executor = lab
    password = LOCAL_PASSWORD if user.endswith(LOCAL_USER) else PASSWORD  # CA01\\...: another host's name
    with pytest.raises(InvalidCredentialsError):
        session(ports["cl01"], "basic", user, password).run_cmd("hostname")
    log = server.request_log("cl01")
    assert log and {r["status"] for r in log} == {401} and executor.calls == []


def test_credssp_and_ntlm_logons_of_a_local_account(lab):
    server, ports, executor = lab
    session(ports["cl01"], "credssp", LOCAL_USER, LOCAL_PASSWORD).run_cmd("hostname")
    session(ports["cl01"], "ntlm", LOCAL_USER, LOCAL_PASSWORD).run_cmd("hostname")
    assert [c[2] for c in executor.calls] == [
        LogonInfo("credssp", LOCAL_USER, True),
        LogonInfo("ntlm", LOCAL_USER, False),
    ]


def test_wrong_password_over_credssp_is_refused_with_401(lab):
    server, ports, executor = lab
    with pytest.raises(NTStatusException) as refused:
        session(ports["ca01"], "credssp", password="not-the-password").run_cmd("hostname")
    assert refused.value.status == 0x8009030C  # SEC_E_LOGON_DENIED, from the error TSRequest
    log = server.request_log("ca01")
    assert log and all(r["status"] == 401 for r in log) and not any(r["auth"] for r in log)
    assert executor.calls == [] and server.operations("ca01") == []


def test_wrong_password_over_credssp_is_an_authentication_error_in_lync2fa(lab):
    server, ports, executor = lab
    settings = ConnectionSettings(
        host="ca01",
        address="127.0.0.1",
        port=ports["ca01"],
        scheme="http",
        transport="credssp",
        user=USER,
        password="not-the-password",
    )
    with pytest.raises(TransportError, match="authentication refused for user .* \\(credssp\\)"):
        WinRMConnection(settings).request(facts("a"))


def test_delegated_credentials_must_be_the_authenticated_accounts_password(lab):
    """A client that authenticates as one account but delegates another's (or a wrong) password
    gets no session: the logon Windows makes from TSCredentials would fail."""
    import requests
    import spnego

    server, ports, executor = lab
    inner = spnego.client(
        USER,
        PASSWORD,
        hostname="127.0.0.1",
        service="HTTP",
        protocol="negotiate",
        options=spnego.NegotiateOptions.use_negotiate,
    )
    ctx = spnego.client(
        USER,
        "a-different-password",
        hostname="127.0.0.1",
        service="HTTP",
        protocol="credssp",
        credssp_negotiate_context=inner,
    )
    url = f"http://127.0.0.1:{ports['ca01']}/wsman"
    statuses = []
    with requests.Session() as http:
        http.trust_env = False
        token = ctx.step()
        while token:
            response = http.post(
                url,
                data=b"",
                headers={"Authorization": "CredSSP " + base64.b64encode(token).decode(), "Connection": "Keep-Alive"},
            )
            statuses.append(response.status_code)
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code != 401 or not challenge.startswith("CredSSP "):
                break
            token = ctx.step(base64.b64decode(challenge.split(" ", 1)[1]))
    assert ctx.complete  # the handshake itself went through: NTLM inside TLS was right
    assert statuses[-1] == 401 and 200 not in statuses
    assert not any(r["auth"] for r in server.request_log("ca01"))


def test_large_messages_travel_in_16k_credssp_parts_both_ways(lab):
    server, ports, executor = lab
    p = Protocol(
        f"http://127.0.0.1:{ports['ca01']}/wsman", transport="credssp", username=USER, password=PASSWORD, proxy=None
    )
    shell = p.open_shell()
    cid = p.run_command(shell, "big", ["y" * 40_000])  # a request over 16 KiB: multipart/x-multi-encrypted
    stdout, _, rc = p.get_command_output(shell, cid)  # so is the response
    p.cleanup_command(shell, cid)
    p.close_shell(shell)
    assert (len(stdout), rc) == (100_002, 0)


def test_credssp_through_lync2fa_transport_runs_scripts_with_secrets(lab):
    server, ports, executor = lab
    settings = ConnectionSettings(
        host="ca01",
        address="127.0.0.1",
        port=ports["ca01"],
        scheme="http",
        transport="credssp",
        user=USER,
        password=PASSWORD,
    )
    assert settings.delegates
    conn = WinRMConnection(settings)
    big = hostscript.facts_request({f"f{i}": {"kind": "file", "path": "C:\\" + "x" * 200} for i in range(1200)})
    answers = [conn.request(big, {"pin": "12345678"}), conn.request(facts("two"))]
    conn.close()
    assert [len(a["facts"]) for a in answers] == [1200, 1]
    assert [c[2] for c in executor.calls] == [LogonInfo("credssp", USER, True)]  # one process
    assert [r[2] for r in executor.requests] == [{"pin": "12345678"}, {}]
    assert server.operations("ca01").count("Create") == 1


def test_pypsrp_is_a_second_credssp_client(lab):
    from pypsrp.shell import Process, WinRS
    from pypsrp.wsman import WSMan

    server, ports, executor = lab
    wsman = WSMan(
        "127.0.0.1",
        port=ports["cl01"],
        username=USER,
        password=PASSWORD,
        ssl=False,
        auth="credssp",
        encryption="auto",
        no_proxy=True,
    )
    with wsman, WinRS(wsman) as shell:
        proc = Process(shell, "hostname")
        proc.invoke()
        assert (proc.stdout, proc.rc) == (b"CL01\r\n", 0)
    assert executor.calls[0][2] == LogonInfo("credssp", USER, True)
    assert server.encrypted_requests > 0


def test_credssp_over_https(tmp_path):
    from lync2fa.lab import tls

    tls.generate(tmp_path)
    executor = Executor()
    with WSManServer(
        {"edge01": 0}, executor, {USER: PASSWORD}, tmp_path / "state", tls=tls.server_context(tmp_path)
    ) as server:
        result = winrm.Session(
            f"https://127.0.0.1:{server.ports['edge01']}/wsman",
            auth=(USER, PASSWORD),
            transport="credssp",
            proxy=None,
            server_cert_validation="validate",
            ca_trust_path=str(tmp_path / tls.CA_PEM),
        ).run_cmd("hostname")
        assert result.std_out == b"EDGE01\r\n"
        assert server.encrypted_requests == 0  # message encryption auto: TLS already protects https
    assert executor.calls[0][2] == LogonInfo("credssp", USER, True)


def test_a_service_without_credssp_does_not_offer_it(tmp_path):
    executor = Executor()
    with WSManServer({"ca01": 0}, executor, {USER: PASSWORD}, tmp_path / "state", credssp=False) as server:
        settings = ConnectionSettings(
            host="ca01",
            address="127.0.0.1",
            port=server.ports["ca01"],
            scheme="http",
            transport="credssp",
            user=USER,
            password=PASSWORD,
        )
        with pytest.raises(TransportError, match="authentication refused"):
            WinRMConnection(settings).request(facts("a"))
    assert executor.calls == []


# -- the lab's inventory -------------------------------------------------------------------------
def test_lab_inventory_defaults_to_credssp_and_keeps_a_chosen_transport(tmp_path):
    from lync2fa.lab import control
    from lync2fa.lab.estate import Estate, write_inventory

    def settings(directory):
        estate = Estate.load(directory)
        for port, h in enumerate(estate.hosts, start=40000):  # as a started lab has them
            h.port = port
        write_inventory(estate, directory)  # as a restart that rebinds a port does
        return ConnectionSettings.from_host(api.load_inventory(directory / "hosts.yml").host("ca01"))

    control.create(tmp_path / "a", clients=1)
    s = settings(tmp_path / "a")
    assert (s.transport, s.delegates, s.message_encryption, s.scheme) == ("credssp", True, "auto", "http")
    control.create(tmp_path / "b", clients=1, transport="ntlm")
    s = settings(tmp_path / "b")
    assert (s.transport, s.delegates) == ("ntlm", False)


def test_a_basic_lab_signs_in_with_the_hosts_local_account_and_refuses_the_domain_admin(make_lab):
    """``lab up --transport basic``: the inventory names the local account every lab host has (its
    own generated password, not the domain admin's); the domain admin over Basic gets a 401."""
    from lync2fa.lab.estate import Estate

    lab = make_lab(clients=1, transport="basic")
    estate = Estate.load(lab.dir)
    s = ConnectionSettings.from_host(lab.load_inventory().host("ca01"))
    assert (s.transport, s.user, s.password) == ("basic", estate.local_user, estate.local_password)
    assert "\\" not in s.user and s.password != estate.password and not s.delegates
    conn = WinRMConnection(s)
    assert conn.request(facts("a"))["facts"]["a"]["ok"]
    conn.close()
    domain_admin = dataclasses.replace(s, user=estate.account, password=estate.password)
    with pytest.raises(TransportError, match="authentication refused for user .* \\(basic\\)"):
        WinRMConnection(domain_admin, retries=0).request(facts("b"))
