"""AD CS in the configuration partition: the Public Key Services containers every forest has,
and the built-in certificate templates installing an Enterprise CA writes there.

Windows keeps a certificate template as a ``pKICertificateTemplate`` object under
``CN=Certificate Templates,CN=Public Key Services,CN=Services,<configuration NC>`` with its raw
attributes (flag words, FILETIME periods, OIDs) and a security descriptor; the OID objects
(``msPKI-Enterprise-Oid``) live under ``CN=OID``, whose own ``msPKI-Cert-Template-OID`` is the
forest's base OID. The lab stores exactly that (``lync2fa.lab.windows.directory``): no
friendly view, no per-task state. Windows' documented defaults of the built-in templates come
from ``lync2fa.adcs_builtin`` (what the ESC gate also reads).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from ... import adcs
from ...adcs_builtin import BUILTIN_TEMPLATES
from ..estate import Estate
from ..state import EstateStore
from .directory import Directory, translate
from .hosts import seeds
from .machine import Machine

CONTAINER_OWNER = "Enterprise Admins"


def forest_oid(domain: str) -> str:
    """The forest's msPKI-Cert-Template-OID base (AD CS makes one, randomly, per forest; the lab
    derives it from the domain so that a lab is reproducible)."""
    digest = hashlib.sha256(domain.encode()).digest()
    return "1.3.6.1.4.1.311.21.8." + ".".join(str(int.from_bytes(digest[i : i + 3], "big")) for i in range(0, 18, 3))


def _acl(store: EstateStore, netbios: str, owner: str, aces) -> dict:
    out = []
    for principal, rights, object_type in aces:
        sid, account = translate(store, principal)
        out.append(
            {
                "sid": sid,
                "account": account,
                "rights": int(rights),
                "object_type": object_type or adcs.ALL_EXTENDED_RIGHTS,
                "allow": True,
                "inherited": False,
            }
        )
    return {"owner": f"{netbios}\\{owner}", "aces": out}


@seeds
def seed_forest_oid(store: EstateStore, estate: Estate) -> None:
    """CN=OID is itself an msPKI-Enterprise-Oid carrying the forest's base OID for templates and
    issuance policies (the Public Key Services containers are seeded by the AD CS component)."""
    directory = Directory(store, estate.domain)
    dn = directory.resolve(adcs.OID_CONTAINER)
    obj = directory.get(dn) or {
        "dn": dn,
        "attributes": {"cn": ["OID"]},
        "acl": {"owner": f"{estate.netbios}\\{CONTAINER_OWNER}", "aces": []},
    }
    obj["class"] = adcs.OID_CLASS
    obj["attributes"].setdefault("displayName", ["OID"])
    obj["attributes"].setdefault(adcs.TEMPLATE_OID_ATTRIBUTE, [forest_oid(estate.domain)])
    directory.put(obj)


def builtin_template_object(store: EstateStore, estate: Estate, name: str) -> dict:
    """The AD object of built-in template ``name`` as a fresh Enterprise CA installation writes it."""
    spec = BUILTIN_TEMPLATES[name]
    directory = Directory(store, estate.domain)
    # Written by the installation on the DC the CA uses: visible to the CA at once.
    created = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S.0Z")
    attributes = {
        "cn": [name],
        **{k: list(v) for k, v in spec["attributes"].items()},
        adcs.TEMPLATE_OID_ATTRIBUTE: [f"{forest_oid(estate.domain)}.1.{spec['oid_arc']}"],
        "whenCreated": [created],
    }
    return {
        "dn": directory.resolve(adcs.template_dn(name)),
        "class": adcs.TEMPLATE_CLASS,
        "attributes": attributes,
        "acl": _acl(store, estate.netbios, spec["owner"], spec["aces"]),
    }


def create_builtin_templates(machine: Machine) -> list[str]:
    """What Install-AdcsCertificationAuthority -CAType EnterpriseRootCA does to the templates:
    writes each built-in template that is not in AD yet (an existing one, perhaps changed by an
    administrator, is left as it is). Returns the names it created."""
    directory = machine.directory
    created = []
    for name in BUILTIN_TEMPLATES:
        if directory.exists(adcs.template_dn(name)):
            continue
        directory.put(builtin_template_object(machine.store, machine.estate, name))
        created.append(name)
    return created
