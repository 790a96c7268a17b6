"""Lync / Skype for Business Server tier: passive (AD FS) authentication on the pools' and
Directors' web services, Kerberos and NTLM off for the Registrar and Edge SIP proxies, and an
optional Unified Contact Store rollback (reference sections 8 and 11.5).

Service scope only: every identity is ``Service:<WebServer|Registrar|EdgeServer>:<fqdn>`` built
from the inventory; a plan that names any other scope is refused (rule GLOBAL_SCOPE) and the
decisions refuse it again, so not even ``--allow-insecure GLOBAL_SCOPE`` makes lync2fa change the
Global scope or a site.

The wanted settings are one table (``settings.py``); ``decide.py`` reads the Central Management
Store (facts), compares and emits documented Cs* cmdlets (operations). Every task reads the CMS,
which lives in SQL on another server for an Enterprise pool: they declare ``reaches=("cms",)``,
and the ones reading Lync users from AD (``Get-CsUser``) also ``"ad"``.

Choices the doc set leaves open:
* Directors' Registrar (reference 8.3, open point): the doc creates proxy collections for Edge and
  Enterprise/Standard Edition pools only. A Director authenticates and redirects; users register
  on their home pool, whose Registrar enforces 2FA. So a Director's Registrar is left alone unless
  ``lync_director_registrar: true`` (for a Director dedicated to 2FA users).
* Edge: an Edge server holds a read-only replica of the Central Management Store, so the
  ``Service:EdgeServer`` collections are written from the first non-Director host in
  ``lync_pools`` (``lync_edge_identities``; empty on the other pool hosts).
* Order: the web services lose Windows, certificate and PIN authentication only after the AD FS
  trusts and smart-card sign-in are in place (and after the optional UCS rollback): a pool is
  never left with no way in.
"""

from __future__ import annotations

from urllib.parse import urlparse

from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from ..adfs.claims import federation_metadata_url
from . import decide
from .scopes import is_service_scope, service_identity, tag_policy


def _is_director(host) -> bool:
    return str(host.var("lync2fa_lync_role", "")).lower() == "director"


def _federation_service_name(adfs_host) -> str:
    return adfs_host.var("adfs_federation_service_name", adfs_host.fqdn)


def _metadata_uri(host) -> str | None:
    servers = host.inventory.hosts_in("adfs")
    return federation_metadata_url(_federation_service_name(servers[0])) if servers else None


def _edge_identities(host) -> list[str]:
    pools = host.inventory.hosts_in("lync_pools")
    writers = [h for h in pools if not _is_director(h)] or pools
    if not writers or writers[0].name != host.name:
        return []
    return [service_identity("EdgeServer", edge.fqdn) for edge in host.inventory.hosts_in("lync_edge")]


def _check_metadata_uri(p: dict) -> list[str]:
    url = urlparse(p["metadata_uri"])
    return (
        []
        if url.scheme in ("http", "https") and url.hostname
        else [f"metadata_uri {p['metadata_uri']!r} is not an absolute URL"]
    )


