"""The lab's implementation of the primitive library (core/ps): the same fact kinds and
operations, over the simulated host. Keep it in step with core/ps/*.ps1."""

from __future__ import annotations

import copy
import inspect
import logging
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from ... import hostscript
from ...catalog import Catalog
from . import pscast, schema
from .directory import account_of, no_such_object, translate
from .errors import WindowsError
from .machine import CORE_MODULES, NAMED_FACTS, NAMED_OPERATIONS, Machine

LOG = logging.getLogger(__name__)


def resolve_secrets(value: Any, secrets: dict) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secret"}:
            if value["secret"] not in secrets:
                raise WindowsError(f"lync2fa: the secret {value['secret']} was not provided")
            return secrets[value["secret"]]
        return {k: resolve_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, secrets) for v in value]
    return value


# -- facts --------------------------------------------------------------------------------
def read_fact(machine: Machine, query: dict) -> Any:
    kind = query["kind"]
    if kind == "cmdlet":
        machine.import_module(query.get("module"))
        rows = []
        for obj in machine.invoke(query["cmdlet"], query.get("params") or {}):
            lowered = {k.lower(): k for k in obj}
            row = {}
            for prop in query.get("select") or []:
                if prop.lower() not in lowered:
                    # Set-StrictMode -Version 2.0: reading a missing property throws.
                    raise WindowsError(
                        f"The property '{prop}' cannot be found on this object. Verify that the property exists.",
                        "NotSpecified",
                        "PropertyNotFoundStrict",
                    )
                row[prop] = copy.deepcopy(obj[lowered[prop.lower()]])
            rows.append(row)
        return rows
    if kind == "registry":
        key = machine.registry.read(query["path"])
        if key is None:
            return {"exists": False, "values": {}, "subkeys": []}
        return {
            "exists": True,
            **_registry_key(machine, query["path"], key, query.get("names"), int(query.get("depth") or 0)),
        }
    if kind == "ad_object":
        machine.require_network("ad")
        ad_obj = machine.directory.get(query["dn"])
        if ad_obj is None:
            return {"exists": False, "attributes": {}}
        return _entry(machine, ad_obj, query)
    if kind == "ad_search":
        machine.require_network("ad")
        base = machine.directory.resolve(query["base"])
        found = []
        for obj in machine.directory.children(base):
            if query.get("scope") == "onelevel" and obj["dn"].split(",", 1)[1].lower() != base.lower():
                continue
            if _ldap_match(obj, query["filter"]):
                found.append(_entry(machine, obj, query))
        return found
    if kind == "file":
        from .filesystem import file_fact

        return file_fact(machine, query["path"])
    if kind == "host":
        props = machine.props
        return {
            "powershell_version": props.get("powershell_version", "5.1.17763.1"),
            "computer_name": machine.name.upper(),
            "part_of_domain": True,
            "domain": machine.estate.domain,
            "user": machine.estate.account,
        }
    if kind == "named":
        if query["name"] not in NAMED_FACTS:
            raise WindowsError(f"lync2fa: unknown named fact {query['name']}")
        implementation = NAMED_FACTS[query["name"]]
        return implementation(machine, **_named_arguments("fact", query["name"], query.get("args"), implementation))
    raise WindowsError(f"lync2fa: unknown fact kind {kind}")


# -- named primitives: their parameters are the keys core/ps reads from $Arguments ------------------
DISPATCHERS = {"fact": "Read-Lync2faNamedFact", "operation": "Invoke-Lync2faNamedOperation"}


@dataclass(frozen=True)
class NamedSignature:
    function: str  # the PowerShell function the dispatcher calls
    keys: tuple[str, ...]  # what it reads from $Arguments
    ints: frozenset[str]  # the keys it casts [int]


def _function_body(text: str, name: str) -> str:
    start = re.search(rf"^function {re.escape(name)}\s*\{{", text, re.M)
    if start is None:
        raise KeyError(f"core/ps defines no function {name}")
    end = re.search(r"^function ", text[start.end() :], re.M)
    return text[start.end() : start.end() + end.start()] if end else text[start.end() :]


