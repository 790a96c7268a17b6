"""The TPM (TrustedPlatformModule module): present and ready unless a test says otherwise."""
from __future__ import annotations

from ..estate import Estate
from ..state import EstateStore
from .hosts import seeds
from .machine import HOST_PROPS, Machine, simulates


@seeds
def seed_tpm(store: EstateStore, estate: Estate) -> None:
    for host in estate.in_group("clients"):
        props = store.get(HOST_PROPS, host.name) or {}
        store.put(HOST_PROPS, host.name, {**props, "tpm": {"present": True, "ready": True}})


@simulates("Get-Tpm")
def get_tpm(machine: Machine, p: dict) -> dict:
    tpm = machine.props.get("tpm") or {"present": False, "ready": False}
    return {"TpmPresent": bool(tpm.get("present")), "TpmReady": bool(tpm.get("ready")),
            "TpmEnabled": bool(tpm.get("present")), "TpmActivated": bool(tpm.get("present")),
            "TpmOwned": bool(tpm.get("ready"))}
