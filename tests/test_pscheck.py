"""Static checks over every PowerShell file (issue 7), and the seeded defects they must catch. What
a host is sent is the primitive library plus data (tests/test_seam_lab.py checks the assembled
session loop and host script too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import powershell_syntax
import pytest

from lync2fa.pscheck import RULES, check_files, check_text, syntax_errors

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".venvs", "build", "dist", ".git", "node_modules", ".pytest_cache"}
PS1_FILES = sorted(
    p for pattern in ("*.ps1", "*.psm1") for p in ROOT.rglob(pattern) if not SKIP_DIRS & set(p.relative_to(ROOT).parts)
)


def rules(text: str, **kw) -> list[str]:
    return [f.rule for f in check_text(text, "seed.ps1", **kw)]


def only(text: str, rule: str):
    found = [f for f in check_text(text, "seed.ps1") if f.rule == rule]
    assert found, f"{rule} not reported for:\n{text}\n{check_text(text, 'seed.ps1')}"
    return found


# ---- every PowerShell file in the repository -----------------------------------------------------


def test_core_ps_library_is_checked_as_it_appears():
    assert all(p.suffix in (".ps1", ".psm1") for p in PS1_FILES)
    assert {p for p in PS1_FILES if p.parent == ROOT / "core" / "ps"} == set((ROOT / "core" / "ps").glob("*.ps1"))


@pytest.mark.skipif(not PS1_FILES, reason="no *.ps1 file in the repository yet")
def test_every_ps1_file_passes_the_static_checks():
    findings = check_files(PS1_FILES)
    assert [str(f) for f in findings] == []


# ---- the defects of issue 7 that a static rule reproduces ----------------------------------------


def test_defect1_script_scope_read():
    # core/scripts/lync2fa_base.ps1.j2 as of issue 7: top-level $Result, $script:Result in a function
    legacy = """
$Result = [ordered]@{ warnings = @() }
function Add-Lync2faWarning {
    param([string]$Message)
    $script:Result.warnings += $Message
}
"""
    found = only(legacy, "PS004")
    assert (found[0].line, found[0].col) == (5, 5)
    assert "$script:Result" in found[0].message and "ScriptBlock" in found[0].message
    fixed = legacy.replace("$Result = [ordered]", "$script:Result = [ordered]")
    assert "PS004" not in rules(fixed)
    assert "PS004" in rules("function f { $global:Lync2faState.x }")
    assert "PS004" not in rules(
        "Set-Variable -Name Lync2faState -Value 1 -Scope Global\nfunction f { $global:Lync2faState }"
    )
    assert "PS004" not in rules("function f { $global:LASTEXITCODE; $script:MyInvocation }")
    # compound assignment reads first: it does not define the variable
    assert "PS004" in rules("function f { $script:Count += 1 }")


def test_defect10_com_hresult_unwrapped():
    legacy = """
