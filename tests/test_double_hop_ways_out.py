"""Issue 7, the double hop: the ways out the planner names work, and the lab fails the second hop
with each resource's own Windows error.

A session without network credentials (NTLM here) may still do what it needs when the cmdlet
logs on with an explicit credential (``Install-AdcsCertificationAuthority -Credential``), or when
the resource is on the host itself (AD on a domain controller, the CMS on a Standard Edition
server: ``lync2fa_local_resources``). Everything else that leaves the host fails as on Windows:
LDAP with "An operations error occurred.", the CMS with SQL's login failure for ANONYMOUS LOGON,
a CA on another server with access denied over DCOM.
"""

from __future__ import annotations

import pytest

from lync2fa.lab import control
from lync2fa.lab.dispatch import Dispatcher
from lync2fa.lab.estate import Estate
from lync2fa.lab.faults import FaultBook
from lync2fa.lab.logon import NETWORK_ERRORS, LogonInfo
from lync2fa.lab.windows import Machine, certificates, errors, scheduled_tasks
from lync2fa.lab.windows.machine import DOMAIN_CONTROLLER
from lync2fa.plan import PlanError, build_plan
from lync2fa.plugin_manager import collect_tasks, default_plugin_manager
from lync2fa.task import ParameterError

TASKS = collect_tasks(default_plugin_manager())
CA_CONFIG = "ca01.corp.lync2fa.test\\Lync2FA Lab Root CA"


def cli(run_cli, lab, command: str, tasks: str, *extra: str):
    return run_cli(command, "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", tasks, *extra)


# -- an explicit credential: Install-AdcsCertificationAuthority -Credential ---------------------
def test_refusal_names_the_explicit_credential_way_out(make_lab):
    lab = make_lab(clients=0, transport="ntlm")
    with pytest.raises(PlanError) as refused:
        build_plan(lab.load_inventory(), {"ca.authority": TASKS["ca.authority"]})
    text = str(refused.value)
    assert "ca01: ca.authority reaches Active Directory" in text
    assert "Install-AdcsCertificationAuthority -Credential" in text and "ca_install_password" in text
    # every way out is named: a delegating transport, the resource on the host itself, runas
    assert "credssp" in text and "ansible_winrm_kerberos_delegation" in text
    assert "lync2fa_local_resources" in text and "domain controller" in text and "become_method: runas" in text


def test_ntlm_with_an_install_credential_plans_and_installs_the_enterprise_ca(make_lab, run_cli):
    lab = make_lab(clients=0, transport="ntlm")
    password = Estate.load(lab.dir).password
    lab.inventory_with(
        {"ca01": {"ca_install_user": "CORP\\lync2fa-admin", "ca_install_password": password}}, lab.inventory.name
    )
    assert build_plan(lab.load_inventory(), {"ca.authority": TASKS["ca.authority"]}).steps  # not refused
    # preflight asks of the session only what it must reach itself: the cmdlet's credential covers AD.
    applied = cli(run_cli, lab, "apply", "ca.authority")
    assert applied.code == 0, applied.out + applied.err
    assert (lab.ca_of("ca01") or {}).get("common_name") == "Lync2FA Lab Root CA"
    install = next(o for o in lab.operations("ca01") if o.get("cmdlet") == "Install-AdcsCertificationAuthority")
    # The password travels as a secret placeholder, never in the operation (nor in the output).
    assert install["params"]["Credential"] == {
        "pscredential": {"user": "CORP\\lync2fa-admin", "password": {"secret": "ca.authority/install_password"}}
    }
    assert password not in applied.out + applied.err


def test_a_wrong_install_password_fails_as_windows_logon_failure(make_lab, run_cli):
    lab = make_lab(clients=0, transport="ntlm")
    lab.inventory_with(
        {"ca01": {"ca_install_user": "CORP\\lync2fa-admin", "ca_install_password": "not-the-password"}},
        lab.inventory.name,
    )
    applied = cli(run_cli, lab, "apply", "ca.authority", "--skip-preflight")
    assert applied.code != 0
    assert "The user name or password is incorrect. 0x8007052e" in applied.out + applied.err
    assert lab.ca_of("ca01") is None


def test_install_user_and_password_go_together():
    task = TASKS["ca.authority"]
    with pytest.raises(ParameterError, match="ca_install_user and ca_install_password go together"):
        task.validate({"common_name": "Contoso Root CA", "install_user": "CORP\\pki-admin"})
    assert "install_password" in task.secret_params


