"""AD FS on a lab host: the AD FS configuration database (WID) as the ADFS cmdlets see it, the
version installed, and what each version puts on the host.

Versions (host property ``adfs_version``, from the lab host var ``adfs_version``, default 3.0):

* **2.0** (Windows Server 2008 R2, the "AD FS 2.0 RTW" package): the cmdlets come from the snap-in
  ``Microsoft.Adfs.PowerShell``, registered under ``SNAPIN_KEY`` (``ModuleName`` is its assembly);
  there is no ADFS module. ``Import-Module -Name <that assembly>`` loads it as a binary module
  (PowerShell treats a cmdlet assembly as a module). Windows Server 2008 R2 ships Windows
  PowerShell 2.0: the host has ``powershell_version`` 2.0 unless the lab host var ``wmf_version``
  says WMF 5.1 is installed (issue 7 defect 8; preflight refuses such a host). The sign-in pages
  are an IIS application (``C:\\inetpub\\adfs\\ls``) whose ``web.config`` lists
  ``<localAuthenticationTypes>``: the first entry is the sign-in method.
* **2.1** (Windows Server 2012): the ADFS module, still the IIS sign-in pages.
* **3.0** and later (2012 R2, 2016 = 4.0, 2019 = 5.0): no IIS; the global authentication
  policy's primary providers are **alternatives** the user may choose from, not an order.

State, per host: ``adfs_properties`` (Get-AdfsProperties), ``adfs_relying_party_trust`` (key
``<host>|<name lower>``, Get-AdfsRelyingPartyTrust's properties), ``adfs_global_authentication_policy``
(3.0+), the sign-in ``web.config`` as a file (``filesystem``), the services adfssrv and W3SVC.

The host's ``platform`` property follows the version (``PLATFORM``): up to 3.0 the cmdlets are bound
against the Windows Server 2012 R2 docs, so a parameter that came with AD FS on Windows Server 2016
(e.g. ``Set-AdfsGlobalAuthenticationPolicy -ClientAuthenticationMethods``) is not found, as on such a
host. 2.0 and 2.1 have no docs of their own in the catalog; 2012 R2's are the closest, and an upper
bound (a parameter absent from 3.0 was not in 2.x either).

Windows' rules modelled: cmdlets a version does not have are not recognized; a trust's name and
each of its identifiers are unique in the farm (MSIS7612); ``-MetadataUrl`` is read when the trust
is added, so a pool that does not resolve fails it; a trust named by ``-TargetName`` must exist;
primary providers must be registered providers allowed for that network location.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from ..estate import Estate, LabHost
from ..state import EstateStore
from . import filesystem, services
from .errors import WindowsError, not_found, not_recognized
from .hosts import seeds
from .machine import HOST_PROPS, Machine, module_file, simulates
from .registry import Registry

PROPERTIES = "adfs_properties"
TRUSTS = "adfs_relying_party_trust"
POLICY = "adfs_global_authentication_policy"

DEFAULT_VERSION = "3.0"
SNAPIN = "Microsoft.Adfs.PowerShell"
SNAPIN_KEY = "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellSnapIns\\" + SNAPIN
INSTALL_DIR_20 = "C:\\Program Files\\Active Directory Federation Services 2.0"
SNAPIN_ASSEMBLY = INSTALL_DIR_20 + "\\Microsoft.IdentityServer.PowerShell.dll"
WEB_CONFIG = "C:\\inetpub\\adfs\\ls\\web.config"
POWERSHELL_2008R2 = "2.0"
WMF_51 = "5.1.14409.1005"  # WMF 5.1 on Windows Server 2008 R2 SP1

# Cmdlets AD FS 2.0 and 2.1 do not have (they came with 3.0, Windows Server 2012 R2). Those that came
# later (Get-AdfsFarmInformation, 2016) the catalog refuses by ``PLATFORM``.
FROM_30 = {
    "get-adfsglobalauthenticationpolicy",
    "set-adfsglobalauthenticationpolicy",
    "get-adfsauthenticationprovider",
}
# The catalog platform whose docs the host's cmdlets follow (core/catalog.py ``absent_in``); 4.0 (2016)
# and 5.0 (2019) have the current docs (None).
OLDEST_DOCS = "Windows Server 2012 R2"
PLATFORM = {"2.0": OLDEST_DOCS, "2.1": OLDEST_DOCS, "3.0": OLDEST_DOCS, "4.0": None, "5.0": None}
VERSIONS = tuple(PLATFORM)

# The built-in authentication providers of AD FS 3.0+ and where each may be primary.
PROVIDERS: list[dict[str, Any]] = [
    {
        "Name": "FormsAuthentication",
        "AllowedForPrimaryIntranet": True,
        "AllowedForPrimaryExtranet": True,
        "AllowedForAdditionalAuthentication": False,
    },
    {
        "Name": "WindowsAuthentication",
        "AllowedForPrimaryIntranet": True,
        "AllowedForPrimaryExtranet": False,
        "AllowedForAdditionalAuthentication": False,
    },
    {
        "Name": "CertificateAuthentication",
        "AllowedForPrimaryIntranet": True,
        "AllowedForPrimaryExtranet": True,
        "AllowedForAdditionalAuthentication": True,
    },
]
POLICY_DEFAULT = {
    "PrimaryIntranetAuthenticationProvider": ["WindowsAuthentication"],
    "PrimaryExtranetAuthenticationProvider": ["FormsAuthentication"],
    "AdditionalAuthenticationProvider": [],
    "DeviceAuthenticationEnabled": False,
    "WindowsIntegratedFallbackEnabled": True,
}
SIGN_IN_DEFAULT = ["Integrated", "Forms", "TlsClient", "Basic"]
SIGN_IN_PAGES = {
    "Integrated": "auth/integrated/",
    "Forms": "FormsSignIn.aspx",
    "TlsClient": "auth/sslclient/",
    "Basic": "auth/basic/",
}
# Set-AdfsRelyingPartyTrust parameters that select the trust or control the cmdlet, not properties.
CONTROL = {"TargetName", "TargetIdentifier", "TargetRelyingParty", "PassThru", "WhatIf", "Confirm"}


def sign_in_config(types: list[str] = SIGN_IN_DEFAULT) -> str:
    """The AD FS 2.x sign-in web.config as installed (the part lync2fa reads), CRLF line ends."""
    adds = "".join(f'      <add name="{t}" page="{SIGN_IN_PAGES.get(t, t)}" />\r\n' for t in types)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n<configuration>\r\n  <configSections>\r\n'
        '    <section name="microsoft.identityServer.web" type="Microsoft.IdentityServer.Web.Configuration.'
        "MicrosoftIdentityServerWebConfigurationSection, Microsoft.IdentityServer, Version=6.1.0.0, "
        'Culture=neutral, PublicKeyToken=31bf3856ad364e35" />\r\n  </configSections>\r\n'
        "  <microsoft.identityServer.web>\r\n    <localAuthenticationTypes>\r\n"
        + adds
        + '    </localAuthenticationTypes>\r\n    <commonDomainCookie writer="" reader="" />\r\n'
        '    <context hidden="true" />\r\n    <error page="Error.aspx" />\r\n'
        '    <acceptedFederationProtocols saml="true" wsFederation="true" />\r\n'
        '    <homeRealmDiscovery page="HomeRealmDiscovery.aspx" />\r\n'
        '    <persistIdentityProviderInformation enabled="true" lifetimeInDays="30" />\r\n'
        '    <singleSignOn enabled="true" />\r\n  </microsoft.identityServer.web>\r\n'
        '  <system.web>\r\n    <compilation defaultLanguage="c#" debug="false" />\r\n'
        '    <customErrors mode="RemoteOnly" />\r\n  </system.web>\r\n</configuration>\r\n'
    )


def version_of(machine: Machine) -> str | None:
    return machine.props.get("adfs_version")


def has_iis_sign_in(version: str) -> bool:
    return version in ("2.0", "2.1")


# -- installation -------------------------------------------------------------------------
def install(
    store: EstateStore, host: LabHost, version: str, service_name: str | None = None, wmf: str | None = None
) -> None:
    """AD FS ``version`` as installed on ``host``: no trusts, replay detection off, the default
    sign-in order (2.x) or global policy (3.0+). Replaces whatever AD FS state the host had.
    ``wmf``: on 2.0, the Windows PowerShell version WMF installed (e.g. ``WMF_51``); without it the
    host has Windows Server 2008 R2's PowerShell 2.0."""
    if version not in VERSIONS:
        raise ValueError(f"AD FS {version} is not modelled; one of {', '.join(VERSIONS)}")
    props = store.get(HOST_PROPS, host.name) or {}
    modules = [m for m in props.get("modules", []) if m != "ADFS"]
    registry = Registry(store, host.name)
    if registry.exists(SNAPIN_KEY):
        registry.remove_key(SNAPIN_KEY)
    props = {**props, "adfs_version": version, "platform": PLATFORM[version]}
    if version == "2.0":
        props["powershell_version"] = wmf or POWERSHELL_2008R2
        for name, value in (
            ("ApplicationBase", INSTALL_DIR_20),
            ("ModuleName", SNAPIN_ASSEMBLY),
            (
                "AssemblyName",
                "Microsoft.IdentityServer.PowerShell, Version=6.1.0.0, Culture=neutral, "
                "PublicKeyToken=31bf3856ad364e35",
            ),
            ("PowerShellVersion", "1.0"),
            ("Version", "6.1.0.0"),
            (
                "Description",
                "This powershell snap-in contains cmdlets used to manage Microsoft Identity Server resources.",
            ),
        ):
            registry.set(SNAPIN_KEY, name, value)
    else:
        modules.append("ADFS")
    props["modules"] = sorted(modules)
    store.put(HOST_PROPS, host.name, props)
    store.put(
        PROPERTIES,
        host.name,
        {
            "HostName": service_name or host.fqdn,
            "Identifier": f"http://{service_name or host.fqdn}/adfs/services/trust",
            "PreventTokenReplays": False,
            "ReplayCacheExpirationInterval": 60,
            "AutoCertificateRollover": True,
        },
    )
    for key in list(store.items_prefix(TRUSTS, f"{host.name}|")):
        store.delete(TRUSTS, key)
    services.add_service(store, host.name, "adfssrv", "Active Directory Federation Services")
    if has_iis_sign_in(version):
        store.delete(POLICY, host.name)
        filesystem.write(store, host.name, WEB_CONFIG, sign_in_config())
        services.add_service(store, host.name, "W3SVC", "World Wide Web Publishing Service")
    else:
        store.put(POLICY, host.name, copy.deepcopy(POLICY_DEFAULT))
        filesystem.remove(store, host.name, WEB_CONFIG)
        services.remove_service(store, host.name, "W3SVC")


