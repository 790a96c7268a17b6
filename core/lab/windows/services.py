"""Windows services (the Service Control Manager as Get-Service / Restart-Service see it).

State: kind ``service``, key ``<host>|<service name lower>``, value ``{"Name", "DisplayName",
"Status", "StartType"}``. Components register the services their role installs with
``add_service`` (AD FS: adfssrv, and W3SVC where the 2.x sign-in pages live in IIS). A restart is
an event, not configuration: it leaves the state as it was (the lab's operation log shows it).
"""

from __future__ import annotations

from ..state import EstateStore
from .errors import not_found
from .machine import Machine, simulates

KIND = "service"


def _key(host: str, name: str) -> str:
    return f"{host}|{name.lower()}"


def add_service(store: EstateStore, host: str, name: str, display_name: str, start_type: str = "Automatic") -> None:
    store.put(
        KIND,
        _key(host, name),
        {"Name": name, "DisplayName": display_name, "Status": "Running", "StartType": start_type},
    )


def remove_service(store: EstateStore, host: str, name: str) -> None:
    store.delete(KIND, _key(host, name))


def _names(p: dict) -> list[str]:
    names = p.get("Name")
    return [str(n) for n in (names if isinstance(names, list) else [names])] if names is not None else []


def _missing(name: str, command: str):
    return not_found(
        f"Cannot find any service with service name '{name}'.",
        f"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{command}",
    )


@simulates("Get-Service")
def get_service(machine: Machine, p: dict) -> list[dict]:
    names = _names(p)
    if not names:
        return [s for k, s in sorted(machine.store.items_prefix(KIND, f"{machine.name}|").items())]
    out = []
    for name in names:
        service = machine.store.get(KIND, _key(machine.name, name))
        if service is None:
            raise _missing(name, "GetServiceCommand")
        out.append(service)
    return out


@simulates("Restart-Service")
def restart_service(machine: Machine, p: dict) -> list[dict]:
    out = []
    for name in _names(p):
        service = machine.store.get(KIND, _key(machine.name, name))
        if service is None:
            raise _missing(name, "RestartServiceCommand")
        service["Status"] = "Running"
        machine.store.put(KIND, _key(machine.name, name), service)
        if p.get("PassThru"):
            out.append(service)
    return out
