"""The AD FS tier end to end through the CLI, pywinrm and the lab (AD FS 2.0 and 3.0+)."""
from __future__ import annotations

from pathlib import Path

import yaml

from lync2fa.lab import control
from lync2fa.plugins.adfs import claims
from lync2fa.plugins.adfs.twin import FARM_WIDE_WARNING, WEB_CONFIG, file_key, seed_adfs

POOL_URL = "https://pool01.corp.lync2fa.test/passiveauth/federationmetadata/2007-06/federationmetadata.xml"
DEFAULT_ORDER = ["Integrated", "Forms", "TlsClient", "Basic"]
SIGN_IN = file_key("adfs01", WEB_CONFIG)
BACKUP = file_key("adfs01", WEB_CONFIG + ".lync2fa-backup")


def inventory_with(lab, host_vars: dict[str, dict], name: str = "custom.yml") -> Path:
    """The lab's inventory with extra host vars (what an operator would set)."""
    doc = yaml.safe_load(lab.inventory.read_text())
    for group in doc["all"]["children"].values():
        for host, hv in group["hosts"].items():
            hv.update(host_vars.get(host, {}))
    path = lab.inventory.parent / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(run_cli, command, lab, *extra, inventory=None, tasks="adfs"):
    option = "--tier" if command == "rollback" else "--tasks"
    return run_cli(command, "-i", inventory or lab.inventory, "--state-dir", lab.state_dir, option, tasks, *extra)


def changed(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["task"], r["host"]): r for r in report["results"] if r["changed"]}


def iis_resets(lab) -> int:
    return (lab.get("iis_reset", "adfs01") or {"count": 0})["count"]


def test_trusts_rules_replay_and_tls_client_first(lab, run_cli):
    untouched = lab.snapshot()
    planned = run(run_cli, "plan", lab, "--json")
    assert planned.code == 0, planned.err
    assert set(changed(planned.json())) == {("adfs.relying_party", "adfs01"), ("adfs.token_replay", "adfs01"),
                                           ("adfs.client_auth", "adfs01")}
    assert lab.snapshot() == untouched, "plan must not change the estate"

    applied = run(run_cli, "apply", lab)
    assert applied.code == 0, applied.out
    trusts = {k: v for k, v in lab.snapshot()["adfs_trust"].items()}
    assert sorted(trusts) == ["adfs01/dir01-PassiveAuth", "adfs01/pool01-PassiveAuth"]
    pool = trusts["adfs01/pool01-PassiveAuth"]
    assert pool["MetadataUrl"] == POOL_URL
    assert pool["IssuanceAuthorizationRules"] == claims.AUTHORIZATION_RULES
    assert pool["IssuanceTransformRules"] == claims.TRANSFORM_RULES
    assert pool["TokenLifetime"] == 0                          # left alone unless adfs_token_lifetime is set
    assert lab.get("adfs_server", "adfs01")["properties"]["PreventTokenReplays"] is True
    assert lab.get("adfs_file", SIGN_IN)["localAuthenticationTypes"] == ["TlsClient", "Integrated", "Forms", "Basic"]
    assert lab.get("adfs_file", BACKUP)["localAuthenticationTypes"] == DEFAULT_ORDER
    assert iis_resets(lab) == 1

    again = run(run_cli, "apply", lab, "--json")
    assert again.json()["counts"] == {"ok": 3, "changed": 0, "failed": 0, "skipped": 0}
    assert iis_resets(lab) == 1, "IIS is reset only when the web.config changed"

    # Drift: someone puts Forms back on top. Plan shows exactly that; apply repairs it and keeps
    # the original backup.
    lab.put("adfs_file", SIGN_IN, {"localAuthenticationTypes": ["Forms", "TlsClient", "Integrated", "Basic"]})
    drift = changed(run(run_cli, "plan", lab, "--json").json())
    assert list(drift) == [("adfs.client_auth", "adfs01")]
    assert drift["adfs.client_auth", "adfs01"]["diff"] == [{
        "path": "local_authentication_types", "before": ["Forms", "TlsClient", "Integrated", "Basic"],
        "after": ["TlsClient", "Forms", "Integrated", "Basic"]}]
    assert run(run_cli, "apply", lab).code == 0
    assert lab.get("adfs_file", SIGN_IN)["localAuthenticationTypes"][0] == "TlsClient"
    assert lab.get("adfs_file", BACKUP)["localAuthenticationTypes"] == DEFAULT_ORDER
    assert iis_resets(lab) == 2


