"""Server Manager (ServerManager module): Windows roles, role services and features.

State: store kind ``windows_feature``, key ``<host>|<feature name lower>``, value
``{"Name", "InstallState"}`` for the features that are installed (everything else is
"Available"). Installing a feature puts its PowerShell modules on the host (the lab refuses a
cmdlet whose module is not there, as Windows does not know its name) and runs the component
hooks registered with ``@on_install`` (e.g. IIS creates the Default Web Site).

``Install-WindowsFeature`` / ``Get-WindowsFeature`` as documented on Microsoft Learn: an unknown
name is Windows' ``ArgumentNotValid`` error; installing an installed feature is
``NoChangeNeeded``; ``-IncludeManagementTools`` adds the feature's RSAT tools.
"""

from __future__ import annotations

from collections.abc import Callable

from ..estate import Estate
from ..state import EstateStore
from .errors import WindowsError
from .hosts import seeds
from .machine import HOST_PROPS, Machine, simulates

KIND = "windows_feature"

# name -> (display name, depends on, modules it brings, management tools (features), their modules)
FEATURES: dict[str, dict] = {
    "ADCS-Cert-Authority": {
        "display": "Certification Authority",
        "depends": [],
        "modules": ["ADCSDeployment", "ADCSAdministration"],
        "tools": ["RSAT-ADCS", "RSAT-ADCS-Mgmt"],
    },
    "ADCS-Web-Enrollment": {
        "display": "Certification Authority Web Enrollment",
        "depends": ["Web-Server"],
        "modules": ["ADCSDeployment"],
        "tools": [],
    },
    "Web-Server": {
        "display": "Web Server (IIS)",
        "depends": [],
        "modules": ["WebAdministration"],
        "tools": ["Web-Mgmt-Console"],
    },
    "ADFS-Federation": {
        "display": "Active Directory Federation Services",
        "depends": [],
        "modules": ["ADFS"],
        "tools": [],
    },
    "RSAT-ADCS": {"display": "Active Directory Certificate Services Tools", "depends": [], "modules": [], "tools": []},
    "RSAT-ADCS-Mgmt": {
        "display": "Certification Authority Management Tools",
        "depends": [],
        "modules": ["ADCSAdministration"],
        "tools": [],
    },
    "Web-Mgmt-Console": {"display": "IIS Management Console", "depends": [], "modules": [], "tools": []},
    "RSAT-AD-PowerShell": {
        "display": "Active Directory module for Windows PowerShell",
        "depends": [],
        "modules": ["ActiveDirectory"],
        "tools": [],
    },
}
# What other lab components do when a feature arrives (feature name lower -> hooks).
INSTALL_HOOKS: dict[str, list[Callable[[Machine], None]]] = {}


def on_install(feature: str) -> Callable:
    def register(func: Callable[[Machine], None]) -> Callable[[Machine], None]:
        INSTALL_HOOKS.setdefault(feature.lower(), []).append(func)
        return func

    return register


def installed(store: EstateStore, host: str, feature: str) -> bool:
    entry = store.get(KIND, f"{host}|{feature.lower()}")
    return bool(entry) and entry.get("InstallState") == "Installed"


def _canonical(name: str) -> str:
    for known in FEATURES:
        if known.lower() == str(name).lower():
            return known
    raise WindowsError(
        f"ArgumentNotValid: The role, role service, or feature name is not valid: '{name}'. The name was not found.",
        "InvalidArgument",
        "NameDoesNotExist,Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand",
    )


def _names(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def mark_installed(machine: Machine, feature: str) -> bool:
    """Install ``feature`` (and what it depends on); True when something was installed."""
    name = _canonical(feature)
    if installed(machine.store, machine.name, name):
        return False
    for dependency in FEATURES[name]["depends"]:
        mark_installed(machine, dependency)
    machine.store.put(KIND, f"{machine.name}|{name.lower()}", {"Name": name, "InstallState": "Installed"})
    modules = sorted({*machine.props.get("modules", ()), *FEATURES[name]["modules"]})
    machine.set_props(modules=modules)
    for hook in INSTALL_HOOKS.get(name.lower(), []):
        hook(machine)
    return True


@seeds
def seed_features(store: EstateStore, estate: Estate) -> None:
    """Hosts that have IIS before lync2fa runs (the CA host is prepared with IIS and an https
    binding, see ``iis``): Web-Server installed and WebAdministration present."""
    for host in estate.in_group("ca"):
        store.put(KIND, f"{host.name}|web-server", {"Name": "Web-Server", "InstallState": "Installed"})
        props = store.get(HOST_PROPS, host.name) or {}
        store.put(HOST_PROPS, host.name, {**props, "modules": sorted({*props.get("modules", ()), "WebAdministration"})})


@simulates("Get-WindowsFeature")
def get_windows_feature(machine: Machine, p: dict) -> list[dict]:
    names = _names(p.get("Name")) or list(FEATURES)
    out = []
    for requested in names:
        matches = [n for n in FEATURES if n.lower() == requested.lower()]
        # Get-WindowsFeature writes nothing for an unknown name (no error), as Windows does.
        for name in matches:
            state = "Installed" if installed(machine.store, machine.name, name) else "Available"
            out.append(
                {
                    "Name": name,
                    "DisplayName": FEATURES[name]["display"],
                    "Installed": state == "Installed",
                    "InstallState": state,
                    "FeatureType": "Role Service" if name.startswith("ADCS-") else "Feature",
                }
            )
    return out


@simulates("Install-WindowsFeature")
def install_windows_feature(machine: Machine, p: dict) -> dict:
    names = [_canonical(n) for n in _names(p.get("Name"))]
    changed = []
    for name in names:
        features = [name, *(FEATURES[name]["tools"] if p.get("IncludeManagementTools") else [])]
        for feature in features:
            if mark_installed(machine, feature):
                changed.append(feature)
    if changed and not machine.props.get("windows_update"):
        machine.warnings.append(WINDOWS_UPDATE_OFF)
    return {
        "Success": True,
        "RestartNeeded": "No",
        "ExitCode": "Success" if changed else "NoChangeNeeded",
        "FeatureResult": [{"Name": n, "DisplayName": FEATURES[n]["display"]} for n in changed],
    }


# What Install-WindowsFeature warns after installing something on a server whose Windows Update is
# not turned on (the common case on a fresh server; host property windows_update: true silences it).
WINDOWS_UPDATE_OFF = (
    "Windows automatic updating is not enabled. To ensure that your newly-installed role or feature is "
    "automatically updated, turn on Windows Update."
)


@simulates("Uninstall-WindowsFeature")
def uninstall_windows_feature(machine: Machine, p: dict) -> dict:
    removed = []
    for name in (_canonical(n) for n in _names(p.get("Name"))):
        if installed(machine.store, machine.name, name):
            machine.store.delete(KIND, f"{machine.name}|{name.lower()}")
            removed.append(name)
    return {
        "Success": True,
        "RestartNeeded": "Yes" if removed else "No",
        "ExitCode": "Success" if removed else "NoChangeNeeded",
        "FeatureResult": [{"Name": n, "DisplayName": FEATURES[n]["display"]} for n in removed],
    }
