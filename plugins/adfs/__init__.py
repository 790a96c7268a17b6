"""AD FS tier: a relying-party trust per Lync pool and Director with the procedure's claim rules,
token replay detection, and smart-card (TLS client) sign-in at AD FS (reference sections 6, 7).

The decisions (``decide.py``) find the AD FS version from the host's facts (snap-in
Microsoft.Adfs.PowerShell = 2.0; the ADFS module = 2.1 or, with global authentication policies,
3.0 and later) and act accordingly. Every task is local to the AD FS server: ``reaches=()``.
"""

from __future__ import annotations

from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from . import decide
from .claims import FQDN, trust_name


def _pools(host) -> list[str]:
    return [h.fqdn for h in host.inventory.hosts_in("lync_pools")]


def _check_pools(p: dict) -> list[str]:
    problems = [f"pool {pool!r} is not a fully qualified DNS name" for pool in p["pools"] if not FQDN.fullmatch(pool)]
    names = [trust_name(pool).lower() for pool in p["pools"]]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        problems.append(f"pools whose first DNS label is the same would share the trust name(s) {', '.join(clashes)}")
    return problems


def _check_web_config(p: dict) -> list[str]:
    path = p["web_config"]
    return [] if path.lower().endswith("\\web.config") else [f"web_config {path!r} is not a path to a web.config file"]


WEB_CONFIG = Param(
    "web_config",
    default=decide.WEB_CONFIG,
    description="AD FS 2.x sign-in web.config (backed up to <path>.lync2fa-backup)",
)

TASKS = [
    Task(
        name="adfs.relying_party",
        group="adfs",
        facts=decide.relying_party_facts,
        decide=decide.relying_party,
        reaches=(),  # the farm's WID only
        description="A relying-party trust <pool>-PassiveAuth per pool and Director, with the permit-all "
        "authorization rule and the primarysid pass-through transform rule",
        params=(
            Param(
                "pools",
                "list",
                elements="str",
                required=True,
                description="Pool and Director web services FQDNs (default: every host in lync_pools)",
            ),
            Param(
                "token_lifetime",
                "int",
                default=0,
                minimum=0,
                maximum=10080,
                description="Token lifetime in minutes, e.g. 240 to cover long meetings; 0 leaves it as is",
            ),
        ),
        derived={"pools": _pools},
        checks=(_check_pools,),
    ),
    Task(
        name="adfs.token_replay",
        group="adfs",
        facts=decide.token_replay_facts,
        decide=decide.token_replay,
        reaches=(),  # Set-AdfsProperties: WID
        description="AD FS token replay detection (Set-ADFSProperties -PreventTokenReplays $true)",
        params=(
            Param(
                "prevent_token_replays",
                "bool",
                default=True,
                description="Turn token replay detection on (recommended for 2FA); false leaves it as is",
            ),
        ),
    ),
    Task(
        name="adfs.client_auth",
        group="adfs",
        # The global policy is in the farm's WID; the 2.x sign-in web.config is a local file.
        facts=decide.client_auth_facts,
        decide=decide.client_auth,
        reaches=(),
        after=("ca.authority",),
        description="Smart-card sign-in at AD FS: TlsClient first in the 2.x sign-in web.config, or "
        "certificate authentication as the only primary provider of the 3.0+ global "
        "authentication policy (farm-wide)",
        params=(
            WEB_CONFIG,
            Param(
                "extranet",
                "bool",
                default=True,
                description="AD FS 3.0+: certificate authentication as the only extranet primary provider too",
            ),
        ),
        checks=(_check_web_config,),
    ),
    Task(
        name="adfs.rollback",
        group="adfs",
        kind="rollback",
        facts=decide.rollback_facts,
        decide=decide.rollback,
        reaches=(),  # WID, local registry and files
        after=("lync.rollback",),
        description="Remove the trusts lync2fa added, restore modified trusts, PreventTokenReplays, the "
        "sign-in web.config (from its backup) or the global authentication policy",
        params=(WEB_CONFIG,),
        checks=(_check_web_config,),
    ),
]


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    findings = []
    for step in plan.steps_for("adfs.token_replay"):
        if not step.params["prevent_token_replays"]:
            findings.append(
                Finding(
                    "TOKEN_REPLAY",
                    "adfs_prevent_token_replays is false: a captured AD FS token can be replayed",
                    "set adfs_prevent_token_replays: true (the planning topic recommends it where security matters)",
                    severity="warning",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    if plan.steps_for("adfs.rollback") and not plan.steps_for("lync.rollback"):
        for step in plan.steps_for("adfs.rollback"):
            findings.append(
                Finding(
                    "ROLLBACK_ORDER",
                    "rolling back AD FS while Lync web services may still use passive "
                    "authentication only locks their users out",
                    "roll back both: --tier lync,adfs",
                    severity="warning",
                    host=step.host.name,
                    task=step.task.name,
                )
            )
    return findings
