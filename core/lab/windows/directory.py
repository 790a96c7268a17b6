"""The lab's Active Directory objects (the configuration and domain partitions) with their
attributes (lists of values, as LDAP has them) and security descriptors.

Users and groups for SID translation stay in ``lync2fa.lab.directory`` (ad_user/ad_group).
"""

from __future__ import annotations

import datetime as dt

from ..directory import short_name
from ..state import EstateStore
from . import schema
from .errors import WindowsError

KIND = "ad"
NO_SUCH_OBJECT = -2147016656  # 0x80072030


def naming_contexts(domain: str) -> dict[str, str]:
    dc = ",".join(f"DC={part}" for part in domain.split("."))
    return {"{defaultNamingContext}": dc, "{configurationNamingContext}": f"CN=Configuration,{dc}"}


def no_such_object(dn: str) -> WindowsError:
    return WindowsError(
        "There is no such object on the server.\r\n",
        "NotSpecified",
        f"System.DirectoryServices.DirectoryServicesCOMException ({dn})",
        NO_SUCH_OBJECT,
    )


class Directory:
    def __init__(self, store: EstateStore, domain: str):
        self.store, self.domain = store, domain
        self.contexts = naming_contexts(domain)

    def resolve(self, dn: str) -> str:
        for placeholder, value in self.contexts.items():
            dn = dn.replace(placeholder, value)
        return dn

    @staticmethod
    def _key(dn: str) -> str:
        return ",".join(part.strip() for part in dn.split(",")).lower()

    def get(self, dn: str) -> dict | None:
        return self.store.get(KIND, self._key(self.resolve(dn)))

    def put(self, obj: dict) -> None:
        self.store.put(KIND, self._key(obj["dn"]), obj)

    def children(self, base: str) -> list[dict]:
        """Every object under ``base`` (subtree, base excluded)."""
        suffix = "," + self._key(self.resolve(base))
        return [o for k, o in self.store.items(KIND).items() if k.endswith(suffix)]

    def exists(self, dn: str) -> bool:
        return self.get(dn) is not None

    def create(self, parent: str, cn: str, object_class: str, attributes: dict[str, list]) -> dict:
        """A new object of a class the schema defines (``attributes`` as stored, not checked)."""
        parent_dn = self.resolve(parent)
        if not self.exists(parent_dn):
            raise no_such_object(parent_dn)
        dn = f"CN={cn},{parent_dn}"
        object_class = schema.object_class(object_class, dn)
        if self.exists(dn):
            raise WindowsError(
                "The object already exists.\r\n",
                "NotSpecified",
                "System.DirectoryServices.DirectoryServicesCOMException",
                -2147019886,
            )
        # AD stamps every new object with whenCreated (GeneralizedTime; the lab keeps milliseconds,
        # so that a replication delay below a second can be modelled).
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond // 1000:03d}Z"
        obj = {
            "dn": dn,
            "class": object_class,
            "attributes": {"cn": [cn], "whenCreated": [stamp], **attributes},
            "acl": {"owner": "CORP\\Domain Admins", "aces": []},
        }
        self.put(obj)
        return obj

    def set_attributes(self, dn: str, attributes: dict[str, list | None]) -> None:
        obj = self.get(dn)
        if obj is None:
            raise no_such_object(self.resolve(dn))
        for name, values in attributes.items():
            existing = next((k for k in obj["attributes"] if k.lower() == name.lower()), name)
            if values is None:
                obj["attributes"].pop(existing, None)
            else:
                obj["attributes"].pop(existing, None)
                obj["attributes"][name] = values
        self.put(obj)

    def delete(self, dn: str) -> None:
        resolved = self.resolve(dn)
        for child in self.children(resolved):
            self.store.delete(KIND, self._key(child["dn"]))
        self.store.delete(KIND, self._key(resolved))

    def attributes(self, obj: dict, names: list[str]) -> dict[str, list]:
        lowered = {k.lower(): v for k, v in obj["attributes"].items()}
        return {n: list(lowered.get(n.lower(), [])) for n in names}


def translate(store: EstateStore, principal: str) -> tuple[str, str]:
    """(SID, account) for an NT account name, or Windows' translation error."""
    name = short_name(principal)
    for kind in ("ad_group", "ad_user"):
        entry = store.get(kind, name)
        if entry is not None:
            return entry["sid"], _account(name, entry["sid"])
    raise WindowsError(
        'Exception calling "Translate" with "1" argument(s): "Some or all identity references '
        'could not be translated."',
        "NotSpecified",
        "IdentityNotMappedException",
    )


def account_of(store: EstateStore, sid: str) -> str | None:
    for kind in ("ad_group", "ad_user"):
        for name, entry in store.items(kind).items():
            if entry["sid"] == sid:
                return _account(name, sid)
    return None


# Well-known principals translate without the domain's NetBIOS name.
WELL_KNOWN_DOMAINS = {"S-1-5-11": "NT AUTHORITY\\", "S-1-1-0": ""}


def _account(name: str, sid: str) -> str:
    return WELL_KNOWN_DOMAINS.get(sid, "CORP\\") + name
