"""The AD FS tier's facts and decisions: pure Python over what the host's AD FS reports.

How the AD FS cmdlets load is a fact of the host, never an inventory setting: AD FS 2.0 registers
the snap-in ``Microsoft.Adfs.PowerShell`` (its assembly, the registry value ``ModuleName``, is
imported as a binary module); 2.1 and later ship the ADFS module. ``Get-AdfsGlobalAuthenticationPolicy``
exists from 3.0 on: where it is not recognized, the host is 2.1 and signs in through the IIS pages.

``reaches``: every task here is () — the ADFS cmdlets read and write the farm's configuration
database on this server (Windows Internal Database), the registry and files are local, and nothing
reads Active Directory. (``Add-AdfsRelyingPartyTrust -MetadataUrl`` fetches the pool's metadata
over anonymous https, which needs no delegated credentials.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lync2fa import records
from lync2fa.decision import Context, Decision, FactError, More
from lync2fa.hostops import cmdlet, cmdlet_fact, file_fact, named, named_fact, registry_fact

from . import signin
from .claims import AUTHORIZATION_RULES, TRANSFORM_RULES, pool_metadata_url, same_rules, trust_name

ADFS_MODULE = "ADFS"
SNAPIN_KEY = "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellSnapIns\\Microsoft.Adfs.PowerShell"
WEB_CONFIG = "C:\\inetpub\\adfs\\ls\\web.config"
BACKUP_SUFFIX = ".lync2fa-backup"
IIS_SERVICE = "W3SVC"  # the docs' IISReset /Restart /NoForce: restart the web publishing service
CERTIFICATE = "CertificateAuthentication"
TRUST_PREFIX = "adfs/trust/"
REPLAY_RECORD = "adfs/token-replay"
POLICY_RECORD = "adfs/global-authentication-policy"
INTRANET = "PrimaryIntranetAuthenticationProvider"
EXTRANET = "PrimaryExtranetAuthenticationProvider"
TRUST_PROPERTIES = ("Name", "MetadataUrl", "IssuanceAuthorizationRules", "IssuanceTransformRules", "TokenLifetime")
# Trust view field -> Set-AdfsRelyingPartyTrust parameter.
TRUST_PARAMETERS = {
    "metadata_url": "MetadataUrl",
    "authorization_rules": "IssuanceAuthorizationRules",
    "transform_rules": "IssuanceTransformRules",
    "token_lifetime": "TokenLifetime",
}

FARM_WIDE_WARNING = (
    "The AD FS global authentication policy applies to the whole farm: with CertificateAuthentication "
    "as the only primary provider, every relying party of this farm (not only Lync) now requires a "
    "client certificate (smart card) at sign-in."
)
NO_REPLAY_PROPERTY = (
    "AD FS{version} on this host has no PreventTokenReplays property; configure token replay "
    'detection as "Best Practices for Secure Planning and Deployment of AD FS 2.0" describes.'
)
TRUST_GONE = "The relying-party trust {name} no longer exists; its previous claim rules cannot be restored."
NO_TLS_CLIENT = "There is no TlsClient entry in <localAuthenticationTypes> of {path}."
NO_FILE = "Could not find file '{path}'."

SNAPIN = "adfs_snapin"
TRUSTS = "adfs_trusts"
PROPERTIES = "adfs_properties"
POLICY = "adfs_policy"
SIGN_IN = "adfs_sign_in"
SIGN_IN_BACKUP = "adfs_sign_in_backup"
SNAPIN_ROUND = "@snapin"  # suffix of the facts read again through the 2.0 snap-in


NOT_INSTALLED = (
    "{error} (AD FS 2.1 and later ship the ADFS module, AD FS 2.0 registers the "
    "Microsoft.Adfs.PowerShell snap-in: is AD FS installed on this host?)"
)


def _refusing(decide: Callable[[Context], Decision | More]) -> Callable[[Context], Decision | More]:
    """A fact the decision needs could not be read: refused with Windows' error."""

    @functools.wraps(decide)
    def wrapper(ctx: Context) -> Decision | More:
        try:
            return decide(ctx)
        except FactError as exc:
            text = str(exc)
            if "Modules_ModuleNotFound" in str(exc.error.get("error_id", "")):
                text = NOT_INSTALLED.format(error=text)
            return Decision.refuse(text)

    return wrapper


# -- the AD FS shell on the host -------------------------------------------------------------
def _trusts_query(module: str) -> dict:
    return {TRUSTS: _cmdlet_fact("Get-AdfsRelyingPartyTrust", TRUST_PROPERTIES, module)}