def test_existing_trust_with_erratum_claims_is_corrected_then_restored(lab, run_cli):
    # An administrator followed the newest SfB page: https:// claim types, under another name.
    legacy = {"Name": "Lync Pool 01", "MetadataUrl": POOL_URL, "TokenLifetime": 0, "Enabled": True,
              "IssuanceAuthorizationRules": claims.AUTHORIZATION_RULES.replace("http://", "https://"),
              "IssuanceTransformRules": claims.TRANSFORM_RULES.replace("http://", "https://")}
    lab.put("adfs_trust", "adfs01/Lync Pool 01", legacy)
    inventory = inventory_with(lab, {"adfs01": {"adfs_token_lifetime": 240}})

    result = run(run_cli, "apply", lab, "--json", inventory=inventory, tasks="adfs.relying_party")
    assert result.code == 0
    trusts = lab.snapshot()["adfs_trust"]
    assert sorted(trusts) == ["adfs01/Lync Pool 01", "adfs01/dir01-PassiveAuth"], "no duplicate trust for pool01"
    fixed = trusts["adfs01/Lync Pool 01"]
    assert fixed["IssuanceAuthorizationRules"] == claims.AUTHORIZATION_RULES
    assert fixed["IssuanceTransformRules"] == claims.TRANSFORM_RULES
    assert fixed["TokenLifetime"] == 240 and trusts["adfs01/dir01-PassiveAuth"]["TokenLifetime"] == 240
    diff = {d["path"]: d for d in changed(result.json())["adfs.relying_party", "adfs01"]["diff"]}
    assert diff["pool01-PassiveAuth.token_lifetime"] == {"path": "pool01-PassiveAuth.token_lifetime",
                                                         "before": 0, "after": 240}

    rolled = run(run_cli, "rollback", lab, inventory=inventory)
    assert rolled.code == 0
    assert "warning: [ROLLBACK_ORDER]" in rolled.out        # AD FS alone while Lync may still need it
    assert lab.snapshot()["adfs_trust"] == {"adfs01/Lync Pool 01": legacy}


def test_unreachable_pool_metadata_fails_and_lync_is_not_cut_off(lab, run_cli):
    inventory = inventory_with(lab, {"adfs01": {"adfs_pools": ["ghost.corp.lync2fa.test"]}})
    lync_before = lab.snapshot()["cs_config"]
    result = run(run_cli, "apply", lab, inventory=inventory, tasks="adfs,lync")
    assert result.code == 1
    assert "FAILED  adfs.relying_party on adfs01" in result.out
    assert "the remote name could not be resolved: 'ghost.corp.lync2fa.test'" in result.out
    assert "skipped lync.web_service on pool01" in result.out
    assert lab.snapshot()["cs_config"] == lync_before, "web services keep their sign-in methods"
    assert "adfs_trust" not in lab.snapshot()


def seed_adfs3(lab) -> None:
    store = control.open_store(lab.dir)
    try:
        with store.transaction():
            seed_adfs(store, "adfs01", "3.0", "sts.corp.lync2fa.test")
    finally:
        store.close()


