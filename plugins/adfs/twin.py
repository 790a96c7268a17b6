"""The AD FS tier's lab twin: the same contract as the scripts, on the lab's state.

Lab objects (per AD FS host):
  ``adfs_server``        version (from the lab host var ``adfs_version``) and AD FS properties
  ``adfs_trust``         relying-party trusts, key ``<host>/<name>``
  ``adfs_file``          the AD FS 2.x sign-in web.config (its <localAuthenticationTypes> list)
                         and lync2fa's backup of it, key ``<host>|<path>``
  ``adfs_auth_policy``   the AD FS 3.0+ global authentication policy
  ``iis_reset``          how often IIS was reset (an event counter, not configuration)
"""
from __future__ import annotations

from lync2fa.lab.twin import TwinContext, TwinFailure, outcome

from .claims import AUTHORIZATION_RULES, TRANSFORM_RULES, pool_metadata_url, same_rules, trust_name

WEB_CONFIG = "C:\\inetpub\\adfs\\ls\\web.config"
BACKUP_SUFFIX = ".lync2fa-backup"
SIGN_IN_DEFAULT = ["Integrated", "Forms", "TlsClient", "Basic"]
POLICY_DEFAULT = {"PrimaryIntranetAuthenticationProvider": ["WindowsAuthentication"],
                  "PrimaryExtranetAuthenticationProvider": ["FormsAuthentication"]}
CERTIFICATE = "CertificateAuthentication"
TRUST_PREFIX = "adfs/trust/"
POLICY_RECORD = "adfs/global-authentication-policy"
FARM_WIDE_WARNING = ("The AD FS global authentication policy applies to the whole farm: with CertificateAuthentication "
                     "as the only primary provider, every relying party of this farm (not only Lync) now requires a "
                     "client certificate (smart card) at sign-in.")
REPLAY_RECORD = "adfs/token-replay"


def shell_version(version: str) -> str:
    """What the scripts report: 2.0 (snap-in), 2.1 (module, IIS sign-in) or 3.0+ (policies)."""
    return version if version in ("2.0", "2.1") else "3.0+"


def file_key(host: str, path: str) -> str:
    return f"{host}|{path.lower()}"


def seed_adfs(store, host: str, version: str, service_name: str) -> None:
    """An AD FS server as installed: no trusts, replay detection off, default sign-in order."""
    store.put("adfs_server", host, {"version": version,
                                    "properties": {"HostName": service_name, "PreventTokenReplays": False}})
    if shell_version(version) == "3.0+":
        store.delete("adfs_file", file_key(host, WEB_CONFIG))
        store.put("adfs_auth_policy", host, POLICY_DEFAULT)
    else:
        store.delete("adfs_auth_policy", host)
        store.put("adfs_file", file_key(host, WEB_CONFIG), {"localAuthenticationTypes": SIGN_IN_DEFAULT})


def _server(ctx: TwinContext) -> dict:
    server = ctx.store.get("adfs_server", ctx.host.name)
    if server is None:
        raise TwinFailure("The term 'Get-ADFSProperties' is not recognized: AD FS is not installed on this host.")
    return server


def _ci(a, b) -> bool:
    """PowerShell's -eq on strings."""
    return a is not None and b is not None and str(a).lower() == str(b).lower()


# -- relying-party trusts -----------------------------------------------------------------
def _trusts(ctx: TwinContext) -> dict[str, dict]:
    prefix = ctx.host.name + "/"
    return {k: v for k, v in ctx.store.items("adfs_trust").items() if k.startswith(prefix)}


def _trust_by_name(ctx: TwinContext, name: str) -> tuple[str, dict] | tuple[None, None]:
    for key, trust in _trusts(ctx).items():
        if _ci(trust["Name"], name):
            return key, trust
    return None, None


def _find_trust(ctx: TwinContext, name: str, url: str) -> tuple[str, dict] | tuple[None, None]:
    key, trust = _trust_by_name(ctx, name)
    if trust is None:
        for k, t in _trusts(ctx).items():
            if _ci(t["MetadataUrl"], url):
                return k, t
    return key, trust


