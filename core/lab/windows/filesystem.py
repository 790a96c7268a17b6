"""Files on a lab host: what the file fact, the File primitives (core/ps/Lync2fa.File.ps1) and the
FileSystem provider's item cmdlets see.

State: kind ``file``, key ``<host>|<path lower>`` (NTFS paths are case-insensitive), value
``{"path": <as created>, "text": <decoded text>, "encoding": "utf-8" | "utf-8-sig" | "utf-16"}``.
A file's bytes are its text in its encoding (``utf-8-sig`` writes the UTF-8 byte order mark), so its
SHA-256 and size are those of the file on disk.
"""

from __future__ import annotations

import hashlib

from ..state import EstateStore
from .errors import WindowsError, not_found
from .machine import Machine, named_fact, named_operation, simulates

KIND = "file"
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16")


def _key(host: str, path: str) -> str:
    return f"{host}|{path.replace('/', chr(92)).lower()}"


def read(store: EstateStore, host: str, path: str) -> dict | None:
    return store.get(KIND, _key(host, path))


def write(store: EstateStore, host: str, path: str, text: str, encoding: str = "utf-8-sig") -> None:
    assert encoding in ENCODINGS, encoding
    existing = read(store, host, path)
    store.put(
        KIND, _key(host, path), {"path": existing["path"] if existing else path, "text": text, "encoding": encoding}
    )


def remove(store: EstateStore, host: str, path: str) -> None:
    store.delete(KIND, _key(host, path))


def data(entry: dict) -> bytes:
    return entry["text"].encode(entry["encoding"])


def digest(entry: dict) -> str:
    return hashlib.sha256(data(entry)).hexdigest()


def file_fact(machine: Machine, path: str) -> dict:
    """What ``Read-Lync2faFileFact`` returns: existence, SHA-256 (lower case) and size."""
    entry = read(machine.store, machine.name, path)
    if entry is None:
        return {"exists": False}
    return {"exists": True, "sha256": digest(entry), "size": len(data(entry))}


def _path_not_found(path: str, command: str) -> WindowsError:
    return not_found(
        f"Cannot find path '{path}' because it does not exist.", f"PathNotFound,Microsoft.PowerShell.Commands.{command}"
    )


def _one_path(p: dict, command: str) -> str:
    paths = p.get("LiteralPath") or p.get("Path")
    paths = paths if isinstance(paths, list) else [paths]
    if len(paths) != 1:
        raise WindowsError(f"lab: {command} is simulated for one file at a time")
    return str(paths[0])


@simulates("Copy-Item")
def copy_item(machine: Machine, p: dict) -> None:
    """A file copied to a file path: an existing destination file is overwritten (Copy-Item does
    that without -Force unless it is read-only)."""
    source = _one_path(p, "CopyItemCommand")
    entry = read(machine.store, machine.name, source)
    if entry is None:
        raise _path_not_found(source, "CopyItemCommand")
    destination = str(p.get("Destination") or "")
    if not destination:
        raise WindowsError("lab: Copy-Item without -Destination is not simulated")
    write(machine.store, machine.name, destination, entry["text"], entry["encoding"])


@simulates("Remove-Item")
def remove_item(machine: Machine, p: dict) -> None:
    path = _one_path(p, "RemoveItemCommand")
    if read(machine.store, machine.name, path) is None:
        raise _path_not_found(path, "RemoveItemCommand")
    remove(machine.store, machine.name, path)


# -- the File primitives (core/ps/Lync2fa.File.ps1) ------------------------------------------
@named_fact("file_text")
def file_text(machine: Machine, path: str) -> dict:
    """``Read-Lync2faFileText``: the text, its encoding (from the byte order mark) and SHA-256."""
    entry = read(machine.store, machine.name, path)
    if entry is None:
        return {"exists": False}
    return {"exists": True, "text": entry["text"], "encoding": entry["encoding"], "sha256": digest(entry)}


@named_operation("file_replace")
def file_replace(machine: Machine, path: str, text: str, sha256: str) -> dict:
    """``Set-Lync2faFileText``: replace the text, keeping the encoding, only if the file is still the
    one that was read (its SHA-256)."""
    entry = read(machine.store, machine.name, path)
    if entry is None:
        raise WindowsError(f"Could not find file '{path}'.", "ObjectNotFound", "FileNotFoundException")
    current = digest(entry)
    if current != str(sha256).lower():
        raise WindowsError(
            f"lync2fa: {path} changed since it was read (SHA-256 {current}, expected "
            f"{str(sha256).lower()}); nothing was written.",
            "InvalidOperation",
        )
    write(machine.store, machine.name, path, text, entry["encoding"])
    written = read(machine.store, machine.name, path)
    if written is None:  # write just stored it
        raise RuntimeError(f"lab filesystem: {path} is missing right after it was written")
    return {"sha256": digest(written)}
