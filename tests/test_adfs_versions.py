"""AD FS versions: a lab host binds the ADFS cmdlets against the docs of the Windows Server its AD FS
version comes with (up to 3.0: the 2012 R2 docs, which lack what 2016 added), and the adfs tier only
ever sends what the oldest version it supports has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lync2fa.catalog import Catalog
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import Machine, adfs, errors

FIXTURES = sorted((Path(__file__).parent / "decisions" / "adfs").glob("*.json"))
NOT_FOUND = "A parameter cannot be found that matches parameter name 'ClientAuthenticationMethods'."


@pytest.fixture
def adfs01(tmp_path):
    """``adfs01(version)``: the Machine of a fresh lab estate's AD FS host (not served) with AD FS
    ``version`` installed."""
    control.create(tmp_path / "lab", clients=0)
    store = control.open_store(tmp_path / "lab")
    estate = Estate.load(tmp_path / "lab")

    def machine(version: str) -> Machine:
        with store.transaction():
            adfs.install(store, estate.host("adfs01"), version, wmf=adfs.WMF_51)
        return Machine(store, estate, estate.host("adfs01"))

    yield machine
    store.close()


def test_adfs3_host_refuses_the_2016_only_client_authentication_methods(adfs01):
    """AD FS 3.0's Set-AdfsGlobalAuthenticationPolicy has no -ClientAuthenticationMethods (2012 R2
    docs); PowerShell's binder refuses the name before the cmdlet runs, and the policy is unchanged."""
    machine = adfs01("3.0")
    before = machine.invoke("Get-AdfsGlobalAuthenticationPolicy", {})
    with pytest.raises(errors.WindowsError) as info:
        machine.invoke("Set-AdfsGlobalAuthenticationPolicy", {"ClientAuthenticationMethods": "None"})
    assert info.value.message == NOT_FOUND
    assert info.value.error_id.startswith("NamedParameterNotFound,")
    assert machine.invoke("Get-AdfsGlobalAuthenticationPolicy", {}) == before
    with pytest.raises(errors.WindowsError) as info:
        machine.invoke("Set-AdfsProperties", {"ExtranetLockoutMode": "ADFSSmartLockoutEnforce"})
    assert info.value.message == "A parameter cannot be found that matches parameter name 'ExtranetLockoutMode'."


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_adfs_2016_and_later_have_the_parameter(adfs01, version):
    machine = adfs01(version)
    machine.invoke("Set-AdfsGlobalAuthenticationPolicy", {"ClientAuthenticationMethods": "None"})
    assert machine.invoke("Get-AdfsGlobalAuthenticationPolicy", {})[0]["ClientAuthenticationMethods"] == "None"


@pytest.mark.parametrize("version", ["2.0", "2.1", "3.0"])
def test_adfs_before_2016_has_no_farm_information_cmdlet(adfs01, version):
    """Get-AdfsFarmInformation came with Windows Server 2016 (no 2012 R2 doc)."""
    with pytest.raises(errors.WindowsError) as info:
        adfs01(version).invoke("Get-AdfsFarmInformation", {})
    assert "'Get-AdfsFarmInformation' is not recognized" in info.value.message


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_adfs_decisions_send_only_what_ad_fs_on_2012_r2_has(fixture):
    """The tier runs on AD FS 2.0 to 5.0 and gates no parameter by version, so every cmdlet call it
    decides must bind against the oldest docs (Windows Server 2012 R2; 2.x have no newer cmdlet)."""
    catalog = Catalog.load()
    expected = json.loads(fixture.read_text(encoding="utf-8"))["expect"].get("operations", [])
    for op in expected:
        if op.get("op") == "cmdlet":
            catalog.bind(op["cmdlet"], op["params"], adfs.OLDEST_DOCS)


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_apply_and_rollback_on_adfs_2016_and_later(lab, run_cli, version):
    """2.0, 2.1 and 3.0 run end to end in test_adfs_lab.py; the versions with the current docs too."""
    store = control.open_store(lab.dir)
    try:
        with store.transaction():
            adfs.install(store, Estate.load(lab.dir).host("adfs01"), version, "sts.corp.lync2fa.test")
    finally:
        store.close()
    policy = lab.get(adfs.POLICY, "adfs01")
    common = ("-i", lab.inventory, "--state-dir", lab.state_dir, "--json")

    applied = run_cli("apply", *common, "--tasks", "adfs")
    assert applied.code == 0, applied.out
    assert lab.get(adfs.POLICY, "adfs01")["PrimaryIntranetAuthenticationProvider"] == ["CertificateAuthentication"]
    assert len(lab.snapshot()[adfs.TRUSTS]) == 2

    rolled = run_cli("rollback", *common, "--tier", "adfs")
    assert rolled.code == 0, rolled.out
    assert lab.get(adfs.POLICY, "adfs01") == policy
    assert not lab.snapshot().get(adfs.TRUSTS)
