"""The Lync tier's scripts carry what reference sections 8, 11.5 and 12 require, and no script of
any tier can change a Lync Global (or site) scope."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import lync2fa.plugins
from lync2fa import api
from lync2fa.plugins.lync import scopes
from lync2fa.script import render

TASKS = api.tasks()
PLUGINS = Path(lync2fa.plugins.__file__).parent
SAMPLE = {
    "web_service_identity": "Service:WebServer:lyncpool01.contoso.com",
    "metadata_uri": "https://sts.contoso.com/federationmetadata/2007-06/federationmetadata.xml",
    "registrar_identity": "Service:Registrar:lyncpool01.contoso.com", "director": False, "director_registrar": False,
    "edge_identities": ["Service:EdgeServer:edgepool01.contoso.com"],
    "ucs_rollback": True, "ucs_policy": "NoUcs", "ucs_registrar_pool": "lyncpool01.contoso.com",
}
WEB_SETTINGS = ("-UseWsFedPassiveAuth $true -WsFedPassiveMetadataUri $metadataUri -UseCertificateAuth $false "
                "-UsePinAuth $false -UseWindowsAuth None")
PROXY_SETTINGS = ("-UseKerberosForClientToProxyAuth $False -UseNtlmForClientToProxyAuth $False "
                  "-UseCertificateForClientToProxyAuth $True")
CS_CHANGE = re.compile(r"\b(New|Set|Remove)-Cs\w+")


def script(name: str) -> str:
    task = TASKS[name]
    return render(task.template, name, {p.name: SAMPLE[p.name] for p in task.params}, False)


def lines_with(text: str, *words: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if all(w in line for w in words)]


def test_web_services_passive_auth_on_everything_else_off():
    text = script("lync.web_service")
    # New- when the service has no collection of its own, Set- when it has: same settings, one line each.
    assert lines_with(text, "New-CsWebServiceConfiguration -Identity $ServiceIdentity " + WEB_SETTINGS)
    assert lines_with(text, "Set-CsWebServiceConfiguration -Identity $ServiceIdentity " + WEB_SETTINGS)
    assert lines_with(text, "$own = Get-CsWebServiceConfiguration -Identity $ServiceIdentity")
    assert lines_with(text, "Assert-Lync2faServiceScope -Identity ([string]$P.web_service_identity)",
                      "-Service 'WebServer'")


@pytest.mark.parametrize("name,service", [("lync.registrar_proxy", "'Registrar'"),
                                          ("lync.edge_proxy", "'EdgeServer'")])
def test_sip_proxy_kerberos_and_ntlm_off_certificate_on(name, service):
    text = script(name)
    assert lines_with(text, "New-CsProxyConfiguration -Identity $ServiceIdentity " + PROXY_SETTINGS)
    assert lines_with(text, "Set-CsProxyConfiguration -Identity $ServiceIdentity " + PROXY_SETTINGS)
    assert lines_with(text, "Update-Lync2faProxy -Identity", "-Service " + service)
    assert "UseCertifcate" not in text   # the doc's misspelling


def test_ucs_rollback_and_the_policy_that_makes_it_last():
    text = script("lync.ucs_rollback")
    assert lines_with(text, "Invoke-CsUcsRollback -Identity $sip -Confirm:$false")
    assert lines_with(text, "New-CsUserServicesPolicy -Identity $PolicyIdentity -UcsAllowed $False")
    assert lines_with(text, "Set-CsUserServicesPolicy -Identity $PolicyIdentity -UcsAllowed $False")
    assert lines_with(text, "Grant-CsUserServicesPolicy -Identity $sip -PolicyName $policyName")
    assert not lines_with(text, "Get-CsUser -Filter")   # the pool name is data, never query text
    assert lines_with(text, "Get-CsUser | Where-Object { [string]$_.RegistrarPool -eq $Pool }")


def test_rollback_removes_service_collections():
    text = script("lync.rollback")
    assert lines_with(text, "Remove-CsWebServiceConfiguration -Identity $ServiceIdentity")
    assert lines_with(text, "Remove-CsProxyConfiguration -Identity $ServiceIdentity")
    assert lines_with(text, "Remove-CsUserServicesPolicy -Identity $PolicyIdentity")
    assert lines_with(text, "Set-CsWebServiceConfiguration -Identity $ServiceIdentity -UseWsFedPassiveAuth $after.")
    assert lines_with(text, "Set-CsProxyConfiguration -Identity $ServiceIdentity",
                      "-UseKerberosForClientToProxyAuth $after.")


@pytest.mark.parametrize("name", ["lync.web_service", "lync.registrar_proxy", "lync.edge_proxy",
                                  "lync.ucs_rollback", "lync.rollback"])
def test_commands_on_one_line_and_module_by_product(name):
    text = script(name)
    assert not [line for line in text.splitlines() if re.match(r"\s*-[A-Za-z]+\s", line)]
    assert not [line for line in text.splitlines() if line.rstrip().endswith("`")]
    assert "Import-Module -Name 'SkypeForBusiness'" in text and "Import-Module -Name 'Lync'" in text


# -- Global scope: a static check of every template of every tier ------------------------------
TEMPLATES = sorted(PLUGINS.glob("*/scripts/*.ps1.j2"))


def test_templates_found():
    names = {p.name for p in TEMPLATES}
    assert {"web_service.ps1.j2", "_proxy.ps1.j2", "rollback.ps1.j2", "ucs_rollback.ps1.j2"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_template_can_change_a_global_or_site_scope(path):
    text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)   # Jinja comments never reach a script
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for match in CS_CHANGE.finditer(code):
            rest = code[match.end():]
            # Every change of a Cs collection or policy names a checked service/tag identity...
            assert re.match(r"\s+-Identity \$(ServiceIdentity|PolicyIdentity)\b", rest), line.strip()
    # ...and those variables are only ever assigned from the scope assertions, never passed in.
    guards = (("ServiceIdentity", "Assert-Lync2faServiceScope"), ("PolicyIdentity", "Assert-Lync2faTagPolicy"))
    for var, guard in guards:
        for line in text.splitlines():
            if re.search(rf"\${var}\s*=[^=]", line):
                assert re.search(rf"\${var} = {guard} -", line), line.strip()
            assert not re.search(rf"(param\(|foreach \().*\${var}\b", line, re.I), line.strip()
    assert not re.search(r"-Identity\s+['\"]?(Global|site:)", re.sub(r"Get-Cs\w+ -Identity 'Global'", "", text), re.I)


def test_script_and_twin_share_the_scope_rules():
    text = (PLUGINS / "lync" / "scripts" / "_lync.ps1.j2").read_text()
    assert f"-match '^{scopes.SERVICE_FQDN.pattern}\\z'" in text
    assert f"-notmatch '^{scopes.TAG_NAME.pattern}\\z'" in text
    assert scopes.is_service_scope("service:webserver:Pool01.contoso.com", "WebServer")
    for bad in ("Global", "site:Redmond", "Service:WebServer:", "Service:Registrar:pool01.contoso.com",
                "Service:WebServer:pool01.contoso.com\n", "Service:WebServer:pool01 ; Global"):
        assert not scopes.is_service_scope(bad, "WebServer"), bad
    assert scopes.tag_policy("NoUcs") == "Tag:NoUcs" == scopes.tag_policy("tag:NoUcs")
    assert [scopes.tag_policy(n) for n in ("Global", "site:Redmond", "Service:Registrar:x", "")] == [None] * 4


CREATES = re.compile(r"^\s*(New-Cs\w+|Add-ADFSRelyingPartyTrust)\b(?!.*-InMemory)")


@pytest.mark.parametrize("name,expected", [("lync.web_service", 1), ("lync.registrar_proxy", 1),
                                           ("lync.edge_proxy", 1), ("lync.ucs_rollback", 1),
                                           ("adfs.relying_party", 1)])
def test_created_record_is_written_before_the_object_is_created(name, expected):
    """If a step after New-*/Add-* fails, the record of the created object must already exist, so
    that rollback removes it and the next apply does not take it for one that was there before."""
    task = TASKS[name]
    values = {**SAMPLE, "pools": ["lyncpool01.contoso.com"], "token_lifetime": 0}
    lines = render(task.template, name, {p.name: values[p.name] for p in task.params}, False).splitlines()
    creations = [i for i, line in enumerate(lines) if CREATES.match(line)]
    assert len(creations) == expected, [lines[i] for i in creations]
    for i in creations:
        assert "Set-Lync2faRecord -Id" in lines[i - 1] and "-Created $true" in lines[i - 1], lines[i - 1:i + 1]
