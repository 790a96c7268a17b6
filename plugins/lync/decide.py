"""The Lync tier's decisions: facts read from the Central Management Store, operations that are
documented Cs* cmdlets. Every ``New-``/``Set-``/``Remove-`` here takes an identity that passed
``scopes.is_service_scope`` or ``scopes.tag_policy`` first, so the Global scope and sites are
never written (the plan gate GLOBAL_SCOPE refuses them earlier; this is the second guard).

Each task reads its facts in one round trip: every collection of the kind (the service's own,
its site's and Global are among them, so inheritance is resolved here), the topology service,
what a new collection would start from (``New-Cs...Configuration -InMemory``, which writes
nothing), the users and the rollback records.
"""

from __future__ import annotations

from lync2fa import records
from lync2fa.decision import Context, Decision, Facts
from lync2fa.hostops import cmdlet, cmdlet_fact

from .scopes import is_service_scope, tag_policy
from .settings import (
    COLLECTIONS,
    MODULE,
    POLICY_NOUN,
    POLICY_SELECT,
    POLICY_WANTED,
    PROXY,
    RECORD_PREFIX,
    RESTORE_ORDER,
    SERVICE_SELECT,
    USER_RECORD,
    USER_SELECT,
    WEB,
    Collection,
    ps_text,
    record_id,
    text,
)

DIRECTOR_MSG = "Director: its Registrar proxy settings are left alone (lync_director_registrar is false)."


# -- messages -----------------------------------------------------------------------------
def scope_refusal(identity: str, services: tuple[str, ...]) -> str:
    return (
        f"Refused: {identity} is not a Service:{'|'.join(services)}:<FQDN> identity; lync2fa never changes "
        "the Global scope or a site."
    )


def tag_refusal(name: str) -> str:
    return (
        f"Refused: {name} is not a per-user (tag) policy name; lync2fa never changes the Global, a site or a "
        "service policy."
    )


def not_in_topology(service_id: str) -> str:
    return f"{service_id} is not a service in the Lync topology."


# -- fact queries ---------------------------------------------------------------------------
def _cs(cmdlet_name: str, params: dict | None, select) -> dict:
    return cmdlet_fact(cmdlet_name, params or {}, select=select, module=MODULE)


def collections_fact(collection: Collection) -> dict:
    """Every collection of the kind (Global, sites, services): inheritance is resolved in Python."""
    return _cs(f"Get-{collection.noun}", {}, collection.select)


def fresh_fact(collection: Collection, identity: str) -> dict:
    """What ``New-`` would create for ``identity``: the defaults, in memory only."""
    return _cs(f"New-{collection.noun}", {"Identity": identity, "InMemory": True}, collection.select)


def service_id(identity: str) -> str:
    """Service:WebServer:pool01.contoso.com -> WebServer:pool01.contoso.com (Get-CsService's Identity)."""
    return identity.split(":", 1)[1]


def service_fact(identity: str) -> dict:
    return _cs("Get-CsService", {"Identity": service_id(identity)}, SERVICE_SELECT)


def users_fact() -> dict:
    """Every Lync user; the pool is compared here, never spliced into a -Filter."""
    return _cs("Get-CsUser", {}, USER_SELECT)


def policies_fact() -> dict:
    return _cs(f"Get-{POLICY_NOUN}", {"Filter": "Tag:*"}, POLICY_SELECT)


def services_fact() -> dict:
    return _cs("Get-CsService", {}, SERVICE_SELECT)


# -- helpers --------------------------------------------------------------------------------
def _find(rows: list[dict], identity: str) -> dict | None:
    for row in rows or []:
        if (text(row.get("Identity")) or "").lower() == identity.lower():
            return row
    return None


def _rows(facts: Facts, name: str) -> list[dict]:
    value = facts.value(name, [])
    return list(value or [])


def inherited(collection: Collection, configs: list[dict], service: dict | None) -> dict:
    """What a service without its own collection uses: its site's (web services), else Global."""
    if collection.site_scope and service is not None:
        site = _find(configs, text(service.get("SiteId")) or "")
        if site is not None:
            return site
    found = _find(configs, "Global")
    if found is None:
        raise LookupError(f"the Central Management Store has no Global {collection.noun}")
    return found


