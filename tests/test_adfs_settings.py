"""The AD FS tier's settings live once, in Python: the claim rules as the reference gives them with
its errata corrected, the sign-in web.config edit, and no AD FS literal in any PowerShell file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lync2fa import api
from lync2fa.lab.windows.adfs import sign_in_config
from lync2fa.plugins.adfs import claims, decide, signin

ROOT = Path(__file__).resolve().parents[1]
PATH = "C:\\inetpub\\adfs\\ls\\web.config"


def test_claim_rules_are_the_docs_with_http_claim_types():
    assert claims.AUTHORIZATION_RULES == (
        '@RuleTemplate = "AllowAllAuthzRule" => issue(Type = '
        '"http://schemas.microsoft.com/authorization/claims/permit", Value = "true");'
    )
    assert claims.TRANSFORM_RULES == (
        '@RuleTemplate = "PassThroughClaims" @RuleName = "Sid" c:[Type == '
        '"http://schemas.microsoft.com/ws/2008/06/identity/claims/primarysid"]=> '
        "issue(claim = c);"
    )
    for rules in (claims.AUTHORIZATION_RULES, claims.TRANSFORM_RULES):
        assert "https://schemas" not in rules and "schemas.contoso.com" not in rules and "\n" not in rules
    assert claims.trust_name("lyncpool01.contoso.com") == "lyncpool01-PassiveAuth"
    assert claims.pool_metadata_url("lyncpool01.contoso.com") == (
        "https://lyncpool01.contoso.com/passiveauth/federationmetadata/2007-06/federationmetadata.xml"
    )


def test_rule_comparison_ignores_wrapping_not_case():
    assert claims.same_rules(claims.AUTHORIZATION_RULES.replace(" => ", "\n =>\n "), claims.AUTHORIZATION_RULES)
    assert not claims.same_rules(claims.AUTHORIZATION_RULES.replace("http://", "https://"), claims.AUTHORIZATION_RULES)
    assert not claims.same_rules(claims.TRANSFORM_RULES.replace("primarysid", "PrimarySid"), claims.TRANSFORM_RULES)


def test_tls_client_moves_to_the_top_and_nothing_else_changes():
    text = sign_in_config(["Integrated", "Forms", "TlsClient", "Basic"]).replace(
        '      <add name="Forms"', '      <!-- <add name="Old" page="x" /> -->\r\n      <add name="Forms"'
    )
    names = signin.authentication_types(text, PATH)
    assert names == ["Integrated", "Forms", "TlsClient", "Basic"], "a commented-out entry is not an entry"
    order = signin.first(names, signin.TLS_CLIENT)
    moved = signin.reorder(text, PATH, order)
    assert signin.authentication_types(moved, PATH) == ["TlsClient", "Integrated", "Forms", "Basic"]
    assert sorted(moved.splitlines()) == sorted(text.splitlines()) and len(moved) == len(text)
    assert moved.index('<add name="TlsClient" page="auth/sslclient/" />') < moved.index('<add name="Integrated"')
    assert signin.first(["Forms", "tlsclient"], "TlsClient") == ["tlsclient", "Forms"], "its spelling is kept"


@pytest.mark.parametrize(
    "text, message",
    [
        ("<configuration><broken></configuration>", "is not well-formed XML"),
        ("<configuration />", "No <localAuthenticationTypes> element in"),
    ],
)
def test_a_file_lync2fa_cannot_change_is_named(text, message):
    with pytest.raises(signin.SignInConfigError, match=message):
        signin.authentication_types(text, PATH)


def test_web_config_default_and_check():
    task = api.tasks()["adfs.client_auth"]
    assert task.validate({})["web_config"] == PATH == decide.WEB_CONFIG
    with pytest.raises(ValueError, match="is not a path to a web.config file"):
        task.validate({"web_config": "C:\\inetpub\\adfs\\ls\\app.config"})


def test_every_adfs_task_decides_in_python_and_stays_on_its_host():
    tasks = {n: t for n, t in api.tasks().items() if n.startswith("adfs.")}
    assert sorted(tasks) == ["adfs.client_auth", "adfs.relying_party", "adfs.rollback", "adfs.token_replay"]
    for task in tasks.values():
        assert task.decide is not None and task.reaches == ()
    assert not (ROOT / "plugins" / "adfs" / "scripts").exists()


LITERALS = [
    claims.AUTHORIZATION_RULES,
    claims.TRANSFORM_RULES,
    claims.PERMIT_CLAIM,
    claims.PRIMARYSID_CLAIM,
    claims.TRUST_SUFFIX,
    "passiveauth/federationmetadata",
    decide.CERTIFICATE,
    decide.BACKUP_SUFFIX,
    "localAuthenticationTypes",
    "TlsClient",
    "PreventTokenReplays",
    "PrimaryIntranetAuthenticationProvider",
    "Microsoft.Adfs.PowerShell",
    decide.FARM_WIDE_WARNING[:40],
    "W3SVC",
    "inetpub\\adfs",
]


def test_no_adfs_desired_state_literal_in_any_powershell_file():
    files = [
        p
        for pattern in ("**/*.ps1", "**/*.ps1.j2")
        for p in ROOT.glob(pattern)
        if ".venv" not in p.parts and "node_modules" not in p.parts
    ]
    assert files
    found = [
        (str(p.relative_to(ROOT)), literal)
        for p in files
        for literal in LITERALS
        if literal.lower() in p.read_text(encoding="utf-8", errors="replace").lower()
    ]
    assert found == []
