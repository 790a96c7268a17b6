"""IIS (WebAdministration module): sites' bindings, applications and configuration properties.

State, per host:

* ``iis_bindings``: ``[{"site", "protocol", "bindingInformation", "certificateHash"?,
  "certificateStoreName"?}]`` (applicationHost.config ``<bindings>``). A CA host is prepared
  with IIS and an https binding on the Default Web Site (what /certsrv needs once SSL is
  required; tests remove it to model a host without one).
* ``iis_applications``: ``[{"site", "path", "physicalPath", "applicationPool"}]``.
* ``iis_config``: key ``<host>|<location lower>|<section lower>``, the attributes set at that
  location (``<location path="Default Web Site/CertSrv">``); what is not set has the schema's
  default (``SECTION_DEFAULTS``).

The rule the lab models (issue 7 defect 6): with ``sslFlags`` requiring SSL, a request over http
gets 403.4 ("SSL required"), and without an https binding the site cannot be reached over https
at all: ``certsrv_status`` answers what a browser would get.
"""

from __future__ import annotations

from ..estate import Estate
from ..state import EstateStore
from .errors import WindowsError
from .hosts import seeds
from .machine import Machine, simulates
from .servermanager import on_install

BINDINGS = "iis_bindings"
APPLICATIONS = "iis_applications"
CONFIG = "iis_config"
DEFAULT_SITE = "Default Web Site"

ACCESS = "system.webServer/security/access"
EXTENDED_PROTECTION = "system.webServer/security/authentication/windowsAuthentication/extendedProtection"
WINDOWS_AUTH = "system.webServer/security/authentication/windowsAuthentication"
# The IIS schema's defaults (%windir%\system32\inetsrv\config\schema\IIS_schema.xml).
SECTION_DEFAULTS: dict[str, dict[str, object]] = {
    ACCESS.lower(): {"sslFlags": "None", "flags": "Script, Read"},
    EXTENDED_PROTECTION.lower(): {"tokenChecking": "None", "flags": "None"},
    WINDOWS_AUTH.lower(): {"enabled": False, "authPersistNonNTLM": True, "useKernelMode": True},
}
SSL_FLAGS = ("None", "Ssl", "SslNegotiateCert", "SslRequireCert", "SslMapCert", "Ssl128")
ENUMS = {("sslflags",): SSL_FLAGS, ("tokenchecking",): ("None", "Allow", "Require")}


def bindings(machine: Machine) -> list[dict]:
    return machine.store.get(BINDINGS, machine.name) or []


def applications(machine: Machine) -> list[dict]:
    return machine.store.get(APPLICATIONS, machine.name) or []


def add_application(machine: Machine, site: str, path: str, physical_path: str) -> None:
    apps = [
        a
        for a in applications(machine)
        if not (a["site"].lower() == site.lower() and a["path"].lower() == path.lower())
    ]
    apps.append({"site": site, "path": path, "physicalPath": physical_path, "applicationPool": "DefaultAppPool"})
    machine.store.put(APPLICATIONS, machine.name, apps)


def remove_application(machine: Machine, site: str, path: str) -> None:
    machine.store.put(
        APPLICATIONS,
        machine.name,
        [
            a
            for a in applications(machine)
            if not (a["site"].lower() == site.lower() and a["path"].lower() == path.lower())
        ],
    )


def _config_key(machine: Machine, location: str, section: str) -> str:
    return f"{machine.name}|{location.strip('/').lower()}|{section.strip('/').lower()}"


def config(machine: Machine, location: str, section: str) -> dict:
    """The effective attributes of ``section`` at ``location`` (server level, then the site, then
    the location itself: IIS configuration inheritance)."""
    effective = dict(SECTION_DEFAULTS.get(section.strip("/").lower(), {}))
    parts = [p for p in location.strip("/").split("/") if p]
    for depth in range(len(parts) + 1):
        effective.update(machine.store.get(CONFIG, _config_key(machine, "/".join(parts[:depth]), section)) or {})
    return effective


