"""Each setting written once (issue 8): no desired-state literal of a tier appears both in its
Python and in the PowerShell (or C#) a host is sent. The primitive library is generic: what it
shares with the Python is vocabulary (the operation and fact kinds, the keys of the data it
returns, registry value types, Windows' own names), listed below with why; anything else found in
both is a setting written twice.

Python here is every tier (plugins/) and the engine (core/), but not the lab (it models Windows,
so it names what Windows names) nor the modules that read or write PowerShell text itself. Numbers
count too: a named constant or a parameter's default, bound or choice of 16 or more (0, 1, 2 are
everywhere), in decimal or hex."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The contract between a decision and the library, not settings: named primitives' names and
# arguments, keys of fact values and operation results, registry and attribute value types.
VOCABULARY = {
    # registry value types (hostops.REGISTRY_TYPES) and AD attribute syntaxes (hostops.typed)
    "String",
    "ExpandString",
    "DWord",
    "QWord",
    "MultiString",
    "Binary",
    "string",
    "strings",
    "bytes",
    # the C# helper's data member and the Windows type names the library converts
    "Blob",
    "Location",
    "Name",
    "Value",
    "None",
    "Allow",
    "Read",
    "Write",
    "FullControl",
    "Root",
    # text encodings
    "utf-8",
    "utf-8-sig",
    # powershell.exe and its switches (the transport starts it, so does a scheduled job)
    "powershell.exe",
    "-NoProfile",
    "-NonInteractive",
    "-EncodedCommand",
    # Windows' well-known accounts and logon types
    "SYSTEM",
    "Administrators",
    "Interactive",
    # the directory primitives' contract: the DN placeholders they resolve, the DN attribute
    "{configurationNamingContext}",
    "{defaultNamingContext}",
    "distinguishedName",
}
# What reads or writes PowerShell text itself: its literals are PowerShell, not settings.
POWERSHELL_TOOLING = {"pscheck.py", "catalog.py", "hostscript.py"}
GENERATED = {"modules", "action", "doc_fragments", "plugin_utils", "module_utils"}
VERB_NOUN = re.compile(r"[A-Z][A-Za-z]+-[A-Za-z]+")  # a cmdlet's name: the API both sides call
MIN_NUMBER = 16
# Not inside a longer word, variable ($Name), switch (-Name) or dotted name.
BEFORE, AFTER = r"(?<![\w$-])", r"(?![\w-])"


def _prose(value: str) -> bool:
    """A fragment of a message (words and punctuation around them), not a value."""
    return value != value.strip() or bool(re.fullmatch(r"[\W_]*[a-z ]+[\W_]*", value)) and " " in value


def _strip_comments(text: str, csharp: bool = False) -> str:
    if csharp:
        return re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"<#.*?#>", "", text, flags=re.S)
    return re.sub(r"(?m)(^|\s)#[^\n]*", r"\1", text)


def _host_text() -> str:
    folder = ROOT / "core" / "ps"
    return "\n".join(
        [
            *(_strip_comments(p.read_text()) for p in sorted(folder.glob("*.ps1"))),
            *(_strip_comments(p.read_text(), csharp=True) for p in sorted(folder.glob("*.cs"))),
        ]
    )


def _python_files() -> list[Path]:
    tiers = [p for p in (ROOT / "plugins").rglob("*.py") if not GENERATED & set(p.relative_to(ROOT / "plugins").parts)]
    engine = [
        p
        for p in (ROOT / "core").rglob("*.py")
        if p.relative_to(ROOT / "core").parts[0] != "lab" and p.name not in POWERSHELL_TOOLING
    ]
    return tiers + engine


def _number(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _number(node.operand)
        return None if value is None else -value
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


@functools.cache
def _values(path: Path) -> tuple[frozenset[str], frozenset[int]]:
    """A file's strings (docstrings aside), and the numbers it sets: module constants
    (``NAME = 2048``, ``A, B = 32, 2``) and the default, bounds and choices of each ``Param``, of
    magnitude MIN_NUMBER or more."""
    tree = ast.parse(path.read_text())
    docstrings, strings, numbers = set(), set(), []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            numbers += node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Param":
            for keyword in node.keywords:
                if keyword.arg in ("default", "minimum", "maximum", "choices"):
                    value = keyword.value
                    numbers += value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
    return (
        frozenset(n.value for n in strings if id(n) not in docstrings),
        frozenset(n for n in map(_number, numbers) if n is not None and abs(n) >= MIN_NUMBER),
    )


def _setting_like(value: str) -> bool:
    """A value, name or path, not a bare key of the data contract (lowercase identifiers)."""
    return (
        len(value.strip()) >= 4
        and not re.fullmatch(r"[a-z][a-z0-9_]*", value)
        and value not in VOCABULARY
        and not VERB_NOUN.fullmatch(value)
        and not _prose(value)
    )


def _written_in(host: str, value: str | int) -> bool:
    if isinstance(value, str):
        return value in host and bool(re.search(BEFORE + re.escape(value) + AFTER, host))
    spellings = [re.escape(str(value))] + ([f"0x0*{value:x}"] if value > 0 else [])
    return (str(value) in host or f"{value:x}" in host.lower()) and any(
        re.search(r"(?<![\w$.-])" + s + r"(?![\w.])", host, flags=re.I) for s in spellings
    )


def _written_twice(host: str) -> dict:
    twice: dict = {}
    for path in _python_files():
        strings, numbers = _values(path)
        for value in [*filter(_setting_like, strings), *numbers]:
            if _written_in(host, value):
                twice.setdefault(value, []).append(str(path.relative_to(ROOT)))
    return twice


def test_no_desired_state_literal_is_written_both_in_python_and_in_powershell():
    files = _python_files()
    assert len(files) > 40 and ROOT / "core" / "adcs.py" in files and ROOT / "plugins" / "client" / "decide.py" in files
    assert not [p for p in files if "lab" in p.relative_to(ROOT).parts]
    twice = _written_twice(_host_text())
    assert twice == {}, f"written in Python and in the host's PowerShell: {twice}"


def test_the_check_would_see_a_setting_copied_into_the_library():
    host = _host_text()
    copied = host + "\n$wanted = 'Lync 2FA Users'\n$key.Length = 2048\n$mask = 0x20\n"
    twice = _written_twice(copied)
    assert {"Lync 2FA Users", 2048, 32} <= set(twice), twice
    assert "plugins/templates/__init__.py" in twice[2048] and "core/adcs.py" in twice[32]
    assert _setting_like("Lync 2FA Users") and not _setting_like("exists")
    # a PowerShell variable or switch of the same name is not a copy; part of a longer number is not either
    assert not _written_in("$User = 1", "User") and not _written_in("-Length 2", 2048)
    assert not _written_in("S-1-5-32-544", 32) and not _written_in("20480", 2048)


def test_office_profile_folders_are_no_longer_exempt():
    """'\\Lync\\' was vocabulary while only a record id used it; it is a path in the PowerShell too."""
    assert _setting_like("\\Lync\\")
    assert _written_in("$p = 'AppData\\Local\\Microsoft\\Office\\' + $v + '\\Lync\\' + $f", "\\Lync\\")


# -- numbers only the library writes ---------------------------------------------------------------
# A number wider than 16 bits (an HResult, a mask, a size) in the primitive library is a decision,
# and comes from Python as an argument, unless it is one of these Windows constants the library
# compares with. (The C# files are Win32 bindings: their numbers are the API's and are not scanned.
# English sentences are not scanned either: the library's own error texts say what failed and are
# not told apart from a decision's message by any rule precise enough to test.)
WINDOWS_CONSTANTS = {
    # FileSystemRights that let an account write, delete or re-permission (Assert-Lync2faAdminFolder):
    # the library's own guard on the folder a secret passes through, not a tier's setting.
    0x500D0156,
    # SCHED_S_TASK_HAS_NOT_RUN: Get-ScheduledTaskInfo's LastTaskResult before the task first ran.
    0x41303,
}
WIDE = 0xFFFF
_NUMBER = re.compile(r"(?<![\w$.\-\\])(-?)(0x[0-9a-fA-F]+|\d+)(?![\w.])")


def _wide_numbers(powershell: str) -> set[int]:
    """Integer literals of more than 16 bits in PowerShell text (comments and help stripped)."""
    found = set()
    for match in _NUMBER.finditer(_strip_comments(powershell)):
        value = int(match.group(2), 0) * (-1 if match.group(1) else 1)
        if abs(value) > WIDE:
            found.add(value)
    return found


def test_no_wide_number_lives_only_in_the_library():
    library = "\n".join(p.read_text() for p in sorted((ROOT / "core" / "ps").glob("*.ps1")))
    assert _wide_numbers(library) - WINDOWS_CONSTANTS == set()


def test_the_number_check_sees_an_hresult_the_decision_should_pass():
    # core/ps/Lync2fa.UserTask.ps1 before the fix: CERT_E_UNTRUSTEDROOT written in the job itself
    legacy = "return @{ ok = $false; hresult = -2146762487; msg = 'x' }"
    assert _wide_numbers(legacy) == {-2146762487}
    assert _wide_numbers("$mask = 0x20000 # 0x40000 in a comment\n<# 0x50000 #>") == {0x20000}
    assert (
        _wide_numbers("$sid = 'S-1-5-21-3623811015-3361044348-30300820-1013'; $n = 65535; $g = [guid]'0B5E2D1C-1111'")
        == set()
    )
