"""PS008: a native program's stderr redirected while the session's $ErrorActionPreference 'Stop' holds.
Windows PowerShell 5.1 turns the first stderr line into a terminating NativeCommandError before the
exit code is read (PowerShell/PowerShell#3996); lync2fa's library must set 'Continue' around the call."""

from __future__ import annotations

from pathlib import Path

from lync2fa.pscheck import check_files, check_text

ROOT = Path(__file__).resolve().parent.parent

# core/ps/Lync2fa.Host.ps1 before the fix: 2>&1 under the session's 'Stop'.
LEGACY_NATIVE = """
function Invoke-Lync2faNative {
    param([hashtable]$Operation)
    $arguments = [string[]]@($Operation['args'])
    $output = & ([string]$Operation['program']) @arguments 2>&1 | Out-String
    $code = $LASTEXITCODE
    return @{ exit_code = $code; output = $output.Trim() }
}
"""
# core/ps/Lync2fa.SmartCard.ps1 Invoke-Lync2faCardTool: 'Continue' first, restored in finally.
CARD_TOOL = """
function Invoke-Lync2faCardTool {
    param([string[]]$Arguments)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $lines = @(& tpmvscmgr.exe @Arguments 2>&1 | ForEach-Object { [string]$_ })
        return @{ code = $LASTEXITCODE; text = ($lines -join "`n").Trim() }
    }
    finally {
        $ErrorActionPreference = $previous
    }
}
"""


def ps008(text: str) -> list:
    return [f for f in check_text(text, "seed.ps1") if f.rule == "PS008"]


def test_legacy_invoke_native_is_flagged_at_its_redirection():
    found = ps008(LEGACY_NATIVE)
    assert [(f.line, f.col) for f in found] == [(5, 60)]
    assert "NativeCommandError" in found[0].message and "'Continue'" in found[0].message


def test_card_tool_that_sets_continue_first_passes():
    assert ps008(CARD_TOOL) == []
    assert ps008(CARD_TOOL.replace("'Continue'", "'SilentlyContinue'")) == []


def test_the_library_passes():
    assert [str(f) for f in check_files(sorted((ROOT / "core" / "ps").glob("*.ps1"))) if f.rule == "PS008"] == []


def test_continue_set_then_restored_before_the_call_is_flagged():
    restored = CARD_TOOL.replace("    try {\n", "    $ErrorActionPreference = $previous\n    try {\n", 1)
    found = ps008(restored)
    assert len(found) == 1 and "last set to $previous" in found[0].message


def test_stop_set_explicitly_is_flagged():
    assert ps008(CARD_TOOL.replace("'Continue'", "'Stop'"))


def test_continue_in_another_function_does_not_count():
    text = (
        "function Set-Quiet {\n    $ErrorActionPreference = 'Continue'\n}\n"
        "function Invoke-Pulse {\n    Set-Quiet\n    $o = & certutil.exe -pulse 2>&1\n    $c = $LASTEXITCODE\n}\n"
    )
    assert [f.line for f in ps008(text)] == [6]


def test_every_stderr_redirection_counts_but_not_stdout_or_cmdlets():
    for redirect in ("2>&1", "2>$null", "2> err.txt", "*>&1", "*>$null"):
        assert ps008(f"certutil -pulse {redirect}\n$c = $LASTEXITCODE"), redirect
    assert ps008("certutil -pulse > out.txt\n$c = $LASTEXITCODE") == []
    assert ps008("certutil -pulse\n$c = $LASTEXITCODE") == []
    assert ps008("Get-Item -Path x 2>&1") == []  # a cmdlet's errors follow -ErrorAction, not this rule


def test_suppression_comment_silences_it():
    text = "# pscheck: ignore PS008 (stderr is empty by contract)\ncertutil -pulse 2>&1\n$c = $LASTEXITCODE"
    assert ps008(text) == []
