"""The lab's registry: per host, keys (case-insensitive paths) holding typed values."""

from __future__ import annotations

from ..state import EstateStore

KIND = "registry"


def _norm(path: str) -> str:
    path = path.replace("/", "\\").rstrip("\\")
    for long, short in (("HKEY_LOCAL_MACHINE", "HKLM:"), ("HKEY_CURRENT_USER", "HKCU:")):
        if path.upper().startswith(long):
            path = short + path[len(long) :]
    return path.lower()


class Registry:
    def __init__(self, store: EstateStore, host: str):
        self.store, self.host = store, host

    def _key(self, path: str) -> str:
        return f"{self.host}|{_norm(path)}"

    def read(self, path: str) -> dict | None:
        """``{"path", "values": {name: {"type", "value"}}}`` or None when the key is missing."""
        return self.store.get(KIND, self._key(path))

    def exists(self, path: str) -> bool:
        return self.read(path) is not None

    def subkeys(self, path: str) -> list[str]:
        prefix = self._key(path) + "\\"
        names = set()
        for data in self.store.items_prefix(KIND, prefix).values():
            names.add(data["path"].replace("/", "\\").rstrip("\\")[len(path.rstrip("\\")) + 1 :].split("\\")[0])
        return sorted(names)

    def value(self, path: str, name: str, default=None):
        key = self.read(path)
        if not key:
            return default
        for value_name, entry in key["values"].items():
            if value_name.lower() == name.lower():
                return entry["value"]
        return default

    def create_key(self, path: str) -> None:
        parts = path.replace("/", "\\").rstrip("\\").split("\\")
        for i in range(2, len(parts) + 1):  # New-Item -Force creates the parents
            sub = "\\".join(parts[:i])
            if not self.exists(sub):
                self.store.put(KIND, self._key(sub), {"path": sub, "values": {}})

    def set(self, path: str, name: str, value, value_type: str = "String") -> None:
        self.create_key(path)
        key = self.read(path)
        if key is None:  # create_key just stored it
            raise RuntimeError(f"lab registry: the key {path} is missing right after it was created")
        for existing in list(key["values"]):
            if existing.lower() == name.lower():
                del key["values"][existing]
        key["values"][name] = {"type": value_type, "value": value}
        self.store.put(KIND, self._key(path), key)

    def remove_value(self, path: str, name: str) -> None:
        key = self.read(path)
        if key:
            key["values"] = {k: v for k, v in key["values"].items() if k.lower() != name.lower()}
            self.store.put(KIND, self._key(path), key)

    def remove_key(self, path: str) -> None:
        prefix = self._key(path)
        self.store.delete(KIND, prefix)
        for key in list(self.store.items_prefix(KIND, prefix + "\\")):
            self.store.delete(KIND, key)
