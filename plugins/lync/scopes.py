"""Which Lync configuration scopes lync2fa may change: service scope only (reference section 8).

The plan gate (rule GLOBAL_SCOPE) and the decisions (``decide.py``, before any fact is read and
before any operation is emitted) apply the same rules.
"""

from __future__ import annotations

import re

SERVICE_FQDN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def service_identity(service: str, fqdn: str) -> str:
    return f"Service:{service}:{fqdn}"


def is_service_scope(identity: str, *services: str) -> bool:
    """``Service:<one of services>:<fqdn>``, case-insensitive like Lync identities."""
    for service in services:
        prefix = f"service:{service}:".lower()
        if identity.lower().startswith(prefix) and SERVICE_FQDN.fullmatch(identity[len(prefix) :]):
            return True
    return False


def tag_policy(name: str) -> str | None:
    """``Tag:<name>`` for a per-user policy name, None for Global, site:, service: or junk."""
    tag = name[4:] if name.lower().startswith("tag:") else name
    if not TAG_NAME.fullmatch(tag) or tag.lower() == "global":
        return None
    return f"Tag:{tag}"
