"""Each setting written once (issue 8): no desired-state literal of a tier appears both in its
Python and in the PowerShell (or C#) a host is sent. The primitive library is generic: what it
shares with the tiers is vocabulary (the operation and fact kinds, the keys of the data it
returns, registry value types), listed below with why; anything else found in both is a setting
written twice."""

from __future__ import annotations

import ast
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
    # text encodings, and a record id's separator that happens to be Office's folder name
    "utf-8",
    "\\Lync\\",
}
VERB_NOUN = re.compile(r"[A-Z][a-z]+-[A-Za-z]+")  # a cmdlet's name: the API both sides call


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


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def _setting_like(value: str) -> bool:
    """A value, name or path, not a bare key of the data contract (lowercase identifiers)."""
    return (
        len(value.strip()) >= 4
        and not re.fullmatch(r"[a-z][a-z0-9_]*", value)
        and value not in VOCABULARY
        and not VERB_NOUN.fullmatch(value)
        and not _prose(value)
    )


def test_no_desired_state_literal_is_written_both_in_python_and_in_powershell():
    host = _host_text()
    tier_files = [
        p
        for p in (ROOT / "plugins").rglob("*.py")
        if not {"modules", "action", "doc_fragments", "plugin_utils", "module_utils"}
        & set(p.relative_to(ROOT / "plugins").parts)
    ]
    assert len(tier_files) > 10
    twice = {}
    for path in tier_files:
        for value in filter(_setting_like, _literals(path)):
            if re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", host):
                twice.setdefault(value, []).append(str(path.relative_to(ROOT)))
    assert twice == {}, f"written in Python and in the host's PowerShell: {twice}"


def test_the_check_would_see_a_setting_copied_into_the_library():
    host = _host_text() + "\n$wanted = 'Lync 2FA Users'\n"
    assert re.search(r"(?<![\w-])" + re.escape("Lync 2FA Users") + r"(?![\w-])", host)
    assert "Lync 2FA Users" in _literals(ROOT / "plugins" / "ca" / "__init__.py")
    assert _setting_like("Lync 2FA Users") and not _setting_like("exists")
