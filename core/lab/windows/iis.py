"""IIS (WebAdministration module): sites' bindings. A CA host is prepared with IIS and an https
binding on the Default Web Site (what /certsrv needs once SSL is required)."""
from __future__ import annotations

from ..estate import Estate
from ..state import EstateStore
from .hosts import seeds
from .machine import Machine, simulates

BINDINGS = "iis_bindings"
DEFAULT_SITE = "Default Web Site"


def bindings(machine: Machine) -> list[dict]:
    return machine.store.get(BINDINGS, machine.name) or []


@seeds
def seed_iis(store: EstateStore, estate: Estate) -> None:
    for host in estate.in_group("ca"):
        store.put(BINDINGS, host.name, [
            {"site": DEFAULT_SITE, "protocol": "http", "bindingInformation": "*:80:"},
            {"site": DEFAULT_SITE, "protocol": "https", "bindingInformation": "*:443:"},
        ])


@simulates("Get-WebBinding")
def get_web_binding(machine: Machine, p: dict) -> list[dict]:
    out = []
    for b in bindings(machine):
        if p.get("Name") and b["site"].lower() != str(p["Name"]).lower():
            continue
        if p.get("Protocol") and b["protocol"].lower() != str(p["Protocol"]).lower():
            continue
        if p.get("Port") and not b["bindingInformation"].split(":")[1] == str(p["Port"]):
            continue
        out.append({"protocol": b["protocol"], "bindingInformation": b["bindingInformation"],
                    "ItemXPath": f"/system.applicationHost/sites/site[@name='{b['site']}']"})
    return out
