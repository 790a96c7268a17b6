"""The vocabulary between Python and a host: fact queries and operations, as plain data.

A task declares the facts it needs with the ``*_fact`` constructors, decides in Python, and
returns operations made with the others. The PowerShell primitive library (``core/ps``) and the
lab (``lync2fa.lab.windows``) implement exactly these kinds, so what a decision emits is what a
host runs. Values are JSON; a secret is referenced as ``secret("pin")`` and travels on stdin.
"""

from __future__ import annotations

from typing import Any

FACT_KINDS = ("cmdlet", "registry", "ad_object", "ad_search", "file", "host", "named")
OPERATION_KINDS = (
    "cmdlet",
    "registry_set",
    "registry_remove",
    "ad_create",
    "ad_set",
    "ad_delete",
    "ace_add",
    "ace_remove",
    "native",
    "named",
)
REGISTRY_TYPES = ("String", "ExpandString", "DWord", "QWord", "MultiString", "Binary")
ATTRIBUTE_TYPES = ("string", "strings", "int", "bytes")
CONFIG_NC = "{configurationNamingContext}"
DOMAIN_NC = "{defaultNamingContext}"


def secret(name: str) -> dict:
    """A placeholder the host replaces with the secret of that name (never in the script text)."""
    return {"secret": name}


def credential(user: str, password: dict) -> dict:
    """A cmdlet parameter of type PSCredential: the host builds it from ``user`` and ``password``
    (a ``secret(...)``) just before the call (ConvertTo-Lync2faCredential)."""
    assert set(password) == {"secret"}, "a credential's password is a secret placeholder"
    return {"pscredential": {"user": user, "password": password}}


# -- facts --------------------------------------------------------------------------------
def cmdlet_fact(
    cmdlet: str, params: dict | None = None, select: tuple[str, ...] | list[str] = (), module: str | None = None
) -> dict:
    """A documented Get- cmdlet; the value is a list with the ``select``ed properties per object."""
    return {"kind": "cmdlet", "cmdlet": cmdlet, "params": dict(params or {}), "select": list(select), "module": module}


def registry_fact(path: str, names: list[str] | None = None, depth: int = 0) -> dict:
    """A registry key: ``{"exists", "values": {name: value}, "subkeys": [...]}`` (all values when
    ``names`` is None).

    With ``depth`` N > 0 the value also holds its subkeys, read in the same request, down to N
    levels: ``"keys": {subkey: {"values", "subkeys", "keys"?}}`` (the keys N levels down list their
    subkeys' names only). ``names`` selects the values at every level, so a key and the subkeys a
    decision depends on (``CertSvc\\Configuration`` and its CA, a store and its certificates) are
    one fact, not one round trip each."""
    assert depth >= 0, depth
    query: dict[str, Any] = {"kind": "registry", "path": path, "names": None if names is None else list(names)}
    if depth:
        query["depth"] = int(depth)
    return query


def ad_object_fact(dn: str, attributes: list[str] | tuple[str, ...], acl: bool = False) -> dict:
    """An AD object: ``{"exists", "dn", "attributes": {name: [values]}, "acl"?}``."""
    return {"kind": "ad_object", "dn": dn, "attributes": list(attributes), "acl": acl}


def ad_search_fact(
    base: str, ldap_filter: str, attributes: list[str] | tuple[str, ...], scope: str = "subtree", acl: bool = False
) -> dict:
    return {
        "kind": "ad_search",
        "base": base,
        "filter": ldap_filter,
        "attributes": list(attributes),
        "scope": scope,
        "acl": acl,
    }


def file_fact(path: str) -> dict:
    return {"kind": "file", "path": path}


def host_fact() -> dict:
    """PowerShell version, execution policy, domain membership, the session's user."""
    return {"kind": "host"}


def named_fact(name: str, **args: Any) -> dict:
    return {"kind": "named", "name": name, "args": args}


