"""The AD FS tier's scripts carry what reference sections 6, 7 and 12 require, errata corrected."""
from __future__ import annotations

import re

import pytest

from lync2fa import api
from lync2fa.plugins.adfs import claims
from lync2fa.plugins.adfs.twin import FARM_WIDE_WARNING
from lync2fa.script import render

TASKS = api.tasks()
POOLS = ["lyncpool01.contoso.com", "dir01.contoso.com"]


def script(name: str, **params) -> str:
    task = TASKS[name]
    values = {"pools": POOLS, "token_lifetime": 240, "prevent_token_replays": True,
              "web_config": "C:\\inetpub\\adfs\\ls\\web.config", "extranet": True}
    values.update(params)
    return render(task.template, name, {p.name: values[p.name] for p in task.params}, False)


def lines_with(text: str, *words: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if all(w in line for w in words)]


def test_relying_party_trust_from_the_pool_metadata():
    text = script("adfs.relying_party")
    assert lines_with(text, "Add-ADFSRelyingPartyTrust -Name $name -MetadataURL $url")
    assert "'/passiveauth/federationmetadata/2007-06/federationmetadata.xml'" in text
    assert "+ '-PassiveAuth'" in text            # LyncPool01-PassiveAuth naming
    # Errata: each Set-ADFSRelyingPartyTrust is one command on one line.
    rules = lines_with(text, "Set-ADFSRelyingPartyTrust -TargetName", "-IssuanceAuthorizationRules")
    assert rules and all("-IssuanceTransformRules" in line for line in rules)
    assert lines_with(text, "Set-ADFSRelyingPartyTrust -TargetName", "-TokenLifetime")


def test_claim_rules_are_the_docs_with_http_claim_types():
    text = script("adfs.relying_party")
    assert f"$AuthorizationRules = '{claims.AUTHORIZATION_RULES}'" in text
    assert f"$TransformRules = '{claims.TRANSFORM_RULES}'" in text
    assert '"AllowAllAuthzRule"' in claims.AUTHORIZATION_RULES and '"PassThroughClaims"' in claims.TRANSFORM_RULES
    assert "http://schemas.microsoft.com/authorization/claims/permit" in text
    assert "http://schemas.microsoft.com/ws/2008/06/identity/claims/primarysid" in text


@pytest.mark.parametrize("name", ["adfs.relying_party", "adfs.token_replay", "adfs.client_auth", "adfs.rollback"])
def test_no_erratum_survives(name):
    text = script(name)
    assert "https://schemas" not in text and "schemas.contoso.com" not in text
    # Commands are never continued on the next line (the doc's line breaks without backtick).
    assert not [line for line in text.splitlines() if re.match(r"\s*-[A-Za-z]+\s", line)]
    assert not [line for line in text.splitlines() if line.rstrip().endswith("`")]
    # The snap-in exists on AD FS 2.0 only; 2.1 and later load the ADFS module.
    assert "Add-PSSnapin -Name 'Microsoft.Adfs.PowerShell'" in text
    assert "Get-PSSnapin -Registered -Name 'Microsoft.Adfs.PowerShell'" in text
    assert "Import-Module -Name ADFS" in text


def test_token_replay_detection():
    assert lines_with(script("adfs.token_replay"), "Set-ADFSProperties -PreventTokenReplays $true")


def test_tls_client_first_with_backup_and_iis_reset():
    text = script("adfs.client_auth")
    assert "$SignInSection = '//localAuthenticationTypes'" in text
    assert "'TlsClient'" in text
    assert lines_with(text, "$backup = $path + '.lync2fa-backup'")
    assert lines_with(text, "Copy-Item -LiteralPath $path -Destination $backup")
    assert lines_with(text, "IISReset /Restart /NoForce")
    assert TASKS["adfs.client_auth"].params[0].default == "C:\\inetpub\\adfs\\ls\\web.config"


def test_adfs3_uses_the_global_authentication_policy():
    text = script("adfs.client_auth")
    assert lines_with(text, "Set-AdfsGlobalAuthenticationPolicy -PrimaryIntranetAuthenticationProvider",
                      "-PrimaryExtranetAuthenticationProvider")
    assert "$CertificateProvider = 'CertificateAuthentication'" in text
    assert "Get-Command -Name 'Get-AdfsGlobalAuthenticationPolicy'" in text


def test_adfs3_certificate_is_the_only_primary_provider():
    """3.0+ treats the primary providers as alternatives: the wanted lists hold the certificate only,
    never the current lists with the certificate put first (that is for the 2.x web.config)."""
    text = script("adfs.client_auth")
    adfs3 = text[text.index("if ($version -eq '3.0+')"):text.index("$path = [string]$P.web_config")]
    assert adfs3.count("Get-CertificateOnly -Names $current.primary_intranet -Certificate $CertificateProvider") == 1
    assert adfs3.count("Get-CertificateOnly -Names $current.primary_extranet -Certificate $CertificateProvider") == 1
    assert "Get-CertificateFirst" not in adfs3
    only = text[text.index("function Get-CertificateOnly"):text.index("function Get-CertificateFirst")]
    assert "return @($match[0])" in only and "return @($Certificate)" in only and "-ne $Certificate" not in only
    # The 2.x path keeps the reference's order change (TlsClient first, the rest kept).
    assert "Get-CertificateFirst -Names $names -Certificate 'TlsClient'" in text
    # The farm-wide consequence is warned about, with the twin's words.
    assert f"$FarmWideWarning = '{FARM_WIDE_WARNING}'" in text
    changed_at = adfs3.index("$Result.changed = $true")
    assert adfs3.index("Add-Lync2faWarning -Text $FarmWideWarning") > changed_at


def test_rollback_removes_trusts_and_restores_files():
    text = script("adfs.rollback")
    assert lines_with(text, "Remove-ADFSRelyingPartyTrust -TargetName $name")
    assert lines_with(text, "Copy-Item -LiteralPath $backup -Destination $path -Force")
    assert lines_with(text, "Set-ADFSProperties -PreventTokenReplays")
    assert lines_with(text, "Set-AdfsGlobalAuthenticationPolicy -PrimaryIntranetAuthenticationProvider")


def test_rule_comparison_ignores_wrapping_not_case():
    assert claims.same_rules(claims.AUTHORIZATION_RULES.replace(" => ", "\n =>\n "), claims.AUTHORIZATION_RULES)
    assert not claims.same_rules(claims.AUTHORIZATION_RULES.replace("http://", "https://"), claims.AUTHORIZATION_RULES)
    assert not claims.same_rules(claims.TRANSFORM_RULES.replace("primarysid", "PrimarySid"), claims.TRANSFORM_RULES)
