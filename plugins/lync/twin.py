"""The Lync tier's lab twin: the Central Management Store's configuration collections.

Lab objects (topology-wide, like the CMS):
  ``cs_config``    collections by ``<noun>/<identity>`` (identity lower-cased): Global, Site and
                   Service scope, with the real defaults; the per-user user services policies
  ``cs_service``   the topology's services (``WebServer:<fqdn>`` ...) and their sites
  ``cs_user``      Lync users: SIP address, home pool, user services policy, contacts in UCS
Inheritance is modelled: a service without its own collection uses its site's (web services)
or Global's; a new service collection starts from the defaults, not from what it inherited.
"""
from __future__ import annotations

from lync2fa.lab.twin import TwinContext, TwinFailure, outcome

from .scopes import is_service_scope, tag_policy

WEB = "CsWebServiceConfiguration"
PROXY = "CsProxyConfiguration"
POLICY = "CsUserServicesPolicy"
SITE = "Site:HQ"
# Real defaults (Get-Cs*Configuration on a new deployment), as far as the lab models them.
WEB_DEFAULTS = {"UseWsFedPassiveAuth": False, "WsFedPassiveMetadataUri": None, "UseCertificateAuth": True,
                "UsePinAuth": True, "UseWindowsAuth": "Negotiate", "EnableGroupExpansion": True,
                "MaxGroupSizeToExpand": 100}
PROXY_DEFAULTS = {"UseKerberosForClientToProxyAuth": True, "UseNtlmForClientToProxyAuth": True,
                  "UseCertificateForClientToProxyAuth": True, "DisableNtlmFor2010AndLaterClients": False,
                  "TreatAllClientsAsRemote": False}
POLICY_DEFAULTS = {"UcsAllowed": True}
DEFAULTS = {WEB: WEB_DEFAULTS, PROXY: PROXY_DEFAULTS, POLICY: POLICY_DEFAULTS}
WEB_SETTINGS = ("UseWsFedPassiveAuth", "WsFedPassiveMetadataUri", "UseCertificateAuth", "UsePinAuth", "UseWindowsAuth")
PROXY_SETTINGS = ("UseKerberosForClientToProxyAuth", "UseNtlmForClientToProxyAuth",
                  "UseCertificateForClientToProxyAuth")
WEB_WANTED = {"UseWsFedPassiveAuth": True, "UseCertificateAuth": False, "UsePinAuth": False, "UseWindowsAuth": "None"}
PROXY_WANTED = {"UseKerberosForClientToProxyAuth": False, "UseNtlmForClientToProxyAuth": False,
                "UseCertificateForClientToProxyAuth": True}


def _key(noun: str, identity: str) -> str:
    return f"{noun}/{identity.lower()}"


def seed_lync(store, estate) -> None:
    """A Lync deployment as installed: Global collections with their defaults, one site whose web
    services collection an administrator customised, no service-scope collections, users on the
    first pool (two of them with their contacts in the Unified Contact Store)."""
    store.put("cs_config", _key(WEB, "Global"), {"Identity": "Global", **WEB_DEFAULTS})
    store.put("cs_config", _key(WEB, SITE), {"Identity": SITE, **WEB_DEFAULTS, "MaxGroupSizeToExpand": 200})
    store.put("cs_config", _key(PROXY, "Global"), {"Identity": "Global", **PROXY_DEFAULTS})
    store.put("cs_config", _key(POLICY, "Global"), {"Identity": "Global", **POLICY_DEFAULTS})
    services = [(s, h.fqdn) for h in estate.in_group("lync_pools") for s in ("WebServer", "Registrar")]
    services += [("EdgeServer", h.fqdn) for h in estate.in_group("lync_edge")]
    for service, fqdn in services:
        store.put("cs_service", f"{service}:{fqdn}".lower(), {"Identity": f"{service}:{fqdn}", "SiteId": SITE})
    pools = [h for h in estate.in_group("lync_pools") if h.vars.get("lync2fa_lync_role") != "director"]
    if not pools:
        return
    for i, (sam, user) in enumerate(store.items("ad_user").items()):
        sip = f"sip:{user['upn']}"
        store.put("cs_user", sip.lower(), {"SipAddress": sip, "RegistrarPool": pools[0].fqdn,
                                           "UserServicesPolicy": None, "ContactsInUcs": i < 2})


