"""The AD FS tier end to end through the CLI, pywinrm and the lab's Windows model (AD FS 3.0+ by
default; 2.0 with WMF 5.1 and 2.1 installed on the lab host for the IIS sign-in path)."""

from __future__ import annotations

from lab_operations import by_task, timeless

from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import adfs, filesystem
from lync2fa.plugins.adfs import claims, signin
from lync2fa.plugins.adfs.decide import FARM_WIDE_WARNING

POOL_URL = "https://pool01.corp.lync2fa.test/passiveauth/federationmetadata/2007-06/federationmetadata.xml"
DEFAULT_ORDER = ["Integrated", "Forms", "TlsClient", "Basic"]
BACKUP = adfs.WEB_CONFIG + ".lync2fa-backup"
TRUSTS = adfs.TRUSTS
POLICY = adfs.POLICY


def run(run_cli, command, lab, *extra, inventory=None, tasks="adfs"):
    option = "--tier" if command == "rollback" else "--tasks"
    return run_cli(command, "-i", inventory or lab.inventory, "--state-dir", lab.state_dir, option, tasks, *extra)


def changed(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["task"], r["host"]): r for r in report["results"] if r["changed"]}


def install(lab, version: str, wmf: bool = True) -> None:
    """Put another AD FS version on adfs01 (2.0 on Windows Server 2008 R2, with WMF 5.1 or not)."""
    store = control.open_store(lab.dir)
    try:
        with store.transaction():
            adfs.install(
                store,
                Estate.load(lab.dir).host("adfs01"),
                version,
                "sts.corp.lync2fa.test",
                adfs.WMF_51 if wmf else None,
            )
    finally:
        store.close()


def state(lab) -> dict:
    """The estate, less registry keys without values (the records key rollback empties stays, as
    HKLM:\\SOFTWARE does on Windows)."""
    snapshot = lab.snapshot()
    registry = {k: v for k, v in snapshot.pop("registry", {}).items() if v["values"]}
    return {**snapshot, **({"registry": registry} if registry else {})}


def trusts(lab) -> dict[str, dict]:
    return {t["Name"]: t for t in lab.snapshot().get(TRUSTS, {}).values()}


def web_config(lab, path: str = adfs.WEB_CONFIG) -> dict | None:
    store = control.open_store(lab.dir)
    try:
        return filesystem.read(store, "adfs01", path)
    finally:
        store.close()


def sign_in_order(lab, path: str = adfs.WEB_CONFIG) -> list[str]:
    return signin.authentication_types(web_config(lab, path)["text"], path)


def iis_restarts(lab) -> int:
    return sum(1 for op in lab.operations("adfs01") if op.get("cmdlet") == "Restart-Service")


