"""A new lab host's Windows: its PowerShell, product type, installed modules and the
components' initial state, by role. Components register seeders with ``@seeds``; tests change
a host's properties (``Machine.set_props``) to model a host set up wrongly."""

from __future__ import annotations

from collections.abc import Callable

from ..estate import Estate
from ..state import EstateStore
from .machine import HOST_PROPS

SEEDERS: list[Callable[[EstateStore, Estate], None]] = []

# Modules present on a host by inventory group (what installing the role puts there; ADCS
# modules come with the feature, which ca.authority installs: see the ADCS component).
MODULES_BY_GROUP = {
    "ca": ["ServerManager", "WebAdministration"],
    "adfs": ["ServerManager", "ADFS"],
    "lync_pools": ["ServerManager", "SkypeForBusiness", "WebAdministration"],
    "lync_edge": ["ServerManager", "SkypeForBusiness"],
    "clients": ["TrustedPlatformModule"],
}
DEFAULT_PROPS = {"powershell_version": "5.1.17763.1"}
WORKSTATION, SERVER = 1, 3  # Win32_OperatingSystem.ProductType


def seeds(func: Callable[[EstateStore, Estate], None]) -> Callable[[EstateStore, Estate], None]:
    SEEDERS.append(func)
    return func


def seed(store: EstateStore, estate: Estate) -> None:
    for host in estate.hosts:
        modules = sorted({m for g in host.groups for m in MODULES_BY_GROUP.get(g, [])})
        product = WORKSTATION if "clients" in host.groups else SERVER
        store.put(
            HOST_PROPS,
            host.name,
            {**DEFAULT_PROPS, "modules": modules, "groups": list(host.groups), "product_type": product},
        )
    for seeder in SEEDERS:
        seeder(store, estate)


def effective_execution_policy(machine, process: str | None = None) -> str:
    """The policy this host enforces, from its registry, by the same rules the controller uses
    (lync2fa.execution_policy): set a Group Policy value in the lab's registry to model AllSigned."""
    from ...execution_policy import SCOPES, effective

    registry = {}
    for scope, path in SCOPES.items():
        key = machine.registry.read(path)
        registry[scope] = {"values": {n: e["value"] for n, e in key["values"].items()}} if key else None
    return effective(registry, machine.props.get("product_type"), process)[0]
