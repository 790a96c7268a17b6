"""The Lync Server / Skype for Business Server management shell over the Central Management Store.

What the lab models (Microsoft's cmdlet reference for each Cs* cmdlet below):

* configuration collections (kind ``cs_config``, key ``<Noun>/<identity lower-cased>``) at the
  scopes each document allows, with their real defaults: CsWebServiceConfiguration at Global,
  site and service (WebServer) scope, CsProxyConfiguration at Global and service (Registrar,
  EdgeServer) scope, CsUserServicesPolicy at Global, site and per-user (tag) scope;
* inheritance is the reader's business, as in Lync: a service without its own collection uses its
  site's, else Global's; ``Get-...-Identity`` of a missing collection fails (ObjectNotFound), it
  does not answer with the inherited one; ``New-`` starts from the defaults, never from the
  collection the service inherited;
* ``New-`` refuses an identity that has a collection already, Global (which always exists), a site
  or service that is not in the topology and a service type the document has no scope for;
  ``Set-``/``Remove-`` refuse a missing identity; ``Remove-`` of Global resets it to the defaults;
  ``-InMemory`` returns the new object without writing it;
* the topology (``cs_service``, ``cs_site``: services with their site), Lync users (``cs_user``:
  what Get-CsUser returns, plus where the user's contacts live, which no Get- shows);
* every Cs cmdlet reads the CMS (SQL on the Enterprise pool's back end): over a session without
  network credentials Windows fails (the double hop); Get-CsUser and the user cmdlets read AD too;
* not modelled: a confirmation prompt (the cmdlets' ConfirmImpact is not documented; the
  decisions pass ``-Confirm:$false`` to Invoke-CsUcsRollback and the Remove- cmdlets anyway).

The error texts of the Lync shell below follow its wording as far as we know it; they could not be
checked against a live server (the category, which decisions read, is Windows').
"""

from __future__ import annotations

import copy
import fnmatch

from ..estate import Estate
from ..state import EstateStore
from .errors import WindowsError, not_found
from .hosts import seeds
from .machine import Machine, simulates

CONFIG, SERVICE, SITE, USER = "cs_config", "cs_service", "cs_site", "cs_user"
LAB_SITE = "Site:HQ"

# Defaults of a new collection (Get-Cs...Configuration -Identity Global on a new deployment).
WEB_DEFAULTS: dict[str, object] = {
    "AllowAnonymousAccessToLWAConference": True,
    "AllowExternalAuthentication": True,
    "AutoLaunchLyncWebAccess": False,
    "CASigningKeyLength": 2048,
    "DefaultValidityPeriodHours": 8,
    "EnableCertChainDownload": True,
    "EnableGroupExpansion": True,
    "InferCertChainFromSSL": False,
    "MACResolverUrl": None,
    "MaxCSRKeySize": 16384,
    "MaxGroupSizeToExpand": 100,
    "MaxValidityPeriodHours": 8760,
    "MinCSRKeySize": 1024,
    "MinValidityPeriodHours": 1,
    "SecondaryLocationSourceUrl": None,
    "ShowAlternateJoinOptionsExpanded": False,
    "ShowDownloadCommunicatorAttendeeLink": True,
    "ShowJoinUsingLegacyClientLink": False,
    "TrustedCACerts": [],
    "UseCertificateAuth": True,
    "UsePinAuth": True,
    "UseWindowsAuth": "Negotiate",
    "UseWsFedPassiveAuth": False,
    "WsFedPassiveMetadataUri": None,
}
PROXY_DEFAULTS = {
    "AcceptClientCompression": True,
    "AcceptServerCompression": True,
    "AllowPartnerPollingSubscribes": True,
    "DisableNtlmFor2010AndLaterClients": False,
    "DnsCacheRecordCount": 100,
    "EnableLoggingAllMessageBodies": False,
    "EnableWhiteSpaceKeepAlive": False,
    "LoadBalanceEdgeServers": True,
    "LoadBalanceInternalServers": True,
    "MaxClientCompressionCount": 5000,
    "MaxClientMessageBodySizeKb": 128,
    "MaxKeepAliveInterval": 900,
    "MaxServerCompressionCount": 20,
    "MaxServerMessageBodySizeKb": 5000,
    "OutgoingTlsCount": 4,
    "RequestServerCompression": True,
    "TreatAllClientsAsRemote": False,
    "UseCertificateForClientToProxyAuth": True,
    "UseKerberosForClientToProxyAuth": True,
    "UseNtlmForClientToProxyAuth": True,
}
POLICY_DEFAULTS = {"UcsAllowed": True, "MigrationDelayInDays": 0, "EnableAwaySinceIndication": False}