def _text(value):
    value = (value or "").strip()
    return value or None


def trust_view(name: str, trust: dict | None) -> dict:
    if trust is None:
        return {"name": name, "present": False, "metadata_url": None, "authorization_rules": None,
                "transform_rules": None, "token_lifetime": None}
    return {"name": trust["Name"], "present": True, "metadata_url": _text(trust["MetadataUrl"]),
            "authorization_rules": _text(trust["IssuanceAuthorizationRules"]),
            "transform_rules": _text(trust["IssuanceTransformRules"]), "token_lifetime": trust["TokenLifetime"]}


def _wanted_trust(current: dict, url: str, token_lifetime: int) -> dict:
    wanted = {"name": current["name"], "present": True, "metadata_url": url, "authorization_rules": AUTHORIZATION_RULES,
              "transform_rules": TRANSFORM_RULES, "token_lifetime": 0}
    if current["present"]:
        if _ci(current["metadata_url"], url):
            wanted["metadata_url"] = current["metadata_url"]
        if same_rules(current["authorization_rules"], AUTHORIZATION_RULES):
            wanted["authorization_rules"] = current["authorization_rules"]
        if same_rules(current["transform_rules"], TRANSFORM_RULES):
            wanted["transform_rules"] = current["transform_rules"]
        wanted["token_lifetime"] = current["token_lifetime"]
    if token_lifetime > 0:
        wanted["token_lifetime"] = token_lifetime
    return wanted


def _read_metadata(ctx: TwinContext, url: str) -> None:
    """Add-ADFSRelyingPartyTrust fetches the pool's metadata: the pool must exist in the lab."""
    host = url.split("/")[2].lower()
    if not any(h.fqdn.lower() == host for h in ctx.estate.in_group("lync_pools")):
        raise TwinFailure(f"An error occurred while reading the metadata at {url}: the remote name could not "
                          f"be resolved: '{host}'")


def relying_party(ctx: TwinContext, p: dict) -> dict:
    _server(ctx)
    before, after = {}, {}
    for pool in p["pools"]:
        name, url = trust_name(pool), pool_metadata_url(pool)
        key, trust = _find_trust(ctx, name, url)
        current = trust_view(name, trust)
        wanted = _wanted_trust(current, url, p["token_lifetime"])
        before[name], after[name] = current, wanted
        if current == wanted or ctx.check_mode:
            continue
        target = wanted["name"]
        if current["present"]:
            ctx.record(TRUST_PREFIX + target, created=False, previous=current)
        else:
            ctx.record(TRUST_PREFIX + target, created=True)      # recorded before it is created
            _read_metadata(ctx, url)
            key = f"{ctx.host.name}/{target}"
            trust = {"Name": target, "MetadataUrl": url, "IssuanceAuthorizationRules": None,
                     "IssuanceTransformRules": None, "TokenLifetime": 0, "Enabled": True}
        trust.update(MetadataUrl=url, IssuanceAuthorizationRules=AUTHORIZATION_RULES,
                     IssuanceTransformRules=TRANSFORM_RULES)
        if p["token_lifetime"] > 0:
            trust["TokenLifetime"] = p["token_lifetime"]
        ctx.store.put("adfs_trust", key, trust)
        after[name] = trust_view(name, trust)
    return outcome(before, after, warnings=ctx.warnings)


# -- token replay detection -----------------------------------------------------------------
def token_replay(ctx: TwinContext, p: dict) -> dict:
    server = _server(ctx)
    current = {"PreventTokenReplays": server["properties"]["PreventTokenReplays"]}
    after = current
    if p["prevent_token_replays"] and not current["PreventTokenReplays"]:
        after = {"PreventTokenReplays": True}
        ctx.record(REPLAY_RECORD, created=False, previous=current)
        server["properties"]["PreventTokenReplays"] = True
        ctx.store.put("adfs_server", ctx.host.name, server)
    return outcome(current, after, warnings=ctx.warnings)