def test_trusts_rules_replay_and_certificate_only_on_adfs3(lab, run_cli):
    """The default lab's AD FS is 3.0+: the primary providers are alternatives, not an order, so
    Windows or forms sign-in left beside the certificate would let a Lync sign-in complete without
    the card."""
    untouched = state(lab)
    planned = run(run_cli, "plan", lab, "--json")
    assert planned.code == 0, planned.err
    assert set(changed(planned.json())) == {
        ("adfs.relying_party", "adfs01"),
        ("adfs.token_replay", "adfs01"),
        ("adfs.client_auth", "adfs01"),
    }
    assert state(lab) == untouched, "plan must not change the estate"

    applied = run(run_cli, "apply", lab, "--json")
    assert applied.code == 0, applied.out
    assert sorted(trusts(lab)) == ["dir01-PassiveAuth", "pool01-PassiveAuth"]
    pool = trusts(lab)["pool01-PassiveAuth"]
    assert pool["MetadataUrl"] == POOL_URL and pool["Identifier"] == ["https://pool01.corp.lync2fa.test/passiveauth"]
    assert pool["IssuanceAuthorizationRules"] == claims.AUTHORIZATION_RULES
    assert pool["IssuanceTransformRules"] == claims.TRANSFORM_RULES
    assert pool["TokenLifetime"] == 0  # left alone unless adfs_token_lifetime is set
    assert lab.get(adfs.PROPERTIES, "adfs01")["PreventTokenReplays"] is True
    sign_in = changed(applied.json())["adfs.client_auth", "adfs01"]
    assert sign_in["before"] == {
        "adfs_version": "3.0+",
        "primary_intranet": ["WindowsAuthentication"],
        "primary_extranet": ["FormsAuthentication"],
    }
    assert sign_in["after"] == {
        "adfs_version": "3.0+",
        "primary_intranet": ["CertificateAuthentication"],
        "primary_extranet": ["CertificateAuthentication"],
    }
    assert sign_in["warnings"] == [FARM_WIDE_WARNING]
    policy = lab.get(POLICY, "adfs01")
    assert policy["PrimaryIntranetAuthenticationProvider"] == ["CertificateAuthentication"]
    assert policy["PrimaryExtranetAuthenticationProvider"] == ["CertificateAuthentication"]
    assert web_config(lab) is None and iis_restarts(lab) == 0, "AD FS 3.0+ has no IIS sign-in pages"

    again = run(run_cli, "apply", lab, "--json").json()
    assert again["counts"] == {"ok": 3, "changed": 0, "failed": 0, "skipped": 0}
    assert all(r["warnings"] == [] for r in again["results"]), "no warning when nothing changes"
    assert run_cli("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "adfs").code == 0

    # Drift: someone enables Windows authentication again beside the certificate. Verify flags it,
    # apply removes it, and the record keeps the lists from before lync2fa.
    policy["PrimaryIntranetAuthenticationProvider"] = ["CertificateAuthentication", "WindowsAuthentication"]
    lab.put(POLICY, "adfs01", policy)
    drifted = run_cli("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "adfs.client_auth")
    assert drifted.code == 1
    assert "primary_intranet" in drifted.out
    assert run(run_cli, "apply", lab, tasks="adfs.client_auth").code == 0
    assert lab.get(POLICY, "adfs01")["PrimaryIntranetAuthenticationProvider"] == ["CertificateAuthentication"]

    rolled = run(run_cli, "rollback", lab, "--json")
    assert rolled.code == 0
    restored = {(r["task"], r["host"]): r for r in rolled.json()["results"]}["adfs.rollback", "adfs01"]
    assert restored["after"]["sign_in"] == {
        "adfs_version": "3.0+",
        "primary_intranet": ["WindowsAuthentication"],
        "primary_extranet": ["FormsAuthentication"],
    }
    assert state(lab) == untouched


def test_defect1_warning_does_not_fail_adfs_client_auth(lab, run_cli):
    """Issue 7 defect 1: on AD FS 3.0+ adfs.client_auth always warns before it changes the global
    policy; the warning killed the script, so lync.web_service never ran. Now the warning is
    reported, the step succeeds and the Lync web services are configured after it."""
    result = run(run_cli, "apply", lab, "--json", tasks="adfs,lync.web_service")
    assert result.code == 0, result.out
    steps = {(r["task"], r["host"]): r for r in result.json()["results"]}
    client_auth = steps["adfs.client_auth", "adfs01"]
    assert client_auth["changed"] and not client_auth["failed"]
    assert client_auth["warnings"] == [FARM_WIDE_WARNING]
    assert lab.get(POLICY, "adfs01")["PrimaryIntranetAuthenticationProvider"] == ["CertificateAuthentication"]
    web = [r for (task, _), r in steps.items() if task == "lync.web_service"]
    assert web and all(r["status"] != "skipped" and not r["failed"] for r in web)


def test_the_lab_runs_exactly_the_operations_the_decision_produced(lab, run_cli):
    planned = run(run_cli, "plan", lab, "--json", tasks="adfs.client_auth").json()
    assert lab.operations("adfs01") == []
    applied = run(run_cli, "apply", lab, "--json", tasks="adfs.client_auth").json()
    executed = lab.ran_as_decided(applied)["adfs01"]
    assert [op.get("cmdlet") or op["op"] for op in executed] == ["registry_set", "Set-AdfsGlobalAuthenticationPolicy"]
    assert executed[1]["params"] == {
        "PrimaryIntranetAuthenticationProvider": ["CertificateAuthentication"],
        "PrimaryExtranetAuthenticationProvider": ["CertificateAuthentication"],
    }
    # The plan decided the same (its record carries its own time).
    assert timeless(by_task(planned)["adfs.client_auth"]) == timeless(executed)
    assert run(run_cli, "apply", lab, "--json", tasks="adfs.client_auth").json()["counts"]["changed"] == 0
    assert len(lab.operations("adfs01")) == 2, "a no-op re-apply sends no operation"


def test_adfs20_with_wmf51_tls_client_first_backup_and_rollback(lab, run_cli):
    install(lab, "2.0")
    original = web_config(lab)
    untouched = state(lab)
    assert run_cli("preflight", "-i", lab.inventory, "--limit", "adfs01").code == 0

    applied = run(run_cli, "apply", lab, "--json")
    assert applied.code == 0, applied.out
    assert sorted(trusts(lab)) == ["dir01-PassiveAuth", "pool01-PassiveAuth"]
    assert lab.get(adfs.PROPERTIES, "adfs01")["PreventTokenReplays"] is True
    assert sign_in_order(lab) == ["TlsClient", "Integrated", "Forms", "Basic"]
    assert web_config(lab, BACKUP) == {**original, "path": BACKUP}, "the original, byte for byte"
    # Only the order changed: the file is the original with the TlsClient line moved up.
    assert sorted(web_config(lab)["text"].splitlines()) == sorted(original["text"].splitlines())
    assert iis_restarts(lab) == 1
    modules = {op.get("module") for op in lab.operations("adfs01") if op.get("cmdlet", "").endswith("Trust")}
    assert modules == {adfs.SNAPIN_ASSEMBLY}, "AD FS 2.0's cmdlets come from its snap-in's assembly"

    again = run(run_cli, "apply", lab, "--json")
    assert again.json()["counts"] == {"ok": 3, "changed": 0, "failed": 0, "skipped": 0}
    assert iis_restarts(lab) == 1, "IIS is restarted only when the web.config changed"

    # Drift: someone puts Forms back on top. Plan shows exactly that; apply repairs it and keeps
    # the original backup.
    store = control.open_store(lab.dir)
    with store.transaction():
        filesystem.write(
            store, "adfs01", adfs.WEB_CONFIG, adfs.sign_in_config(["Forms", "TlsClient", "Integrated", "Basic"])
        )
    store.close()
    drift = changed(run(run_cli, "plan", lab, "--json").json())
    assert list(drift) == [("adfs.client_auth", "adfs01")]
    assert drift["adfs.client_auth", "adfs01"]["diff"] == [
        {
            "path": "local_authentication_types",
            "before": ["Forms", "TlsClient", "Integrated", "Basic"],
            "after": ["TlsClient", "Forms", "Integrated", "Basic"],
        }
    ]
    assert run(run_cli, "apply", lab).code == 0
    assert sign_in_order(lab)[0] == "TlsClient"
    assert web_config(lab, BACKUP)["text"] == original["text"]
    assert iis_restarts(lab) == 2

    rolled = run(run_cli, "rollback", lab, "--json")
    assert rolled.code == 0
    assert web_config(lab) == original and web_config(lab, BACKUP) is None
    assert iis_restarts(lab) == 3
    assert state(lab) == untouched
    assert run(run_cli, "rollback", lab, "--json").json()["counts"]["changed"] == 0


def test_adfs20_on_powershell_2_is_refused_by_preflight(lab, run_cli):
    """Issue 7 defect 8: Windows Server 2008 R2 ships Windows PowerShell 2.0; without WMF 5.1 the
    AD FS 2.0 host is refused before anything runs."""
    install(lab, "2.0", wmf=False)
    untouched = state(lab)
    checked = run_cli("preflight", "-i", lab.inventory, "--limit", "adfs01", "--json")
    assert checked.code == 1
    failed = [c for c in checked.json()["checks"] if c["status"] == "fail"]
    assert [(c["host"], c["name"]) for c in failed] == [("adfs01", "powershell")]
    assert "Windows PowerShell 5.1 (WMF 5.1)" in failed[0]["detail"]
    assert run(run_cli, "apply", lab).code != 0
    assert state(lab) == untouched and lab.operations("adfs01") == []


def test_adfs21_uses_the_module_and_the_iis_sign_in_pages(lab, run_cli):
    install(lab, "2.1")
    applied = run(run_cli, "apply", lab, "--json", tasks="adfs.client_auth")
    assert applied.code == 0, applied.out
    step = changed(applied.json())["adfs.client_auth", "adfs01"]
    assert step["after"] == {
        "adfs_version": "2.1",
        "local_authentication_types": ["TlsClient", "Integrated", "Forms", "Basic"],
        "backup": True,
    }
    assert sign_in_order(lab, BACKUP) == DEFAULT_ORDER


def test_existing_trust_with_erratum_claims_is_corrected_then_restored(lab, run_cli):
    # An administrator followed the newest SfB page: https:// claim types, under another name.
    store = control.open_store(lab.dir)
    with store.transaction():
        machine_host = Estate.load(lab.dir).host("adfs01")
        from lync2fa.lab.windows import Machine

        machine = Machine(store, Estate.load(lab.dir), machine_host)
        machine.invoke(
            "Add-AdfsRelyingPartyTrust",
            {
                "Name": "Lync Pool 01",
                "MetadataUrl": POOL_URL,
                "IssuanceAuthorizationRules": claims.AUTHORIZATION_RULES.replace("http://", "https://"),
                "IssuanceTransformRules": claims.TRANSFORM_RULES.replace("http://", "https://"),
            },
        )
    store.close()
    legacy = dict(lab.snapshot()[TRUSTS])
    inventory = lab.inventory_with({"adfs01": {"adfs_token_lifetime": 240}})

    result = run(run_cli, "apply", lab, "--json", inventory=inventory, tasks="adfs.relying_party")
    assert result.code == 0
    assert sorted(trusts(lab)) == ["Lync Pool 01", "dir01-PassiveAuth"], "no duplicate trust for pool01"
    fixed = trusts(lab)["Lync Pool 01"]
    assert fixed["IssuanceAuthorizationRules"] == claims.AUTHORIZATION_RULES
    assert fixed["IssuanceTransformRules"] == claims.TRANSFORM_RULES
    assert fixed["TokenLifetime"] == 240 and trusts(lab)["dir01-PassiveAuth"]["TokenLifetime"] == 240
    diff = {d["path"]: d for d in changed(result.json())["adfs.relying_party", "adfs01"]["diff"]}
    assert diff["pool01-PassiveAuth.token_lifetime"] == {
        "path": "pool01-PassiveAuth.token_lifetime",
        "before": 0,
        "after": 240,
    }

    rolled = run(run_cli, "rollback", lab, inventory=inventory)
    assert rolled.code == 0
    assert "warning: [ROLLBACK_ORDER]" in rolled.out  # AD FS alone while Lync may still need it
    assert lab.snapshot()[TRUSTS] == legacy


def test_a_second_trust_for_the_same_metadata_is_refused_by_ad_fs(lab, run_cli):
    """MSIS7612: identifiers are unique in the farm; lync2fa never asks for a duplicate."""
    from lync2fa.lab.windows import Machine, errors

    store = control.open_store(lab.dir)
    estate = Estate.load(lab.dir)
    machine = Machine(store, estate, estate.host("adfs01"))
    machine.invoke("Add-AdfsRelyingPartyTrust", {"Name": "first", "MetadataUrl": POOL_URL})
    try:
        machine.invoke("Add-AdfsRelyingPartyTrust", {"Name": "second", "MetadataUrl": POOL_URL})
        raise AssertionError("AD FS accepted a duplicate identifier")
    except errors.WindowsError as exc:
        assert exc.message.startswith("MSIS7612")
    finally:
        store.close()


def test_unreachable_pool_metadata_fails_and_lync_is_not_cut_off(lab, run_cli):
    inventory = lab.inventory_with({"adfs01": {"adfs_pools": ["ghost.corp.lync2fa.test"]}})

    def web_services() -> dict:
        return {
            k: v
            for k, v in (lab.snapshot().get("cs_config") or {}).items()
            if k.startswith("CsWebServiceConfiguration")
        }

    lync_before = web_services()
    result = run(run_cli, "apply", lab, inventory=inventory, tasks="adfs,lync")
    assert result.code == 1
    assert "FAILED  adfs.relying_party on adfs01" in result.out
    assert "The remote name could not be resolved: 'ghost.corp.lync2fa.test'" in result.out
    assert "skipped lync.web_service on pool01" in result.out
    assert web_services() == lync_before, "web services keep their sign-in methods"
    assert TRUSTS not in lab.snapshot()


def test_adfs3_intranet_only_leaves_the_extranet_list(lab, run_cli):
    policy = {
        **lab.get(POLICY, "adfs01"),
        "PrimaryIntranetAuthenticationProvider": ["WindowsAuthentication", "certificateauthentication"],
        "PrimaryExtranetAuthenticationProvider": ["FormsAuthentication", "CertificateAuthentication"],
    }
    lab.put(POLICY, "adfs01", policy)
    intranet_only = lab.inventory_with({"adfs01": {"adfs_extranet": False}})
    applied = run(run_cli, "apply", lab, "--json", inventory=intranet_only, tasks="adfs.client_auth")
    assert applied.code == 0
    # The certificate provider already listed keeps its spelling; the extranet list is not touched.
    now = lab.get(POLICY, "adfs01")
    assert now["PrimaryIntranetAuthenticationProvider"] == ["certificateauthentication"]
    assert now["PrimaryExtranetAuthenticationProvider"] == ["FormsAuthentication", "CertificateAuthentication"]
    assert run(run_cli, "rollback", lab, inventory=intranet_only).code == 0
    assert lab.get(POLICY, "adfs01") == policy


def test_adfs_tasks_stay_on_their_host_so_ntlm_is_enough(make_lab, run_cli):
    """reaches=(): the AD FS cmdlets work on the farm's own database, so a session without network
    credentials (NTLM: the double hop) plans and applies the tier."""
    lab = make_lab(clients=1, transport="ntlm")
    applied = run(run_cli, "apply", lab, "--json")
    assert applied.code == 0, applied.out
    assert applied.json()["counts"]["changed"] == 3 and sorted(trusts(lab)) == [
        "dir01-PassiveAuth",
        "pool01-PassiveAuth",
    ]


def test_the_lab_ad_fs_is_windows_not_the_tasks(lab):
    """The AD FS component on its own: cmdlets per version, the policy's provider rules, trusts
    enabled and disabled, unknown targets."""
    from lync2fa.lab.windows import Machine, errors

    def machine():
        estate = Estate.load(lab.dir)
        return Machine(store, estate, estate.host("adfs01"))

    def refused(cmdlet, params) -> str:
        try:
            machine().invoke(cmdlet, params)
        except errors.WindowsError as exc:
            return exc.message
        raise AssertionError(f"{cmdlet} {params} was accepted")

    store = control.open_store(lab.dir)
    try:
        names = [p["Name"] for p in machine().invoke("Get-AdfsAuthenticationProvider", {})]
        assert "CertificateAuthentication" in names
        assert "cannot be used for PrimaryExtranetAuthenticationProvider" in refused(
            "Set-AdfsGlobalAuthenticationPolicy", {"PrimaryExtranetAuthenticationProvider": ["WindowsAuthentication"]}
        )
        assert "'SmartCardMagic' is not registered" in refused(
            "Set-AdfsGlobalAuthenticationPolicy", {"PrimaryIntranetAuthenticationProvider": ["SmartCardMagic"]}
        )
        assert "cannot be empty" in refused(
            "Set-AdfsGlobalAuthenticationPolicy", {"PrimaryIntranetAuthenticationProvider": []}
        )
        assert "A parameter cannot be found that matches parameter name 'PrimaryProvider'." in refused(
            "Set-AdfsGlobalAuthenticationPolicy", {"PrimaryProvider": ["CertificateAuthentication"]}
        )
        machine().invoke("Add-AdfsRelyingPartyTrust", {"Name": "pool01-PassiveAuth", "MetadataUrl": POOL_URL})
        machine().invoke("Disable-AdfsRelyingPartyTrust", {"TargetName": "pool01-passiveauth"})
        assert machine().invoke("Get-AdfsRelyingPartyTrust", {"Name": ["pool01-PassiveAuth"]})[0]["Enabled"] is False
        machine().invoke("Enable-AdfsRelyingPartyTrust", {"TargetName": "pool01-PassiveAuth"})
        assert machine().invoke("Get-AdfsRelyingPartyTrust", {"Name": ["pool01-PassiveAuth"]})[0]["Enabled"] is True
        assert "was not found" in refused("Remove-AdfsRelyingPartyTrust", {"TargetName": "ghost"})
        assert [e["AddressPath"] for e in machine().invoke("Get-AdfsEndpoint", {})][0] == "/adfs/ls/"
        with store.transaction():
            adfs.install(store, Estate.load(lab.dir).host("adfs01"), "2.1")
        assert "is not recognized" in refused("Get-AdfsGlobalAuthenticationPolicy", {})
        assert machine().invoke("Get-AdfsRelyingPartyTrust", {}) == [], "a new installation has no trust"
    finally:
        store.close()