class Document:
    def __init__(self, noun: str, xds: str, scopes: tuple[str, ...], services: tuple[str, ...], defaults: dict):
        self.noun, self.xds, self.scopes, self.services, self.defaults = noun, xds, scopes, services, defaults


DOCUMENTS = {
    d.noun.lower(): d
    for d in (
        Document(
            "CsWebServiceConfiguration",
            "WebServiceConfiguration",
            ("global", "site", "service"),
            ("WebServer",),
            WEB_DEFAULTS,
        ),
        Document(
            "CsProxyConfiguration",
            "ProxyConfiguration",
            ("global", "service"),
            ("Registrar", "EdgeServer"),
            PROXY_DEFAULTS,
        ),
        Document("CsUserServicesPolicy", "UserServicesPolicy", ("global", "site", "tag"), (), POLICY_DEFAULTS),
    )
}
NOT_SETTINGS = {"identity", "inmemory", "force", "confirm", "whatif", "instance", "tenant", "filter", "localstore"}


# -- identities -----------------------------------------------------------------------------
def canonical(document: Document, identity: str | None) -> tuple[str, str]:
    """(scope, canonical identity) of an XdsIdentity: Global, Site:<name>, Service:<Type>:<fqdn>,
    Tag:<name> (a bare name is a per-user policy's)."""
    text = (identity or "Global").strip()
    lowered = text.lower()
    if lowered == "global":
        return "global", "Global"
    if lowered.startswith("site:"):
        return "site", "Site:" + text[5:]
    if lowered.startswith("service:"):
        parts = text.split(":", 2)
        if len(parts) == 3:
            kind = next((s for s in document.services if s.lower() == parts[1].lower()), parts[1])
            return "service", f"Service:{kind}:{parts[2]}"
        return "service", text
    if lowered.startswith("tag:"):
        return "tag", "Tag:" + text[4:]
    if "tag" in document.scopes:
        return "tag", "Tag:" + text
    return "unknown", text


def _key(document: Document, identity: str) -> str:
    return f"{document.noun}/{identity.lower()}"


def _document(cmdlet: str) -> Document:
    return DOCUMENTS[cmdlet.split("-", 1)[1].lower()]


def _missing(document: Document, identity: str) -> WindowsError:
    return not_found(
        f'Cannot get "{document.xds}" "{identity}" because it does not exist.',
        f"MissingItem,Microsoft.Rtc.Management.Internal.Get{document.xds}Cmdlet",
    )


def _cms(machine: Machine) -> None:
    machine.require_network("cms")


def _settings(document: Document, params: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in params.items() if k.lower() not in NOT_SETTINGS}


# -- configuration documents ---------------------------------------------------------------------
def _get(machine: Machine, p: dict, cmdlet: str) -> list[dict]:
    _cms(machine)
    document = _document(cmdlet)
    prefix = document.noun.lower() + "/"
    items = [v for k, v in machine.store.items(CONFIG).items() if k.lower().startswith(prefix)]
    if p.get("Identity") is not None:
        _, identity = canonical(document, p["Identity"])
        found = machine.store.get(CONFIG, _key(document, identity))
        if found is None:
            raise _missing(document, identity)
        return [copy.deepcopy(found)]
    if p.get("Filter") is not None:
        pattern = str(p["Filter"]).lower()
        items = [i for i in items if fnmatch.fnmatchcase(i["Identity"].lower(), pattern)]
    return [copy.deepcopy(i) for i in sorted(items, key=lambda i: i["Identity"].lower())]


