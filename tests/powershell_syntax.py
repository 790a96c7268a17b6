"""PowerShell syntax checking without PowerShell: tree-sitter-powershell.

The parser and ``syntax_errors`` live in the product now (``lync2fa.pscheck``, whose static checks
use the same parse); this module keeps the tests' import path."""

from __future__ import annotations

from lync2fa.pscheck import parse, parser, syntax_errors

__all__ = ["parse", "parser", "syntax_errors"]
