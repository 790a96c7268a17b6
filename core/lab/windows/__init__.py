"""The lab's model of Windows: what the primitive library does on a real host, simulated.

``run(machine, request, secrets)`` answers a host script's request (``lync2fa.hostscript``).
Simulated cmdlets, native programs and named primitives register themselves from the modules
imported below, one per Windows component; they model Windows once for every tier.
"""
from __future__ import annotations

from . import errors, primitives
from .machine import HOST_PROPS, Machine

# Each module registers what it simulates (import for the side effect).
from . import core_cmdlets, iis, tpm  # noqa: F401,E402
from . import adcs, servermanager  # noqa: F401,E402  (AD CS, Server Manager features)
from . import lync  # noqa: F401,E402  (the Lync/SfB management shell over the CMS)
from . import accounts, adcs_templates  # noqa: F401,E402
from . import certificates, scheduled_tasks  # noqa: F401,E402  (certificate stores, user-context jobs)
from . import adfs, filesystem, services  # noqa: F401,E402  (AD FS, files, Windows services)
from .hosts import seed  # noqa: E402

__all__ = ["HOST_PROPS", "Machine", "errors", "primitives", "seed"]
