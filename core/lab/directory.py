"""The lab's Active Directory: users and groups (enough for ACLs and enrollment)."""

from __future__ import annotations

from .estate import Estate
from .state import EstateStore

BUILTIN_GROUPS = {
    "Domain Admins": "S-1-5-21-1000-512",
    "Enterprise Admins": "S-1-5-21-1000-519",
    "Domain Users": "S-1-5-21-1000-513",
    "Domain Computers": "S-1-5-21-1000-515",
    "Authenticated Users": "S-1-5-11",
    "Everyone": "S-1-1-0",
    "Lync 2FA Users": "S-1-5-21-1000-1105",
}


def seed_directory(store: EstateStore, estate: Estate, users: int = 4) -> None:
    for name, sid in BUILTIN_GROUPS.items():
        store.put("ad_group", name, {"sid": sid, "members": []})
    for i in range(1, users + 1):
        sam = f"user{i:02d}"
        store.put(
            "ad_user",
            sam,
            {
                "upn": f"{sam}@{estate.domain}",
                "sid": f"S-1-5-21-1000-{2000 + i}",
                "groups": ["Domain Users", "Lync 2FA Users"],
            },
        )
    group = store.get("ad_group", "Lync 2FA Users")
    group["members"] = [f"user{i:02d}" for i in range(1, users + 1)]
    store.put("ad_group", "Lync 2FA Users", group)


def short_name(principal: str) -> str:
    """'CORP\\Lync 2FA Users' and 'Lync 2FA Users' name the same principal."""
    return principal.split("\\", 1)[-1]


def principal_exists(store: EstateStore, principal: str) -> bool:
    name = short_name(principal)
    return store.get("ad_group", name) is not None or store.get("ad_user", name) is not None