# -- PowerShell mirrors ----------------------------------------------------------------------
def _ps(value) -> str:
    """[string]$value in PowerShell."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_ps(v) for v in value)
    return str(value)


def _text(value):
    value = _ps(value).strip()
    return value or None


def _assert_service(identity: str, *services: str) -> str:
    if not is_service_scope(identity, *services):
        raise TwinFailure(f"Refused: {identity} is not a Service:{'|'.join(services)}:<FQDN> identity; lync2fa "
                          "never changes the Global scope or a site.")
    return identity


def _assert_tag(name: str) -> str:
    identity = tag_policy(name)
    if identity is None:
        raise TwinFailure(f"Refused: {name} is not a per-user (tag) policy name; lync2fa never changes the Global, "
                          "a site or a service policy.")
    return identity


def _service(ctx: TwinContext, service: str, fqdn: str) -> dict:
    found = ctx.store.get("cs_service", f"{service}:{fqdn}".lower())
    if found is None:
        raise TwinFailure(f"{service}:{fqdn} is not a service in the Lync topology.")
    return found


def _get(ctx: TwinContext, noun: str, identity: str) -> dict | None:
    return ctx.store.get("cs_config", _key(noun, identity))


def _inherited(ctx: TwinContext, noun: str, identity: str) -> dict:
    service, fqdn = identity.split(":", 2)[1:]
    topology = _service(ctx, service, fqdn)
    if noun == WEB:
        site = _get(ctx, WEB, topology["SiteId"])
        if site is not None:
            return site
    return _get(ctx, noun, "Global")


def _view(noun: str, config: dict) -> dict:
    """The script's Get-WebServiceView / Get-ProxyView: the effective scope and managed settings."""
    if noun == WEB:
        return {"scope": config["Identity"], "UseWsFedPassiveAuth": bool(config["UseWsFedPassiveAuth"]),
                "WsFedPassiveMetadataUri": _text(config["WsFedPassiveMetadataUri"]),
                "UseCertificateAuth": bool(config["UseCertificateAuth"]), "UsePinAuth": bool(config["UsePinAuth"]),
                "UseWindowsAuth": _ps(config["UseWindowsAuth"])}
    return {"scope": config["Identity"], **{name: bool(config[name]) for name in PROXY_SETTINGS}}


def _not_inherited_warnings(ctx: TwinContext, noun: str, inherited: dict, scope: str) -> None:
    managed = WEB_SETTINGS if noun == WEB else PROXY_SETTINGS
    for name, value in inherited.items():
        if name == "Identity" or name in managed or name not in DEFAULTS[noun]:
            continue
        fresh = DEFAULTS[noun][name]
        if _ps(value).lower() != _ps(fresh).lower():
            ctx.warn(f"{scope} will not inherit {name} = {_ps(value)} from {inherited['Identity']}: a new service "
                     f"collection starts from the default ({_ps(fresh)}); set it on the service collection if it "
                     "matters.")


def _ensure(ctx: TwinContext, noun: str, identity: str, wanted_settings: dict) -> tuple[dict, dict]:
    """The New-/Set- logic shared by web services and proxies: (before, after) views."""
    own = _get(ctx, noun, identity)
    current = own if own is not None else _inherited(ctx, noun, identity)
    before = _view(noun, current)
    wanted = {"scope": current["Identity"] if own is not None else identity, **wanted_settings}
    if before == wanted:
        return before, wanted
    if own is None:
        _not_inherited_warnings(ctx, noun, current, identity)
    if ctx.check_mode:
        return before, wanted
    if own is None:
        own = {"Identity": identity, **DEFAULTS[noun]}
        ctx.record(f"lync/{noun}/{identity}", created=True)
    else:
        ctx.record(f"lync/{noun}/{identity}", created=False, previous=before)
    own.update(wanted_settings)
    ctx.store.put("cs_config", _key(noun, identity), own)
    return before, _view(noun, own)


# -- apply twins ------------------------------------------------------------------------------
def web_service(ctx: TwinContext, p: dict) -> dict:
    identity = _assert_service(p["web_service_identity"], "WebServer")
    before, after = _ensure(ctx, WEB, identity, {**WEB_WANTED, "WsFedPassiveMetadataUri": p["metadata_uri"]})
    return outcome(before, after, warnings=ctx.warnings)


def registrar_proxy(ctx: TwinContext, p: dict) -> dict:
    if p["director"] and not p["director_registrar"]:
        return outcome({}, {}, msg="Director: its Registrar proxy settings are left alone "
                                   "(lync_director_registrar is false).")
    identity = _assert_service(p["registrar_identity"], "Registrar")
    before, after = _ensure(ctx, PROXY, identity, PROXY_WANTED)
    return outcome(before, after, warnings=ctx.warnings)


def edge_proxy(ctx: TwinContext, p: dict) -> dict:
    before, after = {}, {}
    for identity in p["edge_identities"]:
        before[identity], after[identity] = _ensure(ctx, PROXY, _assert_service(identity, "EdgeServer"), PROXY_WANTED)
    return outcome(before, after, warnings=ctx.warnings)


def _pool_users(ctx: TwinContext, pool: str) -> list[dict]:
    users = [u for u in ctx.store.items("cs_user").values() if u["RegistrarPool"].lower() == pool.lower()]
    return sorted(users, key=lambda u: u["SipAddress"].lower())


def _policy_view(ctx: TwinContext, identity: str) -> dict:
    policy = _get(ctx, POLICY, identity)
    if policy is None:
        return {"exists": False, "UcsAllowed": None}
    return {"exists": True, "UcsAllowed": policy["UcsAllowed"]}


def _ucs_view(ctx: TwinContext, users: list[dict], identity: str) -> dict:
    return {"policy": _policy_view(ctx, identity),
            "users": {u["SipAddress"]: _text(u["UserServicesPolicy"]) for u in users}}