def not_inherited_warnings(collection: Collection, current: dict, fresh: dict, identity: str) -> list[str]:
    """A new service collection starts from the defaults, not from the site or Global collection
    the service used until now: say which unmanaged settings that changes."""
    warnings = []
    for name in collection.unmanaged:
        value, default = current.get(name), fresh.get(name)
        if ps_text(value).lower() != ps_text(default).lower():
            warnings.append(
                f"{identity} will not inherit {name} = {ps_text(value)} from {current.get('Identity')}: "
                f"a new service collection starts from the default ({ps_text(default)}); set it on the "
                "service collection if it matters."
            )
    return warnings


def _service_row(facts: Facts, name: str) -> dict | None:
    if facts.not_found(name):
        return None
    rows = _rows(facts, name)
    return rows[0] if rows else None


def ensure(
    collection: Collection,
    identity: str,
    wanted: dict,
    facts: Facts,
    records_by_id: dict,
    service_name: str,
    fresh_name: str,
    configs: list[dict],
) -> Decision:
    """New- when the service has no collection of its own (it inherited one until now), Set- when
    it has one; the record goes before the change."""
    own = _find(configs, identity)
    if own is None:
        service = _service_row(facts, service_name)
        if service is None:
            return Decision.refuse(not_in_topology(service_id(identity)))
        current = inherited(collection, configs, service)
    else:
        current = own
    before = collection.view(current)
    after = {"scope": text(own.get("Identity")) if own is not None else identity, **wanted}
    if before == after:
        return Decision(before, after)
    rid = record_id(collection.noun, identity)
    warnings: list[str] = []
    if own is None:
        fresh = _rows(facts, fresh_name)
        warnings = not_inherited_warnings(collection, current, fresh[0] if fresh else {}, identity)
        operations = [
            *records.record(records_by_id, rid, created=True),
            cmdlet(f"New-{collection.noun}", {"Identity": identity, **wanted}, MODULE),
        ]
    else:
        operations = [
            *records.record(records_by_id, rid, created=False, previous=before),
            cmdlet(f"Set-{collection.noun}", {"Identity": identity, **wanted}, MODULE),
        ]
    return Decision(before, after, operations, warnings)


def _records(facts: Facts) -> dict:
    return records.parse(facts.get(records.FACT))


# -- lync.web_service -----------------------------------------------------------------------
def web_service_facts(p: dict) -> dict:
    identity = p["web_service_identity"]
    if not is_service_scope(identity, *WEB.services):
        return {}
    return {
        "collections": collections_fact(WEB),
        "service": service_fact(identity),
        "fresh": fresh_fact(WEB, identity),
        records.FACT: records.records_fact(),
    }


def web_service(ctx: Context) -> Decision:
    identity = ctx.params["web_service_identity"]
    if not is_service_scope(identity, *WEB.services):
        return Decision.refuse(scope_refusal(identity, WEB.services))
    return ensure(
        WEB,
        identity,
        WEB.wanted(ctx.params),
        ctx.facts,
        _records(ctx.facts),
        "service",
        "fresh",
        _rows(ctx.facts, "collections"),
    )


# -- lync.registrar_proxy / lync.edge_proxy -------------------------------------------------
def _skip_director(p: dict) -> bool:
    return bool(p["director"]) and not bool(p["director_registrar"])


def registrar_proxy_facts(p: dict) -> dict:
    identity = p["registrar_identity"]
    if _skip_director(p) or not is_service_scope(identity, "Registrar"):
        return {}
    return {
        "collections": collections_fact(PROXY),
        "service": service_fact(identity),
        "fresh": fresh_fact(PROXY, identity),
        records.FACT: records.records_fact(),
    }


def registrar_proxy(ctx: Context) -> Decision:
    p = ctx.params
    if _skip_director(p):
        return Decision(msg=DIRECTOR_MSG)
    identity = p["registrar_identity"]
    if not is_service_scope(identity, "Registrar"):
        return Decision.refuse(scope_refusal(identity, ("Registrar",)))
    return ensure(
        PROXY,
        identity,
        PROXY.wanted(p),
        ctx.facts,
        _records(ctx.facts),
        "service",
        "fresh",
        _rows(ctx.facts, "collections"),
    )


def edge_proxy_facts(p: dict) -> dict:
    identities = [i for i in p["edge_identities"] if is_service_scope(i, "EdgeServer")]
    if not p["edge_identities"] or len(identities) != len(p["edge_identities"]):
        return {}
    facts = {"collections": collections_fact(PROXY), records.FACT: records.records_fact()}
    for identity in identities:
        facts[f"service/{identity}"] = service_fact(identity)
        facts[f"fresh/{identity}"] = fresh_fact(PROXY, identity)
    return facts


