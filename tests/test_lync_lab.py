"""The Lync tier end to end through the CLI, pywinrm and the lab's Lync management shell over the
Central Management Store (lync2fa.lab.windows.lync); and that Windows model itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lync2fa.hostops import cmdlet
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import Machine, errors
from lync2fa.lab.windows import lync as cms
from lync2fa.lab.windows.machine import DOMAIN_CONTROLLER
from lync2fa.plugins.lync import scopes
from lync2fa.plugins.lync.settings import MODULE, WEB

POOL, DIRECTOR, EDGE = "pool01.corp.lync2fa.test", "dir01.corp.lync2fa.test", "edge01.corp.lync2fa.test"
METADATA = "https://sts.corp.lync2fa.test/federationmetadata/2007-06/federationmetadata.xml"
WEB_POOL = f"CsWebServiceConfiguration/service:webserver:{POOL}"
REGISTRAR_POOL = f"CsProxyConfiguration/service:registrar:{POOL}"
GLOBALS = (
    "CsWebServiceConfiguration/global",
    "CsWebServiceConfiguration/site:hq",
    "CsProxyConfiguration/global",
    "CsUserServicesPolicy/global",
)


def run(run_cli, command, lab, *extra, inventory=None, tasks="lync"):
    option = "--tier" if command == "rollback" else "--tasks"
    return run_cli(command, "-i", inventory or lab.inventory, "--state-dir", lab.state_dir, option, tasks, *extra)


def changed(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["task"], r["host"]): r for r in report["results"] if r["changed"]}


def cs(lab) -> dict:
    return lab.snapshot().get("cs_config", {})


def state(lab) -> dict:
    """The estate without empty registry keys (rollback leaves lync2fa's records key, empty)."""
    snapshot = lab.snapshot()
    return {**snapshot, "registry": {k: v for k, v in snapshot.get("registry", {}).items() if v.get("values")}}


def diff_of(result: dict) -> dict:
    return {d["path"]: (d["before"], d["after"]) for d in result["diff"]}


def test_service_scope_with_inheritance_visible_then_idempotent(lab, run_cli):
    seeded = cs(lab)
    assert set(seeded) == set(GLOBALS), "no service-scope collections in a new deployment"
    planned = run(run_cli, "plan", lab, "--json")
    assert planned.code == 0, planned.err
    report = changed(planned.json())
    assert set(report) == {
        ("lync.web_service", "pool01"),
        ("lync.web_service", "dir01"),
        ("lync.registrar_proxy", "pool01"),
        ("lync.edge_proxy", "pool01"),
    }
    web = report["lync.web_service", "pool01"]
    assert diff_of(web) == {
        "scope": ("Site:HQ", f"Service:WebServer:{POOL}"),  # inherited from the site until now
        "UseWsFedPassiveAuth": (False, True),
        "WsFedPassiveMetadataUri": (None, METADATA),
        "UseCertificateAuth": (True, False),
        "UsePinAuth": (True, False),
        "UseWindowsAuth": ("Negotiate", "None"),
    }
    assert [w for w in web["warnings"] if "will not inherit" in w] == [
        (
            f"Service:WebServer:{POOL} will not inherit MaxGroupSizeToExpand = 200 from Site:HQ: a new service "
            "collection starts from the default (100); set it on the service collection if it matters."
        )
    ]
    assert diff_of(report["lync.registrar_proxy", "pool01"]) == {
        "scope": ("Global", f"Service:Registrar:{POOL}"),
        "UseKerberosForClientToProxyAuth": (True, False),
        "UseNtlmForClientToProxyAuth": (True, False),
    }
    assert report["lync.registrar_proxy", "pool01"]["warnings"] == [], "Global is at its defaults: nothing lost"
    assert diff_of(report["lync.edge_proxy", "pool01"])[f"Service:EdgeServer:{EDGE}.scope"] == (
        "Global",
        f"Service:EdgeServer:{EDGE}",
    )
    director = next(
        r for r in planned.json()["results"] if r["task"] == "lync.registrar_proxy" and r["host"] == "dir01"
    )
    assert director["msg"].startswith("Director: its Registrar proxy settings are left alone")
    assert cs(lab) == seeded

    assert run(run_cli, "apply", lab).code == 0
    after = cs(lab)
    assert {k: after[k] for k in GLOBALS} == {k: seeded[k] for k in GLOBALS}, "Global and site untouched"
    assert set(after) - set(GLOBALS) == {
        WEB_POOL,
        f"CsWebServiceConfiguration/service:webserver:{DIRECTOR}",
        REGISTRAR_POOL,
        f"CsProxyConfiguration/service:edgeserver:{EDGE}",
    }
    # New- starts from the defaults (MaxGroupSizeToExpand 100, not the site's 200).
    assert after[WEB_POOL] == {
        **cms.WEB_DEFAULTS,
        "Identity": f"Service:WebServer:{POOL}",
        "UseWsFedPassiveAuth": True,
        "WsFedPassiveMetadataUri": METADATA,
        "UseCertificateAuth": False,
        "UsePinAuth": False,
        "UseWindowsAuth": "None",
    }
    assert after[REGISTRAR_POOL]["UseCertificateForClientToProxyAuth"] is True
    assert run(run_cli, "apply", lab, "--json").json()["counts"]["changed"] == 0

    # Drift: PIN authentication switched back on behind lync2fa's back.
    lab.put("cs_config", WEB_POOL, {**after[WEB_POOL], "UsePinAuth": True})
    drift = changed(run(run_cli, "plan", lab, "--json").json())
    assert list(drift) == [("lync.web_service", "pool01")]
    assert drift["lync.web_service", "pool01"]["diff"] == [{"path": "UsePinAuth", "before": True, "after": False}]
    assert drift["lync.web_service", "pool01"]["warnings"] == [], "a Set- inherits nothing: no warning"
    assert run(run_cli, "apply", lab).code == 0
    assert cs(lab)[WEB_POOL] == after[WEB_POOL]


def test_the_lab_runs_exactly_the_operations_the_decision_produced(lab, run_cli):
    applied = run(run_cli, "apply", lab, "--json", tasks="lync.web_service")
    assert applied.code == 0, applied.out
    executed = lab.ran_as_decided(applied.json())
    assert set(executed) == {"pool01", "dir01"}
    assert [op["op"] for op in executed["pool01"]] == ["registry_set", "cmdlet"]  # the record, then New-
    assert executed["pool01"][1] == cmdlet(
        "New-CsWebServiceConfiguration",
        {"Identity": f"Service:WebServer:{POOL}", **WEB.wanted({"metadata_uri": METADATA})},
        MODULE,
    )
    assert run(run_cli, "apply", lab, "--json", tasks="lync.web_service").json()["counts"]["changed"] == 0
    assert lab.executed() == executed, "a no-op re-apply sends no operation"


def test_inherited_collection_that_differs_from_the_defaults_warns_for_proxies_too(lab, run_cli):
    glob = lab.get("cs_config", "CsProxyConfiguration/global")
    lab.put("cs_config", "CsProxyConfiguration/global", {**glob, "TreatAllClientsAsRemote": True})
    planned = changed(run(run_cli, "plan", lab, "--json", tasks="lync.registrar_proxy").json())
    assert planned["lync.registrar_proxy", "pool01"]["warnings"] == [
        (
            f"Service:Registrar:{POOL} will not inherit TreatAllClientsAsRemote = True from Global: a new service "
            "collection starts from the default (False); set it on the service collection if it matters."
        )
    ]


def test_existing_service_collections_are_set_and_restored(lab, run_cli):
    admin_web = {
        **cms.WEB_DEFAULTS,
        "Identity": f"Service:WebServer:{POOL}",
        "UsePinAuth": False,
        "UseWindowsAuth": "NTLM",
        "MaxGroupSizeToExpand": 500,
    }
    admin_proxy = {
        **cms.PROXY_DEFAULTS,
        "Identity": f"Service:Registrar:{POOL}",
        "UseCertificateForClientToProxyAuth": False,
        "TreatAllClientsAsRemote": True,
    }
    lab.put("cs_config", WEB_POOL, admin_web)
    lab.put("cs_config", REGISTRAR_POOL, admin_proxy)
    before = state(lab)

    applied = changed(run(run_cli, "apply", lab, "--json").json())
    assert "scope" not in diff_of(applied["lync.web_service", "pool01"]), "Set- on the service's own collection"
    assert diff_of(applied["lync.registrar_proxy", "pool01"])["UseCertificateForClientToProxyAuth"] == (False, True)
    now = cs(lab)
    assert now[WEB_POOL]["MaxGroupSizeToExpand"] == 500 and now[WEB_POOL]["UseWindowsAuth"] == "None"
    assert now[REGISTRAR_POOL]["TreatAllClientsAsRemote"] is True

    rolled = run(run_cli, "rollback", lab, "--json")
    assert rolled.code == 0
    pool = changed(rolled.json())["lync.rollback", "pool01"]
    assert diff_of(pool)[f"CsWebServiceConfiguration/Service:WebServer:{POOL}.UseWindowsAuth"] == ("None", "NTLM")
    assert diff_of(pool)[f"CsProxyConfiguration/Service:EdgeServer:{EDGE}.scope"] == (
        f"Service:EdgeServer:{EDGE}",
        "Global",
    )
    assert state(lab) == before, "modified collections restored, created ones removed"


def test_director_registrar_is_a_choice(lab, run_cli):
    inventory = lab.inventory_with({"dir01": {"lync_director_registrar": True}})
    assert run(run_cli, "apply", lab, inventory=inventory, tasks="lync.registrar_proxy").code == 0
    assert cs(lab)[f"CsProxyConfiguration/service:registrar:{DIRECTOR}"]["UseNtlmForClientToProxyAuth"] is False


def test_any_scope_but_service_is_refused(lab, run_cli):
    inventory = lab.inventory_with(
        {
            "pool01": {
                "lync_web_service_identity": "Global",
                "lync_registrar_identity": "site:HQ",
                "lync_edge_identities": [f"Service:WebServer:{EDGE}"],
                "lync_ucs_rollback": True,
                "lync_ucs_policy": "Global",
            }
        },
    )
    seeded = cs(lab)
    refused = run(run_cli, "apply", lab, inventory=inventory)
    assert refused.code == 2
    assert refused.err.count("[GLOBAL_SCOPE]") == 4
    for setting in (
        "lync_web_service_identity 'Global'",
        "lync_registrar_identity 'site:HQ'",
        "lync_edge_identities 'Service:WebServer:",
        "lync_ucs_policy 'Global'",
    ):
        assert setting in refused.err
    assert cs(lab) == seeded

    # Even when the operator overrides the gate, the decisions refuse: Global is never changed.
    for tasks, refusal in (
        ("lync.web_service", "FAILED  lync.web_service on pool01: Refused: Global is not a Service:WebServer:"),
        (
            "lync.registrar_proxy",
            ("FAILED  lync.registrar_proxy on pool01: Refused: site:HQ is not a Service:Registrar:<FQDN> identity"),
        ),
        (
            "lync.edge_proxy",
            (
                f"FAILED  lync.edge_proxy on pool01: Refused: Service:WebServer:{EDGE} is not a "
                "Service:EdgeServer:<FQDN> identity"
            ),
        ),
        (
            "lync.ucs_rollback",
            ("FAILED  lync.ucs_rollback on pool01: Refused: Global is not a per-user (tag) policy name"),
        ),
    ):
        forced = run(run_cli, "apply", lab, "--allow-insecure", "GLOBAL_SCOPE", inventory=inventory, tasks=tasks)
        assert forced.code == 1 and refusal in forced.out, forced.out
        assert "allowed by --allow-insecure" in forced.out
    assert {k: v for k, v in cs(lab).items() if k in GLOBALS} == {k: seeded[k] for k in GLOBALS}
    assert lab.operations("pool01") == [], "a refusal sends no operation"


def test_metadata_uri_must_be_https_and_name_the_federation_service(lab, run_cli):
    plain = lab.inventory_with({"pool01": {"lync_metadata_uri": METADATA.replace("https:", "http:")}}, "http.yml")
    refused = run(run_cli, "plan", lab, inventory=plain)
    assert refused.code == 2 and "[METADATA_HTTP]" in refused.err
    server = lab.inventory_with({"pool01": {"lync_metadata_uri": METADATA.replace("sts.", "adfs01.")}}, "server.yml")
    warned = run(run_cli, "plan", lab, inventory=server)
    assert warned.code == 0
    assert "warning: [FS_NAME]" in warned.out and "not its Federation Service Name sts.corp.lync2fa.test" in warned.out


def test_ucs_rollback_moves_contacts_and_keeps_them_out(lab, run_cli):
    sales = lab.get("cs_user", "sip:user03@corp.lync2fa.test")
    lab.put("cs_user", "sip:user03@corp.lync2fa.test", {**sales, "UserServicesPolicy": "Sales"})
    glob = lab.get("cs_config", "CsUserServicesPolicy/global")
    lab.put("cs_config", "CsUserServicesPolicy/tag:sales", {**glob, "Identity": "Tag:Sales"})
    before = lab.snapshot()
    assert [u["ContactsInUcs"] for u in before["cs_user"].values()] == [True, True, False, False]
    inventory = lab.inventory_with({"pool01": {"lync_ucs_rollback": True}, "dir01": {"lync_ucs_rollback": True}})

    applied = run(run_cli, "apply", lab, "--json", inventory=inventory)
    assert applied.code == 0, applied.out
    results = applied.json()["results"]
    order = [r["task"] for r in results if r["host"] == "pool01"]
    assert order.index("lync.ucs_rollback") < order.index("lync.web_service"), "contacts moved before 2FA is on"
    ucs = changed(applied.json())["lync.ucs_rollback", "pool01"]
    assert ucs["after"]["policy"] == {"exists": True, "UcsAllowed": False}
    assert ucs["warnings"] == [
        (
            "sip:user03@corp.lync2fa.test had the user services policy Sales; it is replaced by "
            "lync2fa-NoUcs (lync2fa rollback puts it back)."
        )
    ]
    assert ("lync.ucs_rollback", "dir01") not in changed(applied.json()), "no users are homed on a Director"
    users = lab.snapshot()["cs_user"].values()
    assert {u["UserServicesPolicy"] for u in users} == {"lync2fa-NoUcs"}
    assert not any(u["ContactsInUcs"] for u in users)
    assert cs(lab)["CsUserServicesPolicy/tag:lync2fa-noucs"]["UcsAllowed"] is False
    assert cs(lab)["CsUserServicesPolicy/global"] == before["cs_config"]["CsUserServicesPolicy/global"]
    assert run(run_cli, "apply", lab, "--json", inventory=inventory).json()["counts"]["changed"] == 0

    assert run(run_cli, "rollback", lab, inventory=inventory).code == 0
    restored = lab.snapshot()
    assert {k: u["UserServicesPolicy"] for k, u in restored["cs_user"].items()} == {
        k: u["UserServicesPolicy"] for k, u in before["cs_user"].items()
    }
    assert restored["cs_config"] == before["cs_config"], "the policy lync2fa created is gone"
    # The contacts stay in Lync Server; the server moves them to UCS again once policy allows.
    assert not any(u["ContactsInUcs"] for u in restored["cs_user"].values())


def test_a_session_without_delegation_cannot_reach_the_cms(make_lab, run_cli):
    lab = make_lab(clients=1, transport="ntlm")
    refused = run(run_cli, "plan", lab)
    assert refused.code == 2
    assert "pool01: lync.web_service reaches the Lync Central Management Store" in refused.err
    assert "pool01: lync.ucs_rollback reaches the Lync Central Management Store, Active Directory" in refused.err


# -- the Windows model: the Lync management shell ---------------------------------------------------
@pytest.fixture
def shell(tmp_path):
    directory = tmp_path / "lab"
    control.create(directory, clients=1)
    store = control.open_store(directory)
    estate = Estate.load(directory)
    machine = Machine(store, estate, estate.host("pool01"))
    yield machine
    store.close()


def _fails(machine, cmdlet, params) -> errors.WindowsError:
    with pytest.raises(errors.WindowsError) as caught:
        machine.invoke(cmdlet, params)
    return caught.value


def test_lync_shell_get_of_a_missing_collection_is_object_not_found_not_the_inherited_one(shell):
    error = _fails(shell, "Get-CsWebServiceConfiguration", {"Identity": f"Service:WebServer:{POOL}"})
    assert error.category == "ObjectNotFound"
    assert [c["Identity"] for c in shell.invoke("Get-CsWebServiceConfiguration", {})] == ["Global", "Site:HQ"]
    assert [c["Identity"] for c in shell.invoke("Get-CsWebServiceConfiguration", {"Filter": "site:*"})] == ["Site:HQ"]


def test_lync_shell_new_set_remove_rules(shell):
    identity = f"Service:WebServer:{POOL}"
    fresh = shell.invoke("New-CsWebServiceConfiguration", {"Identity": identity, "InMemory": True})[0]
    assert fresh["MaxGroupSizeToExpand"] == 100, "New- starts from the defaults, not the site's 200"
    assert shell.store.get("cs_config", f"CsWebServiceConfiguration/{identity.lower()}") is None, "-InMemory"
    assert (
        _fails(shell, "Set-CsWebServiceConfiguration", {"Identity": identity, "UsePinAuth": False}).category
        == "ObjectNotFound"
    )
    shell.invoke("New-CsWebServiceConfiguration", {"Identity": identity, "UsePinAuth": False})
    assert "already exists" in _fails(shell, "New-CsWebServiceConfiguration", {"Identity": identity}).message
    assert "already exists" in _fails(shell, "New-CsWebServiceConfiguration", {"Identity": "Global"}).message
    # No site scope for proxies; no proxy collection for a web server; only services in the topology.
    assert _fails(shell, "New-CsProxyConfiguration", {"Identity": "site:HQ"}).category == "InvalidArgument"
    assert (
        _fails(shell, "New-CsProxyConfiguration", {"Identity": f"Service:WebServer:{POOL}"}).category
        == "InvalidArgument"
    )
    assert (
        _fails(shell, "New-CsProxyConfiguration", {"Identity": "Service:Registrar:nowhere.test"}).category
        == "ObjectNotFound"
    )
    # Misspelt as in the doc: Windows' binder refuses it.
    assert (
        "UseCertifcateForClientToProxyAuth"
        in _fails(
            shell, "Set-CsProxyConfiguration", {"Identity": "Global", "UseCertifcateForClientToProxyAuth": True}
        ).message
    )
    shell.invoke("Remove-CsWebServiceConfiguration", {"Identity": identity, "Confirm": False})
    assert _fails(shell, "Remove-CsWebServiceConfiguration", {"Identity": identity}).category == "ObjectNotFound"
    shell.invoke("Set-CsWebServiceConfiguration", {"Identity": "Global", "UsePinAuth": False})
    shell.invoke("Remove-CsWebServiceConfiguration", {"Identity": "Global", "Confirm": False})
    assert shell.invoke("Get-CsWebServiceConfiguration", {"Identity": "Global"})[0]["UsePinAuth"] is True, (
        "Remove- of Global resets it to the defaults"
    )


def test_lync_shell_users_and_policies(shell):
    users = shell.invoke("Get-CsUser", {})
    assert [u["RegistrarPool"] for u in users] == [POOL] * 4
    assert "ContactsInUcs" not in users[0], "no Get-CsUser property shows where the contacts live"
    sip = users[0]["SipAddress"]
    assert (
        _fails(shell, "Grant-CsUserServicesPolicy", {"Identity": sip, "PolicyName": "NoUcs"}).category
        == "ObjectNotFound"
    )
    assert "per-user" in _fails(shell, "Grant-CsUserServicesPolicy", {"Identity": sip, "PolicyName": "Global"}).message
    shell.invoke("New-CsUserServicesPolicy", {"Identity": "NoUcs", "UcsAllowed": False})
    shell.invoke("Grant-CsUserServicesPolicy", {"Identity": sip, "PolicyName": "Tag:NoUcs"})
    assert shell.invoke("Get-CsUser", {"Identity": sip})[0]["UserServicesPolicy"] == "NoUcs"
    assert (
        _fails(shell, "Invoke-CsUcsRollback", {"Identity": "sip:nobody@corp.lync2fa.test"}).category == "ObjectNotFound"
    )
    shell.invoke("Invoke-CsUcsRollback", {"Identity": sip, "Confirm": False})
    assert shell.store.get("cs_user", sip.lower())["ContactsInUcs"] is False


def test_lync_shell_needs_network_credentials(shell):
    shell.delegated = False
    ldap = "An operations error occurred."  # the user objects, and the CMS's location (its SCP), are in AD
    sql = "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'."  # the CMS is in SQL Server
    in_cms = (
        ("Get-CsWebServiceConfiguration", {}),
        ("Set-CsProxyConfiguration", {"Identity": "Global", "UseNtlmForClientToProxyAuth": True}),
    )
    for name, params in (*in_cms, ("Get-CsUser", {})):
        assert ldap in _fails(shell, name, params).message
    shell.set_props(product_type=DOMAIN_CONTROLLER)  # AD on the host itself: SQL on another is still a hop
    for name, params in in_cms:
        assert sql in _fails(shell, name, params).message


def test_scope_rules():
    assert scopes.is_service_scope("service:webserver:Pool01.contoso.com", "WebServer")
    for bad in (
        "Global",
        "site:Redmond",
        "Service:WebServer:",
        "Service:Registrar:pool01.contoso.com",
        "Service:WebServer:pool01.contoso.com\n",
        "Service:WebServer:pool01 ; Global",
    ):
        assert not scopes.is_service_scope(bad, "WebServer"), bad
    assert scopes.tag_policy("NoUcs") == "Tag:NoUcs" == scopes.tag_policy("tag:NoUcs")
    assert [scopes.tag_policy(n) for n in ("Global", "site:Redmond", "Service:Registrar:x", "")] == [None] * 4


CS_CHANGE = re.compile(r"^(New|Set|Remove|Grant)-Cs\w+$")


def test_no_decision_fixture_changes_a_global_or_site_scope():
    """Every Cs change a decision emits (in any tier's fixtures) names a service collection or a
    per-user policy; a user services policy is granted by per-user name only."""
    fixtures = sorted((Path(__file__).parent / "decisions").glob("*/*.json"))
    checked = 0
    for path in fixtures:
        for op in json.loads(path.read_text())["expect"].get("operations", []):
            if op.get("op") != "cmdlet" or not CS_CHANGE.match(op["cmdlet"]):
                continue
            checked += 1
            identity = op["params"]["Identity"]
            if op["cmdlet"].startswith("Grant-"):
                name = op["params"].get("PolicyName")
                assert name is None or scopes.tag_policy(name), (path.name, op)
            elif op["cmdlet"].endswith("Policy"):
                assert scopes.tag_policy(identity) == identity, (path.name, op)
            else:
                assert scopes.is_service_scope(identity, "WebServer", "Registrar", "EdgeServer"), (path.name, op)
    assert checked >= 10