@seeds
def seed_adfs(store: EstateStore, estate: Estate) -> None:
    for host in estate.in_group("adfs"):
        install(
            store,
            host,
            str(host.vars.get("adfs_version", DEFAULT_VERSION)),
            host.vars.get("adfs_federation_service_name"),
            host.vars.get("wmf_version") and WMF_51,
        )


@module_file
def snapin_assembly(machine: Machine, path: str) -> str | None:
    """``Import-Module -Name <the AD FS 2.0 snap-in's assembly>`` gives the ADFS cmdlets."""
    registered = machine.registry.value(SNAPIN_KEY, "ModuleName")
    return "ADFS" if registered and registered.lower() == path.lower() else None


# -- helpers ------------------------------------------------------------------------------
def _require(machine: Machine, cmdlet: str) -> str:
    version = version_of(machine)
    if version is None or (cmdlet.lower() in FROM_30 and has_iis_sign_in(version)):
        raise not_recognized(cmdlet)
    return version


def _trusts(machine: Machine) -> dict[str, dict]:
    return machine.store.items_prefix(TRUSTS, f"{machine.name}|")


def _trust_key(machine: Machine, name: str) -> str:
    return f"{machine.name}|{name.lower()}"


def _target(machine: Machine, p: dict, cmdlet: str) -> tuple[str, dict]:
    if p.get("TargetName") is not None:
        key = _trust_key(machine, str(p["TargetName"]))
        trust = machine.store.get(TRUSTS, key)
        if trust is None:
            raise _no_trust(str(p["TargetName"]), cmdlet)
        return key, trust
    wanted = str(p.get("TargetIdentifier") or "").lower()
    for key, trust in _trusts(machine).items():
        if wanted in [i.lower() for i in trust["Identifier"]]:
            return key, trust
    raise _no_trust(str(p.get("TargetIdentifier")), cmdlet)