def _check_scope(machine: Machine, document: Document, scope: str, identity: str) -> None:
    if scope not in document.scopes:
        raise WindowsError(
            f'The identity "{identity}" is not valid for "{document.xds}": the scope is not '
            "supported for this configuration.",
            "InvalidArgument",
            f"InvalidIdentity,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
        )
    if scope == "site" and machine.store.get(SITE, identity.lower()) is None:
        raise not_found(
            f'Cannot find site "{identity[5:]}" in the topology.',
            f"SiteNotFound,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
        )
    if scope == "service":
        parts = identity.split(":", 2)
        if len(parts) != 3 or parts[1] not in document.services:
            raise WindowsError(
                f'The identity "{identity}" is not valid for "{document.xds}": service scope is '
                f"supported only for {', '.join(document.services)}.",
                "InvalidArgument",
                f"InvalidIdentity,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
            )
        if machine.store.get(SERVICE, f"{parts[1]}:{parts[2]}".lower()) is None:
            raise not_found(
                f'Cannot find service "{parts[1]}:{parts[2]}" in the topology.',
                f"ServiceNotFound,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
            )


def _new(machine: Machine, p: dict, cmdlet: str) -> dict:
    _cms(machine)
    document = _document(cmdlet)
    scope, identity = canonical(document, p["Identity"])
    if scope == "global":
        raise WindowsError(
            f'"{document.xds}" "Global" already exists: the global collection is created at '
            "installation; change it with Set-.",
            "ResourceExists",
            f"DuplicateItem,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
        )
    _check_scope(machine, document, scope, identity)
    obj = {"Identity": identity, **copy.deepcopy(document.defaults), **_settings(document, p)}
    if p.get("InMemory"):
        return obj
    if machine.store.get(CONFIG, _key(document, identity)) is not None:
        raise WindowsError(
            f'Cannot create "{document.xds}" "{identity}" because it already exists. Use the '
            f"Set-{document.noun} cmdlet to modify it.",
            "ResourceExists",
            f"DuplicateItem,Microsoft.Rtc.Management.Internal.New{document.xds}Cmdlet",
        )
    machine.store.put(CONFIG, _key(document, identity), obj)
    return copy.deepcopy(obj)


def _set(machine: Machine, p: dict, cmdlet: str) -> None:
    _cms(machine)
    document = _document(cmdlet)
    _, identity = canonical(document, p.get("Identity"))
    obj = machine.store.get(CONFIG, _key(document, identity))
    if obj is None:
        raise _missing(document, identity)
    if p.get("WhatIf"):
        return
    obj.update(_settings(document, p))
    machine.store.put(CONFIG, _key(document, identity), obj)
    return


def _remove(machine: Machine, p: dict, cmdlet: str) -> None:
    _cms(machine)
    document = _document(cmdlet)
    scope, identity = canonical(document, p["Identity"])
    if machine.store.get(CONFIG, _key(document, identity)) is None:
        raise _missing(document, identity)
    if p.get("WhatIf"):
        return
    if scope == "global":  # the global collection cannot be deleted: it is reset to its defaults
        machine.store.put(CONFIG, _key(document, identity), {"Identity": "Global", **copy.deepcopy(document.defaults)})
    else:
        machine.store.delete(CONFIG, _key(document, identity))
    return


for _noun in ("CsWebServiceConfiguration", "CsProxyConfiguration", "CsUserServicesPolicy"):
    simulates(f"Get-{_noun}")(lambda m, p, c=f"Get-{_noun}": _get(m, p, c))
    simulates(f"New-{_noun}")(lambda m, p, c=f"New-{_noun}": _new(m, p, c))
    simulates(f"Set-{_noun}")(lambda m, p, c=f"Set-{_noun}": _set(m, p, c))
    simulates(f"Remove-{_noun}")(lambda m, p, c=f"Remove-{_noun}": _remove(m, p, c))