@cache
def named_signatures(kind: str) -> dict[str, NamedSignature]:
    """Each named fact or operation of the primitive library (core/ps/Lync2fa.Dispatch.ps1): the
    function its dispatcher calls and the ``$Arguments['key']`` it (or that function) reads."""
    text = hostscript.library()
    found = {}
    for line in re.finditer(
        r"^\s*'(\w+)'\s*\{\s*return\s+([\w-]+)(.*)\}\s*$", _function_body(text, DISPATCHERS[kind]), re.M
    ):
        name, function, call = line.groups()
        read = call + (_function_body(text, function) if re.search(r"-Arguments\s+\$Arguments\b", call) else "")
        keys = dict.fromkeys(re.findall(r"\$Arguments\['(\w+)'\]", read))
        ints = frozenset(re.findall(r"\[int\]\$Arguments\['(\w+)'\]", read))
        found[name] = NamedSignature(function, tuple(keys), ints)
    return found


def _named_arguments(kind: str, name: str, args: dict | None, implementation) -> dict:
    """``args`` as the named primitive takes them. PowerShell passes the primitive a hashtable, so
    Windows would ignore a misspelt key and read $null for a missing one: the lab refuses both, as
    PowerShell refuses an unknown or a missing mandatory parameter (the lab implementation needs
    what it does not default), and casts the [int] keys as the primitive does."""
    signature = named_signatures(kind)[name]
    declared = {key.lower(): key for key in signature.keys}
    out = {}
    for key, value in (args or {}).items():
        canonical = declared.get(str(key).lower())
        if canonical is None:
            raise WindowsError(
                f"A parameter cannot be found that matches parameter name '{key}'.",
                "InvalidArgument",
                f"NamedParameterNotFound,{signature.function}",
            )
        out[canonical] = pscast.to_int(value) if canonical in signature.ints else value
    missing = [
        p.name
        for p in list(inspect.signature(implementation).parameters.values())[1:]
        if p.default is inspect.Parameter.empty and p.name not in out
    ]
    if missing:
        raise WindowsError(
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            "InvalidArgument",
            f"MissingMandatoryParameter,{signature.function}",
        )
    return out


def _registry_key(machine: Machine, path: str, key: dict, names: list | None, depth: int) -> dict:
    """As Read-Lync2faRegistryKey: the (named) values, the subkey names and, while ``depth`` > 0,
    the subkeys read the same way under "keys"."""
    wanted = None if names is None else {str(x).lower() for x in names}
    node: dict[str, Any] = {
        "values": {
            n: copy.deepcopy(e["value"]) for n, e in key["values"].items() if wanted is None or n.lower() in wanted
        },
        "subkeys": machine.registry.subkeys(path),
    }
    if depth > 0:
        node["keys"] = {}
        for name in node["subkeys"]:
            sub_path = path.rstrip("\\") + "\\" + name
            sub = machine.registry.read(sub_path)
            if sub is not None:
                node["keys"][name] = _registry_key(machine, sub_path, sub, names, depth - 1)
    return node


def _entry(machine: Machine, obj: dict, query: dict) -> dict:
    out = {
        "exists": True,
        "dn": obj["dn"],
        "attributes": machine.directory.attributes(obj, query.get("attributes") or []),
    }
    if query.get("acl"):
        aces = [
            {**ace, "account": ace.get("account") or account_of(machine.store, ace["sid"])}
            for ace in obj.get("acl", {}).get("aces", [])
        ]
        out["acl"] = {"owner": obj.get("acl", {}).get("owner"), "aces": aces}
    return out


def _ldap_match(obj: dict, ldap_filter: str) -> bool:
    """Equality filters joined by & (what lync2fa's queries use): (&(a=v)(b=v)) or (a=v); * matches any."""
    text = ldap_filter.strip()
    if text.startswith("(&"):
        text = text[2:-1]
    terms = [t for t in text.replace(")(", ")\n(").splitlines() if t.strip()]
    lowered = {k.lower(): v for k, v in obj["attributes"].items()}
    lowered.setdefault("objectclass", [obj["class"]])
    for term in terms:
        name, _, value = term.strip("()").partition("=")
        values = [str(v).lower() for v in lowered.get(name.lower(), [])]
        if value == "*":
            if not values:
                return False
        elif value.lower() not in values:
            return False
    return True


# -- operations ---------------------------------------------------------------------------
class CommittedFailure(WindowsError):
    """A failure after part of the operation was committed on Windows: that part stays (an
    ad_create whose attributes fail leaves the new, bare object, as New-Lync2faDirectoryObject
    commits it before writing them)."""


def _attribute_values(typed: dict) -> list | None:
    """As ConvertTo-Lync2faAttributeValue: the .NET value(s) ADSI is handed (bytes for an octet string)."""
    value, kind = typed["value"], typed["type"]
    if value is None:
        return None
    if kind == "int":
        return [pscast.to_int(value)]
    if kind == "strings":
        return [pscast.to_string(v) for v in (value if isinstance(value, list) else [value])]
    if kind == "bytes":
        return [pscast.from_base64(value)]
    return [pscast.to_string(value)]


