"""``lync2fa preflight``: read-only checks of every host before a rollout, one script per host.

What a real estate gets wrong before the first change: Windows PowerShell older than 5.1, an
execution policy that refuses module scripts, a session that cannot reach AD or the Lync CMS
(the double hop), the modules a tier needs, the https binding /certsrv will require, the TPM
and free virtual-smart-card slots on clients. Each check is ok, warn or fail; any fail makes
``apply`` refuse to start (exit 1) unless ``--skip-preflight``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from . import execution_policy, hostscript
from .connection import ConnectionSettings
from .decision import Facts
from .execute import read_facts
from .hostops import ad_object_fact, cmdlet_fact, host_fact, named_fact, registry_fact
from .reach import LOCAL_VAR, local_resources, needs_network
from .transport import ConnectionPool, TransportError

DOMAIN_CONTROLLER = "2"  # Win32_OperatingSystem.ProductType: 1 workstation, 2 domain controller, 3 server

# Modules a host must offer, per tier it serves (either name of a tuple will do).
MODULES_BY_TIER: dict[str, list[tuple[str, ...]]] = {
    "ca": [("ServerManager",)],
    "templates": [],
    "adfs": [("ADFS",)],
    "lync": [("SkypeForBusiness", "Lync")],
    "client": [("TrustedPlatformModule",)],
}
# Modules a tier's own task brings with the Windows feature it installs (ca.authority:
# ADCS-Cert-Authority; ca.web_enrollment: ADCS-Web-Enrollment and IIS): reported, and their
# absence before the first rollout is a note, never a failure.
INSTALLED_BY_TASK: dict[str, list[tuple[str, str]]] = {
    "ca": [("ADCSDeployment", "ca.authority"), ("WebAdministration", "ca.web_enrollment")],
}
VSC_LIMIT = 10  # virtual smart cards per TPM (tpmvscmgr)
# AD FS 2.0 has no ADFS module: its cmdlets are the snap-in registered here (lync2fa imports its assembly).
ADFS_SNAPIN_KEY = "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellSnapIns\\Microsoft.Adfs.PowerShell"


@dataclass
class Check:
    host: str
    name: str
    status: str  # ok, warn, fail
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreflightReport:
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


def queries(tiers: set[str], reaches: set[str]) -> dict[str, dict]:
    wanted = sorted(
        {name for tier in tiers for names in MODULES_BY_TIER.get(tier, []) for name in names}
        | {name for tier in tiers for name, _ in INSTALLED_BY_TASK.get(tier, [])}
    )
    out = {
        "host": host_fact(),
        "os": cmdlet_fact("Get-CimInstance", {"ClassName": "Win32_OperatingSystem"}, ["ProductType", "Caption"]),
        **execution_policy.fact_queries(),
    }
    if wanted:
        out["modules"] = cmdlet_fact("Get-Module", {"ListAvailable": True, "Name": wanted}, ["Name"])
    if "adfs" in tiers:
        out["adfs_snapin"] = registry_fact(ADFS_SNAPIN_KEY, ["ModuleName"])
    if "ad" in reaches:
        out["ad"] = ad_object_fact("{configurationNamingContext}", ["distinguishedName"])
    if "ca" in tiers:
        out["https_binding"] = cmdlet_fact(
            "Get-WebBinding",
            {"Name": "Default Web Site", "Protocol": "https"},
            ["protocol", "bindingInformation"],
            module="WebAdministration",
        )
    if "client" in tiers:
        out["tpm"] = cmdlet_fact("Get-Tpm", {}, ["TpmPresent", "TpmReady"], module="TrustedPlatformModule")
        out["cards"] = named_fact("virtual_smartcards")
    return out


def evaluate(
    host: str, tiers: set[str], reaches: set[str], facts: Facts, delegates: bool, local: frozenset = frozenset()
) -> list[Check]:
    """The checks of one host from its facts; ``local``: what its inventory says is on the host
    itself (lync2fa_local_resources), checked where the facts can tell."""
    checks: list[Check] = []

    def add(name: str, status: str, detail: str) -> None:
        checks.append(Check(host, name, status, detail))

    info = facts.get("host") or {}
    version = str(info.get("powershell_version", "0"))
    too_old = hostscript.powershell_too_old(version)
    add("powershell", "fail" if too_old else "ok", too_old or f"Windows PowerShell {version}")
    os_rows = facts.get("os") or [{}]
    product = os_rows[0].get("ProductType") if os_rows else None
    if "ad" in local and product is not None:
        is_dc = str(product) == DOMAIN_CONTROLLER
        add(
            "local AD",
            "ok" if is_dc else "fail",
            "a domain controller: AD is on this host"
            if is_dc
            else f"{LOCAL_VAR} says AD is on this host, but it is not a domain controller (ProductType "
            f"{product}): its steps that reach AD would fail with the double hop",
        )
    policy, scope = execution_policy.effective(
        {s: facts.get(f"policy_{s}") for s in execution_policy.SCOPES}, product, process="Bypass"
    )
    if policy == "Restricted":
        add(
            "execution policy",
            "fail",
            f"Restricted ({scope}): module scripts and format files cannot load "
            "(Import-Module of the tier's modules fails); set RemoteSigned by Group Policy",
        )
    elif policy == "AllSigned":
        add(
            "execution policy",
            "warn",
            f"AllSigned ({scope}, overrides -ExecutionPolicy Bypass): only signed "
            "script files run; lync2fa sends no script file (-EncodedCommand), Microsoft's modules are signed",
        )
    else:
        add("execution policy", "ok", f"{policy} ({scope})")
    add(
        "domain",
        "ok" if info.get("part_of_domain") else "fail",
        f"member of {info.get('domain')}" if info.get("part_of_domain") else "not joined to a domain",
    )
    if "modules" in facts.raw:
        present = {str(row.get("Name", "")).lower() for row in facts.get("modules") or []}
        if (facts.get("adfs_snapin") or {}).get("exists"):
            present.add("adfs")  # AD FS 2.0: the snap-in's assembly gives the ADFS cmdlets
        for tier in sorted(tiers):
            for names in MODULES_BY_TIER.get(tier, []):
                found = [n for n in names if n.lower() in present]
                add(
                    f"module {names[0]}",
                    "ok" if found else "fail",
                    f"{found[0]} present" if found else f"none of {', '.join(names)} is installed ({tier} tier)",
                )
            for name, task in INSTALLED_BY_TASK.get(tier, []):
                add(
                    f"module {name}",
                    "ok",
                    f"{name} present" if name.lower() in present else f"{name} not installed yet: installed by {task}",
                )
    if "ad" in facts.raw:
        if facts.ok("ad"):
            add("reach AD", "ok", "the session can read the configuration partition")
        else:
            status = "fail" if not delegates else "warn"
            add(
                "reach AD",
                status,
                "the session cannot reach Active Directory: "
                f"{(facts.error('ad') or {}).get('message', '').strip()} (the double hop: use CredSSP or "
                "Kerberos delegation)",
            )
    if "https_binding" in facts.raw:
        if not facts.ok("https_binding"):
            add(
                "certsrv https",
                "warn",
                "IIS is not installed yet (ca.web_enrollment installs it); /certsrv "
                "will require SSL, so the site needs an https binding before Web Enrollment is usable",
            )
        elif facts.get("https_binding"):
            add("certsrv https", "ok", "Default Web Site has an https binding")
        else:
            add(
                "certsrv https",
                "fail",
                "Default Web Site has no https binding: /certsrv would answer 403.4 "
                "once SSL is required (New-WebBinding -Protocol https and a server certificate)",
            )
    if "tpm" in facts.raw:
        rows = facts.get("tpm") or []
        tpm = rows[0] if rows else {}
        if not facts.ok("tpm") or not tpm.get("TpmPresent"):
            add("tpm", "fail", "no TPM: a TPM virtual smart card cannot be created")
        elif not tpm.get("TpmReady"):
            add("tpm", "fail", "the TPM is present but not ready (Initialize-Tpm, or take ownership)")
        else:
            add("tpm", "ok", "TPM present and ready")
    if "cards" in facts.raw and facts.ok("cards"):
        cards = facts.get("cards") or []
        free = VSC_LIMIT - len(cards)
        add("smart card slots", "ok" if free > 0 else "fail", f"{len(cards)} virtual smart card(s), {free} free")
    return checks


def run(
    inventory,
    tasks: dict,
    limit: set[str] | None = None,
    forks: int = 16,
    pool: ConnectionPool | None = None,
    deadline_s: float | None = None,
    stop=None,
) -> PreflightReport:
    """Read the facts of every host any task targets (once per host) and evaluate them.
    ``deadline_s``: a host that does not answer in time fails its check; ``stop`` (an Event, set
    by SIGINT/SIGTERM): hosts not started yet are not checked."""
    hosts: dict[str, tuple] = {}
    for task in tasks.values():
        for host in inventory.hosts_in(task.group, limit):
            _, tiers, reaches = hosts.setdefault(host.name, (host, set(), set()))
            tiers.add(task.tier)
            # what its own session must reach (not what is on the host, nor what a credential covers)
            reaches.update(needs_network(task, host, lambda name, t=task, h=host: h.var(t.var_prefix + name)))
    pool = pool or ConnectionPool()

    def check(entry) -> list[Check]:
        host, tiers, reaches = entry
        if stop is not None and stop.is_set():
            return [Check(host.name, "preflight", "fail", "not checked: the run was interrupted")]
        settings = ConnectionSettings.from_host(host)
        try:
            facts = read_facts(pool.get(settings), queries(tiers, reaches), deadline_s)
        except hostscript.HostScriptError as exc:
            text = str(exc)
            if hostscript.POWERSHELL_REQUIRED in text:  # the session's own check refused the host
                return [Check(host.name, "powershell", "fail", text[text.index(hostscript.POWERSHELL_REQUIRED) :])]
            return [Check(host.name, "host script", "fail", text)]
        except TransportError as exc:
            return [Check(host.name, "connection", "fail", str(exc))]
        return evaluate(host.name, tiers, reaches, facts, settings.delegates, frozenset(local_resources(host)))

    try:
        with ThreadPoolExecutor(max_workers=max(1, forks)) as workers:
            results = list(workers.map(check, hosts.values()))
    finally:
        pool.close()
    return PreflightReport([c for batch in results for c in batch])


def print_table(report: PreflightReport, console) -> None:
    """A table of checks per host (host text escaped: it is data, never markup)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="preflight", show_lines=False)
    for column in ("host", "check", "status", "detail"):
        table.add_column(column)
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in report.checks:
        table.add_row(escape(c.host), escape(c.name), f"[{style[c.status]}]{c.status}[/]", escape(c.detail))
    console.print(table)
    failed = len(report.failed)
    console.print(f"preflight: {len(report.checks) - failed} ok or warn, {failed} failed", highlight=False)
