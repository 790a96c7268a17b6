"""PowerShell syntax checking without PowerShell: tree-sitter-powershell."""
from __future__ import annotations

import tree_sitter
import tree_sitter_powershell

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def syntax_errors(script: str) -> list[str]:
    """ERROR / MISSING nodes as 'line N: text' (empty when the script parses cleanly)."""
    tree = _PARSER.parse(script.encode("utf-8"))
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