def _ldap_values(dn: str, attributes: dict) -> dict[str, list | None]:
    return schema.ldap_values(dn, {n: _attribute_values(t) for n, t in attributes.items()})


def _registry_value(value: Any, value_type: str) -> Any:
    """As Set-Lync2faRegistryValue converts it for New-ItemProperty -PropertyType."""
    kind = value_type.lower()
    if kind == "dword":
        return pscast.to_int(value)
    if kind == "qword":
        return pscast.to_int(value, "Int64")
    if kind == "multistring":
        return [pscast.to_string(v) for v in (value if isinstance(value, list) else [value])]
    if kind == "binary":
        pscast.from_base64(value)
        return value
    if kind in ("string", "expandstring") and value is not None and not isinstance(value, (list, dict)):
        return pscast.to_string(value)
    return value


def apply_operation(machine: Machine, operation: dict) -> Any:
    kind = operation["op"]
    if kind == "cmdlet":
        machine.import_module(operation.get("module"))
        retry = operation.get("retry")
        attempt = 1
        while True:  # as Invoke-Lync2faCmdlet: retry with back-off on the named error only
            try:
                return {
                    "objects": len(machine.invoke(operation["cmdlet"], operation.get("params") or {})),
                    "attempts": attempt,
                }
            except WindowsError as exc:
                if not retry or attempt >= int(retry["attempts"]) or retry["on_error_id"] not in exc.error_id:
                    raise
                time.sleep(float(retry["delay_s"]) * 2 ** (attempt - 1))
                attempt += 1
    if kind == "registry_set":
        value = _registry_value(operation["value"], operation["type"])
        machine.registry.set(operation["path"], operation["name"], value, operation["type"])
        return None
    if kind == "registry_remove":
        if operation.get("name") is None:
            machine.registry.remove_key(operation["path"])
        else:
            machine.registry.remove_value(operation["path"], operation["name"])
        return None
    if kind in ("ad_create", "ad_set", "ad_delete", "ace_add", "ace_remove"):
        machine.require_network("ad")
        directory = machine.directory
        if kind == "ad_create":
            created = directory.create(operation["parent"], operation["cn"], operation["class"], {})
            try:
                attributes = _ldap_values(created["dn"], operation["attributes"])
            except WindowsError as exc:
                raise CommittedFailure(exc.message, exc.category, exc.error_id, exc.hresult) from None
            directory.set_attributes(created["dn"], {n: v for n, v in attributes.items() if v is not None})
            return {"dn": created["dn"]}
        if kind == "ad_set":
            dn = directory.resolve(operation["dn"])
            if not directory.exists(dn):  # Set-Lync2faDirectoryObject finds the entry first
                raise no_such_object(dn)
            directory.set_attributes(dn, _ldap_values(dn, operation["attributes"]))
            return None
        if kind == "ad_delete":
            directory.delete(operation["dn"])
            return None
        obj = directory.get(operation["dn"])
        if obj is None:
            if kind == "ace_remove":
                return None
            raise no_such_object(directory.resolve(operation["dn"]))
        # As New-Lync2faAce: translate, [ActiveDirectoryRights][int] rights, [guid] object type.
        sid, account = translate(machine.store, operation["principal"])
        rights = pscast.to_flags(
            pscast.to_int(operation.get("rights")),
            "System.DirectoryServices.ActiveDirectoryRights",
            pscast.ACTIVE_DIRECTORY_RIGHTS,
        )
        object_type = pscast.to_string(operation.get("object_type"))
        ace = {
            "sid": sid,
            "account": account,
            "rights": rights,
            "object_type": pscast.to_guid(object_type) if object_type else "00000000-0000-0000-0000-000000000000",
            "allow": bool(operation.get("allow")),
            "inherited": False,
        }
        aces = obj.setdefault("acl", {"owner": "CORP\\Domain Admins", "aces": []})["aces"]
        same = [
            a
            for a in aces
            if (a["sid"], a["rights"], a["object_type"], a["allow"])
            == (ace["sid"], ace["rights"], ace["object_type"], ace["allow"])
        ]
        if kind == "ace_add" and not same:
            aces.append(ace)
        if kind == "ace_remove":
            obj["acl"]["aces"] = [a for a in aces if a not in same]
        directory.put(obj)
        return None
    if kind == "native":
        code, output = machine.run_native(operation["program"], operation["args"])
        if code not in (operation.get("ok_codes") or [0]):
            raise WindowsError(f"{operation['program']} exited with code {code}: {output.strip()}")
        # Invoke-Lync2faNative's result; the lab's programs write one stream (their text is stdout).
        return {"exit_code": code, "output": output.strip(), "stderr": ""}
    if kind == "named":
        if operation["name"] not in NAMED_OPERATIONS:
            raise WindowsError(f"lync2fa: unknown named operation {operation['name']}")
        implementation = NAMED_OPERATIONS[operation["name"]]
        arguments = _named_arguments("operation", operation["name"], operation.get("args"), implementation)
        return implementation(machine, **arguments)
    raise WindowsError(f"lync2fa: unknown operation {kind}")