def set_config(machine: Machine, location: str, section: str, name: str, value) -> None:
    key = _config_key(machine, location, section)
    current = machine.store.get(CONFIG, key) or {}
    existing = next((k for k in current if k.lower() == name.lower()), name)
    current.pop(existing, None)
    current[name] = value
    machine.store.put(CONFIG, key, current)


def certsrv_status(machine: Machine, scheme: str, site: str = DEFAULT_SITE) -> int | str:
    """What a browser gets for /certsrv: 200, 403.4 (SSL required over http), or "unreachable"
    (https without an https binding), 404 without the application."""
    if scheme == "https" and not any(
        b["site"].lower() == site.lower() and b["protocol"] == "https" for b in bindings(machine)
    ):
        return "unreachable"
    if not any(a["path"].lower() == "/certsrv" for a in applications(machine)):
        return 404
    ssl = config(machine, f"{site}/CertSrv", ACCESS).get("sslFlags", "None")
    if scheme == "http" and "Ssl" in str(ssl).replace("SslNegotiateCert", "").replace("SslRequireCert", "").replace(
        "SslMapCert", ""
    ):
        return "403.4"
    return 200


@seeds
def seed_iis(store: EstateStore, estate: Estate) -> None:
    for host in estate.in_group("ca"):
        store.put(
            BINDINGS,
            host.name,
            [
                {"site": DEFAULT_SITE, "protocol": "http", "bindingInformation": "*:80:"},
                {
                    "site": DEFAULT_SITE,
                    "protocol": "https",
                    "bindingInformation": "*:443:",
                    "certificateStoreName": "My",
                    "certificateHash": _seed_thumbprint(host.fqdn),
                },
            ],
        )


def _seed_thumbprint(fqdn: str) -> str:
    """The https binding's certificate as the host's admin enrolled it: a stable stand-in
    thumbprint (the lab does not serve TLS on port 443)."""
    import hashlib

    return hashlib.sha1(f"lab-https-{fqdn.lower()}".encode()).hexdigest().upper()


@on_install("Web-Server")
def _default_web_site(machine: Machine) -> None:
    if not any(b["site"] == DEFAULT_SITE for b in bindings(machine)):
        machine.store.put(
            BINDINGS,
            machine.name,
            [*bindings(machine), {"site": DEFAULT_SITE, "protocol": "http", "bindingInformation": "*:80:"}],
        )


def _site_exists(machine: Machine, site: str) -> bool:
    return any(b["site"].lower() == site.lower() for b in bindings(machine))


@simulates("Get-WebBinding")
def get_web_binding(machine: Machine, p: dict) -> list[dict]:
    out = []
    for b in bindings(machine):
        if p.get("Name") and b["site"].lower() != str(p["Name"]).lower():
            continue
        if p.get("Protocol") and b["protocol"].lower() != str(p["Protocol"]).lower():
            continue
        if p.get("Port") and b["bindingInformation"].split(":")[1] != str(p["Port"]):
            continue
        out.append(
            {
                "protocol": b["protocol"],
                "bindingInformation": b["bindingInformation"],
                "sslFlags": 0,
                "certificateHash": b.get("certificateHash", ""),
                "certificateStoreName": b.get("certificateStoreName", ""),
                "ItemXPath": f"/system.applicationHost/sites/site[@name='{b['site']}']",
            }
        )
    return out


@simulates("New-WebBinding")
def new_web_binding(machine: Machine, p: dict) -> dict:
    site = str(p.get("Name") or DEFAULT_SITE)
    if not _site_exists(machine, site):
        raise WindowsError(
            f"Cannot find path 'IIS:\\Sites\\{site}' because it does not exist.",
            "ObjectNotFound",
            "PathNotFound,Microsoft.IIs.PowerShell.Provider.NewWebBindingCommand",
        )
    protocol = str(p.get("Protocol") or "http").lower()
    port = p.get("Port") or (443 if protocol == "https" else 80)
    info = f"{p.get('IPAddress') or '*'}:{port}:{p.get('HostHeader') or ''}"
    if any(
        b["site"].lower() == site.lower() and b["protocol"] == protocol and b["bindingInformation"] == info
        for b in bindings(machine)
    ):
        raise WindowsError(
            "Cannot add duplicate collection entry of type 'binding' with combined key attributes "
            f"'protocol, bindingInformation' respectively set to '{protocol}, {info}'",
            "InvalidOperation",
            "Microsoft.IIs.PowerShell.Provider.NewWebBindingCommand",
        )
    machine.store.put(
        BINDINGS, machine.name, [*bindings(machine), {"site": site, "protocol": protocol, "bindingInformation": info}]
    )
    return {"protocol": protocol, "bindingInformation": info}