def _no_trust(target: str, cmdlet: str) -> WindowsError:
    # The lab's words (the docs do not give the cmdlet's text for an unknown target).
    return not_found(
        f"The relying party trust '{target}' was not found in the AD FS configuration database.",
        f"Microsoft.IdentityServer.Management.Commands.{cmdlet.replace('-', '')}Command",
    )


def _unique_identifiers(machine: Machine, identifiers: list[str], except_key: str | None = None) -> None:
    for key, trust in _trusts(machine).items():
        if key == except_key:
            continue
        clash = {i.lower() for i in identifiers} & {i.lower() for i in trust["Identifier"]}
        if clash:
            raise WindowsError(
                "MSIS7612: Each identifier for a relying party trust must be unique across all "
                "relying party trusts in AD FS configuration.",
                "InvalidOperation",
                "MSIS7612,Microsoft.IdentityServer.Management.Commands.AddRelyingPartyTrustCommand",
            )


def read_metadata(machine: Machine, url: str) -> dict:
    """What the federation metadata at ``url`` publishes. In the lab only a Lync pool or Director
    serves /passiveauth metadata; any other name does not resolve."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    pools = {h.fqdn.lower() for h in machine.estate.in_group("lync_pools")}
    if host not in pools:
        raise WindowsError(
            f"The remote name could not be resolved: '{host}'",
            "NotSpecified",
            "System.Net.WebException,Microsoft.IdentityServer.Management.Commands.AddRelyingPartyTrustCommand",
        )
    if not parts.path.lower().startswith("/passiveauth/"):
        raise WindowsError(
            "The remote server returned an error: (404) Not Found.", "NotSpecified", "System.Net.WebException"
        )
    return {"Identifier": [f"https://{host}/passiveauth"], "WSFedEndpoint": f"https://{host}/passiveauth"}


# -- cmdlets ------------------------------------------------------------------------------
@simulates("Get-AdfsRelyingPartyTrust")
def get_relying_party_trust(machine: Machine, p: dict) -> list[dict]:
    _require(machine, "Get-AdfsRelyingPartyTrust")
    out = []
    for trust in sorted(_trusts(machine).values(), key=lambda t: t["Name"].lower()):
        if p.get("Name") is not None and trust["Name"].lower() not in {str(n).lower() for n in p["Name"]}:
            continue
        if p.get("Identifier") is not None and not (
            {str(i).lower() for i in p["Identifier"]} & {i.lower() for i in trust["Identifier"]}
        ):
            continue
        if p.get("PrefixIdentifier") is not None and not any(
            i.lower().startswith(str(p["PrefixIdentifier"]).lower()) for i in trust["Identifier"]
        ):
            continue
        out.append(copy.deepcopy(trust))
    return out


@simulates("Add-AdfsRelyingPartyTrust")
def add_relying_party_trust(machine: Machine, p: dict) -> dict | None:
    _require(machine, "Add-AdfsRelyingPartyTrust")
    name = str(p["Name"])
    if machine.store.get(TRUSTS, _trust_key(machine, name)) is not None:
        raise WindowsError(
            f"MSIS7613: The name '{name}' is already in use by another relying party trust.",
            "InvalidOperation",
            "MSIS7613",
        )
    trust: dict[str, Any] = {
        "Name": name,
        "Identifier": [],
        "MetadataUrl": None,
        "Enabled": True,
        "AutoUpdateEnabled": False,
        "IssuanceAuthorizationRules": "",
        "IssuanceTransformRules": "",
        "TokenLifetime": 0,
        "EncryptClaims": True,
        "Notes": None,
        "WSFedEndpoint": None,
    }
    if p.get("MetadataUrl") is not None:
        trust.update(read_metadata(machine, str(p["MetadataUrl"])), MetadataUrl=str(p["MetadataUrl"]))
    elif p.get("Identifier") is not None:
        trust["Identifier"] = [str(i) for i in p["Identifier"]]
    _unique_identifiers(machine, trust["Identifier"])
    for param, value in p.items():
        if param not in CONTROL and param not in ("Name", "MetadataUrl", "Identifier"):
            trust[param] = value
    machine.store.put(TRUSTS, _trust_key(machine, name), trust)
    return copy.deepcopy(trust) if p.get("PassThru") else None


@simulates("Set-AdfsRelyingPartyTrust")
def set_relying_party_trust(machine: Machine, p: dict) -> dict | None:
    _require(machine, "Set-AdfsRelyingPartyTrust")
    key, trust = _target(machine, p, "Set-AdfsRelyingPartyTrust")
    if p.get("Identifier") is not None:
        _unique_identifiers(machine, [str(i) for i in p["Identifier"]], except_key=key)
    for param, value in p.items():
        if param not in CONTROL:
            trust[param] = str(value) if param == "MetadataUrl" else value
    if "Name" in p and _trust_key(machine, str(p["Name"])) != key:
        machine.store.delete(TRUSTS, key)
        key = _trust_key(machine, str(p["Name"]))
    machine.store.put(TRUSTS, key, trust)
    return copy.deepcopy(trust) if p.get("PassThru") else None


@simulates("Remove-AdfsRelyingPartyTrust")
def remove_relying_party_trust(machine: Machine, p: dict) -> None:
    _require(machine, "Remove-AdfsRelyingPartyTrust")
    key, _ = _target(machine, p, "Remove-AdfsRelyingPartyTrust")
    machine.store.delete(TRUSTS, key)


def _enable(machine: Machine, p: dict, cmdlet: str, enabled: bool) -> None:
    _require(machine, cmdlet)
    key, trust = _target(machine, p, cmdlet)
    trust["Enabled"] = enabled
    machine.store.put(TRUSTS, key, trust)


@simulates("Enable-AdfsRelyingPartyTrust")
def enable_relying_party_trust(machine: Machine, p: dict) -> None:
    _enable(machine, p, "Enable-AdfsRelyingPartyTrust", True)


@simulates("Disable-AdfsRelyingPartyTrust")
def disable_relying_party_trust(machine: Machine, p: dict) -> None:
    _enable(machine, p, "Disable-AdfsRelyingPartyTrust", False)


@simulates("Get-AdfsProperties")
def get_properties(machine: Machine, p: dict) -> dict:
    _require(machine, "Get-AdfsProperties")
    return copy.deepcopy(machine.store.get(PROPERTIES, machine.name) or {})


@simulates("Set-AdfsProperties")
def set_properties(machine: Machine, p: dict) -> None:
    _require(machine, "Set-AdfsProperties")
    properties = machine.store.get(PROPERTIES, machine.name) or {}
    for param, value in p.items():
        if param not in ("WhatIf", "Confirm", "Force"):
            properties[param] = value
    machine.store.put(PROPERTIES, machine.name, properties)


@simulates("Get-AdfsAuthenticationProvider")
def get_authentication_provider(machine: Machine, p: dict) -> list[dict]:
    _require(machine, "Get-AdfsAuthenticationProvider")
    return copy.deepcopy(PROVIDERS)


@simulates("Get-AdfsGlobalAuthenticationPolicy")
def get_global_authentication_policy(machine: Machine, p: dict) -> dict:
    _require(machine, "Get-AdfsGlobalAuthenticationPolicy")
    return copy.deepcopy(machine.store.get(POLICY, machine.name) or POLICY_DEFAULT)


@simulates("Set-AdfsGlobalAuthenticationPolicy")
def set_global_authentication_policy(machine: Machine, p: dict) -> dict | None:
    """The primary providers of each location must be registered providers allowed there; the
    lists are stored as given (they are a set of alternatives, the order means nothing)."""
    _require(machine, "Set-AdfsGlobalAuthenticationPolicy")
    policy = machine.store.get(POLICY, machine.name) or copy.deepcopy(POLICY_DEFAULT)
    allowed = {
        "PrimaryIntranetAuthenticationProvider": "AllowedForPrimaryIntranet",
        "PrimaryExtranetAuthenticationProvider": "AllowedForPrimaryExtranet",
        "AdditionalAuthenticationProvider": "AllowedForAdditionalAuthentication",
    }
    for param, value in p.items():
        if param in ("WhatIf", "Confirm", "PassThru"):
            continue
        if param in allowed:
            names = [str(v) for v in (value or [])]
            known = {x["Name"].lower(): x for x in PROVIDERS}
            for provider in names:
                entry = known.get(provider.lower())
                if entry is None or not entry[allowed[param]]:
                    raise WindowsError(
                        f"The authentication provider '{provider}' is not registered or cannot be used for {param}.",
                        "InvalidArgument",
                        "Microsoft.IdentityServer.Management.Commands.SetGlobalAuthenticationPolicyCommand",
                    )
            if param != "AdditionalAuthenticationProvider" and not names:
                raise WindowsError(
                    f"{param} cannot be empty: at least one primary authentication provider must be enabled.",
                    "InvalidArgument",
                    "Microsoft.IdentityServer.Management.Commands.SetGlobalAuthenticationPolicyCommand",
                )
            value = names
        policy[param] = value
    machine.store.put(POLICY, machine.name, policy)
    return copy.deepcopy(policy) if p.get("PassThru") else None


@simulates("Get-AdfsEndpoint")
def get_endpoint(machine: Machine, p: dict) -> list[dict]:
    _require(machine, "Get-AdfsEndpoint")
    host = (machine.store.get(PROPERTIES, machine.name) or {}).get("HostName", machine.host.fqdn)
    paths = ["/adfs/ls/", "/adfs/services/trust/mex", "/FederationMetadata/2007-06/FederationMetadata.xml"]
    return [
        {
            "AddressPath": a,
            "FullUrl": f"https://{host}{a}",
            "Enabled": True,
            "Proxy": a == "/adfs/ls/",
            "Protocol": "SAML 2.0/WS-Federation" if a == "/adfs/ls/" else "Metadata",
        }
        for a in paths
    ]
