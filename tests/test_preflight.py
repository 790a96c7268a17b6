"""lync2fa preflight (issue 7): read-only checks of every host, one request per host; apply runs
them first and changes nothing when one fails."""

from __future__ import annotations

from lync2fa.execution_policy import SCOPES, effective
from lync2fa.lab import control
from lync2fa.lab.windows.registry import Registry


def _set_gpo_policy(lab, host: str, policy: str) -> None:
    """Group Policy 'Turn on Script Execution' on a host, as the registry holds it."""
    store = control.open_store(lab.dir)
    try:
        with store.transaction():
            registry = Registry(store, host)
            registry.set(SCOPES["MachinePolicy"], "EnableScripts", 1, "DWord")
            registry.set(SCOPES["MachinePolicy"], "ExecutionPolicy", policy, "String")
    finally:
        store.close()


def _checks(result) -> dict:
    return {(c["host"], c["name"]): (c["status"], c["detail"]) for c in result.json()["checks"]}


def test_preflight_on_a_clean_lab_is_all_ok(make_lab, run_cli):
    lab = make_lab(clients=1)
    result = run_cli("preflight", "-i", lab.inventory, "--json")
    assert result.code == 0, result.out
    checks = _checks(result)
    assert {status for status, _ in checks.values()} == {"ok"}, checks
    hosts = {host for host, _ in checks}
    assert hosts == {"ca01", "adfs01", "pool01", "dir01", "cl0001"}  # every host a task targets
    assert checks[("cl0001", "tpm")][0] == "ok" and checks[("ca01", "certsrv https")][0] == "ok"
    assert checks[("ca01", "reach AD")][0] == "ok"
    assert lab.operations() == []  # read-only: not a single operation


def test_preflight_reports_the_ca_modules_the_rollout_installs_and_never_fails_on_their_absence(make_lab, run_cli):
    lab = make_lab(clients=1)

    def module_checks() -> dict:
        result = run_cli("preflight", "-i", lab.inventory, "--json", "--limit", "ca01")
        assert result.code == 0, result.out
        checks = _checks(result)
        return {name: checks[("ca01", f"module {name}")] for name in ("ADCSDeployment", "WebAdministration")}

    lab.set_machine_props("ca01", modules=["ServerManager"])  # before the rollout installed AD CS and IIS
    assert module_checks() == {
        "ADCSDeployment": ("ok", "ADCSDeployment not installed yet: installed by ca.authority"),
        "WebAdministration": ("ok", "WebAdministration not installed yet: installed by ca.web_enrollment"),
    }
    lab.set_machine_props("ca01", modules=["ADCSDeployment", "ServerManager", "WebAdministration"])
    assert module_checks() == {
        "ADCSDeployment": ("ok", "ADCSDeployment present"),
        "WebAdministration": ("ok", "WebAdministration present"),
    }
    assert lab.operations() == []


def test_preflight_reports_each_broken_host_and_apply_changes_nothing(make_lab, run_cli):
    lab = make_lab(clients=2)
    lab.set_machine_props("adfs01", powershell_version="2.0")
    _set_gpo_policy(lab, "cl0001", "AllSigned")
    lab.set_machine_props("cl0002", tpm={"present": False, "ready": False})
    lab.put("iis_bindings", "ca01", [{"site": "Default Web Site", "protocol": "http", "bindingInformation": "*:80:"}])
    before = lab.snapshot()

    result = run_cli("preflight", "-i", lab.inventory, "--json")
    assert result.code == 1
    checks = _checks(result)
    assert checks[("adfs01", "powershell")][0] == "fail" and "5.1" in checks[("adfs01", "powershell")][1]
    assert checks[("cl0001", "execution policy")][0] == "warn"
    assert "AllSigned (MachinePolicy" in checks[("cl0001", "execution policy")][1]
    assert checks[("cl0002", "tpm")][0] == "fail"
    assert checks[("ca01", "certsrv https")][0] == "fail" and "403.4" in checks[("ca01", "certsrv https")][1]
    assert checks[("cl0001", "tpm")][0] == "ok"  # the other hosts are fine

    human = run_cli("preflight", "-i", lab.inventory)
    assert human.code == 1 and "adfs01" in human.out and "preflight:" in human.out

    applied = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir)
    assert applied.code == 1 and "apply refused: preflight failed (nothing was changed)" in applied.out
    assert lab.operations() == [] and lab.snapshot() == before


def test_effective_execution_policy_follows_powershells_precedence():
    gpo = {"values": {"EnableScripts": 1, "ExecutionPolicy": "AllSigned"}}
    machine = {"values": {"ExecutionPolicy": "Unrestricted"}}
    assert effective({"MachinePolicy": gpo}, 3, process="Bypass") == ("AllSigned", "MachinePolicy")
    assert effective({"MachinePolicy": {"values": {"EnableScripts": 0}}}, 3) == ("Restricted", "MachinePolicy")
    assert effective({"LocalMachine": machine}, 1, process="Bypass") == ("Bypass", "Process")
    assert effective({"LocalMachine": machine}, 1) == ("Unrestricted", "LocalMachine")
    assert effective({}, 1) == ("Restricted", "default") and effective({}, 3) == ("RemoteSigned", "default")


def test_preflight_checks_a_local_ad_claim_against_the_host(make_lab, run_cli):
    """lync2fa_local_resources: [ad] lifts the double-hop refusal; preflight checks the claim (the host
    must be a domain controller), so a wrong claim fails before apply, not halfway through it."""
    lab = make_lab(clients=0, transport="ntlm")
    text = lab.inventory.read_text().replace("ca01:\n", "ca01:\n          lync2fa_local_resources: [ad]\n", 1)
    lab.inventory.write_text(text)
    result = run_cli("preflight", "-i", lab.inventory, "--json", "--limit", "ca01")
    status, detail = _checks(result)[("ca01", "local AD")]
    assert result.code == 1 and status == "fail" and "not a domain controller" in detail
    lab.set_machine_props("ca01", product_type=2)  # it is one
    result = run_cli("preflight", "-i", lab.inventory, "--json", "--limit", "ca01")
    assert _checks(result)[("ca01", "local AD")][0] == "ok"