# -- TLS client (certificate) authentication ----------------------------------------------------
def _certificate_first(names: list[str], certificate: str) -> list[str]:
    match = [n for n in names if _ci(n, certificate)]
    return [match[0] if match else certificate] + [n for n in names if not _ci(n, certificate)]


def _certificate_only(names: list[str], certificate: str) -> list[str]:
    """AD FS 3.0+ treats the primary providers as alternatives: the certificate must be the only one."""
    match = [n for n in names if _ci(n, certificate)]
    return [match[0] if match else certificate]


def _policy_view(ctx: TwinContext, version: str) -> dict:
    policy = ctx.store.get("adfs_auth_policy", ctx.host.name) or POLICY_DEFAULT
    return {"adfs_version": version, "primary_intranet": list(policy["PrimaryIntranetAuthenticationProvider"]),
            "primary_extranet": list(policy["PrimaryExtranetAuthenticationProvider"])}


def _set_policy(ctx: TwinContext, intranet: list[str], extranet: list[str]) -> None:
    ctx.store.put("adfs_auth_policy", ctx.host.name, {"PrimaryIntranetAuthenticationProvider": intranet,
                                                      "PrimaryExtranetAuthenticationProvider": extranet})


def _sign_in_types(ctx: TwinContext, path: str) -> list[str]:
    config = ctx.store.get("adfs_file", file_key(ctx.host.name, path))
    if config is None:
        raise TwinFailure(f"Could not find file '{path}'.")
    return list(config["localAuthenticationTypes"])


def _iis_reset(ctx: TwinContext) -> None:
    counter = ctx.store.get("iis_reset", ctx.host.name) or {"count": 0}
    ctx.store.put("iis_reset", ctx.host.name, {"count": counter["count"] + 1})


def client_auth(ctx: TwinContext, p: dict) -> dict:
    version = shell_version(_server(ctx)["version"])
    if version == "3.0+":
        current = _policy_view(ctx, version)
        wanted = {**current, "primary_intranet": _certificate_only(current["primary_intranet"], CERTIFICATE)}
        if p["extranet"]:
            wanted["primary_extranet"] = _certificate_only(current["primary_extranet"], CERTIFICATE)
        if current != wanted:
            ctx.warn(FARM_WIDE_WARNING)
            ctx.record(POLICY_RECORD, created=False, previous={"primary_intranet": current["primary_intranet"],
                                                                 "primary_extranet": current["primary_extranet"]})
            _set_policy(ctx, wanted["primary_intranet"], wanted["primary_extranet"])
        return outcome(current, wanted, warnings=ctx.warnings)
    path = p["web_config"]
    backup = path + BACKUP_SUFFIX
    names = _sign_in_types(ctx, path)
    if not any(_ci(n, "TlsClient") for n in names):
        raise TwinFailure(f"There is no TlsClient entry in <localAuthenticationTypes> of {path}.")
    has_backup = ctx.store.get("adfs_file", file_key(ctx.host.name, backup)) is not None
    current = {"adfs_version": version, "local_authentication_types": names, "backup": has_backup}
    wanted = {"adfs_version": version, "local_authentication_types": _certificate_first(names, "TlsClient"),
              "backup": has_backup or not _ci(names[0], "TlsClient")}
    if current != wanted:
        if not has_backup:
            ctx.store.put("adfs_file", file_key(ctx.host.name, backup), {"localAuthenticationTypes": names})
        ctx.store.put("adfs_file", file_key(ctx.host.name, path),
                      {"localAuthenticationTypes": wanted["local_authentication_types"]})
        _iis_reset(ctx)
    return outcome(current, wanted, warnings=ctx.warnings)