def _preload(machine: Machine, item: dict) -> None:
    """Import what a fact or operation needs before the estate store is locked: under the
    real-estate profile an import costs seconds, and another host must not wait for it (the store's
    lock is the lab's, not Windows'; issue 12 item 17). Errors surface from the call itself."""
    try:
        machine.import_module(item.get("module"))
        cmdlet = item.get("cmdlet")
        catalog = Catalog.load()
        if cmdlet and catalog.has(cmdlet):
            module = catalog.module(cmdlet)
            if module not in CORE_MODULES and module in machine.props.get("modules", ()):
                machine.import_module(module)
    except WindowsError:
        pass


def _apply_one(machine: Machine, operation: dict, secrets: dict, transaction) -> Any:
    """One operation in its own transaction: a failure rolls it back, but what a CommittedFailure
    says Windows committed stays."""
    with transaction(commit=True):
        machine.import_module(operation.get("module"))
        try:
            return apply_operation(machine, resolve_secrets(operation, secrets))
        except CommittedFailure as exc:
            failure = exc
    raise failure


def _lab_defect(exc: Exception) -> dict:
    """A Python error in the lab is the lab's defect, not Windows' answer: it fails the fact or
    operation with a text that says so (and is logged with its traceback); the session goes on."""
    LOG.error("lab defect", exc_info=exc)
    return {
        "message": f"lync2fa lab defect: {type(exc).__name__}: {exc}",
        "category": "NotSpecified",
        "error_id": "LabDefect",
        "hresult": -2146233087,
    }


def run_request(machine: Machine, request: dict, secrets: dict, transaction) -> tuple[dict, list[dict]]:
    """(response, executed operations): facts are read in a transaction that is rolled back;
    each operation commits on its own; the first failure ends its group, and the groups that
    need a failed one are skipped, as the PowerShell frame does; a group that ran reports its
    ``elapsed_ms`` on the host (the frame's stopwatch)."""
    if request.get("kind") == "facts":
        facts = {}
        for query in (request.get("facts") or {}).values():
            _preload(machine, query)
        with transaction(commit=False):
            for name, query in (request.get("facts") or {}).items():
                try:
                    machine.import_module(query.get("module"))
                    facts[name] = {"ok": True, "value": read_fact(machine, query)}
                except WindowsError as exc:
                    facts[name] = {"ok": False, "error": exc.as_error()}
                except Exception as exc:  # a lab defect: a failed fact, the session goes on
                    facts[name] = {"ok": False, "error": _lab_defect(exc)}
        return {"lync2fa": 1, "facts": facts}, []
    failed: set[str] = set()
    answers, executed = [], []
    for group in request.get("groups") or []:
        blocked = [n for n in group.get("needs") or [] if n in failed]
        if blocked:
            failed.add(group["id"])
            answers.append({"id": group["id"], "skipped": True, "blocked_by": blocked[0], "operations": []})
            continue
        done, clock = [], time.monotonic()
        for operation in group.get("operations") or []:
            executed.append(operation)
            _preload(machine, operation)
            machine.warnings = []
            try:
                output = _apply_one(machine, operation, secrets, transaction)
                done.append({"ok": True, "output": output, "warnings": machine.warnings})
            except Exception as exc:  # a WindowsError, or a lab defect: a failed operation either way
                done.append(
                    {"ok": False, "error": exc.as_error() if isinstance(exc, WindowsError) else _lab_defect(exc)}
                )
                failed.add(group["id"])
                break
        elapsed_ms = round((time.monotonic() - clock) * 1000)
        answers.append({"id": group["id"], "skipped": False, "operations": done, "elapsed_ms": elapsed_ms})
    return {"lync2fa": 1, "groups": answers}, executed