def _properties_query(module: str) -> dict:
    return {PROPERTIES: _cmdlet_fact("Get-AdfsProperties", ("PreventTokenReplays",), module)}


def _policy_query(module: str) -> dict:
    return {POLICY: _cmdlet_fact("Get-AdfsGlobalAuthenticationPolicy", (INTRANET, EXTRANET), module)}


def _cmdlet_fact(name: str, select, module: str) -> dict:
    return cmdlet_fact(name, {}, select, module)


def _shell_facts() -> dict:
    return {SNAPIN: registry_fact(SNAPIN_KEY, ["ModuleName"]), records.FACT: records.records_fact()}


def _snapin_module(ctx: Context) -> str | None:
    """The AD FS 2.0 snap-in's assembly when the snap-in is registered, else None."""
    snapin = ctx.facts.value(SNAPIN) or {}
    if not snapin.get("exists"):
        return None
    return next((v for k, v in (snapin.get("values") or {}).items() if k.lower() == "modulename"), None)


def _module(ctx: Context) -> str:
    return _snapin_module(ctx) or ADFS_MODULE


def _snapin_round(ctx: Context, queries: Callable[[str], dict]) -> More | None:
    """On AD FS 2.0 the cmdlet facts are read again through the snap-in's assembly."""
    module = _snapin_module(ctx)
    if module is None:
        return None
    wanted = {name + SNAPIN_ROUND: query for name, query in queries(module).items()}
    missing = {name: query for name, query in wanted.items() if name not in ctx.facts.raw}
    return More(missing) if missing else None


def _cmdlet_value(ctx: Context, name: str):
    return ctx.facts.value(name + SNAPIN_ROUND if _snapin_module(ctx) else name)


def _version(ctx: Context) -> str:
    """2.0 (snap-in), 2.1 (module, no global policy) or 3.0+ (global authentication policy)."""
    if _snapin_module(ctx):
        return "2.0"
    error = ctx.facts.error(POLICY)
    if error is not None and "CommandNotFoundException" in str(error.get("error_id", "")):
        return "2.1"
    ctx.facts.value(POLICY)  # any other failure: refused with Windows' error
    return "3.0+"


def _same(left, right) -> bool:
    """PowerShell's -eq on strings (case-insensitive)."""
    return left is not None and right is not None and str(left).lower() == str(right).lower()


def _text(value) -> str | None:
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    return value or None


# -- adfs.relying_party --------------------------------------------------------------------
def trust_view(name: str, trust: dict | None) -> dict:
    if trust is None:
        return {
            "name": name,
            "present": False,
            "metadata_url": None,
            "authorization_rules": None,
            "transform_rules": None,
            "token_lifetime": None,
        }
    return {
        "name": trust["Name"],
        "present": True,
        "metadata_url": _text(trust.get("MetadataUrl")),
        "authorization_rules": _text(trust.get("IssuanceAuthorizationRules")),
        "transform_rules": _text(trust.get("IssuanceTransformRules")),
        "token_lifetime": int(trust.get("TokenLifetime") or 0),
    }


def _find_trust(trusts: list[dict], name: str, url: str) -> dict | None:
    """By name, else the trust already made from the pool's metadata URL (AD FS refuses a second
    trust with the same identifier, so that one is managed under its own name)."""
    return next((t for t in trusts if _same(t.get("Name"), name)), None) or next(
        (t for t in trusts if _same(t.get("MetadataUrl"), url)), None
    )


def _wanted_trust(current: dict, url: str, token_lifetime: int) -> dict:
    wanted = {
        "name": current["name"],
        "present": True,
        "metadata_url": url,
        "authorization_rules": AUTHORIZATION_RULES,
        "transform_rules": TRANSFORM_RULES,
        "token_lifetime": 0,
    }
    if current["present"]:
        if _same(current["metadata_url"], url):
            wanted["metadata_url"] = current["metadata_url"]
        if same_rules(current["authorization_rules"], AUTHORIZATION_RULES):
            wanted["authorization_rules"] = current["authorization_rules"]
        if same_rules(current["transform_rules"], TRANSFORM_RULES):
            wanted["transform_rules"] = current["transform_rules"]
        wanted["token_lifetime"] = current["token_lifetime"]
    if token_lifetime > 0:
        wanted["token_lifetime"] = token_lifetime
    return wanted