# -- rollback -----------------------------------------------------------------------------
def _rollback_trusts(ctx: TwinContext, before: dict, after: dict) -> list[str]:
    found = ctx.records(TRUST_PREFIX)
    if found:
        before["trusts"], after["trusts"] = {}, {}
    for rid, data in found.items():
        name = rid[len(TRUST_PREFIX):]
        key, trust = _trust_by_name(ctx, name)
        current = trust_view(name, trust)
        target = trust_view(name, None)
        if not data["created"]:
            prev = data["previous"]
            target = {"name": name, "present": True, "metadata_url": _text(prev["metadata_url"]),
                      "authorization_rules": _text(prev["authorization_rules"]),
                      "transform_rules": _text(prev["transform_rules"]), "token_lifetime": prev["token_lifetime"]}
        if not current["present"]:
            target = current
            if not data["created"]:
                ctx.warn(f"The relying-party trust {name} no longer exists; its previous claim rules cannot be "
                         "restored.")
        before["trusts"][name], after["trusts"][name] = current, target
        if current != target and not ctx.check_mode:
            if data["created"]:
                ctx.store.delete("adfs_trust", key)
            else:
                trust.update(MetadataUrl=target["metadata_url"] or "",
                             IssuanceAuthorizationRules=target["authorization_rules"] or "",
                             IssuanceTransformRules=target["transform_rules"] or "",
                             TokenLifetime=target["token_lifetime"])
                ctx.store.put("adfs_trust", key, trust)
    return list(found)


def _rollback_token_replay(ctx: TwinContext, server: dict, before: dict, after: dict) -> list[str]:
    data = ctx.records(REPLAY_RECORD).get(REPLAY_RECORD)
    if data is None:
        return []
    before["token_replay"] = {"PreventTokenReplays": server["properties"]["PreventTokenReplays"]}
    after["token_replay"] = {"PreventTokenReplays": bool(data["previous"]["PreventTokenReplays"])}
    server["properties"]["PreventTokenReplays"] = after["token_replay"]["PreventTokenReplays"]
    ctx.store.put("adfs_server", ctx.host.name, server)
    return [REPLAY_RECORD]


def _rollback_sign_in(ctx: TwinContext, version: str, path: str, before: dict, after: dict) -> list[str]:
    data = ctx.records(POLICY_RECORD).get(POLICY_RECORD)
    handled = []
    if data is not None and version == "3.0+":
        before["sign_in"] = _policy_view(ctx, version)
        prev = data["previous"]
        after["sign_in"] = {"adfs_version": version, "primary_intranet": list(prev["primary_intranet"]),
                            "primary_extranet": list(prev["primary_extranet"])}
        _set_policy(ctx, after["sign_in"]["primary_intranet"], after["sign_in"]["primary_extranet"])
        handled.append(POLICY_RECORD)
    backup = ctx.store.get("adfs_file", file_key(ctx.host.name, path + BACKUP_SUFFIX))
    if version != "3.0+" and backup is not None:
        current = ctx.store.get("adfs_file", file_key(ctx.host.name, path))
        before["sign_in"] = {"adfs_version": version, "local_authentication_types": _sign_in_types(ctx, path),
                             "backup": True}
        after["sign_in"] = {"adfs_version": version,
                            "local_authentication_types": list(backup["localAuthenticationTypes"]), "backup": False}
        if current != backup:
            ctx.store.put("adfs_file", file_key(ctx.host.name, path), backup)
            _iis_reset(ctx)
        ctx.store.delete("adfs_file", file_key(ctx.host.name, path + BACKUP_SUFFIX))
    return handled


def rollback(ctx: TwinContext, p: dict) -> dict:
    server = _server(ctx)
    version = shell_version(server["version"])
    before, after = {}, {}
    handled = _rollback_trusts(ctx, before, after)
    handled += _rollback_token_replay(ctx, server, before, after)
    handled += _rollback_sign_in(ctx, version, p["web_config"], before, after)
    for rid in handled:
        ctx.unmark_created(rid)
    return outcome(before, after, warnings=ctx.warnings)