# -- operations ---------------------------------------------------------------------------
def cmdlet(name: str, params: dict | None = None, module: str | None = None, retry: dict | None = None) -> dict:
    """Run a documented cmdlet with ``params`` splatted (True = a present switch).

    ``retry`` (optional, see ``retry_policy``): run it again, with exponential back-off, while it
    fails with an error whose FullyQualifiedErrorId contains ``on_error_id`` (e.g. a directory
    object not replicated yet); any other error, or the last attempt's, fails the operation."""
    operation = {"op": "cmdlet", "cmdlet": name, "params": dict(params or {}), "module": module}
    if retry is not None:
        operation["retry"] = retry
    return operation


def retry_policy(attempts: int, delay_s: float, on_error_id: str) -> dict:
    """At most ``attempts`` runs; the n-th retry waits ``delay_s * 2**(n-1)`` seconds."""
    assert attempts >= 1 and delay_s >= 0 and on_error_id, (attempts, delay_s, on_error_id)
    return {"attempts": int(attempts), "delay_s": float(delay_s), "on_error_id": str(on_error_id)}


def registry_set(path: str, name: str, value: Any, type: str = "String") -> dict:
    assert type in REGISTRY_TYPES, type
    return {"op": "registry_set", "path": path, "name": name, "value": value, "type": type}


def registry_remove(path: str, name: str | None = None) -> dict:
    """Remove a value, or the whole key when ``name`` is None."""
    return {"op": "registry_remove", "path": path, "name": name}


def typed(type: str, value: Any) -> dict:
    """An AD attribute value with its syntax: string, strings, int, bytes (base64)."""
    assert type in ATTRIBUTE_TYPES, type
    return {"type": type, "value": value}


def ad_create(parent: str, cn: str, object_class: str, attributes: dict[str, dict]) -> dict:
    return {"op": "ad_create", "parent": parent, "cn": cn, "class": object_class, "attributes": attributes}


def ad_set(dn: str, attributes: dict[str, dict]) -> dict:
    return {"op": "ad_set", "dn": dn, "attributes": attributes}


def ad_delete(dn: str) -> dict:
    return {"op": "ad_delete", "dn": dn}


def ace_add(dn: str, principal: str, rights: int, object_type: str | None = None, allow: bool = True) -> dict:
    return {
        "op": "ace_add",
        "dn": dn,
        "principal": principal,
        "rights": int(rights),
        "object_type": object_type,
        "allow": allow,
    }


def ace_remove(dn: str, principal: str, rights: int, object_type: str | None = None, allow: bool = True) -> dict:
    return {**ace_add(dn, principal, rights, object_type, allow), "op": "ace_remove"}


def native(program: str, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> dict:
    """A native program; an exit code outside ``ok_codes`` fails the operation."""
    return {"op": "native", "program": program, "args": list(args), "ok_codes": list(ok_codes)}


def named(name: str, **args: Any) -> dict:
    """One of the few imperative jobs the library implements by name (see core/ps)."""
    return {"op": "named", "name": name, "args": args}


def describe(operation: dict) -> str:
    """One line for humans (``-v``, reports): what an operation does, secrets not shown."""
    kind = operation.get("op")
    if kind == "cmdlet":
        params = " ".join(
            f"-{k}" if v is True else f"-{k}:$false" if v is False else f"-{k} {_short(v)}"
            for k, v in operation["params"].items()
        )
        return f"{operation['cmdlet']} {params}".strip()
    if kind in ("registry_set", "registry_remove"):
        value = f" = {_short(operation['value'])}" if kind == "registry_set" else ""
        return f"{kind} {operation['path']}\\{operation.get('name') or ''}{value}"
    if kind in ("ad_create",):
        return f"ad_create CN={operation['cn']},{operation['parent']} ({operation['class']})"
    if kind in ("ad_set", "ad_delete", "ace_add", "ace_remove"):
        extra = f" {operation['principal']}" if kind.startswith("ace") else ""
        extra += f" {', '.join(operation['attributes'])}" if kind == "ad_set" else ""
        return f"{kind} {operation['dn']}{extra}"
    if kind == "native":
        return " ".join([operation["program"], *(_short(a) for a in operation["args"])])
    return f"{operation.get('name', kind)}"


def _short(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"secret"}:
        return "<secret>"
    if isinstance(value, dict) and set(value) == {"pscredential"}:
        return f"<credential of {value['pscredential']['user']}>"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
