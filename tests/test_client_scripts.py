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
    "client.verify": {"user": "CORP\\user01", "template": "TPMVirtualSmartCardLogon",
                      "ca_config": "ca01.corp.test\\Corp Root CA", "card_name": "Lync2FA", "office_versions": ["15.0"],
                      "renew_days": 42},
    "client.rollback": {},
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
    assert "Invoke-Lync2faNative -FilePath 'tpmvscmgr.exe' -ArgumentList $arguments" in code
    assert ("@('create', '/name', [string]$job.name, '/pin', 'default', '/adminkey', [string]$job.admin_key, "
            "'/generate')") in code
    assert "'prompt'" not in code and "/pin prompt" not in code          # no console over WinRM
    # The PIN is changed through the minidriver in the same SYSTEM task; on failure the card goes.
    assert "CardChangeAuthenticator" in code and "CardAcquireContext" in code
    assert "Invoke-Lync2faNative -FilePath 'tpmvscmgr.exe' -ArgumentList @('destroy', '/instance', $instance)" in code
    assert "could NOT be destroyed again" in code             # a failed destroy is reported, not lost
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


def block_after(text: str, marker: str) -> str:
    """The text inside the braces that open right after ``marker``."""
    start = text.index(marker) + len(marker)
    start = text.index("{", start)
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise AssertionError(f"unbalanced braces after {marker}")


def run_ps1(name: str, body: str) -> str:
    """run.ps1 as Invoke-Lync2faTask composes it for the scheduled task."""
    code = code_of(name)
    return "\r\n".join([
        "param([string]$InputPath, [string]$OutputPath)",
        "function Invoke-Lync2faNative {" + block_after(code, "function Invoke-Lync2faNative") + "}",
        "$Lync2faTaskBody = {" + block_after(code, body) + "}",
        block_after(code, "$Lync2faTaskRunner ="),
    ])


def test_task_folder_is_created_admin_only_and_checked_before_the_pin_is_written():
    code = code_of("client.enrollment")
    assert "$env:ProgramData" not in code               # users can create lync2fa\run there first
    assert "$path = $env:ProgramFiles" in code and "@('lync2fa', 'run')" in code
    assert "Set-Acl" not in code and "New-Item -ItemType Directory" not in code
    folder = block_after(code, "function New-Lync2faTaskFolder")
    # every level: created with its protected ACL in the same call, then checked (existing or not)
    assert folder.count("[IO.Directory]::CreateDirectory($") == 2
    assert folder.index("CreateDirectory($path") < folder.index("Assert-Lync2faAdminFolder -Path $path")
    assert folder.index("CreateDirectory($folder") < folder.index(
        "Assert-Lync2faAdminFolder -Path $folder -AlsoSid $ReaderSid") < folder.index("return $folder")
    security = block_after(code, "function New-Lync2faFolderSecurity")
    assert "SetAccessRuleProtection($true, $false)" in security and ".SetOwner(" in security
    assert "'FullControl'" in security and "'ReadAndExecute', 'None'" in security and "'Modify'" in security
    assert "$AdminSids = @('S-1-5-18', 'S-1-5-32-544')" in code
    check = block_after(code, "function Assert-Lync2faAdminFolder")
    assert "$AdminSids -notcontains $owner" in check and "ReparsePoint" in check
    assert "GetAccessRules($true, $true" in check and "-band $FolderWriteRights" in check
    # the mask covers every right that lets another account plant, swap or re-permission files
    mask = int(re.search(r"\$FolderWriteRights = (0x[0-9A-Fa-f]+)", code).group(1), 16)
    for right in (0x2, 0x4, 0x10, 0x40, 0x100, 0x10000, 0x40000, 0x80000, 0x10000000, 0x40000000):
        assert mask & right, hex(right)          # WriteData ... TakeOwnership, GENERIC_ALL/WRITE
    assert not mask & 0x1 and not mask & 0x20   # reading and traversing stay allowed
    task = block_after(code, "function Invoke-Lync2faTask")
    assert task.index("New-Lync2faTaskFolder -ReaderSid $ReaderSid") < task.index("Set-Content -LiteralPath $scriptPath") \
        < task.index("Set-Content -LiteralPath $inputPath")


def test_task_result_appears_complete_under_its_final_name():
    code = code_of("client.virtual_smartcard")
    runner = block_after(code, "$Lync2faTaskRunner =")
    assert "Set-Content -LiteralPath $partial" in runner and "[IO.File]::Move($partial, $OutputPath)" in runner
    assert runner.index("Set-Content -LiteralPath $partial") < runner.index("[IO.File]::Move")
    task = block_after(code, "function Invoke-Lync2faTask")
    assert "Test-Path -LiteralPath $outputPath" in task and "Start-Sleep -Milliseconds 200" not in task
    for name, body in (("client.virtual_smartcard", "$CreateCard ="), ("client.enrollment", "$EnrollAsUser =")):
        text = block_after(code_of(name), body)
        assert "$OutputPath" not in text and text.rstrip().endswith("return $out")   # only the runner writes
        assert syntax_errors(run_ps1(name, body)) == []


def test_native_commands_cannot_turn_stderr_into_a_terminating_error():
    helper = block_after(code_of("client.rollback"), "function Invoke-Lync2faNative")
    assert helper.index("$ErrorActionPreference = 'Continue'") < helper.index("& $FilePath @ArgumentList 2>&1") \
        < helper.index("code = $LASTEXITCODE")
    assert re.search(r"finally \{\s*\$ErrorActionPreference = \$previous", helper)
    for name in sorted(PARAMS):
        code = code_of(name)
        outside = code.replace(block_after(code, "function Invoke-Lync2faNative"), "")
        assert "2>&1" not in outside, name
        assert not re.search(r"&\s*tpmvscmgr", outside), name     # always through the helper
    assert "if ($destroyed.code -ne 0)" in code_of("client.rollback")
    # the SYSTEM task has the helper too
    assert "function Invoke-Lync2faNative {" in run_ps1("client.virtual_smartcard", "$CreateCard =")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_list_returning_functions_are_never_piped_or_wrapped_directly(name):
    """`return , $list` hands the list over as one object: @(F) counts 1 and `F | ...` sees the
    whole (maybe empty) list as a single $_. Call sites must assign it or parenthesise it."""
    code = code_of(name)
    listers = set(re.findall(r"function ([\w-]+) \{(?:(?!\nfunction ).)*?return , \$", code, re.S))
    assert {"Get-Lync2faCards"} <= listers or "Get-Lync2faCards" not in code
    for function in listers:
        for call in re.finditer(re.escape(function) + r"\b(?! \{)", code):
            before, line_end = code[:call.start()], code.index("\n", call.start())
            after = code[call.end():line_end]
            assert not before.endswith("@("), f"{name}: @({function} ...) counts one"
            assert not re.match(r"[^|()]*\|", after), f"{name}: {function} ... | pipes the list as one object"


def test_verify_compares_the_issuer_with_the_certificate_the_ca_hands_out():
    code = code_of("client.verify")
    assert "New-Object -ComObject 'CertificateAuthority.Request'" in code
    assert "$request.GetCACertificate(0, $Config, 1)" in code
    assert "$chain.ChainElements[1].Certificate" in code
    assert "($issuer.Thumbprint -eq $caCertificate.Thumbprint)" in code
    assert "SimpleName" not in code and "-CaName" not in code   # no match by name