# -- topology -----------------------------------------------------------------------------------
@simulates("Get-CsService")
def get_cs_service(machine: Machine, p: dict) -> list[dict]:
    _cms(machine)
    services = sorted(machine.store.items(SERVICE).values(), key=lambda s: s["Identity"].lower())
    if p.get("Identity") is not None:
        found = machine.store.get(SERVICE, str(p["Identity"]).lower())
        if found is None:
            raise not_found(
                f'Cannot find service "{p["Identity"]}" in the topology.',
                "ServiceNotFound,Microsoft.Rtc.Management.Deploy.Cmdlets.GetServiceCmdlet",
            )
        return [copy.deepcopy(found)]
    roles = [name for name, value in p.items() if value is True and name not in ("PoolFqdn", "Filter")]
    if roles:
        services = [s for s in services if s["Identity"].split(":", 1)[0] in roles]
    if p.get("PoolFqdn"):
        services = [s for s in services if s["PoolFqdn"].lower() == str(p["PoolFqdn"]).lower()]
    if p.get("Filter"):
        services = [s for s in services if fnmatch.fnmatchcase(s["Identity"].lower(), str(p["Filter"]).lower())]
    return [copy.deepcopy(s) for s in services]


@simulates("Get-CsSite")
def get_cs_site(machine: Machine, p: dict) -> list[dict]:
    _cms(machine)
    sites = sorted(machine.store.items(SITE).values(), key=lambda s: s["Identity"].lower())
    if p.get("Identity") is not None:
        wanted = str(p["Identity"]).lower()
        sites = [s for s in sites if wanted in (s["Identity"].lower(), s["Identity"][5:].lower())]
        if not sites:
            raise not_found(
                f'Cannot find site "{p["Identity"]}" in the topology.',
                "SiteNotFound,Microsoft.Rtc.Management.Deploy.Cmdlets.GetSiteCmdlet",
            )
    return [copy.deepcopy(s) for s in sites]


@simulates("Get-CsPool")
def get_cs_pool(machine: Machine, p: dict) -> list[dict]:
    _cms(machine)
    pools: dict[str, dict] = {}
    for service in machine.store.items(SERVICE).values():
        pool = pools.setdefault(
            service["PoolFqdn"].lower(),
            {
                "Identity": service["PoolFqdn"],
                "Fqdn": service["PoolFqdn"],
                "Site": service["SiteId"],
                "Services": [],
                "Computers": [service["PoolFqdn"]],
            },
        )
        pool["Services"].append(service["Identity"])
    found = sorted(pools.values(), key=lambda x: x["Identity"].lower())
    if p.get("Identity") is not None:
        found = [x for x in found if x["Identity"].lower() == str(p["Identity"]).lower()]
        if not found:
            raise not_found(
                f'Cannot find pool "{p["Identity"]}" in the topology.',
                "PoolNotFound,Microsoft.Rtc.Management.Deploy.Cmdlets.GetPoolCmdlet",
            )
    return found


# -- users (read from AD) ----------------------------------------------------------------------
USER_INTERNAL = ("ContactsInUcs",)  # where the contacts live: no Get-CsUser property shows it


def _user_key(identity: str) -> str:
    text = str(identity).strip().lower()
    return text if text.startswith("sip:") else f"sip:{text}"


def _find_user(machine: Machine, identity: str, cmdlet: str) -> dict:
    user = machine.store.get(USER, _user_key(identity))
    if user is None:
        for candidate in machine.store.items(USER).values():
            if str(identity).lower() in (
                candidate.get("UserPrincipalName", "").lower(),
                candidate.get("DisplayName", "").lower(),
                candidate.get("SamAccountName", "").lower(),
            ):
                return candidate
        raise not_found(
            f'Management object not found for identity "{identity}".',
            f"Identity,Microsoft.Rtc.Management.AD.Cmdlets.{cmdlet.replace('-', '')}Cmdlet",
        )
    return user


def _public(user: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in user.items() if k not in USER_INTERNAL}


@simulates("Get-CsUser")
def get_cs_user(machine: Machine, p: dict) -> list[dict]:
    machine.require_network("ad")
    if p.get("Filter") is not None or p.get("LdapFilter") is not None:
        raise WindowsError("lab: Get-CsUser -Filter/-LdapFilter is documented but not simulated by the lab")
    if p.get("Identity") is not None:
        return [_public(_find_user(machine, p["Identity"], "Get-CsUser"))]
    users = sorted(machine.store.items(USER).values(), key=lambda u: u["SipAddress"].lower())
    return [_public(u) for u in users]


