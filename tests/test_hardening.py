"""Issue 12 (hardening): refusals before any connection, clear errors instead of tracebacks.

Nothing here sends traffic beyond 127.0.0.0/8: remote hosts are named under ``.invalid`` (which
never resolves) and every refusal is proven before a connection is made.
"""
from __future__ import annotations

import textwrap

import pytest
import yaml

from lync2fa import api
from lync2fa.connection import ConnectionConfigError, ConnectionSettings

REMOTE = "ca01.corp.invalid"
BASE = {"ansible_user": "CORP\\admin", "ansible_password": "S3cret-Passw0rd"}


def _inventory(tmp_path, host_vars: dict, name: str = REMOTE, group: str = "ca", fmt: str = "yaml"):
    if fmt == "ini":
        line = " ".join([name] + [f"{k}={v}" for k, v in {**BASE, **host_vars}.items()])
        path = tmp_path / "hosts.ini"
        path.write_text(f"[{group}]\n{line}\n")
    else:
        path = tmp_path / "hosts.yml"
        path.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": {name: {**BASE, **host_vars}}}}}}))
    return api.load_inventory(path)


def _settings(tmp_path, fmt: str = "yaml", name: str = REMOTE, **host_vars) -> ConnectionSettings:
    return ConnectionSettings.from_host(_inventory(tmp_path, host_vars, name=name, fmt=fmt).host(name))


# -- 1. Basic over plain http: no bypass ---------------------------------------------------------
@pytest.mark.parametrize("scheme", ["http", "HTTP", " Http "])
def test_basic_over_http_to_a_remote_host_is_refused_whatever_the_scheme_case(tmp_path, scheme):
    with pytest.raises(ConnectionConfigError, match="Basic authentication over plain http"):
        _settings(tmp_path, ansible_port=5985, ansible_winrm_scheme=scheme, ansible_winrm_transport="basic")


@pytest.mark.parametrize("value", ["false", "no", "0", "off"])
def test_allow_insecure_transport_false_in_an_ini_inventory_is_false(tmp_path, value):
    with pytest.raises(ConnectionConfigError, match="lync2fa_allow_insecure_transport: true"):
        _settings(tmp_path, fmt="ini", ansible_port=5985, ansible_winrm_scheme="http",
                  ansible_winrm_transport="basic", lync2fa_allow_insecure_transport=value)


def test_allow_insecure_transport_must_be_a_boolean(tmp_path):
    with pytest.raises(ConnectionConfigError, match="lync2fa_allow_insecure_transport must be a boolean"):
        _settings(tmp_path, fmt="ini", ansible_port=5985, ansible_winrm_transport="basic",
                  lync2fa_allow_insecure_transport="maybe")


def test_allow_insecure_transport_true_is_a_warning(tmp_path):
    s = _settings(tmp_path, fmt="ini", ansible_port=5985, ansible_winrm_transport="basic",
                  lync2fa_allow_insecure_transport="yes")
    assert any("in clear text" in w and "lync2fa_allow_insecure_transport: true" in w for w in s.warnings)


@pytest.mark.parametrize("path", ["@ca01.corp.invalid:15985/wsman", "wsman", "//ca01.corp.invalid/wsman",
                                  "http://ca01.corp.invalid/wsman", "/ws@man", "/wsman?x=1", "/ws man"])
def test_a_winrm_path_that_is_not_a_path_is_refused(tmp_path, path):
    with pytest.raises(ConnectionConfigError, match="ansible_winrm_path .* is not a URL path"):
        _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985,
                  ansible_winrm_transport="basic", ansible_winrm_path=path)


@pytest.mark.parametrize("address", ["127.0.0.1@ca01.corp.invalid", "ca01.corp.invalid/x", "127.0.0.1 x"])
def test_a_host_address_that_is_not_an_address_is_refused(tmp_path, address):
    with pytest.raises(ConnectionConfigError, match="is not a host name or IP address"):
        _settings(tmp_path, name="ca01", ansible_host=address, ansible_port=5985, ansible_winrm_transport="basic")


def test_loopback_is_decided_from_the_url_and_its_proxy(tmp_path, monkeypatch):
    s = _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985, ansible_winrm_transport="basic")
    assert s.endpoint == "http://127.0.0.1:5985/wsman" and not s.warnings
    assert _settings(tmp_path, name="ca01", ansible_host="::1", ansible_port=5985,
                     ansible_winrm_transport="basic").endpoint == "http://[::1]:5985/wsman"
    # a proxy from the environment would carry loopback traffic off this machine
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp.invalid:3128")
    with pytest.raises(ConnectionConfigError, match="Basic authentication over plain http"):
        _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985, ansible_winrm_transport="basic")


# -- 2. message encryption, certificate validation -----------------------------------------------
def test_message_encryption_never_to_a_remote_http_host_is_refused_and_says_why(tmp_path):
    with pytest.raises(ConnectionConfigError) as err:
        _settings(tmp_path, ansible_port=5985, ansible_winrm_message_encryption="never")
    assert "PINs, PUKs, passwords" in str(err.value) and "in clear" in str(err.value)
    assert "lync2fa_allow_insecure_transport: true" in str(err.value)
    s = _settings(tmp_path, ansible_port=5985, ansible_winrm_message_encryption="never",
                  lync2fa_allow_insecure_transport=True)
    assert any("message_encryption: never" in w for w in s.warnings)
    # over https, or to loopback, "never" is not a leak
    assert not _settings(tmp_path, ansible_port=5986, ansible_winrm_message_encryption="never").warnings
    assert not _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985,
                         ansible_winrm_message_encryption="Never").warnings


@pytest.mark.parametrize("name,value", [("ansible_winrm_message_encryption", "sometimes"),
                                        ("ansible_winrm_server_cert_validation", False),
                                        ("ansible_winrm_server_cert_validation", "false"),
                                        ("ansible_winrm_server_cert_validation", "no"),
                                        ("ansible_winrm_scheme", "ftp")])
def test_connection_choices_are_what_ansible_accepts(tmp_path, name, value):
    with pytest.raises(ConnectionConfigError, match=f"{REMOTE}: {name} must be one of"):
        _settings(tmp_path, **{name: value})


def test_cert_validation_ignore_is_accepted_with_a_warning(tmp_path):
    s = _settings(tmp_path, ansible_winrm_server_cert_validation="ignore")
    assert s.cert_validation == "ignore" and any("validation is off" in w for w in s.warnings)


# -- 8. ports -------------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["notaport", 0, 70000, "5985.5"])
def test_a_port_that_is_not_a_port_names_host_and_variable(tmp_path, port):
    with pytest.raises(ConnectionConfigError, match=f"{REMOTE}: ansible_port must be"):
        _settings(tmp_path, ansible_port=port)
