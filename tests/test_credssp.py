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

import pytest
import winrm
import yaml
from requests_credssp.exceptions import NTStatusException
from winrm.protocol import Protocol

from lync2fa import api
from lync2fa.connection import ConnectionSettings
from lync2fa.lab.logon import LogonInfo
from lync2fa.lab.wsman import CREDSSP_PROTOCOL, CommandOutcome, WSManServer
from lync2fa.transport import TransportError, WinRMConnection, protocol_kwargs

USER, PASSWORD = "CORP\\lync2fa-admin", "Delegate-Me-42"
LOCAL_USER, LOCAL_PASSWORD = "localadmin", "Local-Only-7"


# -- settings: which transports delegate, and what pywinrm is given ------------------------------
def _settings(tmp_path, **host_vars) -> ConnectionSettings:
    path = tmp_path / "hosts.yml"
    host = {"ansible_host": "127.0.0.1", "ansible_port": 5985, "ansible_user": USER,
            "ansible_password": PASSWORD, **host_vars}
    path.write_text(yaml.safe_dump({"all": {"children": {"ca": {"hosts": {"ca01": host}}}}}))
    return ConnectionSettings.from_host(api.load_inventory(path).host("ca01"))


@pytest.mark.parametrize("transport, extra, delegates", [
    ("credssp", {}, True),
    ("kerberos", {"ansible_winrm_kerberos_delegation": True}, True),
    ("kerberos", {"ansible_winrm_kerberos_delegation": "yes"}, True),    # Ansible's booleans
    ("kerberos", {"ansible_winrm_kerberos_delegation": "false"}, False),
    ("kerberos", {}, False),
    ("ntlm", {}, False),
    ("basic", {}, False),
    ("plaintext", {}, False),
    ("certificate", {}, False),
])
def test_settings_delegates_only_for_credssp_and_delegated_kerberos(tmp_path, transport, extra, delegates):
    assert _settings(tmp_path, ansible_winrm_transport=transport, **extra).delegates is delegates


def test_kerberos_delegation_must_be_a_boolean(tmp_path):
    from lync2fa.connection import ConnectionConfigError
    with pytest.raises(ConnectionConfigError, match="ansible_winrm_kerberos_delegation must be a boolean"):
        _settings(tmp_path, ansible_winrm_transport="kerberos", ansible_winrm_kerberos_delegation="perhaps")


def test_kerberos_delegation_reaches_pywinrm_protocol_kwargs(tmp_path):
    s = _settings(tmp_path, ansible_winrm_transport="kerberos", ansible_winrm_kerberos_delegation="true",
                  ansible_winrm_kerberos_hostname_override="ca01.corp.example")
    kwargs = protocol_kwargs(s)
    assert kwargs["transport"] == "kerberos"
    assert kwargs["kerberos_delegation"] is True
    assert kwargs["kerberos_hostname_override"] == "ca01.corp.example"
    assert kwargs["message_encryption"] == "auto"
    protocol = Protocol(**kwargs)   # pywinrm takes them as they are (no connection is made)
    assert protocol.transport.kerberos_delegation is True
    assert protocol.transport.auth_method == "kerberos"
    assert protocol_kwargs(_settings(tmp_path, ansible_winrm_transport="kerberos"))["kerberos_delegation"] is False


def test_credssp_settings_reach_pywinrm_protocol_kwargs(tmp_path):
    kwargs = protocol_kwargs(_settings(tmp_path, ansible_winrm_transport="credssp",
                                       ansible_winrm_credssp_disable_tlsv1_2="no"))
    assert kwargs["transport"] == "credssp" and kwargs["credssp_disable_tlsv1_2"] is False
    assert "kerberos_delegation" not in kwargs
    assert Protocol(**kwargs).transport.auth_method == "credssp"
    assert "credssp_disable_tlsv1_2" not in protocol_kwargs(_settings(tmp_path, ansible_winrm_transport="ntlm"))