@simulates("Invoke-CsUcsRollback")
def invoke_cs_ucs_rollback(machine: Machine, p: dict) -> None:
    machine.require_network("ad")
    _cms(machine)
    user = _find_user(machine, p["Identity"], "Invoke-CsUcsRollback")
    if p.get("WhatIf"):
        return
    user["ContactsInUcs"] = False  # the contacts move back into Lync Server storage
    machine.store.put(USER, user["SipAddress"].lower(), user)
    return


@simulates("Grant-CsUserServicesPolicy")
def grant_cs_user_services_policy(machine: Machine, p: dict) -> None:
    machine.require_network("ad")
    _cms(machine)
    user = _find_user(machine, p["Identity"], "Grant-CsUserServicesPolicy")
    name = p.get("PolicyName")
    if name is not None:
        document = DOCUMENTS["csuserservicespolicy"]
        scope, identity = canonical(document, name)
        if scope != "tag":
            raise WindowsError(
                f'Cannot assign policy "{name}": only per-user (tag) policies can be granted.',
                "InvalidArgument",
                "InvalidPolicyScope,Microsoft.Rtc.Management.AD.Cmdlets.GrantUserServicesPolicyCmdlet",
            )
        if machine.store.get(CONFIG, _key(document, identity)) is None:
            raise not_found(
                f'Cannot find policy "{identity[4:]}" of type "{document.xds}".',
                "PolicyNotFound,Microsoft.Rtc.Management.AD.Cmdlets.GrantUserServicesPolicyCmdlet",
            )
        name = identity[4:]
    if p.get("WhatIf"):
        return
    user["UserServicesPolicy"] = name
    machine.store.put(USER, user["SipAddress"].lower(), user)
    return


# -- a deployment as installed -------------------------------------------------------------------
@seeds
def seed_lync(store: EstateStore, estate: Estate) -> None:
    """Global collections with their defaults, one site whose web services collection an
    administrator customised, no service-scope collections, the topology's services, and the AD
    users as Lync users homed on the first (non-Director) pool, two of them with their contacts in
    the Unified Contact Store."""
    if not estate.in_group("lync_pools"):
        return
    for noun, identity, extra in (
        ("CsWebServiceConfiguration", "Global", {}),
        ("CsWebServiceConfiguration", LAB_SITE, {"MaxGroupSizeToExpand": 200}),
        ("CsProxyConfiguration", "Global", {}),
        ("CsUserServicesPolicy", "Global", {}),
    ):
        document = DOCUMENTS[noun.lower()]
        store.put(CONFIG, _key(document, identity), {"Identity": identity, **copy.deepcopy(document.defaults), **extra})
    store.put(SITE, LAB_SITE.lower(), {"Identity": LAB_SITE, "SiteId": 1, "DisplayName": LAB_SITE[5:]})
    services = [(s, h.fqdn) for h in estate.in_group("lync_pools") for s in ("WebServer", "Registrar")]
    services += [("EdgeServer", h.fqdn) for h in estate.in_group("lync_edge")]
    for service, fqdn in services:
        store.put(
            SERVICE,
            f"{service}:{fqdn}".lower(),
            {"Identity": f"{service}:{fqdn}", "SiteId": LAB_SITE, "PoolFqdn": fqdn},
        )
    pools = [h for h in estate.in_group("lync_pools") if h.vars.get("lync2fa_lync_role") != "director"]
    if not pools:
        return
    for i, (sam, user) in enumerate(sorted(store.items("ad_user").items())):
        sip = f"sip:{user['upn']}"
        store.put(
            USER,
            sip.lower(),
            {
                "Identity": f"CN={sam},CN=Users,{_dc(estate.domain)}",
                "SipAddress": sip,
                "SamAccountName": sam,
                "UserPrincipalName": user["upn"],
                "DisplayName": sam,
                "Enabled": True,
                "RegistrarPool": pools[0].fqdn,
                "UserServicesPolicy": None,
                "ContactsInUcs": i < 2,
            },
        )


def _dc(domain: str) -> str:
    return ",".join(f"DC={part}" for part in domain.split("."))