def _trust_changes(current: dict, target: dict) -> dict:
    """Set-AdfsRelyingPartyTrust parameters for the fields that differ (a rule None is "")."""
    changes = {}
    for field, parameter in TRUST_PARAMETERS.items():
        if current[field] != target[field] and not (field == "metadata_url" and target[field] is None):
            changes[parameter] = target[field] if target[field] is not None else ""
    return changes


def relying_party_facts(params: dict) -> dict:
    return {**_shell_facts(), **_trusts_query(ADFS_MODULE)}


@_refusing
def relying_party(ctx: Context) -> Decision | More:
    more = _snapin_round(ctx, _trusts_query)
    if more:
        return more
    module = _module(ctx)
    trusts = list(_cmdlet_value(ctx, TRUSTS) or [])
    recorded = records.parse(ctx.facts.get(records.FACT))
    lifetime = int(ctx.params["token_lifetime"])
    before, after, operations = {}, {}, []
    for pool in ctx.params["pools"]:
        name, url = trust_name(pool), pool_metadata_url(pool)
        current = trust_view(name, _find_trust(trusts, name, url))
        wanted = _wanted_trust(current, url, lifetime)
        before[name], after[name] = current, wanted
        if current == wanted:
            continue
        target = wanted["name"]
        if current["present"]:
            operations += records.record(recorded, TRUST_PREFIX + target, created=False, previous=current)
            operations.append(
                cmdlet("Set-AdfsRelyingPartyTrust", {"TargetName": target, **_trust_changes(current, wanted)}, module)
            )
        else:
            # The doc's Add-ADFSRelyingPartyTrust -Name -MetadataURL, with the two claim rules (the
            # doc's Set-ADFSRelyingPartyTrust lines) given at once: no trust ever exists without them.
            operations += records.record(recorded, TRUST_PREFIX + target, created=True)
            params = {
                "Name": target,
                "MetadataUrl": url,
                "IssuanceAuthorizationRules": AUTHORIZATION_RULES,
                "IssuanceTransformRules": TRANSFORM_RULES,
            }
            if lifetime > 0:
                params["TokenLifetime"] = lifetime
            operations.append(cmdlet("Add-AdfsRelyingPartyTrust", params, module))
    return Decision(before, after, operations)


# -- adfs.token_replay ---------------------------------------------------------------------
def token_replay_facts(params: dict) -> dict:
    return {**_shell_facts(), **_properties_query(ADFS_MODULE)}


@_refusing
def token_replay(ctx: Context) -> Decision | More:
    more = _snapin_round(ctx, _properties_query)
    if more:
        return more
    name = PROPERTIES + SNAPIN_ROUND if _snapin_module(ctx) else PROPERTIES
    error = ctx.facts.error(name)
    if error is not None and "PropertyNotFound" in str(error.get("error_id", "")):
        version = " 2.0" if _snapin_module(ctx) else ""
        return Decision(warnings=[NO_REPLAY_PROPERTY.format(version=version)])
    rows = ctx.facts.value(name) or [{}]
    current = {"PreventTokenReplays": bool(rows[0].get("PreventTokenReplays"))}
    if not ctx.params["prevent_token_replays"] or current["PreventTokenReplays"]:
        return Decision(current, current)
    recorded = records.parse(ctx.facts.get(records.FACT))
    operations = records.record(recorded, REPLAY_RECORD, created=False, previous=current)
    operations.append(cmdlet("Set-AdfsProperties", {"PreventTokenReplays": True}, _module(ctx)))
    return Decision(current, {"PreventTokenReplays": True}, operations)


# -- adfs.client_auth ----------------------------------------------------------------------
def backup_path(web_config: str) -> str:
    return web_config + BACKUP_SUFFIX


def client_auth_facts(params: dict) -> dict:
    path = params["web_config"]
    return {
        **_shell_facts(),
        **_policy_query(ADFS_MODULE),
        SIGN_IN: named_fact("file_text", path=path),
        SIGN_IN_BACKUP: file_fact(backup_path(path)),
    }


def _names(values) -> list[str]:
    """A provider list as strings; None (no list) is an empty list."""
    if values is None:
        return []
    return [str(v) for v in (values if isinstance(values, list) else [values]) if v is not None]


def _certificate_only(names: list[str]) -> list[str]:
    """AD FS 3.0+ offers every enabled primary provider as an alternative: the certificate must be the
    only one (keeping its spelling if it is already listed)."""
    match = [n for n in names if _same(n, CERTIFICATE)]
    return [match[0] if match else CERTIFICATE]