def ucs_rollback(ctx: TwinContext, p: dict) -> dict:
    if not p["ucs_rollback"]:
        return outcome({}, {})
    identity = _assert_tag(p["ucs_policy"])
    name = identity[4:]
    users = _pool_users(ctx, p["ucs_registrar_pool"])
    before = _ucs_view(ctx, users, identity)
    wanted = {"policy": {"exists": True, "UcsAllowed": False} if users else before["policy"],
              "users": {sip: name for sip in before["users"]}}
    for sip, previous in before["users"].items():
        if previous is not None and previous.lower() != name.lower():
            ctx.warn(f"{sip} had the user services policy {previous}; it is replaced by {name} (lync2fa rollback "
                     "puts it back).")
    if before == wanted or ctx.check_mode:
        return outcome(before, wanted, warnings=ctx.warnings)
    if users and not before["policy"]["exists"]:
        ctx.record(f"lync/{POLICY}/{identity}", created=True)      # recorded before it is created
        ctx.store.put("cs_config", _key(POLICY, identity), {"Identity": identity, "UcsAllowed": False})
    elif users and before["policy"]["UcsAllowed"]:
        ctx.record(f"lync/{POLICY}/{identity}", created=False, previous=before["policy"])
        ctx.store.put("cs_config", _key(POLICY, identity), {**_get(ctx, POLICY, identity), "UcsAllowed": False})
    for user in users:
        if before["users"][user["SipAddress"]] == name:
            continue
        ctx.record(f"lync/ucs-user/{user['SipAddress']}", created=False,
               previous={"UserServicesPolicy": before["users"][user["SipAddress"]]})
        user.update(ContactsInUcs=False, UserServicesPolicy=name)   # Invoke-CsUcsRollback + Grant-
        ctx.store.put("cs_user", user["SipAddress"].lower(), user)
    return outcome(before, _ucs_view(ctx, _pool_users(ctx, p["ucs_registrar_pool"]), identity), warnings=ctx.warnings)


# -- rollback --------------------------------------------------------------------------------
def _restore_collection(ctx: TwinContext, noun: str, identity: str, data: dict) -> tuple[dict, dict]:
    services = ("WebServer",) if noun == WEB else ("Registrar", "EdgeServer")
    identity = _assert_service(identity, *services)
    own = _get(ctx, noun, identity)
    if own is None:
        view = _view(noun, _inherited(ctx, noun, identity))
        return view, view
    before = _view(noun, own)
    if data["created"]:
        inherited = _inherited(ctx, noun, identity)
        if not ctx.check_mode:
            ctx.store.delete("cs_config", _key(noun, identity))
        return before, _view(noun, inherited)
    previous = {k: v for k, v in data["previous"].items() if k != "scope"}
    after = _view(noun, {"Identity": before["scope"], **previous})
    if before != after and not ctx.check_mode:
        own.update(previous)
        ctx.store.put("cs_config", _key(noun, identity), own)
    return before, after


def _restore_user(ctx: TwinContext, sip: str, data: dict) -> tuple[dict, dict]:
    user = ctx.store.get("cs_user", sip.lower())
    if user is None:
        ctx.warn(f"{sip} no longer exists; its user services policy cannot be restored.")
        return {}, {}
    before = {"UserServicesPolicy": _text(user["UserServicesPolicy"])}
    after = {"UserServicesPolicy": _text(data["previous"]["UserServicesPolicy"])}
    if before != after and not ctx.check_mode:
        user["UserServicesPolicy"] = after["UserServicesPolicy"]
        ctx.store.put("cs_user", sip.lower(), user)
    return before, after


def _restore_policy(ctx: TwinContext, name: str, data: dict) -> tuple[dict, dict]:
    identity = _assert_tag(name)
    before = _policy_view(ctx, identity)
    after = {"exists": False, "UcsAllowed": None}
    if not data["created"] and before["exists"]:
        after = {"exists": True, "UcsAllowed": bool(data["previous"]["UcsAllowed"])}
    if before != after and not ctx.check_mode:
        if data["created"]:
            ctx.store.delete("cs_config", _key(POLICY, identity))
        else:
            policy = {**_get(ctx, POLICY, identity), "UcsAllowed": after["UcsAllowed"]}
            ctx.store.put("cs_config", _key(POLICY, identity), policy)
    return before, after


RESTORE = (
    (PROXY, lambda ctx, name, data: _restore_collection(ctx, PROXY, name, data)),
    (WEB, lambda ctx, name, data: _restore_collection(ctx, WEB, name, data)),
    ("ucs-user", _restore_user),
    (POLICY, _restore_policy),
)


def rollback(ctx: TwinContext, p: dict) -> dict:
    before, after = {}, {}
    for kind, restore in RESTORE:
        prefix = f"lync/{kind}/"
        for rid, data in ctx.records(prefix).items():
            before[rid[5:]], after[rid[5:]] = restore(ctx, rid[len(prefix):], data)
            ctx.unmark_created(rid)
    return outcome(before, after, warnings=ctx.warnings)