def test_adfs3_certificate_is_the_only_primary_provider(lab, run_cli):
    """On 3.0+ the enabled primary providers are alternatives: Windows or forms sign-in left beside
    the certificate would let a Lync sign-in complete without the card."""
    seed_adfs3(lab)
    untouched = lab.snapshot()
    intranet_only = inventory_with(lab, {"adfs01": {"adfs_extranet": False, "adfs_prevent_token_replays": False}})
    planned = run(run_cli, "plan", lab, "--json", inventory=intranet_only)
    report = planned.json()
    assert [f["rule"] for f in report["findings"]] == ["TOKEN_REPLAY"]
    plan_step = changed(report)["adfs.client_auth", "adfs01"]
    assert plan_step["diff"] == [{"path": "primary_intranet", "before": ["WindowsAuthentication"],
                                  "after": ["CertificateAuthentication"]}]
    assert plan_step["warnings"] == [FARM_WIDE_WARNING]
    assert ("adfs.token_replay", "adfs01") not in changed(report), "false leaves replay detection alone"
    assert lab.snapshot() == untouched, "plan must not change the estate"

    applied = run(run_cli, "apply", lab, "--json")
    assert applied.code == 0
    sign_in = changed(applied.json())["adfs.client_auth", "adfs01"]
    assert sign_in["before"] == {"adfs_version": "3.0+", "primary_intranet": ["WindowsAuthentication"],
                                 "primary_extranet": ["FormsAuthentication"]}
    assert sign_in["after"] == {"adfs_version": "3.0+", "primary_intranet": ["CertificateAuthentication"],
                                "primary_extranet": ["CertificateAuthentication"]}
    assert sign_in["warnings"] == [FARM_WIDE_WARNING]
    assert lab.get("adfs_auth_policy", "adfs01") == {"PrimaryIntranetAuthenticationProvider": ["CertificateAuthentication"],
                                                     "PrimaryExtranetAuthenticationProvider": ["CertificateAuthentication"]}
    assert lab.get("adfs_file", SIGN_IN) is None and iis_resets(lab) == 0
    again = run(run_cli, "apply", lab, "--json").json()
    assert again["counts"]["changed"] == 0
    assert all(r["warnings"] == [] for r in again["results"]), "no warning when nothing changes"
    assert run_cli("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "adfs").code == 0

    # Drift: someone enables Windows authentication again beside the certificate. Verify flags it,
    # apply removes it, and the record keeps the lists from before lync2fa.
    policy = lab.get("adfs_auth_policy", "adfs01")
    policy["PrimaryIntranetAuthenticationProvider"] = ["CertificateAuthentication", "WindowsAuthentication"]
    lab.put("adfs_auth_policy", "adfs01", policy)
    drifted = run_cli("verify", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "adfs.client_auth")
    assert drifted.code == 1
    assert "primary_intranet" in drifted.out
    assert run(run_cli, "apply", lab, tasks="adfs.client_auth").code == 0
    assert lab.get("adfs_auth_policy", "adfs01")["PrimaryIntranetAuthenticationProvider"] == ["CertificateAuthentication"]

    rolled = run(run_cli, "rollback", lab, "--json")
    assert rolled.code == 0
    restored = {(r["task"], r["host"]): r for r in rolled.json()["results"]}["adfs.rollback", "adfs01"]
    assert restored["after"]["sign_in"] == {"adfs_version": "3.0+", "primary_intranet": ["WindowsAuthentication"],
                                            "primary_extranet": ["FormsAuthentication"]}
    assert lab.snapshot() == untouched


def test_adfs3_intranet_only_leaves_the_extranet_list(lab, run_cli):
    seed_adfs3(lab)
    policy = {"PrimaryIntranetAuthenticationProvider": ["WindowsAuthentication", "certificateauthentication"],
              "PrimaryExtranetAuthenticationProvider": ["FormsAuthentication", "CertificateAuthentication"]}
    lab.put("adfs_auth_policy", "adfs01", policy)
    intranet_only = inventory_with(lab, {"adfs01": {"adfs_extranet": False}})
    applied = run(run_cli, "apply", lab, "--json", inventory=intranet_only, tasks="adfs.client_auth")
    assert applied.code == 0
    # The certificate provider already listed keeps its spelling; the extranet list is not touched.
    assert lab.get("adfs_auth_policy", "adfs01") == {
        "PrimaryIntranetAuthenticationProvider": ["certificateauthentication"],
        "PrimaryExtranetAuthenticationProvider": ["FormsAuthentication", "CertificateAuthentication"]}
    assert run(run_cli, "rollback", lab, inventory=intranet_only).code == 0
    assert lab.get("adfs_auth_policy", "adfs01") == policy
