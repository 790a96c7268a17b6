"""The Lync tier end to end through the CLI, pywinrm and the lab's Central Management Store."""
from __future__ import annotations

from test_adfs_lab import changed, inventory_with, run

POOL, DIRECTOR, EDGE = "pool01.corp.lync2fa.test", "dir01.corp.lync2fa.test", "edge01.corp.lync2fa.test"
METADATA = "https://sts.corp.lync2fa.test/federationmetadata/2007-06/federationmetadata.xml"
WEB_POOL = f"CsWebServiceConfiguration/service:webserver:{POOL}"
REGISTRAR_POOL = f"CsProxyConfiguration/service:registrar:{POOL}"
GLOBALS = ("CsWebServiceConfiguration/global", "CsWebServiceConfiguration/site:hq", "CsProxyConfiguration/global",
           "CsUserServicesPolicy/global")


def cs(lab) -> dict:
    return lab.snapshot().get("cs_config", {})


def diff_of(result: dict) -> dict:
    return {d["path"]: (d["before"], d["after"]) for d in result["diff"]}


def test_service_scope_with_inheritance_visible_then_idempotent(lab, run_cli):
    seeded = cs(lab)
    assert set(seeded) == set(GLOBALS), "no service-scope collections in a new deployment"
    planned = run(run_cli, "plan", lab, "--json", tasks="lync")
    assert planned.code == 0, planned.err
    report = changed(planned.json())
    assert set(report) == {("lync.web_service", "pool01"), ("lync.web_service", "dir01"),
                           ("lync.registrar_proxy", "pool01"), ("lync.edge_proxy", "pool01")}
    web = report["lync.web_service", "pool01"]
    assert diff_of(web) == {
        "scope": ("Site:HQ", f"Service:WebServer:{POOL}"),          # inherited from the site until now
        "UseWsFedPassiveAuth": (False, True), "WsFedPassiveMetadataUri": (None, METADATA),
        "UseCertificateAuth": (True, False), "UsePinAuth": (True, False), "UseWindowsAuth": ("Negotiate", "None")}
    assert any("will not inherit MaxGroupSizeToExpand = 200 from Site:HQ" in w for w in web["warnings"])
    assert diff_of(report["lync.registrar_proxy", "pool01"]) == {
        "scope": ("Global", f"Service:Registrar:{POOL}"),
        "UseKerberosForClientToProxyAuth": (True, False), "UseNtlmForClientToProxyAuth": (True, False)}
    assert diff_of(report["lync.edge_proxy", "pool01"])[f"Service:EdgeServer:{EDGE}.scope"] == (
        "Global", f"Service:EdgeServer:{EDGE}")
    director = next(r for r in planned.json()["results"]
                    if r["task"] == "lync.registrar_proxy" and r["host"] == "dir01")
    assert director["msg"].startswith("Director: its Registrar proxy settings are left alone")
    assert cs(lab) == seeded

    assert run(run_cli, "apply", lab, tasks="lync").code == 0
    after = cs(lab)
    assert {k: after[k] for k in GLOBALS} == {k: seeded[k] for k in GLOBALS}, "Global and site untouched"
    assert set(after) - set(GLOBALS) == {
        WEB_POOL, f"CsWebServiceConfiguration/service:webserver:{DIRECTOR}", REGISTRAR_POOL,
        f"CsProxyConfiguration/service:edgeserver:{EDGE}"}
    assert after[WEB_POOL] == {"Identity": f"Service:WebServer:{POOL}", "UseWsFedPassiveAuth": True,
                               "WsFedPassiveMetadataUri": METADATA, "UseCertificateAuth": False, "UsePinAuth": False,
                               "UseWindowsAuth": "None", "EnableGroupExpansion": True, "MaxGroupSizeToExpand": 100}
    assert after[REGISTRAR_POOL]["UseCertificateForClientToProxyAuth"] is True
    assert run(run_cli, "apply", lab, "--json", tasks="lync").json()["counts"]["changed"] == 0

    # Drift: PIN authentication switched back on behind lync2fa's back.
    lab.put("cs_config", WEB_POOL, {**after[WEB_POOL], "UsePinAuth": True})
    drift = changed(run(run_cli, "plan", lab, "--json", tasks="lync").json())
    assert list(drift) == [("lync.web_service", "pool01")]
    assert drift["lync.web_service", "pool01"]["diff"] == [{"path": "UsePinAuth", "before": True, "after": False}]
    assert drift["lync.web_service", "pool01"]["warnings"] == [], "a Set- inherits nothing: no warning"
    assert run(run_cli, "apply", lab, tasks="lync").code == 0
    assert cs(lab)[WEB_POOL] == after[WEB_POOL]