# -- the resource on the host itself: lync2fa_local_resources ---------------------------------------
def test_ntlm_on_a_domain_controller_applies_the_ca_tier(make_lab, run_cli):
    lab = make_lab(clients=0, transport="ntlm")
    lab.set_machine_props("ca01", product_type=DOMAIN_CONTROLLER)
    lab.inventory_with({"ca01": {"lync2fa_local_resources": ["ad"]}}, lab.inventory.name)
    applied = cli(run_cli, lab, "apply", "ca")  # preflight included: the DC's session reads AD
    assert applied.code == 0, applied.out + applied.err
    assert (lab.ca_of("ca01") or {}).get("common_name") == "Lync2FA Lab Root CA"
    again = cli(run_cli, lab, "apply", "ca", "--json")
    assert again.code == 0 and not any(r["changed"] for r in again.json()["results"])


def test_local_resources_on_a_host_that_is_not_a_domain_controller_fails_as_windows_does(make_lab, run_cli):
    lab = make_lab(clients=0, transport="ntlm")
    # a claim the host does not bear out:
    lab.inventory_with({"ca01": {"lync2fa_local_resources": ["ad"]}}, lab.inventory.name)
    applied = cli(run_cli, lab, "apply", "ca.authority", "--skip-preflight")
    assert applied.code != 0
    assert "An operations error occurred." in applied.out + applied.err
    assert lab.ca_of("ca01") is None


def test_ntlm_on_a_standard_edition_server_that_is_not_a_dc_is_refused_for_the_cms_ad_lookup(make_lab, run_cli):
    """Lync finds its CMS through a service connection point in AD: a Standard Edition server's own
    CMS does not spare the second hop to AD, so the plan refuses it with the AD reason, and the lab
    (asked anyway) fails the AD lookup as Windows does."""
    lab = make_lab(clients=0, transport="ntlm")
    lab.set_machine_props("pool01", cms_local=True)
    lab.inventory_with({"pool01": {"lync2fa_local_resources": ["cms"]}}, lab.inventory.name)
    refused = cli(run_cli, lab, "plan", "lync.web_service", "--limit", "pool01")
    assert refused.code == 2 and "pool01: lync.web_service reaches Active Directory," in refused.err
    assert "only when that server is also a domain controller" in refused.err
    lab.inventory_with({"pool01": {"lync2fa_local_resources": ["ad", "cms"]}}, lab.inventory.name)  # a false claim
    applied = cli(run_cli, lab, "apply", "lync.web_service", "--limit", "pool01", "--skip-preflight")
    assert applied.code != 0 and NETWORK_ERRORS["ad"] in applied.out + applied.err


def test_ntlm_on_a_standard_edition_server_that_is_a_dc_applies_the_cms_only_lync_tasks(make_lab, run_cli):
    lab = make_lab(clients=0, transport="ntlm")
    lab.set_machine_props("pool01", cms_local=True, product_type=DOMAIN_CONTROLLER)
    lab.inventory_with({"pool01": {"lync2fa_local_resources": ["ad", "cms"]}}, lab.inventory.name)
    tasks = "lync.web_service,lync.registrar_proxy,lync.edge_proxy"
    applied = cli(run_cli, lab, "apply", tasks, "--limit", "pool01", "--json")  # preflight included
    assert applied.code == 0, applied.out + applied.err
    assert {(r["task"], r["changed"]) for r in applied.json()["results"]} == {
        ("lync.web_service", True),
        ("lync.registrar_proxy", True),
        ("lync.edge_proxy", True),
    }


# -- the lab's second hop: each resource's own error ------------------------------------------------
@pytest.fixture
def estate(tmp_path):
    """A lab estate (not served): a Machine per host, with or without network credentials."""
    control.create(tmp_path / "lab", clients=1)
    store = control.open_store(tmp_path / "lab")
    estate = Estate.load(tmp_path / "lab")

    def machine(host: str, delegated: bool) -> Machine:
        return Machine(store, estate, estate.host(host), delegated=delegated)

    yield machine
    store.close()


def _fails(call) -> errors.WindowsError:
    with pytest.raises(errors.WindowsError) as caught:
        call()
    return caught.value


def test_ad_over_a_session_without_credentials_is_an_ldap_operations_error(estate):
    error = _fails(lambda: estate("pool01", False).invoke("Get-CsUser", {}))
    assert error.message == NETWORK_ERRORS["ad"] and error.hresult == errors.OPERATIONS_ERROR
    assert estate("pool01", True).invoke("Get-CsUser", {})


def test_the_cms_over_a_session_without_credentials_is_first_the_ad_lookup_of_its_location(estate):
    error = _fails(lambda: estate("pool01", False).invoke("Get-CsWebServiceConfiguration", {}))
    assert error.message == NETWORK_ERRORS["ad"] and error.hresult == errors.OPERATIONS_ERROR