TASKS = [
    Task(
        name="lync.ucs_rollback",
        group="lync_pools",
        facts=decide.ucs_rollback_facts,
        decide=decide.ucs_rollback,
        reaches=("cms", "ad"),
        description="Optional: Invoke-CsUcsRollback for the pool's users and a user services policy with "
        "UcsAllowed $False granted to them (a rollback alone lasts 7 days)",
        params=(
            Param(
                "ucs_rollback",
                "bool",
                default=False,
                description="Move the pool's users' contacts out of the Unified Contact Store (they vanish "
                "under 2FA) and keep them out",
            ),
            Param(
                "ucs_policy",
                default="lync2fa-NoUcs",
                description="Per-user (tag) user services policy with UcsAllowed $False, created if missing",
            ),
            Param(
                "ucs_registrar_pool",
                required=True,
                description="Registrar pool whose users are rolled back (default: the host's FQDN)",
            ),
        ),
        derived={"ucs_registrar_pool": lambda host: host.fqdn},
    ),
    Task(
        name="lync.web_service",
        group="lync_pools",
        facts=decide.web_service_facts,
        decide=decide.web_service,
        reaches=("cms",),
        after=("adfs.relying_party", "adfs.client_auth", "lync.ucs_rollback"),
        description="Passive (AD FS) authentication on Service:WebServer:<pool>; Windows, certificate and "
        "PIN authentication off",
        params=(
            Param(
                "web_service_identity",
                required=True,
                description="Service:WebServer:<pool FQDN> (default: the host's FQDN); service scope only",
            ),
            Param(
                "metadata_uri",
                required=True,
                description="AD FS federation metadata: https://<Federation Service Name>/federationmetadata/"
                "2007-06/federationmetadata.xml (default: from the adfs host)",
            ),
        ),
        derived={
            "web_service_identity": lambda host: service_identity("WebServer", host.fqdn),
            "metadata_uri": _metadata_uri,
        },
        checks=(_check_metadata_uri,),
    ),
    Task(
        name="lync.registrar_proxy",
        group="lync_pools",
        facts=decide.registrar_proxy_facts,
        decide=decide.registrar_proxy,
        reaches=("cms",),
        after=("lync.web_service",),
        description="Kerberos and NTLM off (certificate on) for client-to-proxy authentication at "
        "Service:Registrar:<pool>",
        params=(
            Param(
                "registrar_identity",
                required=True,
                description="Service:Registrar:<pool FQDN> (default: the host's FQDN); service scope only",
            ),
            Param(
                "director",
                "bool",
                default=False,
                description="The host is a Director (default: lync2fa_lync_role == director)",
            ),
            Param(
                "director_registrar",
                "bool",
                default=False,
                description="Also change a Director's Registrar (the doc set does not; see the tier docs)",
            ),
        ),
        derived={"registrar_identity": lambda host: service_identity("Registrar", host.fqdn), "director": _is_director},
    ),
    Task(
        name="lync.edge_proxy",
        group="lync_pools",
        facts=decide.edge_proxy_facts,
        decide=decide.edge_proxy,
        reaches=("cms",),
        after=("lync.web_service",),
        description="Kerberos and NTLM off (certificate on) for client-to-proxy authentication at "
        "Service:EdgeServer:<edge pool>, written from the first pool server",
        params=(
            Param(
                "edge_identities",
                "list",
                elements="str",
                default=[],
                description="Service:EdgeServer:<edge FQDN> identities (default: every lync_edge host, on the "
                "first non-Director host of lync_pools); service scope only",
            ),
        ),
        derived={"edge_identities": _edge_identities},
    ),
    Task(
        name="lync.rollback",
        group="lync_pools",
        facts=decide.rollback_facts,
        decide=decide.rollback,
        reaches=("cms", "ad"),
        kind="rollback",
        description="Remove the service collections lync2fa created, restore the ones it modified, "
        "give users back their previous user services policy",
    ),
]

SCOPE_FIX = "leave the variable unset (lync2fa derives Service:<service>:<FQDN> from the inventory)"


def _scope_findings(plan) -> list[Finding]:
    checks = (
        ("lync.web_service", "web_service_identity", "WebServer"),
        ("lync.registrar_proxy", "registrar_identity", "Registrar"),
        ("lync.edge_proxy", "edge_identities", "EdgeServer"),
    )
    findings = []
    for task, param, service in checks:
        for step in plan.steps_for(task):
            values = step.params[param]
            for identity in values if isinstance(values, list) else [values]:
                if not is_service_scope(identity, service):
                    findings.append(
                        Finding(
                            "GLOBAL_SCOPE",
                            f"lync_{param} {identity!r} is not a Service:{service}:<FQDN> identity; "
                            "lync2fa changes service scope only (Global or site scope would break sign-in for every "
                            "client that cannot do 2FA)",
                            SCOPE_FIX,
                            host=step.host.name,
                            task=task,
                        )
                    )
    for step in plan.steps_for("lync.ucs_rollback"):
        if step.params["ucs_rollback"] and tag_policy(step.params["ucs_policy"]) is None:
            findings.append(
                Finding(
                    "GLOBAL_SCOPE",
                    f"lync_ucs_policy {step.params['ucs_policy']!r} is not a per-user (tag) policy "
                    "name; UcsAllowed $False on the Global or a site policy would affect every user",
                    "name a per-user policy, e.g. lync2fa-NoUcs",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    return findings


def _metadata_findings(plan) -> list[Finding]:
    findings = []
    for step in plan.steps_for("lync.web_service"):
        uri = step.params["metadata_uri"]
        host = (urlparse(uri).hostname or "").lower()
        if urlparse(uri).scheme != "https":
            findings.append(
                Finding(
                    "METADATA_HTTP",
                    f"lync_metadata_uri {uri!r} is not https: the AD FS signing keys the pool trusts "
                    "could be swapped in transit",
                    "use https://<Federation Service Name>/federationmetadata/2007-06/federationmetadata.xml",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
        for server in step.host.inventory.hosts_in("adfs"):
            service_name = _federation_service_name(server).lower()
            if host in (server.fqdn.lower(), server.name.lower()) and host != service_name:
                findings.append(
                    Finding(
                        "FS_NAME",
                        f"lync_metadata_uri names the AD FS server {host}, not its Federation Service "
                        f"Name {service_name}",
                        f"use {federation_metadata_url(service_name)}",
                        severity="warning",
                        host=step.host.name,
                        task=step.task.name,
                    )
                )
    return findings


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    return _scope_findings(plan) + _metadata_findings(plan)