def test_existing_service_collections_are_set_and_restored(lab, run_cli):
    admin_web = {"Identity": f"Service:WebServer:{POOL}", "UseWsFedPassiveAuth": False, "WsFedPassiveMetadataUri": None,
                 "UseCertificateAuth": True, "UsePinAuth": False, "UseWindowsAuth": "NTLM",
                 "EnableGroupExpansion": True, "MaxGroupSizeToExpand": 500}
    admin_proxy = {"Identity": f"Service:Registrar:{POOL}", "UseKerberosForClientToProxyAuth": True,
                   "UseNtlmForClientToProxyAuth": True, "UseCertificateForClientToProxyAuth": False,
                   "DisableNtlmFor2010AndLaterClients": False, "TreatAllClientsAsRemote": True}
    lab.put("cs_config", WEB_POOL, admin_web)
    lab.put("cs_config", REGISTRAR_POOL, admin_proxy)
    before = lab.snapshot()

    applied = changed(run(run_cli, "apply", lab, "--json", tasks="lync").json())
    assert "scope" not in diff_of(applied["lync.web_service", "pool01"]), "Set- on the service's own collection"
    assert diff_of(applied["lync.registrar_proxy", "pool01"])["UseCertificateForClientToProxyAuth"] == (False, True)
    now = cs(lab)
    assert now[WEB_POOL]["MaxGroupSizeToExpand"] == 500 and now[WEB_POOL]["UseWindowsAuth"] == "None"
    assert now[REGISTRAR_POOL]["TreatAllClientsAsRemote"] is True

    rolled = run(run_cli, "rollback", lab, "--json", tasks="lync")
    assert rolled.code == 0
    pool = changed(rolled.json())["lync.rollback", "pool01"]
    assert diff_of(pool)[f"CsWebServiceConfiguration/Service:WebServer:{POOL}.UseWindowsAuth"] == ("None", "NTLM")
    assert diff_of(pool)[f"CsProxyConfiguration/Service:EdgeServer:{EDGE}.scope"] == (
        f"Service:EdgeServer:{EDGE}", "Global")
    assert lab.snapshot() == before, "modified collections restored, created ones removed"


def test_director_registrar_is_a_choice(lab, run_cli):
    inventory = inventory_with(lab, {"dir01": {"lync_director_registrar": True}})
    assert run(run_cli, "apply", lab, inventory=inventory, tasks="lync.registrar_proxy").code == 0
    assert cs(lab)[f"CsProxyConfiguration/service:registrar:{DIRECTOR}"]["UseNtlmForClientToProxyAuth"] is False


def test_any_scope_but_service_is_refused(lab, run_cli):
    inventory = inventory_with(lab, {
        "pool01": {"lync_web_service_identity": "Global", "lync_registrar_identity": "site:HQ",
                   "lync_edge_identities": [f"Service:WebServer:{EDGE}"],
                   "lync_ucs_rollback": True, "lync_ucs_policy": "Global"}})
    seeded = cs(lab)
    refused = run(run_cli, "apply", lab, inventory=inventory, tasks="lync")
    assert refused.code == 2
    assert refused.err.count("[GLOBAL_SCOPE]") == 4
    for setting in ("lync_web_service_identity 'Global'", "lync_registrar_identity 'site:HQ'",
                    "lync_edge_identities 'Service:WebServer:", "lync_ucs_policy 'Global'"):
        assert setting in refused.err
    assert cs(lab) == seeded

    # Even when the operator overrides the gate, the scripts refuse: Global is never changed.
    for tasks, refusal in (
            ("lync.web_service", "FAILED  lync.web_service on pool01: Refused: Global is not a Service:WebServer:"),
            ("lync.registrar_proxy", "FAILED  lync.registrar_proxy on pool01: Refused: site:HQ is not a "
                                     "Service:Registrar:<FQDN> identity"),
            ("lync.edge_proxy", f"FAILED  lync.edge_proxy on pool01: Refused: Service:WebServer:{EDGE} is not a "
                                "Service:EdgeServer:<FQDN> identity"),
            ("lync.ucs_rollback", "FAILED  lync.ucs_rollback on pool01: Refused: Global is not a per-user (tag) "
                                  "policy name")):
        forced = run(run_cli, "apply", lab, "--allow-insecure", "GLOBAL_SCOPE", inventory=inventory, tasks=tasks)
        assert forced.code == 1 and refusal in forced.out, forced.out
        assert "allowed by --allow-insecure" in forced.out
    assert {k: v for k, v in cs(lab).items() if k in GLOBALS} == {k: seeded[k] for k in GLOBALS}