def policy_view(ctx: Context) -> dict:
    rows = ctx.facts.value(POLICY) or [{}]
    return {
        "adfs_version": "3.0+",
        "primary_intranet": _names(rows[0].get(INTRANET)),
        "primary_extranet": _names(rows[0].get(EXTRANET)),
    }


def _sign_in(ctx: Context, version: str, path: str) -> tuple[dict | None, list[str] | Decision]:
    """The sign-in web.config fact and its authentication types, or a refusal."""
    config = ctx.facts.value(SIGN_IN) or {}
    if not config.get("exists"):
        return None, Decision.refuse(NO_FILE.format(path=path))
    try:
        return config, signin.authentication_types(config["text"], path)
    except signin.SignInConfigError as exc:
        return None, Decision.refuse(str(exc))


@_refusing
def client_auth(ctx: Context) -> Decision:
    version = _version(ctx)
    recorded = records.parse(ctx.facts.get(records.FACT))
    if version == "3.0+":
        current = policy_view(ctx)
        wanted = {**current, "primary_intranet": _certificate_only(current["primary_intranet"])}
        if ctx.params["extranet"]:
            wanted["primary_extranet"] = _certificate_only(current["primary_extranet"])
        if current == wanted:
            return Decision(current, wanted)
        operations = records.record(
            recorded,
            POLICY_RECORD,
            created=False,
            previous={"primary_intranet": current["primary_intranet"], "primary_extranet": current["primary_extranet"]},
        )
        params = {INTRANET: wanted["primary_intranet"]}
        if wanted["primary_extranet"] != current["primary_extranet"]:
            params[EXTRANET] = wanted["primary_extranet"]
        operations.append(cmdlet("Set-AdfsGlobalAuthenticationPolicy", params, ADFS_MODULE))
        return Decision(current, wanted, operations, warnings=[FARM_WIDE_WARNING])
    path = ctx.params["web_config"]
    config, names = _sign_in(ctx, version, path)
    if config is None:
        return names
    if not any(signin.same(n, signin.TLS_CLIENT) for n in names):
        return Decision.refuse(NO_TLS_CLIENT.format(path=path))
    has_backup = bool((ctx.facts.value(SIGN_IN_BACKUP) or {}).get("exists"))
    current = {"adfs_version": version, "local_authentication_types": names, "backup": has_backup}
    order = signin.first(names, signin.TLS_CLIENT)
    wanted = {
        "adfs_version": version,
        "local_authentication_types": order,
        "backup": has_backup or not signin.same(names[0], signin.TLS_CLIENT),
    }
    if current == wanted:
        return Decision(current, wanted)
    operations = []
    if not has_backup:  # the original, before the first change; never overwritten: it is the record
        operations.append(cmdlet("Copy-Item", {"LiteralPath": path, "Destination": backup_path(path)}))
    operations.append(
        named("file_replace", path=path, text=signin.reorder(config["text"], path, order), sha256=config["sha256"])
    )
    operations.append(cmdlet("Restart-Service", {"Name": IIS_SERVICE}))
    return Decision(current, wanted, operations)


# -- adfs.rollback -------------------------------------------------------------------------
def rollback_facts(params: dict) -> dict:
    path = params["web_config"]
    return {
        **_shell_facts(),
        **_trusts_query(ADFS_MODULE),
        **_properties_query(ADFS_MODULE),
        **_policy_query(ADFS_MODULE),
        SIGN_IN: named_fact("file_text", path=path),
        SIGN_IN_BACKUP: named_fact("file_text", path=backup_path(path)),
    }


def _restore_trusts(ctx: Context, recorded: dict, module: str, out: dict) -> None:
    found = records.with_prefix(recorded, TRUST_PREFIX)
    if not found:
        return
    trusts = list(_cmdlet_value(ctx, TRUSTS) or [])
    out["before"]["trusts"], out["after"]["trusts"] = {}, {}
    for rid, data in found.items():
        name = rid[len(TRUST_PREFIX) :]
        current = trust_view(name, next((t for t in trusts if _same(t.get("Name"), name)), None))
        target = trust_view(name, None)
        if not data["created"]:
            previous = data["previous"] or {}
            target = {
                "name": name,
                "present": True,
                "metadata_url": _text(previous.get("metadata_url")),
                "authorization_rules": _text(previous.get("authorization_rules")),
                "transform_rules": _text(previous.get("transform_rules")),
                "token_lifetime": int(previous.get("token_lifetime") or 0),
            }
        if not current["present"]:
            target = current
            if not data["created"]:
                out["warnings"].append(TRUST_GONE.format(name=name))
        out["before"]["trusts"][name], out["after"]["trusts"][name] = current, target
        if current != target:
            if data["created"]:
                out["operations"].append(cmdlet("Remove-AdfsRelyingPartyTrust", {"TargetName": name}, module))
            else:
                out["operations"].append(
                    cmdlet("Set-AdfsRelyingPartyTrust", {"TargetName": name, **_trust_changes(current, target)}, module)
                )
        out["handled"].append(rid)


