"""Windows PowerShell 5.1's own cmdlets that operations may call directly."""
from __future__ import annotations

from .machine import Machine, simulates


@simulates("Get-Date")
def get_date(machine: Machine, p: dict) -> dict:
    import datetime as dt
    return {"DateTime": dt.datetime.now(dt.timezone.utc).isoformat()}
