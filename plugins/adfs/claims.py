"""The relying-party trust the procedure creates for each pool and Director (reference section 6).

The claim rules are the doc's, with its errata corrected: ``http://schemas.microsoft.com/...``
claim types (not ``https://`` and not ``schemas.contoso.com``). They exist here only: the decisions
pass them to ``Add-/Set-AdfsRelyingPartyTrust`` as parameter values (a test checks that no
PowerShell file carries them).
"""

from __future__ import annotations

import re

PERMIT_CLAIM = "http://schemas.microsoft.com/authorization/claims/permit"
PRIMARYSID_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/primarysid"
AUTHORIZATION_RULES = '@RuleTemplate = "AllowAllAuthzRule" => issue(Type = "' + PERMIT_CLAIM + '", Value = "true");'
TRANSFORM_RULES = (
    '@RuleTemplate = "PassThroughClaims" @RuleName = "Sid" c:[Type == "' + PRIMARYSID_CLAIM + '"]=> issue(claim = c);'
)
TRUST_SUFFIX = "-PassiveAuth"
FQDN = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))+")  # fullmatch


def trust_name(pool_fqdn: str) -> str:
    """``lyncpool01.contoso.com`` -> ``lyncpool01-PassiveAuth`` (the doc's naming)."""
    return pool_fqdn.split(".")[0] + TRUST_SUFFIX


def pool_metadata_url(pool_fqdn: str) -> str:
    return f"https://{pool_fqdn}/passiveauth/federationmetadata/2007-06/federationmetadata.xml"


def federation_metadata_url(service_name: str) -> str:
    """The AD FS federation metadata; ``service_name`` is the Federation Service Name, not a server name."""
    return f"https://{service_name}/federationmetadata/2007-06/federationmetadata.xml"


def same_rules(left: str | None, right: str | None) -> bool:
    """AD FS may re-wrap rule text; claim types are case-sensitive, whitespace is not."""
    if left is None or right is None:
        return left is right
    return re.sub(r"\s", "", left) == re.sub(r"\s", "", right)