@simulates("Get-WebApplication")
def get_web_application(machine: Machine, p: dict) -> list[dict]:
    out = []
    for app in applications(machine):
        if p.get("Site") and app["site"].lower() != str(p["Site"]).lower():
            continue
        if p.get("Name") and app["path"].strip("/").lower() != str(p["Name"]).strip("/").lower():
            continue
        out.append(
            {
                "path": app["path"],
                "PhysicalPath": app["physicalPath"],
                "applicationPool": app["applicationPool"],
                "enabledProtocols": "http",
            }
        )
    return out


def _location(p: dict) -> str:
    location = p.get("Location") or ""
    if isinstance(location, list):
        location = location[0] if location else ""
    ps_path = p.get("PSPath") or "IIS:\\"
    if isinstance(ps_path, list):
        ps_path = ps_path[0]
    rest = str(ps_path)[len("IIS:\\") :] if str(ps_path).upper().startswith("IIS:\\") else ""
    rest = rest.replace("\\", "/").removeprefix("Sites/").strip("/")
    return "/".join(x for x in (rest, str(location).strip("/")) if x)


def _section(p: dict) -> str:
    section = p.get("Filter")
    section = section[0] if isinstance(section, list) else section
    section = str(section).strip("/")
    if section.lower() not in SECTION_DEFAULTS:
        raise WindowsError(
            f"Filename: \r\nError: Unrecognized configuration path '{section}'",
            "NotSpecified",
            "System.Runtime.InteropServices.COMException",
        )
    return section


@simulates("Get-WebConfiguration")
def get_web_configuration(machine: Machine, p: dict) -> dict:
    section = _section(p)
    return {**config(machine, _location(p), section), "SectionPath": "/" + section, "Location": _location(p)}


@simulates("Get-WebConfigurationProperty")
def get_web_configuration_property(machine: Machine, p: dict) -> list:
    values = config(machine, _location(p), _section(p))
    names = p["Name"] if isinstance(p["Name"], list) else [p["Name"]]
    lowered = {k.lower(): v for k, v in values.items()}
    return [{"Name": n, "Value": lowered.get(str(n).lower())} for n in names]


@simulates("Set-WebConfigurationProperty")
def set_web_configuration_property(machine: Machine, p: dict) -> None:
    section = _section(p)
    location = _location(p)
    name = str(p["Name"])
    value = p.get("Value")
    known = {k.lower(): k for k in SECTION_DEFAULTS[section.lower()]}
    if name.lower() not in known:
        raise WindowsError(
            f"Property {name} is not found on {section}.",
            "InvalidArgument",
            "Microsoft.IIs.PowerShell.Provider.SetConfigurationPropertyCommand",
        )
    name = known[name.lower()]
    allowed = ENUMS.get((name.lower(),))
    if allowed is not None:
        parts = [x.strip() for x in str(value).split(",")]
        bad = [x for x in parts if x.lower() not in {a.lower() for a in allowed}]
        if bad:
            raise WindowsError(
                f"Enum must be one of {', '.join(allowed)}",
                "NotSpecified",
                "System.Runtime.InteropServices.COMException,"
                "Microsoft.IIs.PowerShell.Provider.SetConfigurationPropertyCommand",
            )
        value = ",".join(next(a for a in allowed if a.lower() == x.lower()) for x in parts)
    if location:
        site = location.split("/")[0]
        if not _site_exists(machine, site):
            raise WindowsError(
                f"Cannot find path 'IIS:\\Sites\\{site}' because it does not exist.",
                "ObjectNotFound",
                "Microsoft.IIs.PowerShell.Provider.SetConfigurationPropertyCommand",
            )
    set_config(machine, location, section, name, value)
