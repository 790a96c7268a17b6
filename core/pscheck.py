"""Static checks over PowerShell text that know Windows PowerShell 5.1 (issue 7).

The lab runs what a script *means*; these checks look at what it *says*, against the documented
cmdlet signatures in ``lync2fa/data/cmdlets.json`` (see ``lync2fa.catalog``). Parsing is
tree-sitter-powershell (a PowerShell 5.1-level grammar). Rules:

PS000  syntax error (the parser found an ERROR / MISSING node that no rule below explains)
PS001  unknown cmdlet: a Verb-Noun command that is neither in the catalog nor a function defined
       in the files checked together
PS002  unknown parameter: a ``-Name`` that PowerShell 5.1's binder would refuse for that cmdlet
       (not found, or an ambiguous prefix); splats are left to the lab's runtime check
PS003  needs PowerShell 7: a 7.x-only parameter (``ConvertFrom-Json -AsHashtable``/``-Depth``,
       ``ForEach-Object -Parallel``), cmdlet (``Get-Error``...), operator (``&&``, ``||``, ``??``,
       ``?.``, ternary), ``clean`` block, ``$PSStyle``, ``#requires -Version 6+`` / ``-PSEdition Core``
PS004  ``$script:X`` / ``$global:X`` read where the file never assigns ``$script:X =`` /
       ``$global:X =`` (issue 7 defect 1, see ``_scope_message``)
PS005  prompts in a non-interactive session: Read-Host, Get-Credential without -Credential,
       ``$Host.UI.Prompt*``/``ReadLine*``, ``/PIN PROMPT`` (tpmvscmgr), and Install-/Uninstall-/Remove-
       cmdlets that support ShouldProcess called without -Force or -Confirm:$false
PS006  native program's exit code unchecked: no ``$LASTEXITCODE`` in the statement or the next
       three statements of the same block
PS007  ``.Exception.HResult``: COM errors arrive wrapped in MethodInvocationException whose HResult
       is the wrapper's (0x80131509, COR_E_INVALIDOPERATION), not the COM code (issue 7 defect 10)
PS008  a native program's stderr redirected (``2>&1``, ``2>``, ``*>``) where the function (or file) has
       not set ``$ErrorActionPreference`` to 'Continue' / 'SilentlyContinue' before it: under the
       session's 'Stop', Windows PowerShell 5.1 ends the call at the first stderr line (see
       ``_stderr_message``)

A line (or the line above it) holding ``# pscheck: ignore PS00N[,PS00M]`` silences those rules there.

CLI: ``python -m lync2fa.pscheck FILE...`` prints ``file:line:col rule message``; exit 1 on findings.
Files are ``*.ps1`` / ``*.psm1`` (lync2fa sends only its primitive library and data).
See docs/static-checks.md for what these checks cannot see.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node

from .catalog import Catalog, CmdletError

RULES = {
    "PS000": "syntax error",
    "PS001": "unknown cmdlet",
    "PS002": "unknown parameter",
    "PS003": "needs PowerShell 7",
    "PS004": "scope-qualified variable never assigned at that scope",
    "PS005": "prompts in a non-interactive session",
    "PS006": "native exit code unchecked",
    "PS007": "COM HResult read through the wrapper",
    "PS008": "native stderr redirected under 'Stop'",
}

# PowerShell-Docs reference/7.x has these cmdlets and reference/5.1 does not (first version).
PS7_ONLY_CMDLETS = {
    "get-error": "7.0",
    "test-json": "6.1",
    "join-string": "6.2",
    "get-uptime": "6.0",
    "remove-alias": "6.0",
    "remove-service": "6.0",
    "convertfrom-markdown": "6.1",
    "show-markdown": "6.1",
    "get-markdownoption": "6.1",
    "set-markdownoption": "6.1",
    "get-experimentalfeature": "6.2",
    "enable-experimentalfeature": "6.2",
    "disable-experimentalfeature": "6.2",
    "get-pssubsystem": "7.3",
    "get-securerandom": "7.4",
    "convertto-clixml": "7.5",
    "convertfrom-clixml": "7.5",
}
# about_Automatic_Variables / about_Preference_Variables (5.1): exist in the global scope without
# the script assigning them.
AUTOMATIC_VARIABLES = {
    v.lower()
    for v in (
        "LASTEXITCODE",
        "Error",
        "ErrorActionPreference",
        "WarningPreference",
        "VerbosePreference",
        "DebugPreference",
        "ProgressPreference",
        "InformationPreference",
        "ConfirmPreference",
        "WhatIfPreference",
        "Host",
        "PSVersionTable",
        "PSHOME",
        "HOME",
        "PID",
        "PWD",
        "ShellId",
        "ExecutionContext",
        "MyInvocation",
        "PSScriptRoot",
        "PSCommandPath",
        "args",
        "input",
        "true",
        "false",
        "null",
        "OFS",
        "PSDefaultParameterValues",
        "PSSessionConfigurationName",
        "PSSessionApplicationName",
        "PSSessionOption",
        "PSModuleAutoLoadingPreference",
        "MaximumHistoryCount",
        "PSEmailServer",
        "FormatEnumerationLimit",
        "StackTrace",
        "NestedPromptLevel",
        "PSCulture",
        "PSUICulture",
        "ConsoleFileName",
        "PSSenderInfo",
        "Matches",
        "PSEdition",
        "IsCoreCLR",
        "ErrorView",
        "LogCommandHealthEvent",
        "LogEngineHealthEvent",
        "PSItem",
        "Profile",
        "EnabledExperimentalFeatures",
    )
}
NEXT_STATEMENTS = 3
_VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z][A-Za-z0-9]*$")
_IGNORE = re.compile(r"pscheck:\s*ignore\s+((?:PS\d{3}\s*,?\s*)+)", re.IGNORECASE)
_STDERR_REDIRECT = re.compile(r"^[2*]>")
_QUIET_PREFERENCES = {"continue", "silentlycontinue"}
_FUNCTIONS = ("function_statement", "filter_statement")
_PIN_PROMPT = re.compile(r"""['"]?/(pin|puk|adminkey)['"]?\s*[,\s]\s*['"]?prompt\b""", re.IGNORECASE)
_WRAPPERS = {
    "unary_expression",
    "array_literal_expression",
    "range_expression",
    "format_expression",
    "multiplicative_expression",
    "additive_expression",
    "comparison_expression",
    "bitwise_expression",
    "logical_expression",
    "expression_with_unary_operator",
    "cast_expression",
    "left_assignment_expression",
}


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    col: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col} {self.rule} {self.message}"


# ---- parsing --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def parser():
    """One tree-sitter parser for PowerShell (tree-sitter and tree-sitter-powershell: the test extra)."""
    try:
        import tree_sitter
        import tree_sitter_powershell
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "lync2fa.pscheck needs tree-sitter and tree-sitter-powershell (the test extra: pip install -e '.[test]' in the checkout)"
        ) from exc
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse(text: str):
    return parser().parse(text.encode("utf-8"))


def syntax_errors(script: str) -> list[str]:
    """ERROR / MISSING nodes as 'line N: text' (empty when the script parses cleanly)."""
    tree = parse(script)
    problems, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            kind = "missing " + node.type if node.is_missing else "error"
            text = node.text.decode("utf-8", "replace").splitlines()[0][:80] if node.text else ""
            problems.append(f"line {node.start_point[0] + 1}: {kind}: {text}")
        elif node.has_error:
            stack.extend(node.children)
    return problems


def _walk(node) -> Iterator:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def _string_value(node) -> str | None:
    """The value of a literal argument (bare word or a string without variables), else None."""
    t = node.type
    if t == "generic_token":
        return _text(node)
    inner = node
    while inner is not None and inner.type in _WRAPPERS | {"string_literal"} and inner.child_count == 1:
        inner = inner.children[0]
    if inner is None:
        return None
    raw = _text(inner)
    if inner.type == "verbatim_string_characters" and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if inner.type == "expandable_string_literal" and "$" not in raw and "`" not in raw and len(raw) >= 2:
        return raw[1:-1]
    if inner.type == "generic_token":
        return raw
    return None


def _variable_name(node) -> tuple[str, str] | None:
    """variable node -> (scope, name) e.g. ('script', 'Result'); scope '' when unqualified."""
    raw = _text(node)
    if not raw or raw[0] not in "$@":
        return None
    body = raw[1:]
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    scope, sep, name = body.partition(":")
    if not sep:
        return "", body
    return scope.lower(), name


@dataclass
class _Command:
    node: Node
    name: str | None  # None when the command name is computed
    name_node: Node | None
    params: list  # [(name without '-', node, colon value node or None)]
    splatted: bool
    args: list  # literal values of the elements, in order ('' when not literal)


def _command(node) -> _Command:
    name_node = None
    name = None
    elements = []
    for child in node.children:
        if child.type == "command_name":
            name_node, name = child, _text(child)
        elif child.type == "command_name_expr":
            name_node = child
            inner = child.children[0] if child.children else None
            if inner is not None and inner.type == "command_name":
                name = _text(inner)
            elif inner is not None:
                name = _string_value(inner)
        elif child.type == "command_elements":
            elements = list(child.children)
    params, args, splatted = [], [], False
    for i, el in enumerate(elements):
        if el.type == "command_argument_sep":
            continue
        if el.type == "command_parameter":
            pname = _text(el)
            colon = None
            if (
                i + 1 < len(elements)
                and elements[i + 1].type == "command_argument_sep"
                and _text(elements[i + 1]).strip() == ":"
            ):
                colon = next((e for e in elements[i + 2 :] if e.type != "command_argument_sep"), None)
            params.append((pname.lstrip("-").rstrip(":"), el, colon))
            args.append(pname)
            continue
        for sub in _walk(el):
            if sub.type == "variable" and _text(sub).startswith("@"):
                splatted = True
                break
        args.append(_string_value(el) or "")
    return _Command(node, name, name_node, params, splatted, args)


# ---- the checker ----------------------------------------------------------------------------------


class _Checker:
    def __init__(self, text: str, path: str, functions: set[str], catalog: Catalog):
        self.text = text
        self.path = path
        self.functions = {f.lower() for f in functions}
        self.cat = catalog
        self.lines = text.split("\n")
        self.findings: list[Finding] = []
        self.tree = parse(text)

    def add(self, node_or_pos, rule: str, message: str) -> None:
        if isinstance(node_or_pos, tuple):
            row, col_bytes = node_or_pos
        else:
            row, col_bytes = node_or_pos.start_point
        line = self.lines[row] if row < len(self.lines) else ""
        col = len(line.encode("utf-8")[:col_bytes].decode("utf-8", "replace")) + 1
        if self._ignored(row, rule):
            return
        self.findings.append(Finding(self.path, row + 1, col, rule, message))

    def _ignored(self, row: int, rule: str) -> bool:
        for r in (row, row - 1):
            if 0 <= r < len(self.lines):
                if r != row and not self.lines[r].lstrip().startswith("#"):
                    continue  # the line above counts only as a comment line
                m = _IGNORE.search(self.lines[r])
                if m and rule.upper() in {x.strip().upper() for x in re.split(r"[,\s]+", m.group(1)) if x}:
                    return True
        return False

    def run(self) -> list[Finding]:
        root = self.tree.root_node
        self.functions |= defined_functions(self.text)
        commands = []
        for node in _walk(root):
            t = node.type
            if t == "command":
                commands.append(_command(node))
            elif t in ("ERROR",) or node.is_missing:
                self._error(node)
            elif t == "pipeline_chain_tail":
                op = _text(node).strip()[:2]
                self.add(
                    node,
                    "PS003",
                    f"'{op}' pipeline chains need PowerShell 7; Windows PowerShell 5.1 "
                    "cannot parse them: use if ($?) { ... } or check $LASTEXITCODE",
                )
            elif t in ("member_access", "invokation_expression"):
                self._member_access(node)
            elif t == "comment":
                self._comment(node)
            elif t == "variable" and _text(node).lower() in ("$psstyle", "${psstyle}"):
                self.add(node, "PS003", "$PSStyle exists only in PowerShell 7.2+")
        for cmd in commands:
            self._cmdlet(cmd)
            self._native(cmd)
            self._native_stderr(cmd)
        self._scopes()
        self._pin_prompt()
        return sorted(set(self.findings))

    # PS000 / PS003 syntax
    def _error(self, node) -> None:
        if node.parent is not None and (node.parent.type == "ERROR"):
            return  # report the outermost error only
        text = _text(node)
        if node.is_missing:
            self.add(node, "PS000", f"syntax error: missing {node.type}")
        elif "?" in text:
            self.add(
                node,
                "PS003",
                f"'{text.strip()[:40]}' does not parse in Windows PowerShell 5.1: the "
                "null-coalescing (??, ??=), null-conditional (?., ?[]) and ternary (? :) "
                "operators need PowerShell 7",
            )
        elif re.search(r"(^|\s)clean\s*$", text, re.IGNORECASE) or re.search(r"\bclean\s*\{", text, re.IGNORECASE):
            self.add(node, "PS003", "a 'clean' block needs PowerShell 7.3")
        else:
            first = text.strip().splitlines()[0][:60] if text.strip() else node.type
            self.add(node, "PS000", f"syntax error near '{first}'")

    # PS003 #requires
    def _comment(self, node) -> None:
        text = _text(node)
        m = re.match(r"#requires\s+(.*)", text, re.IGNORECASE)
        if not m:
            return
        version = re.search(r"-Version\s+(\d+)(?:\.(\d+))?", m.group(1), re.IGNORECASE)
        if version and (int(version.group(1)) > 5 or (int(version.group(1)) == 5 and int(version.group(2) or 0) > 1)):
            self.add(node, "PS003", f"'{text.strip()}' refuses Windows PowerShell 5.1")
        if re.search(r"-PSEdition\s+Core", m.group(1), re.IGNORECASE):
            self.add(node, "PS003", f"'{text.strip()}' refuses Windows PowerShell 5.1 (Desktop edition)")

    # PS001 / PS002 / PS003 / PS005 on cmdlets
    def _cmdlet(self, cmd: _Command) -> None:
        name = cmd.name
        if not name:
            return
        low = name.lower()
        if low in PS7_ONLY_CMDLETS:
            self.add(cmd.name_node, "PS003", f"{name} exists only in PowerShell {PS7_ONLY_CMDLETS[low]}+")
            return
        if low == "read-host":
            self.add(
                cmd.name_node,
                "PS005",
                "Read-Host prompts; a WinRM session is non-interactive and fails "
                '("PowerShell is in NonInteractive mode. Read and Prompt functionality '
                'is not available.")',
            )
        if low == "get-credential" and not any(p.lower().startswith("cred") for p, _, _ in cmd.params):
            self.add(
                cmd.name_node,
                "PS005",
                "Get-Credential without -Credential prompts for a user name and "
                "password; a WinRM session cannot answer",
            )
        if not self.cat.has(name):
            if _VERB_NOUN.match(name) and low not in self.functions and low not in ("read-host", "get-credential"):
                hint = (
                    " (a third-party PSPKI function, not Microsoft's)"
                    if name.lower() in {n.lower() for n in self.cat.not_found}
                    else ""
                )
                self.add(
                    cmd.name_node,
                    "PS001",
                    f"{name} is neither a documented cmdlet of the catalog "
                    f"(lync2fa/data/cmdlets.json) nor a function defined in the "
                    f"checked files{hint}",
                )
            return
        canonical = self.cat.canonical(name)
        ps7 = {k.lower(): (k, v) for k, v in self.cat.ps7_only_parameters(canonical).items()}
        ps7["progressaction"] = ("ProgressAction", "7.4, a common parameter")
        ps7["proga"] = ("ProgressAction", "7.4, a common parameter")
        given = {}
        for pname, node, colon in cmd.params:
            if not pname or not pname[0].isalpha():
                continue
            try:
                resolved = self.cat.resolve_parameter(canonical, pname)
                given[resolved] = colon
            except CmdletError as err:
                hit = ps7.get(pname.lower()) or next((v for k, v in ps7.items() if k.startswith(pname.lower())), None)
                if hit:
                    self.add(
                        node,
                        "PS003",
                        f"{canonical} -{hit[0]} exists only in PowerShell 7 ({hit[1]}); "
                        f"Windows PowerShell 5.1 says: {err.message}",
                    )
                else:
                    self.add(node, "PS002", f"{canonical} -{pname}: {err.message}")
        self._should_process(cmd, canonical, given)

    def _should_process(self, cmd: _Command, canonical: str, given: dict) -> None:
        if cmd.splatted or not canonical.lower().startswith(("install-", "uninstall-", "remove-")):
            return
        if not self.cat.supports_should_process(canonical):
            return
        if "Force" in given or "WhatIf" in given:
            return
        if (
            "Confirm" in given
            and given["Confirm"] is not None
            and _text(given["Confirm"]).strip().lower() in ("$false", "0", "$null")
        ):
            return
        has_force = "Force" in self.cat.parameters(canonical)
        fix = "-Force" if has_force else "-Confirm:$false"
        self.add(
            cmd.name_node,
            "PS005",
            f"{canonical} supports ShouldProcess and may ask for confirmation, "
            f"which a non-interactive session cannot answer: pass {fix}",
        )

    # PS005 /PIN PROMPT
    def _pin_prompt(self) -> None:
        comments = {n.start_point[0] for n in _walk(self.tree.root_node) if n.type == "comment"}
        for row, line in enumerate(self.lines):
            m = _PIN_PROMPT.search(line)
            if m and row not in comments and not line.lstrip().startswith("#"):
                self.add(
                    (row, m.start()),
                    "PS005",
                    f"tpmvscmgr /{m.group(1)} PROMPT asks on the console; a WinRM session or a scheduled task has none",
                )

    # PS006
    def _is_native(self, name: str) -> bool:
        base = re.split(r"[\\/]", name)[-1].lower()
        return base.endswith((".exe", ".com")) or self.cat.native_name(base) is not None

    def _native(self, cmd: _Command) -> None:
        name = cmd.name
        if not name or not self._is_native(name):
            return
        statement = _statement_of(cmd.node)
        if statement is None:
            return
        scope = [statement] + _next_statements(statement, NEXT_STATEMENTS)
        for node in scope:
            for sub in _walk(node):
                if sub.type == "variable" and (_variable_name(sub) or ("", ""))[1].lower() == "lastexitcode":
                    return
        self.add(
            cmd.name_node,
            "PS006",
            f"{name}'s exit code is not checked: PowerShell does not stop on a "
            f"failing native program; read $LASTEXITCODE within the next "
            f"{NEXT_STATEMENTS} statements",
        )

    # PS008
    def _native_stderr(self, cmd: _Command) -> None:
        """A native program (or a computed ``& (...)`` command, which may be one) whose stderr is
        redirected, where the last ``$ErrorActionPreference =`` before it in its function (or file)
        is not a literal 'Continue' / 'SilentlyContinue'."""
        if cmd.name is not None and not self._is_native(cmd.name):
            return
        redirect = next((r for r in _stderr_redirections(cmd.node)), None)
        if redirect is None:
            return
        value = _preference_before(cmd.node, self.tree.root_node)
        if value is not None and value.lower() in _QUIET_PREFERENCES:
            return
        what = cmd.name or _text(cmd.name_node).strip() or "a computed command"
        self.add(redirect, "PS008", _stderr_message(what, _text(redirect).strip(), value))

    # PS007 and PS005 $Host.UI prompts
    def _member_access(self, node) -> None:
        children = node.children
        member = next((c for c in reversed(children) if c.type == "member_name"), None)
        if member is None:
            return
        mname = _text(member).lower()
        obj = children[0] if children else None
        if mname == "hresult" and obj is not None and obj.type == "member_access":
            inner = next((c for c in reversed(obj.children) if c.type == "member_name"), None)
            if inner is not None and _text(inner).lower() == "exception":
                self.add(
                    member,
                    "PS007",
                    "COM errors arrive wrapped in MethodInvocationException, whose HResult "
                    "is the wrapper's: read .Exception.GetBaseException().HResult (or "
                    ".Exception.InnerException.HResult)",
                )
        if mname.startswith(("prompt", "readline")) and obj is not None:
            chain = _text(obj).replace(" ", "").lower()
            if chain.endswith(("$host.ui", "$host.ui.rawui")):
                self.add(member, "PS005", f"$Host.UI.{_text(member)} prompts; a WinRM session is non-interactive")

    # PS004
    def _scopes(self) -> None:
        assigned: set[tuple[str, str]] = set()
        reads = []
        for node in _walk(self.tree.root_node):
            if node.type == "variable":
                scoped = _variable_name(node)
                if not scoped or scoped[0] not in ("script", "global"):
                    continue
                key = (scoped[0], scoped[1].lower())
                if _is_plain_assignment_target(node):
                    assigned.add(key)
                else:
                    reads.append((node, scoped))
            elif node.type == "command":
                cmd = _command(node)
                if cmd.name and cmd.name.lower() in ("set-variable", "new-variable"):
                    values = _named_values(cmd)
                    scope = (values.get("scope") or "").lower()
                    if scope in ("script", "global") and values.get("name"):
                        assigned.add((scope, values["name"].lower()))
        for node, (scope, name) in reads:
            if (scope, name.lower()) in assigned or name.lower() in AUTOMATIC_VARIABLES:
                continue
            self.add(node, "PS004", _scope_message(scope, name))


def _scope_message(scope: str, name: str) -> str:
    """Issue 7 defect 1. The bootstrap runs a script as ``& ([ScriptBlock]::Create($text))`` inside a
    ``powershell -EncodedCommand`` session. A script block is not a script file, so its "script scope"
    is the session's, which is the global scope; the script's own top-level variables live in the
    child scope ``&`` created. ``$script:Result`` inside a function then reads the global scope where
    ``$Result`` does not exist, and under ``Set-StrictMode -Version 2.0`` that read throws. Only a
    variable the file itself assigns with the same modifier (``$script:Result = ...``) is sure to
    be there, however the file is run."""
    return (
        f"${scope}:{name} is read but this file never assigns ${scope}:{name} = ...; a top-level "
        f"${name} is a different variable when the script runs as & ([ScriptBlock]::Create(...)) from "
        f"-EncodedCommand (its script scope is the global scope), and under Set-StrictMode the read "
        f"throws (issue 7 defect 1)"
    )


def _stderr_message(what: str, redirect: str, value: str | None) -> str:
    """Windows PowerShell 5.1 wraps each stderr line of a native program in an ErrorRecord when the
    error stream is redirected, and applies $ErrorActionPreference to it: under 'Stop' (the
    session's) the first line is a terminating NativeCommandError, thrown before $LASTEXITCODE or
    the output can be looked at (PowerShell/PowerShell#3996; about_Redirection). PowerShell 7.2 made
    stderr exempt (PR #13361, then $PSNativeCommandUseErrorActionPreference), which Windows Server's
    5.1 does not have."""
    now = "is not set before it in its function" if value is None else f"was last set to {value} before it"
    return (
        f"{what}: stderr redirected ({redirect}) while $ErrorActionPreference {now}: under the session's "
        f"'Stop', Windows PowerShell 5.1 throws a terminating NativeCommandError at the first stderr "
        f"line, before the exit code is read; set $ErrorActionPreference = 'Continue' before the call "
        f"(restore it in finally) and let $LASTEXITCODE decide"
    )


def _stderr_redirections(command) -> Iterator:
    """The redirections of a command's error stream (``2>&1``, ``2>``, ``2>>``, ``*>``). The grammar
    reads ``2>$null`` as a bare word: that counts too."""
    for elements in (c for c in command.children if c.type == "command_elements"):
        for el in elements.children:
            if el.type == "redirection" and el.children and _STDERR_REDIRECT.match(_text(el.children[0])):
                yield el
            elif el.type == "generic_token" and _STDERR_REDIRECT.match(_text(el)):
                yield el


def _function_of(node, root):
    current = node.parent
    while current is not None and current.type not in _FUNCTIONS:
        current = current.parent
    return current if current is not None else root


def _preference_before(node, root) -> str | None:
    """The literal last assigned to ``$ErrorActionPreference`` before ``node`` in its function (or the
    file), or the expression's text when it is not a literal; None when there is no such assignment.
    Textual: an assignment in a branch not taken counts as made."""
    scope = _function_of(node, root)
    value = None
    for sub in _walk(scope):
        if sub.start_byte >= node.start_byte:
            break
        if sub.type != "assignment_expression" or _function_of(sub, root) != scope:
            continue
        target = next((c for c in sub.children if c.type == "left_assignment_expression"), None)
        op = next((c for c in sub.children if c.type == "assignement_operator"), None)
        variable = next((v for v in _walk(target) if v.type == "variable"), None) if target is not None else None
        named = _variable_name(variable) if variable is not None else None
        if named is None or named[1].lower() != "erroractionpreference" or _text(op).strip() != "=":
            continue
        literal = sub.children[-1]
        while literal.child_count == 1 and literal.type != "string_literal":
            literal = literal.children[0]
        value = _string_value(literal)
        if value is None:
            value = _text(sub.children[-1]).strip()
    return value


def _is_plain_assignment_target(node) -> bool:
    current = node
    while current.parent is not None and current.parent.type in _WRAPPERS:
        parent = current.parent
        if parent.type == "left_assignment_expression":
            assignment = parent.parent
            if assignment is None or assignment.type != "assignment_expression":
                return False
            op = next((c for c in assignment.children if c.type == "assignement_operator"), None)
            return op is not None and _text(op).strip() == "="
        current = parent
    return False


def _named_values(cmd: _Command) -> dict[str, str]:
    """-Name value pairs of a command with literal values (lower-case names, first letters as typed)."""
    out: dict[str, str] = {}
    node = next((c for c in cmd.node.children if c.type == "command_elements"), None)
    if node is None:
        return out
    elements = [e for e in node.children if e.type != "command_argument_sep"]
    for i, el in enumerate(elements):
        if el.type == "command_parameter" and i + 1 < len(elements) and elements[i + 1].type != "command_parameter":
            value = _string_value(elements[i + 1])
            if value is not None:
                key = _text(el).lstrip("-").rstrip(":").lower()
                for full in ("name", "scope", "value"):
                    if full.startswith(key):
                        out[full] = value
    return out


_INNER_STATEMENT_LISTS = {"sub_expression", "array_expression", "parenthesized_expression"}


def _statement_of(node):
    """The statement of a block that holds ``node``: statements inside ``$( )``, ``@( )`` or ``( )``
    belong to the statement around the expression."""
    current = node
    while current.parent is not None:
        parent = current.parent
        if parent.type == "program":
            return current
        if parent.type == "statement_list" and (
            parent.parent is None or parent.parent.type not in _INNER_STATEMENT_LISTS
        ):
            return current
        current = parent
    return None


def _next_statements(statement, count: int) -> list:
    out: list = []
    sibling = statement.next_named_sibling
    while sibling is not None and len(out) < count:
        if sibling.type not in ("empty_statement", "comment"):
            out.append(sibling)
        sibling = sibling.next_named_sibling
    return out


# ---- API ------------------------------------------------------------------------------------------


def defined_functions(text: str) -> set[str]:
    """Names of the functions and filters a PowerShell text defines (lower-case)."""
    names = set()
    for node in _walk(parse(text).root_node):
        if node.type in ("function_statement", "filter_statement"):
            fname = next((c for c in node.children if c.type == "function_name"), None)
            if fname is not None:
                names.add(_text(fname).strip().lower())
    return names


def check_text(
    text: str, path: str = "<text>", defined_functions: Iterable[str] = frozenset(), catalog: Catalog | None = None
) -> list[Finding]:
    """Every finding in one PowerShell text. ``defined_functions``: functions defined elsewhere in the
    set of files checked together (the text's own are added)."""
    return _Checker(text.replace("\r\n", "\n"), path, set(defined_functions), catalog or Catalog.load()).run()


def read_script(path: Path) -> str:
    """A file's PowerShell text."""
    return path.read_text(encoding="utf-8-sig")


def check_files(paths: Iterable[str | Path]) -> list[Finding]:
    """Check files together: a function defined in one is known in all."""
    texts = [(str(p), read_script(Path(p))) for p in paths]
    functions: set[str] = set()
    for _, text in texts:
        functions |= defined_functions(text)
    findings: list[Finding] = []
    for path, text in texts:
        findings.extend(check_text(text, path, functions))
    return findings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(
            "usage: python -m lync2fa.pscheck FILE...\n\nrules:\n" + "\n".join(f"  {k}  {v}" for k, v in RULES.items())
        )
        return 0 if args else 2
    findings = check_files(args)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