def test_metadata_uri_must_be_https_and_name_the_federation_service(lab, run_cli):
    plain = inventory_with(lab, {"pool01": {"lync_metadata_uri": METADATA.replace("https:", "http:")}}, "http.yml")
    refused = run(run_cli, "plan", lab, inventory=plain, tasks="lync")
    assert refused.code == 2 and "[METADATA_HTTP]" in refused.err
    server = inventory_with(lab, {"pool01": {"lync_metadata_uri": METADATA.replace("sts.", "adfs01.")}}, "server.yml")
    warned = run(run_cli, "plan", lab, inventory=server, tasks="lync")
    assert warned.code == 0
    assert "warning: [FS_NAME]" in warned.out and "not its Federation Service Name sts.corp.lync2fa.test" in warned.out


def test_ucs_rollback_moves_contacts_and_keeps_them_out(lab, run_cli):
    sales = lab.get("cs_user", "sip:user03@corp.lync2fa.test")
    lab.put("cs_user", "sip:user03@corp.lync2fa.test", {**sales, "UserServicesPolicy": "Sales"})
    before = lab.snapshot()
    assert [u["ContactsInUcs"] for u in before["cs_user"].values()] == [True, True, False, False]
    inventory = inventory_with(lab, {"pool01": {"lync_ucs_rollback": True}, "dir01": {"lync_ucs_rollback": True}})

    applied = run(run_cli, "apply", lab, "--json", inventory=inventory, tasks="lync")
    assert applied.code == 0
    results = applied.json()["results"]
    order = [r["task"] for r in results if r["host"] == "pool01"]
    assert order.index("lync.ucs_rollback") < order.index("lync.web_service"), "contacts moved before 2FA is on"
    ucs = changed(applied.json())["lync.ucs_rollback", "pool01"]
    assert ucs["after"]["policy"] == {"exists": True, "UcsAllowed": False}
    assert ucs["warnings"] == ["sip:user03@corp.lync2fa.test had the user services policy Sales; it is replaced by "
                               "lync2fa-NoUcs (lync2fa rollback puts it back)."]
    assert ("lync.ucs_rollback", "dir01") not in changed(applied.json()), "no users are homed on a Director"
    users = lab.snapshot()["cs_user"].values()
    assert {u["UserServicesPolicy"] for u in users} == {"lync2fa-NoUcs"}
    assert not any(u["ContactsInUcs"] for u in users)
    assert cs(lab)["CsUserServicesPolicy/tag:lync2fa-noucs"]["UcsAllowed"] is False
    assert cs(lab)["CsUserServicesPolicy/global"] == before["cs_config"]["CsUserServicesPolicy/global"]
    assert run(run_cli, "apply", lab, "--json", inventory=inventory, tasks="lync").json()["counts"]["changed"] == 0

    assert run(run_cli, "rollback", lab, inventory=inventory, tasks="lync").code == 0
    restored = lab.snapshot()
    assert {k: u["UserServicesPolicy"] for k, u in restored["cs_user"].items()} == {
        k: u["UserServicesPolicy"] for k, u in before["cs_user"].items()}
    assert restored["cs_config"] == before["cs_config"], "the policy lync2fa created is gone"
    # The contacts stay in Lync Server; the server moves them to UCS again once policy allows.
    assert not any(u["ContactsInUcs"] for u in restored["cs_user"].values())