try { $enroll.InstallResponse(0, $response, 1, '') }
catch { if ($_.Exception.HResult -eq -2146434962) { $wrongPin = $true } }
"""
    found = only(legacy, "PS007")
    assert found[0].line == 3 and "GetBaseException" in found[0].message
    assert "PS007" not in rules(legacy.replace(".Exception.HResult", ".Exception.GetBaseException().HResult"))
    assert "PS007" not in rules(legacy.replace(".Exception.HResult", ".Exception.InnerException.HResult"))


def test_seeded_tpmvscmgr_pin_prompt():
    # a console that asks for a PIN cannot be answered from a task or a WinRM session
    assert "PS005" in rules(
        "& tpmvscmgr.exe create /name Lync2fa /AdminKey RANDOM /PIN PROMPT /generate\n"
        "if ($LASTEXITCODE -ne 0) { throw 'x' }"
    )
    assert "PS005" in rules("$a = @('create', '/name', 'x', '/pin', 'prompt')")


# ---- seeded failures: each rule fails on what it must catch ---------------------------------------


def test_seeded_misspelt_parameter():
    found = only("Add-CATemplate -Nmae x -Force", "PS002")
    assert (found[0].line, found[0].col) == (1, 16)
    assert "A parameter cannot be found that matches parameter name 'Nmae'." in found[0].message
    assert rules("Add-CATemplate -Name x -Force") == []
    assert rules("add-catemplate -na x -fo") == []  # case and prefixes bind


def test_seeded_ambiguous_parameter_prefix():
    found = only("Get-Item -Path x -e Stop", "PS002")
    assert "is ambiguous. Possible matches include:" in found[0].message


def test_seeded_ps7_only_parameter():
    found = only("$o = $text | ConvertFrom-Json -AsHashtable", "PS003")
    assert "ConvertFrom-Json -AsHashtable exists only in PowerShell 7" in found[0].message
    assert "PS002" not in rules("$o = $text | ConvertFrom-Json -AsHashtable")  # the specific rule only
    assert "PS003" in rules("$o = ConvertFrom-Json -InputObject $t -Depth 10")
    assert "PS003" in rules("1..3 | ForEach-Object -Parallel { $_ }")
    assert "PS003" in rules("Start-Process -FilePath x.exe -WhatIf")


def test_seeded_ps7_only_syntax_and_cmdlets():
    for text in (
        "Get-Item x && Get-Item y",
        "Get-Item x || Get-Item y",
        "$a = $b ?? 3",
        "$a = $x ? 1 : 2",
        "#requires -Version 7.2\nGet-Item x",
        "#Requires -PSEdition Core",
        "Get-Error",
        "$PSStyle.Reset",
        "function f {\n  process { }\n  clean { 'x' }\n}",
    ):
        assert "PS003" in rules(text), text
    assert "PS003" not in rules("#requires -Version 5.1\nusing namespace System.Text\nGet-Item x")


def test_seeded_script_scope_read():
    assert rules("$Items = @()\nfunction f { $script:Items.Count }") == ["PS004"]


def test_seeded_read_host_and_other_prompts():
    assert "PS005" in rules("$pin = Read-Host -Prompt 'PIN'")
    assert "PS005" in rules("$c = Get-Credential")
    assert "PS005" not in rules("$c = Get-Credential -Credential $existing")
    assert "PS005" in rules("$i = $Host.UI.PromptForChoice('t', 'm', $choices, 0)")
    assert "PS005" in rules("$l = $Host.UI.ReadLineAsSecureString()")


def test_seeded_install_without_force_prompts():
    found = only("Install-AdcsCertificationAuthority -CAType EnterpriseRootCA", "PS005")
    assert "pass -Force" in found[0].message
    assert rules("Install-AdcsCertificationAuthority -CAType EnterpriseRootCA -Force") == []
    assert rules("Remove-CATemplate -Name x -Confirm:$false") == []
    assert "PS005" in rules("Remove-CATemplate -Name x -Confirm:$true")
    assert "pass -Confirm:$false" in only("Install-WindowsFeature -Name ADCS-Cert-Authority", "PS005")[0].message
    assert rules("Install-WindowsFeature -Name ADCS-Cert-Authority -WhatIf") == []


def test_seeded_unchecked_native_exit_code():
    found = only("& tpmvscmgr.exe create /name x /AdminKey RANDOM /generate", "PS006")
    assert "$LASTEXITCODE" in found[0].message
    assert "PS006" in rules("certutil -pulse | Out-Null")
    checked = "$out = & tpmvscmgr.exe destroy /instance $id\n$code = $LASTEXITCODE"
    assert rules(checked) == []
    late = "certutil.exe -pulse\n$a = 1\n$b = 2\n$c = 3\nif ($LASTEXITCODE) { throw 'x' }"
    assert "PS006" in rules(late)
    in_block = "if ($x) {\n  & certreq.exe -accept a.cer\n  if ($LASTEXITCODE -ne 0) { throw 'x' }\n}"
    assert rules(in_block) == []
    in_expression = "$lines = @(& tpmvscmgr.exe @a 2>&1 | ForEach-Object { [string]$_ })\nreturn $LASTEXITCODE"
    assert "PS006" not in rules(in_expression)


def test_seeded_unknown_cmdlet(tmp_path):
    found = only("Get-CertificationAuthority -Name x", "PS001")
    assert "PSPKI" in found[0].message
    assert "PS001" in rules("Add-CATemplates -Name x -Force")
    a = tmp_path / "a.ps1"
    b = tmp_path / "b.ps1"
    a.write_text("function Get-Lync2faThing {\n    param([string]$Name)\n    $Name\n}\n")
    b.write_text("Get-Lync2faThing -Name x\nGet-Lync2faOther\n")
    findings = check_files([a, b])
    assert [(Path(f.path).name, f.line, f.rule) for f in findings] == [("b.ps1", 2, "PS001")]


def test_splats_are_left_to_the_lab():
    assert rules("$p = @{ Name = 'x'; Nmae = 'y' }\nAdd-CATemplate @p") == []
    assert rules("Remove-CATemplate @p") == []


def test_suppression_comment_on_the_line_or_above():
    text = "# pscheck: ignore PS006\ncertutil -pulse\ncertutil -pulse  # pscheck: ignore PS006\ncertutil -pulse"
    assert [(f.line, f.rule) for f in check_text(text, "x.ps1")] == [(4, "PS006")]


def test_syntax_error_is_reported():
    assert "PS000" in rules("if ($a) { Write-Output 'x' ")


def test_every_rule_has_an_id_and_a_message():
    assert sorted(RULES) == [f"PS00{i}" for i in range(9)]


def test_tests_syntax_helper_is_the_products():
    assert powershell_syntax.syntax_errors is syntax_errors


def test_cli_prints_file_line_col_rule_message(tmp_path):
    bad = tmp_path / "bad.ps1"
    bad.write_text("Add-CATemplate -Nmae x -Force\n")
    good = tmp_path / "good.ps1"
    good.write_text("Add-CATemplate -Name x -Force\n")
    done = subprocess.run(
        [sys.executable, "-m", "lync2fa.pscheck", str(bad), str(good)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"{bad}:1:16 PS002 ")
    done = subprocess.run(
        [sys.executable, "-m", "lync2fa.pscheck", str(good)], check=False, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, "")
