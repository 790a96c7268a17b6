"""The client scripts carry what the procedure needs, with the reference's errata corrected
(the lab does not run PowerShell, so this is where the Windows side is pinned down)."""
from __future__ import annotations

import re

import pytest

from lync2fa import api
from lync2fa.script import render

from powershell_syntax import syntax_errors

TASKS = api.tasks()
PARAMS = {
    "client.virtual_smartcard": {"card_name": "Lync2FA", "pin": "s3cret-PIN-0042", "puk": None, "admin_key": "random",
                                 "task_timeout_s": 300},
    "client.lync_settings": {"office_versions": ["15.0", "16.0"], "clear_sip_profiles": True, "user": "CORP\\user01"},
    "client.enrollment": {"user": "CORP\\user01", "template": "TPMVirtualSmartCardLogon",
                          "ca_config": "ca01.corp.test\\Corp Root CA", "card_name": "Lync2FA", "pin": "s3cret-PIN-0042",
                          "renew_days": 42, "task_timeout_s": 300,
                          "provider": "Microsoft Base Smart Card Crypto Provider"},
}


def script(name: str) -> str:
    return render(TASKS[name].template, name, PARAMS[name], False)


def code_of(name: str) -> str:
    """The script without its input document (where parameter values live)."""
    text = script(name)
    start = text.index("$Lync2faInput = @'")
    return text[:start] + text[text.index("'@", start):]


def test_virtual_smartcard_never_leaves_the_default_pin_and_checks_the_tpm():
    code = code_of("client.virtual_smartcard")
    assert "Win32_Tpm" in code and "SpecVersion" in code and "[version]'1.2'" in code
    assert "& tpmvscmgr.exe @arguments" in code
    assert ("@('create', '/name', [string]$job.name, '/pin', 'default', '/adminkey', [string]$job.admin_key, "
            "'/generate')") in code
    assert "'prompt'" not in code and "/pin prompt" not in code          # no console over WinRM
    # The PIN is changed through the minidriver in the same SYSTEM task; on failure the card goes.
    assert "CardChangeAuthenticator" in code and "CardAcquireContext" in code
    assert "& tpmvscmgr.exe destroy /instance $instance" in code
    assert "-UserId 'SYSTEM' -LogonType ServiceAccount" in code
    assert "ROOT\\\\SMARTCARDREADER\\\\%" in code and "Set-Lync2faCreated -Id ('vsc/' + $name)" in code
    assert "s3cret-PIN-0042" not in code


def test_lync_settings_write_the_hklm_policy_key_only():
    code = code_of("client.lync_settings")
    assert "'HKLM:\\Software\\Policies\\Microsoft\\Office\\' + [string]$version + '\\Lync'" in code
    assert "'DisableNTCredentials'" in code and "'SavePassword'" in code and "-Kind 'DWord'" in code
    assert not re.search(r"HKCU|HKEY_CURRENT_USER", code)       # the admin's hive over WinRM, not the user's
    assert "-Filter 'sip_*'" in code and "AppData\\Local\\Microsoft\\Office\\" in code


def test_enrollment_runs_certenroll_as_the_user_and_never_exports_the_key():
    code = code_of("client.enrollment")
    for needed in ("X509Enrollment.CX509PrivateKey", "$key.ExportPolicy = 0", "$key.Pin = [string]$job.pin",
                   "InitializeFromPrivateKey(1, $key, [string]$job.template)", "$request.Silent = $true",
                   "CertificateAuthority.Request", "$ca.Submit(1, $encoded, '', [string]$job.ca_config)",
                   "InstallResponse(0", "-LogonType Interactive -RunLevel Limited"):
        assert needed in code, needed
    assert not re.search(r"\.Export\(|Export-PfxCertificate|ExportPolicy = [1-9]", code)
    assert "s3cret-PIN-0042" not in code


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_scripts_with_real_values_parse(name):
    assert syntax_errors(script(name)) == []


def test_card_data_structure_matches_cardmod_h():
    """CARD_DATA as marshalled must list cardmod.h's members in order, up to version 6."""
    code = code_of("client.virtual_smartcard")
    fields = re.findall(r"\b(pfn\w+|pv\w+|hS\w+|pb\w+|cb\w+|dw\w+|pwsz\w+)\b",
                        code[code.index("struct CardData"):code.index("static readonly CspAlloc")])
    assert fields[:5] == ["dwVersion", "pbAtr", "cbAtr", "pwszCardName", "pfnCspAlloc"]
    assert fields.index("hSCardCtx") == 12 and fields.index("pfnCardDeleteContext") == 15
    assert fields.index("pfnCardChangeAuthenticator") == 24 and fields[-1] == "pfnCardSetProperty"
    assert len(fields) == 52
