"""One simulated Windows host as the primitives see it: registry, AD (through the network),
cmdlets bound by the documented signatures, native programs, and the host's properties.

A simulated cmdlet is a Python function registered with ``@simulates("Verb-Noun")``; it gets the
``Machine`` and the parameters *after* the catalog bound them (canonical names, converted
types), exactly what the real cmdlet would see, and returns the objects it writes (dicts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ...catalog import Catalog, CmdletError
from ..estate import Estate, LabHost
from ..logon import logon_user, network_error
from ..state import EstateStore
from .directory import Directory
from .errors import WindowsError, double_hop, not_recognized
from .registry import Registry

SIMULATED: dict[str, Callable[..., Any]] = {}  # canonical cmdlet name -> implementation
NATIVE: dict[str, Callable[..., tuple[int, str]]] = {}
NAMED_FACTS: dict[str, Callable[..., Any]] = {}
NAMED_OPERATIONS: dict[str, Callable[..., Any]] = {}
# Files ``Import-Module -Name <path>`` loads as a module (e.g. a snap-in's cmdlet assembly): each
# function gets the Machine and the path and returns the catalog module whose cmdlets it gives, or None.
MODULE_FILES: list[Callable[..., str | None]] = []
HOST_PROPS = "host_props"
# Win32_OperatingSystem.ProductType of a domain controller (hosts.py: 1 workstation, 3 server).
# Host property ``cms_local: true``: a Standard Edition server, whose own SQL Server Express
# instance (RTC) holds the Lync Central Management Store.
DOMAIN_CONTROLLER = 2
# Modules every Windows PowerShell 5.1 has (the catalog's module of core cmdlets).
CORE_MODULES = (
    "Microsoft.PowerShell.Core",
    "Microsoft.PowerShell.Management",
    "Microsoft.PowerShell.Utility",
    "Microsoft.PowerShell.Security",
    "CimCmdlets",
    "PKI",
    "ScheduledTasks",
)


def simulates(cmdlet: str) -> Callable:
    def register(func):
        SIMULATED[cmdlet.lower()] = func
        return func

    return register


def native(program: str) -> Callable:
    def register(func):
        NATIVE[program.lower()] = func
        return func

    return register


def module_file(func: Callable[..., str | None]) -> Callable[..., str | None]:
    MODULE_FILES.append(func)
    return func


def named_fact(name: str) -> Callable:
    def register(func):
        NAMED_FACTS[name] = func
        return func

    return register


def named_operation(name: str) -> Callable:
    def register(func):
        NAMED_OPERATIONS[name] = func
        return func

    return register


@dataclass(frozen=True)
class PSCredential:
    """A System.Management.Automation.PSCredential as a cmdlet gets it: the library builds one
    (ConvertTo-Lync2faCredential) from the typed value ``lync2fa.hostops.credential`` gives."""

    user: str
    password: str = field(repr=False)


def _parameter_value(value: Any) -> Any:
    """A parameter value as ConvertTo-Lync2faSplat hands it to the cmdlet."""
    if isinstance(value, dict) and set(value) == {"pscredential"}:
        return PSCredential(str(value["pscredential"]["user"]), str(value["pscredential"]["password"]))
    return value


@dataclass
class Machine:
    store: EstateStore
    estate: Estate
    host: LabHost
    delegated: bool = True  # the session has network credentials (CredSSP, delegated Kerberos)
    # A WinRM session's powershell.exe runs in a network logon (the dispatcher opens every session
    # so); a scheduled task does not (``logon``). A Machine opened directly is the host's own.
    network_logon: bool = False
    imported: set = field(default_factory=set)
    on_import: Callable[[str], None] | None = None  # the lab's cost profile and counters
    # Warning records the running operation wrote (stream 3); the library returns them with its result.
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def registry(self) -> Registry:
        return Registry(self.store, self.host.name)

    @property
    def directory(self) -> Directory:
        return Directory(self.store, self.estate.domain)

    @property
    def props(self) -> dict:
        """The host's Windows properties: powershell_version, product_type, modules, ..."""
        return self.store.get(HOST_PROPS, self.host.name) or {}

    def set_props(self, **changes: Any) -> None:
        self.store.put(HOST_PROPS, self.host.name, {**self.props, **changes})

    def logon_user(self, credential: PSCredential) -> bool:
        """LogonUser with an explicit credential (a cmdlet's -Credential): such a logon holds
        network credentials, whatever the session's transport."""
        return logon_user(self.estate, credential.user, credential.password)

    @contextmanager
    def logon(self, delegated: bool) -> Iterator[None]:
        """Run as another logon on this host: a scheduled task as a signed-in user holds that
        user's network credentials, whatever the WinRM session's transport, and is no network
        logon (the smart card service serves it)."""
        session = (self.delegated, self.network_logon)
        self.delegated, self.network_logon = delegated, False
        try:
            yield
        finally:
            self.delegated, self.network_logon = session

    def holds(self, reach: str) -> bool:
        """Whether ``reach`` ("ad", "cms") is on this host itself: a domain controller's AD, a
        Standard Edition server's CMS. A remote CA is the caller's to tell (``find_ca``)."""
        if reach == "ad":
            return self.props.get("product_type") == DOMAIN_CONTROLLER
        return reach == "cms" and bool(self.props.get("cms_local"))

    def require_network(self, reach: str, call: str = "") -> None:
        """Reaching ``reach`` ("ad", "cms", "ca") beyond this host needs network credentials: the
        double hop (issue 7). ``call`` (e.g. "CCertRequest::Submit") prefixes the error as the
        failing COM method does. A Lync cmdlet finds the CMS through its service connection point
        in AD first (Get-CsConfigurationStoreLocation's docs), so the CMS needs AD as well: a
        Standard Edition server's own CMS is reached without credentials only on a domain controller."""
        if reach == "cms":
            self.require_network("ad", call)
        message = None if self.holds(reach) else network_error(reach, self.delegated)
        if message is not None:
            raise double_hop(reach, f"{call}: {message}" if call else message)

    # -- commands ---------------------------------------------------------------------
    def import_module(self, module: str | None) -> None:
        if not module or module in self.imported:
            return
        provides = next((m for m in (f(self, module) for f in MODULE_FILES) if m), None)
        if provides is not None:
            self.imported.add(provides)
        elif module not in CORE_MODULES and module not in self.props.get("modules", ()):
            raise WindowsError(
                f"The specified module '{module}' was not loaded because no valid module file "
                "was found in any module directory.",
                "ResourceUnavailable",
                "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
            )
        self.imported.add(module)
        if self.on_import is not None:
            self.on_import(module)

    def invoke(self, cmdlet: str, params: dict) -> list[dict]:
        catalog = Catalog.load()
        if not catalog.has(cmdlet):
            raise not_recognized(cmdlet)
        module = catalog.module(cmdlet)
        if module not in CORE_MODULES and module not in self.props.get("modules", ()) and module not in self.imported:
            raise not_recognized(cmdlet)  # the module is not on this host: the name is unknown
        if module not in CORE_MODULES:
            self.import_module(module)  # PowerShell 3+ autoloads a cmdlet's module on first use
        try:
            # props "platform": an older Windows Server whose modules lack later cmdlets/parameters.
            values = {name: _parameter_value(value) for name, value in params.items()}
            bound = catalog.bind(cmdlet, values, self.props.get("platform"))
        except CmdletError as exc:
            raise WindowsError(
                exc.message, getattr(exc, "category", "InvalidArgument"), getattr(exc, "fq_error_id", "")
            ) from None
        implementation = SIMULATED.get(catalog.canonical(cmdlet).lower())
        if implementation is None:
            raise WindowsError(f"lab: {catalog.canonical(cmdlet)} is documented but not simulated by the lab")
        output = implementation(self, bound)
        if output is None:
            return []
        return list(output) if isinstance(output, list) else [output]

    def run_native(self, program: str, args: list[str]) -> tuple[int, str]:
        catalog = Catalog.load()
        try:
            catalog.bind_native(program, args)
        except CmdletError as exc:
            return 1, exc.message
        implementation = NATIVE.get(program.lower())
        if implementation is None:
            raise not_recognized(program)
        return implementation(self, list(args))
