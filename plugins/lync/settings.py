"""What lync2fa wants in the Central Management Store: one table, read by the facts (which
properties to select), the decisions (what to compare and what New-/Set- get), verify (check
mode runs the same decisions) and rollback (what is recorded and given back).

Reference sections 8.2 and 8.3: at ``Service:WebServer:<pool>`` passive (WS-Federation)
authentication on and every other web-ticket method off; at ``Service:Registrar:<pool>`` and
``Service:EdgeServer:<edge>`` Kerberos and NTLM off for client-to-proxy authentication and
certificate authentication kept on (spelt ``UseCertificateForClientToProxyAuth``, not the doc's
``UseCertifcate...``). Section 11.5: a per-user user services policy with ``UcsAllowed $False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The Skype for Business Server 2015+ management shell. Lync Server 2013 ships the same Cs*
# cmdlets in a module named "Lync" (see the README: a 2013 pool is not supported by name yet).
MODULE = "SkypeForBusiness"

BOOL, TEXT, ENUM = "bool", "text", "enum"


@dataclass(frozen=True)
class Collection:
    """A kind of Cs configuration collection lync2fa manages at service scope."""

    noun: str  # CsWebServiceConfiguration: Get-/New-/Set-/Remove-<noun>
    services: tuple[str, ...]  # the service types whose scope lync2fa may write
    managed: dict[str, str]  # setting -> value kind (bool, text, enum): compared, set, recorded
    fixed: dict[str, Any]  # the managed settings whose wanted value is a constant
    from_params: dict[str, str] = field(default_factory=dict)  # setting -> task parameter
    site_scope: bool = False  # a service without its own collection inherits its site's first
    # Unmanaged properties (present since Lync Server 2013) whose value a new service collection
    # does not take over from the site or Global collection it inherited: compared for a warning.
    unmanaged: tuple[str, ...] = ()

    def wanted(self, params: dict) -> dict:
        values = {**self.fixed, **{name: params[param] for name, param in self.from_params.items()}}
        return {name: values[name] for name in self.managed}

    @property
    def select(self) -> tuple[str, ...]:
        """What a fact reads of each collection."""
        return ("Identity", *self.managed, *self.unmanaged)

    def view(self, config: dict) -> dict:
        """The diff's view of a collection: its scope and the managed settings, normalised."""
        return {
            "scope": text(config.get("Identity")),
            **{name: normalise(kind, config.get(name)) for name, kind in self.managed.items()},
        }

    def settings_of(self, view: dict) -> dict:
        """A view (or a recorded previous view) as New-/Set- parameters."""
        return {name: normalise(kind, view.get(name)) for name, kind in self.managed.items()}


WEB = Collection(
    noun="CsWebServiceConfiguration",
    services=("WebServer",),
    site_scope=True,
    managed={
        "UseWsFedPassiveAuth": BOOL,
        "WsFedPassiveMetadataUri": TEXT,
        "UseCertificateAuth": BOOL,
        "UsePinAuth": BOOL,
        "UseWindowsAuth": ENUM,
    },
    fixed={"UseWsFedPassiveAuth": True, "UseCertificateAuth": False, "UsePinAuth": False, "UseWindowsAuth": "None"},
    from_params={"WsFedPassiveMetadataUri": "metadata_uri"},
    unmanaged=(
        "AllowAnonymousAccessToLWAConference",
        "AllowExternalAuthentication",
        "AutoLaunchLyncWebAccess",
        "CASigningKeyLength",
        "DefaultValidityPeriodHours",
        "EnableCertChainDownload",
        "EnableGroupExpansion",
        "InferCertChainFromSSL",
        "MACResolverUrl",
        "MaxCSRKeySize",
        "MaxGroupSizeToExpand",
        "MaxValidityPeriodHours",
        "MinCSRKeySize",
        "MinValidityPeriodHours",
        "SecondaryLocationSourceUrl",
        "ShowAlternateJoinOptionsExpanded",
        "ShowDownloadCommunicatorAttendeeLink",
        "ShowJoinUsingLegacyClientLink",
    ),
)

PROXY = Collection(
    noun="CsProxyConfiguration",
    services=("Registrar", "EdgeServer"),
    site_scope=False,
    managed={
        "UseKerberosForClientToProxyAuth": BOOL,
        "UseNtlmForClientToProxyAuth": BOOL,
        "UseCertificateForClientToProxyAuth": BOOL,
    },
    fixed={
        "UseKerberosForClientToProxyAuth": False,
        "UseNtlmForClientToProxyAuth": False,
        "UseCertificateForClientToProxyAuth": True,
    },
    unmanaged=(
        "AcceptClientCompression",
        "AcceptServerCompression",
        "AllowPartnerPollingSubscribes",
        "DisableNtlmFor2010AndLaterClients",
        "DnsCacheRecordCount",
        "EnableLoggingAllMessageBodies",
        "EnableWhiteSpaceKeepAlive",
        "LoadBalanceEdgeServers",
        "LoadBalanceInternalServers",
        "MaxClientCompressionCount",
        "MaxClientMessageBodySizeKb",
        "MaxKeepAliveInterval",
        "MaxServerCompressionCount",
        "MaxServerMessageBodySizeKb",
        "OutgoingTlsCount",
        "RequestServerCompression",
        "TreatAllClientsAsRemote",
    ),
)

COLLECTIONS = {c.noun: c for c in (WEB, PROXY)}

# The user services policy that keeps contacts out of the Unified Contact Store (section 11.5).
POLICY_NOUN = "CsUserServicesPolicy"
POLICY_WANTED = {"UcsAllowed": False}
POLICY_SELECT = ("Identity", *POLICY_WANTED)
USER_SELECT = ("SipAddress", "RegistrarPool", "UserServicesPolicy")
SERVICE_SELECT = ("Identity", "SiteId")

# Rollback record ids: lync/<kind>/<name>, restored in this order (proxies, web services, users'
# policies, then the policy itself).
RECORD_PREFIX = "lync/"
USER_RECORD = "ucs-user"
RESTORE_ORDER = (PROXY.noun, WEB.noun, USER_RECORD, POLICY_NOUN)


def record_id(kind: str, name: str) -> str:
    return f"{RECORD_PREFIX}{kind}/{name}"


def text(value) -> str | None:
    """A property as text, None when empty. A Lync object that the host serialised as its
    properties (a policy or FQDN reference rather than a string) gives its name."""
    if isinstance(value, dict):
        for key in ("FriendlyName", "Name", "Fqdn", "Identity"):
            if isinstance(value.get(key), str):
                value = value[key]
                break
        else:
            return None
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    value = str(value).strip()
    return value or None


def normalise(kind: str, value):
    if kind == BOOL:
        return bool(value)
    if kind == ENUM:
        return text(value) or ""
    return text(value)


def ps_text(value) -> str:
    """``[string]$value`` as PowerShell prints it in a warning."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return " ".join(ps_text(v) for v in value)
    return str(value)