def _restore_token_replay(ctx: Context, recorded: dict, module: str, out: dict) -> None:
    data = recorded.get(REPLAY_RECORD)
    if data is None:
        return
    rows = _cmdlet_value(ctx, PROPERTIES) or [{}]
    current = {"PreventTokenReplays": bool(rows[0].get("PreventTokenReplays"))}
    target = {"PreventTokenReplays": bool((data["previous"] or {}).get("PreventTokenReplays"))}
    out["before"]["token_replay"], out["after"]["token_replay"] = current, target
    if current != target:
        out["operations"].append(
            cmdlet("Set-AdfsProperties", {"PreventTokenReplays": target["PreventTokenReplays"]}, module)
        )
    out["handled"].append(REPLAY_RECORD)


def _restore_sign_in(ctx: Context, recorded: dict, version: str, out: dict) -> None:
    data = recorded.get(POLICY_RECORD)
    if data is not None and version == "3.0+":
        current = policy_view(ctx)
        previous = data["previous"] or {}
        target = {
            "adfs_version": version,
            "primary_intranet": _names(previous.get("primary_intranet")),
            "primary_extranet": _names(previous.get("primary_extranet")),
        }
        out["before"]["sign_in"], out["after"]["sign_in"] = current, target
        params = {}
        if current["primary_intranet"] != target["primary_intranet"]:
            params[INTRANET] = target["primary_intranet"]
        if current["primary_extranet"] != target["primary_extranet"]:
            params[EXTRANET] = target["primary_extranet"]
        if params:
            out["operations"].append(cmdlet("Set-AdfsGlobalAuthenticationPolicy", params, ADFS_MODULE))
        out["handled"].append(POLICY_RECORD)
    backup = ctx.facts.value(SIGN_IN_BACKUP) or {}
    if version == "3.0+" or not backup.get("exists"):
        return
    # The backup of the sign-in web.config is the record of the original: put it back, then remove it.
    path = ctx.params["web_config"]
    config = ctx.facts.value(SIGN_IN) or {}
    try:
        kept = signin.authentication_types(backup["text"], backup_path(path))
        now = signin.authentication_types(config["text"], path) if config.get("exists") else []
    except signin.SignInConfigError as exc:
        out["refusal"] = str(exc)
        return
    out["before"]["sign_in"] = {"adfs_version": version, "local_authentication_types": now, "backup": True}
    out["after"]["sign_in"] = {"adfs_version": version, "local_authentication_types": kept, "backup": False}
    differs = config.get("sha256") != backup.get("sha256")
    if differs:
        out["operations"].append(
            cmdlet("Copy-Item", {"LiteralPath": backup_path(path), "Destination": path, "Force": True})
        )
    out["operations"].append(cmdlet("Remove-Item", {"LiteralPath": backup_path(path)}))
    if differs:
        out["operations"].append(cmdlet("Restart-Service", {"Name": IIS_SERVICE}))


@_refusing
def rollback(ctx: Context) -> Decision | More:
    more = _snapin_round(ctx, lambda module: {**_trusts_query(module), **_properties_query(module)})
    if more:
        return more
    recorded = records.parse(ctx.facts.get(records.FACT))
    version, module = _version(ctx), _module(ctx)
    out: dict[str, Any] = {
        "before": {},
        "after": {},
        "operations": [],
        "warnings": [],
        "handled": [],
        "refusal": None,
    }
    _restore_trusts(ctx, recorded, module, out)
    _restore_token_replay(ctx, recorded, module, out)
    _restore_sign_in(ctx, recorded, version, out)
    if out["refusal"]:
        return Decision.refuse(out["refusal"], before=out["before"], warnings=out["warnings"])
    # The records go last: an interrupted rollback still knows what to undo.
    operations = out["operations"] + [records.forget(rid) for rid in out["handled"]]
    return Decision(out["before"], out["after"], operations, warnings=out["warnings"])