def edge_proxy(ctx: Context) -> Decision:
    identities = list(ctx.params["edge_identities"])
    for identity in identities:
        if not is_service_scope(identity, "EdgeServer"):
            return Decision.refuse(scope_refusal(identity, ("EdgeServer",)))
    combined = Decision()
    if not identities:
        return combined
    configs = _rows(ctx.facts, "collections")
    known = _records(ctx.facts)
    for identity in identities:
        one = ensure(
            PROXY,
            identity,
            PROXY.wanted(ctx.params),
            ctx.facts,
            known,
            f"service/{identity}",
            f"fresh/{identity}",
            configs,
        )
        if one.failed:
            return Decision.refuse(one.msg, before=combined.before, warnings=combined.warnings)
        combined.before[identity], combined.after[identity] = one.before, one.after
        combined.operations += one.operations
        combined.warnings += one.warnings
    return combined


# -- lync.ucs_rollback -----------------------------------------------------------------------
def ucs_rollback_facts(p: dict) -> dict:
    if not p["ucs_rollback"] or tag_policy(p["ucs_policy"]) is None:
        return {}
    return {
        "users": users_fact(),
        "policy": _cs(f"Get-{POLICY_NOUN}", {"Identity": tag_policy(p["ucs_policy"])}, POLICY_SELECT),
        records.FACT: records.records_fact(),
    }


def policy_view(facts: Facts, name: str) -> dict:
    if facts.not_found(name):
        return {"exists": False, "UcsAllowed": None}
    rows = _rows(facts, name)
    if not rows:
        return {"exists": False, "UcsAllowed": None}
    return {"exists": True, "UcsAllowed": bool(rows[0].get("UcsAllowed"))}


def pool_users(facts: Facts, name: str, pool: str) -> list[dict]:
    users = [u for u in _rows(facts, name) if (text(u.get("RegistrarPool")) or "").lower() == pool.lower()]
    return sorted(users, key=lambda u: (text(u.get("SipAddress")) or "").lower())


def ucs_rollback(ctx: Context) -> Decision:
    p = ctx.params
    if not p["ucs_rollback"]:
        return Decision()
    identity = tag_policy(p["ucs_policy"])
    if identity is None:
        return Decision.refuse(tag_refusal(p["ucs_policy"]))
    name = identity[4:]
    users = pool_users(ctx.facts, "users", p["ucs_registrar_pool"])
    before = {
        "policy": policy_view(ctx.facts, "policy"),
        "users": {text(u.get("SipAddress")): text(u.get("UserServicesPolicy")) for u in users},
    }
    after = {
        "policy": {"exists": True, **POLICY_WANTED} if users else before["policy"],
        "users": {sip: name for sip in before["users"]},
    }
    warnings = [
        f"{sip} had the user services policy {previous}; it is replaced by {name} (lync2fa rollback puts it back)."
        for sip, previous in before["users"].items()
        if previous is not None and previous.lower() != name.lower()
    ]
    if before == after:
        return Decision(before, after, warnings=warnings)
    known = _records(ctx.facts)
    operations: list[dict] = []
    policy_record = record_id(POLICY_NOUN, identity)
    if users and not before["policy"]["exists"]:
        operations += records.record(known, policy_record, created=True)
        operations.append(cmdlet(f"New-{POLICY_NOUN}", {"Identity": identity, **POLICY_WANTED}, MODULE))
    elif users and before["policy"]["UcsAllowed"] != POLICY_WANTED["UcsAllowed"]:
        operations += records.record(known, policy_record, created=False, previous=before["policy"])
        operations.append(cmdlet(f"Set-{POLICY_NOUN}", {"Identity": identity, **POLICY_WANTED}, MODULE))
    for sip, previous in before["users"].items():
        if previous == name:
            continue
        operations += records.record(
            known, record_id(USER_RECORD, sip), created=False, previous={"UserServicesPolicy": previous}
        )
        operations.append(cmdlet("Invoke-CsUcsRollback", {"Identity": sip, "Confirm": False}, MODULE))
        operations.append(cmdlet(f"Grant-{POLICY_NOUN}", {"Identity": sip, "PolicyName": name}, MODULE))
    return Decision(before, after, operations, warnings)


