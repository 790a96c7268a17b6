"""The lab's implementation of the primitive library (core/ps): the same fact kinds and
operations, over the simulated host. Keep it in step with core/ps/*.ps1."""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

from ...catalog import Catalog
from .directory import account_of, translate
from .errors import WindowsError
from .machine import CORE_MODULES, NAMED_FACTS, NAMED_OPERATIONS, Machine


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
        machine.require_network("LDAP")
        ad_obj = machine.directory.get(query["dn"])
        if ad_obj is None:
            return {"exists": False, "attributes": {}}
        return _entry(machine, ad_obj, query)
    if kind == "ad_search":
        machine.require_network("LDAP")
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
        return NAMED_FACTS[query["name"]](machine, **(query.get("args") or {}))
    raise WindowsError(f"lync2fa: unknown fact kind {kind}")


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
def _attribute_values(typed: dict) -> list | None:
    value, kind = typed["value"], typed["type"]
    if value is None:
        return None
    if kind == "int":
        return [int(value)]
    if kind == "strings":
        return [str(v) for v in value]
    if kind == "bytes":
        base64.b64decode(value, validate=True)
        return [value]
    return [str(value)]


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
        value = operation["value"]
        if operation["type"] in ("DWord", "QWord"):
            value = int(value)
        elif operation["type"] == "MultiString":
            value = [str(v) for v in (value if isinstance(value, list) else [value])]
        machine.registry.set(operation["path"], operation["name"], value, operation["type"])
        return None
    if kind == "registry_remove":
        if operation.get("name") is None:
            machine.registry.remove_key(operation["path"])
        else:
            machine.registry.remove_value(operation["path"], operation["name"])
        return None
    if kind in ("ad_create", "ad_set", "ad_delete", "ace_add", "ace_remove"):
        machine.require_network("LDAP")
        directory = machine.directory
        if kind == "ad_create":
            attributes = {n: _attribute_values(t) for n, t in operation["attributes"].items()}
            created = directory.create(
                operation["parent"],
                operation["cn"],
                operation["class"],
                {n: v for n, v in attributes.items() if v is not None},
            )
            return {"dn": created["dn"]}
        if kind == "ad_set":
            directory.set_attributes(
                operation["dn"], {n: _attribute_values(t) for n, t in operation["attributes"].items()}
            )
            return None
        if kind == "ad_delete":
            directory.delete(operation["dn"])
            return None
        obj = directory.get(operation["dn"])
        if obj is None:
            if kind == "ace_remove":
                return None
            from .directory import no_such_object

            raise no_such_object(directory.resolve(operation["dn"]))
        sid, account = translate(machine.store, operation["principal"])
        ace = {
            "sid": sid,
            "account": account,
            "rights": int(operation["rights"]),
            "object_type": operation.get("object_type") or "00000000-0000-0000-0000-000000000000",
            "allow": bool(operation.get("allow", True)),
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
        return {"exit_code": code, "output": output.strip()}
    if kind == "named":
        if operation["name"] not in NAMED_OPERATIONS:
            raise WindowsError(f"lync2fa: unknown named operation {operation['name']}")
        return NAMED_OPERATIONS[operation["name"]](machine, **(operation.get("args") or {}))
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


def run_request(machine: Machine, request: dict, secrets: dict, transaction) -> tuple[dict, list[dict]]:
    """(response, executed operations): facts are read in a transaction that is rolled back;
    each operation commits on its own; the first failure ends its group, and the groups that
    need a failed one are skipped, as the PowerShell frame does."""
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
        return {"lync2fa": 1, "facts": facts}, []
    failed: set[str] = set()
    answers, executed = [], []
    for group in request.get("groups") or []:
        blocked = [n for n in group.get("needs") or [] if n in failed]
        if blocked:
            failed.add(group["id"])
            answers.append({"id": group["id"], "skipped": True, "blocked_by": blocked[0], "operations": []})
            continue
        done = []
        for operation in group.get("operations") or []:
            executed.append(operation)
            _preload(machine, operation)
            try:
                with transaction(commit=True):
                    machine.import_module(operation.get("module"))
                    output = apply_operation(machine, resolve_secrets(operation, secrets))
                done.append({"ok": True, "output": output})
            except WindowsError as exc:
                done.append({"ok": False, "error": exc.as_error()})
                failed.add(group["id"])
                break
        answers.append({"id": group["id"], "skipped": False, "operations": done})
    return {"lync2fa": 1, "groups": answers}, executed
