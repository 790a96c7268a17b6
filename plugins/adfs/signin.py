"""The AD FS 2.x sign-in web.config (``C:\\inetpub\\adfs\\ls\\web.config``): its
``<localAuthenticationTypes>`` list, read and reordered as text so that a save changes nothing but
the order (whitespace, comments, the rest of the file and its encoding are kept).

The reference's step: move the ``TlsClient`` line to the top of the list. AD FS 2.x uses the first
entry as the sign-in method.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

SECTION = "localAuthenticationTypes"
TLS_CLIENT = "TlsClient"
_SECTION = re.compile(r"<localAuthenticationTypes(\s[^>]*)?>(?P<inner>.*?)</localAuthenticationTypes\s*>", re.S)
_ADD = re.compile(r"<add\b[^>]*?(/>|>\s*</add\s*>)", re.S)
_NAME = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_COMMENT = re.compile(r"<!--.*?-->", re.S)


class SignInConfigError(ValueError):
    """The file is not an AD FS sign-in web.config lync2fa can change."""


def _masked(text: str) -> str:
    """The text with comments blanked (same length), so that a commented-out <add> is not an entry."""
    return _COMMENT.sub(lambda m: " " * len(m.group(0)), text)


def _entries(text: str, path: str) -> tuple[re.Match, list[re.Match]]:
    try:
        ElementTree.fromstring(text.lstrip("\ufeff").encode("utf-8"))
    except ElementTree.ParseError as exc:
        raise SignInConfigError(f"{path} is not well-formed XML: {exc}") from None
    masked = _masked(text)
    section = _SECTION.search(masked)
    if section is None:
        raise SignInConfigError(f"No <{SECTION}> element in {path}.")
    adds = list(_ADD.finditer(masked, section.start("inner"), section.end("inner")))
    return section, adds


def _name(element: str) -> str:
    match = _NAME.search(element)
    return (match.group(1) if match.group(1) is not None else match.group(2)) if match else ""


def authentication_types(text: str, path: str) -> list[str]:
    """The names in ``<localAuthenticationTypes>``, in order."""
    _, adds = _entries(text, path)
    return [_name(text[m.start() : m.end()]) for m in adds]


def same(left: str, right: str) -> bool:
    """PowerShell's -eq on names (case-insensitive)."""
    return left.lower() == right.lower()


def first(names: list[str], wanted: str) -> list[str]:
    """``wanted`` first, keeping its spelling if listed, the others in their order."""
    match = [n for n in names if same(n, wanted)]
    return [match[0] if match else wanted] + [n for n in names if not same(n, wanted)]


def reorder(text: str, path: str, order: list[str]) -> str:
    """The file's text with the <add> elements in ``order`` (a permutation of their names); each
    element moves as it is, the whitespace between the elements stays where it was."""
    _, adds = _entries(text, path)
    elements = [text[m.start() : m.end()] for m in adds]
    by_name: dict[str, list[str]] = {}
    for element in elements:
        by_name.setdefault(_name(element).lower(), []).append(element)
    moved = [by_name[name.lower()].pop(0) for name in order]
    out, position = [], 0
    for match, element in zip(adds, moved, strict=True):
        out.append(text[position : match.start()])
        out.append(element)
        position = match.end()
    out.append(text[position:])
    return "".join(out)
