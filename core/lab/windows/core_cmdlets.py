"""Windows PowerShell 5.1's own cmdlets that facts and operations call directly."""

from __future__ import annotations

from .errors import WindowsError
from .machine import CORE_MODULES, Machine, simulates

WORKSTATION, SERVER = 1, 3


@simulates("Get-CimInstance")
def get_cim_instance(machine: Machine, p: dict) -> list[dict]:
    cls = str(p.get("ClassName", ""))
    props = machine.props
    if cls.lower() == "win32_operatingsystem":
        product = props.get("product_type", SERVER)
        caption = (
            "Microsoft Windows 10 Enterprise" if product == WORKSTATION else "Microsoft Windows Server 2019 Datacenter"
        )
        return [{"ProductType": product, "Caption": caption, "Version": "10.0.17763"}]
    if cls.lower() == "win32_computersystem":
        return [{"Name": machine.name.upper(), "PartOfDomain": True, "Domain": machine.estate.domain}]
    raise WindowsError(
        "Invalid class ",
        "MetadataError",
        "HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
    )


@simulates("Get-Module")
def get_module(machine: Machine, p: dict) -> list[dict]:
    if not p.get("ListAvailable"):
        return [{"Name": m} for m in sorted(machine.imported)]
    available = [*machine.props.get("modules", ()), *CORE_MODULES]
    names = p.get("Name")
    wanted = None if names is None else {n.lower() for n in ([names] if isinstance(names, str) else names)}
    return [{"Name": m} for m in available if wanted is None or m.lower() in wanted]