# -- lync.rollback ------------------------------------------------------------------------------
def rollback_facts(p: dict) -> dict:
    return {
        records.FACT: records.records_fact(),
        WEB.noun: collections_fact(WEB),
        PROXY.noun: collections_fact(PROXY),
        "services": services_fact(),
        "users": users_fact(),
        "policies": policies_fact(),
    }


def _restore_collection(collection: Collection, identity: str, data: dict, facts: Facts) -> tuple[dict, dict, list]:
    configs = _rows(facts, collection.noun)
    services = _rows(facts, "services")
    service = _find(services, service_id(identity))
    own = _find(configs, identity)
    if own is None:
        view = collection.view(inherited(collection, configs, service))
        return view, view, []
    before = collection.view(own)
    if data["created"]:
        rest = [c for c in configs if c is not own]
        after = collection.view(inherited(collection, rest, service))
        return before, after, [cmdlet(f"Remove-{collection.noun}", {"Identity": identity, "Confirm": False}, MODULE)]
    previous = collection.settings_of(data.get("previous") or {})
    after = {"scope": before["scope"], **previous}
    if before == after:
        return before, after, []
    return before, after, [cmdlet(f"Set-{collection.noun}", {"Identity": identity, **previous}, MODULE)]


def _restore_user(sip: str, data: dict, facts: Facts, warnings: list[str]) -> tuple[dict, dict, list]:
    user = next((u for u in _rows(facts, "users") if (text(u.get("SipAddress")) or "").lower() == sip.lower()), None)
    if user is None:
        warnings.append(f"{sip} no longer exists; its user services policy cannot be restored.")
        return {}, {}, []
    before = {"UserServicesPolicy": text(user.get("UserServicesPolicy"))}
    after = {"UserServicesPolicy": text((data.get("previous") or {}).get("UserServicesPolicy"))}
    if before == after:
        return before, after, []
    return (
        before,
        after,
        [cmdlet(f"Grant-{POLICY_NOUN}", {"Identity": sip, "PolicyName": after["UserServicesPolicy"]}, MODULE)],
    )


def _restore_policy(identity: str, data: dict, facts: Facts) -> tuple[dict, dict, list]:
    row = _find(_rows(facts, "policies"), identity)
    before = {"exists": row is not None, "UcsAllowed": None if row is None else bool(row.get("UcsAllowed"))}
    after = {"exists": False, "UcsAllowed": None}
    if not data["created"] and before["exists"]:
        after = {"exists": True, "UcsAllowed": bool((data.get("previous") or {}).get("UcsAllowed"))}
    if before == after:
        return before, after, []
    if data["created"]:
        return before, after, [cmdlet(f"Remove-{POLICY_NOUN}", {"Identity": identity, "Confirm": False}, MODULE)]
    return (
        before,
        after,
        [cmdlet(f"Set-{POLICY_NOUN}", {"Identity": identity, "UcsAllowed": after["UcsAllowed"]}, MODULE)],
    )


def rollback(ctx: Context) -> Decision:
    """Undo what the Lync tasks recorded on this host, nothing else: service collections lync2fa
    created are removed (the service falls back to its site or Global collection, as before),
    collections it modified get their previous values back, users get their previous user
    services policy back and a policy lync2fa created is removed. Contacts that
    Invoke-CsUcsRollback moved into Lync Server stay there until the server migrates them again."""
    known = records.with_prefix(_records(ctx.facts), RECORD_PREFIX)
    decision = Decision()
    for kind in RESTORE_ORDER:
        prefix = f"{RECORD_PREFIX}{kind}/"
        for rid, data in known.items():
            if not rid.startswith(prefix):
                continue
            name = rid[len(prefix) :]
            if kind in COLLECTIONS:
                collection = COLLECTIONS[kind]
                if not is_service_scope(name, *collection.services):
                    return Decision.refuse(scope_refusal(name, collection.services))
                before, after, operations = _restore_collection(collection, name, data, ctx.facts)
            elif kind == USER_RECORD:
                before, after, operations = _restore_user(name, data, ctx.facts, decision.warnings)
            else:
                policy = tag_policy(name)
                if policy is None:
                    return Decision.refuse(tag_refusal(name))
                before, after, operations = _restore_policy(policy, data, ctx.facts)
            key = rid[len(RECORD_PREFIX) :]
            decision.before[key], decision.after[key] = before, after
            decision.operations += [*operations, records.forget(rid)]
    return decision
