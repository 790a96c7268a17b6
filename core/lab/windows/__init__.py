"""The lab's model of Windows: what the primitive library does on a real host, simulated.

``run(machine, request, secrets)`` answers a host script's request (``lync2fa.hostscript``).
Simulated cmdlets, native programs and named primitives register themselves from the modules
imported below, one per Windows component; they model Windows once for every tier.
"""

from __future__ import annotations

# Each module registers what it simulates (import for the side effect).
from . import (  # noqa: F401,E402  # noqa: F401,E402  (AD CS, Server Manager features)  # noqa: F401,E402  # noqa: F401,E402  (certificate stores, user-context jobs)  # noqa: F401,E402  (AD FS, files, Windows services)
    accounts,
    adcs,
    adcs_templates,
    adfs,
    certificates,
    core_cmdlets,
    errors,
    filesystem,
    iis,
    lync,  # noqa: F401,E402  (the Lync/SfB management shell over the CMS)
    primitives,
    scheduled_tasks,
    servermanager,
    services,
    tpm,
)
from .hosts import seed  # noqa: E402
from .machine import HOST_PROPS, Machine

__all__ = ["HOST_PROPS", "Machine", "errors", "primitives", "seed"]