def test_the_cms_over_a_session_without_credentials_on_a_dc_is_the_sql_login_failure(estate):
    pool = estate("pool01", False)
    pool.set_props(product_type=DOMAIN_CONTROLLER)  # AD is local: the CMS in SQL on another server is not
    error = _fails(lambda: pool.invoke("Get-CsWebServiceConfiguration", {}))
    assert "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'." in error.message
    assert error.error_id == "System.Data.SqlClient.SqlException" and error.hresult == errors.SQL_EXCEPTION
    assert "operations error" not in error.message


def test_a_standard_edition_server_reads_its_own_cms_only_when_it_also_holds_ad(estate):
    pool = estate("pool01", False)
    pool.set_props(cms_local=True)
    assert _fails(lambda: pool.invoke("Get-CsWebServiceConfiguration", {})).message == NETWORK_ERRORS["ad"]
    assert _fails(lambda: pool.invoke("Get-CsUser", {})).message == NETWORK_ERRORS["ad"]
    pool.set_props(product_type=DOMAIN_CONTROLLER)
    assert pool.invoke("Get-CsWebServiceConfiguration", {})


def test_a_domain_controller_reaches_its_own_ad_without_credentials(estate):
    pool = estate("pool01", False)
    pool.set_props(product_type=DOMAIN_CONTROLLER)
    assert pool.invoke("Get-CsUser", {})


def _install_ca(machine: Machine) -> None:
    machine.invoke("Install-WindowsFeature", {"Name": "ADCS-Cert-Authority"})
    machine.invoke(
        "Install-AdcsCertificationAuthority",
        {"CAType": "EnterpriseRootCA", "CACommonName": "Lync2FA Lab Root CA", "KeyLength": 2048, "Force": True},
    )


def test_a_remote_ca_over_a_session_without_credentials_is_access_denied(estate):
    _install_ca(estate("ca01", True))
    error = _fails(lambda: certificates.find_ca(estate("cl0001", False), CA_CONFIG, "CCertRequest::Submit"))
    assert error.message == "CCertRequest::Submit: Access is denied. 0x80070005 (WIN32: 5 ERROR_ACCESS_DENIED)"
    assert error.hresult == errors.ACCESS_DENIED
    assert certificates.find_ca(estate("cl0001", True), CA_CONFIG, "CCertRequest::Submit")[0] == "ca01"
    assert certificates.find_ca(estate("ca01", False), CA_CONFIG, "CCertRequest::Submit")[0] == "ca01"  # its own


def test_a_users_scheduled_task_reaches_the_ca_from_an_ntlm_session(estate):
    """client.enrollment enrolls in a scheduled task as the signed-in user: that logon holds the
    user's network credentials, whatever the WinRM session's transport."""
    _install_ca(estate("ca01", True))
    client = estate("cl0001", False)

    def job() -> dict:
        return {"ca": certificates.find_ca(client, CA_CONFIG, "CCertRequest::GetCACertificate")[0]}

    assert scheduled_tasks.run_job(client, "CORP\\user01", job, timeout_s=5) == {"ca": "ca01"}
    assert not client.delegated  # the session itself still has none


# -- become runas: LogonUser with the account's password, as a cmdlet's -Credential logs on ---------
def test_runas_with_the_password_but_another_domain_is_refused_as_a_windows_logon_failure(tmp_path):
    """The same check as ``Install-AdcsCertificationAuthority -Credential``: the lab's domain account
    in its own domain (``CORP\\name``, ``name@domain``), with its password; not another domain's."""
    control.create(tmp_path / "lab", clients=0)
    store = control.open_store(tmp_path / "lab")
    estate = Estate.load(tmp_path / "lab")
    session = LogonInfo("ntlm", estate.account)
    runas = Dispatcher(store, estate, FaultBook(store)).runas
    try:
        for user in (estate.account, f"{estate.admin_user}@{estate.domain}"):
            logon, error = runas("ca01", session, {"user": user, "password": estate.password})
            assert error is None and logon == LogonInfo("runas:Interactive", estate.account, True)
        for user, password in (
            (f"OTHER\\{estate.admin_user}", estate.password),
            (f"{estate.admin_user}@other.invalid", estate.password),
            (estate.account, "not-the-password"),
        ):
            logon, error = runas("ca01", session, {"user": user, "password": password})
            assert logon is session
            assert error == (
                f"Failed to become user {user}: LogonUser failed (The user name or password is incorrect, "
                "Win32ErrorCode 1326 - 0x0000052E)"
            )
    finally:
        store.close()
