"""Client tier: the Windows PCs of the Lync-enabled users (reference/lync-2fa.md sections 4, 5,
9, 10): a TPM virtual smart card with a PIN that is not the documented default, the Lync client
policy values, the user's smart-card certificate on the card, their verification and rollback.

How each step runs on real Windows, and what cannot be done without the user, is in README.md;
the facts each task reads and its decision are in ``decide.py``.
"""

from __future__ import annotations

import dataclasses
import re

from lync2fa.adcs import SAFE_NAME
from lync2fa.findings import Finding
from lync2fa.hookspecs import hookimpl
from lync2fa.task import Param, Task

from ..templates import TASKS as TEMPLATE_TASKS
from . import decide
from .decide import DEFAULT_PIN, SMART_CARD_KSP

SMART_CARD_CSP = "Microsoft Base Smart Card Crypto Provider"
OFFICE_VERSION = re.compile(r"1[4-9]\.0")  # use fullmatch
PRINTABLE = re.compile(r"[\x20-\x7e]{8,127}")  # use fullmatch


def _ca_config(host):
    """'<CA host FQDN>\\<CA common name>' of the first host in group ca."""
    cas = host.inventory.hosts_in("ca")
    if not cas or not cas[0].has_var("ca_common_name"):
        return None
    return f"{cas[0].fqdn}\\{cas[0].var('ca_common_name')}"


# The template's minimum key size is the templates tier's setting (templates_min_key_size): the
# client makes keys of that length, read where that tier reads it, never set a second time.
TEMPLATE_TASK = next(t for t in TEMPLATE_TASKS if t.name == "templates.smartcard")
MIN_KEY_SIZE = next(p for p in TEMPLATE_TASK.params if p.name == "min_key_size")


def _key_length(host):
    """templates_min_key_size as templates.smartcard reads it: on the first host of its group, else its default."""
    owners = host.inventory.hosts_in(TEMPLATE_TASK.group)
    var = TEMPLATE_TASK.var_prefix + MIN_KEY_SIZE.name
    return owners[0].var(var) if owners and owners[0].has_var(var) else MIN_KEY_SIZE.default


CARD_NAME = Param("card_name", default="Lync2FA", description="Name of the TPM virtual smart card (tpmvscmgr /name)")
PIN = Param(
    "pin",
    secret=True,
    description="Card PIN, 8-127 printable ASCII characters, from a vault-encrypted "
    "client_pin. Unset means the documented default 12345678, which is refused (DEFAULT_PIN)",
)
USER = Param(
    "user", required=True, description="The Lync-enabled user whose card and certificate these are, e.g. CORP\\user01"
)
TEMPLATE = Param(
    "template",
    default="TPMVirtualSmartCardLogon",
    description="Certificate template (common name) the smart-card certificate is enrolled from",
)
CA_CONFIG = Param(
    "ca_config",
    description="CA configuration string '<CA host FQDN>\\<CA common name>'; "
    "default: the first host of group ca and its ca_common_name",
)
OFFICE_VERSIONS = Param(
    "office_versions",
    "list",
    elements="str",
    default=["15.0"],
    description="Office versions whose Lync policy key is set: 15.0 (Lync 2013), "
    "16.0 (Skype for Business 2016 and later)",
)
RENEW_DAYS = Param(
    "renew_days",
    "int",
    default=42,
    minimum=0,
    maximum=3650,
    description="Re-enroll when the certificate expires within this many days",
)
TIMEOUT = Param(
    "task_timeout_s",
    "int",
    default=300,
    minimum=30,
    maximum=3600,
    description="How long a card operation may run in its scheduled task (SYSTEM or the user's session)",
)


def _secrets(p: dict) -> list[str]:
    return [
        f"{name} must be 8 to 127 printable ASCII characters (the virtual smart card's PIN policy)"
        for name in ("pin", "puk")
        if p.get(name) and not PRINTABLE.fullmatch(str(p[name]))
    ]


def _names(p: dict) -> list[str]:
    problems = []
    if "card_name" in p and not SAFE_NAME.fullmatch(p["card_name"]):
        problems.append(f"card_name {p['card_name']!r} is not a valid card name")
    if "template" in p and not SAFE_NAME.fullmatch(p["template"]):
        problems.append(f"template {p['template']!r} is not a valid certificate template name")
    return problems


def _ca(p: dict) -> list[str]:
    host, _, name = (p.get("ca_config") or "").partition("\\")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or not SAFE_NAME.fullmatch(name):
        return [
            (
                "ca_config must be '<CA host FQDN>\\<CA common name>' (no host in group ca with ca_common_name "
                "to derive it from)"
            )
        ]
    return []


def _versions(p: dict) -> list[str]:
    return [
        f"office_versions entry {v!r} is not an Office version such as 15.0 or 16.0"
        for v in p.get("office_versions") or []
        if not OFFICE_VERSION.fullmatch(v)
    ]


def _sip_user(p: dict) -> list[str]:
    if p["clear_sip_profiles"] and not p.get("user"):
        return ["clear_sip_profiles needs client_user (whose SIP profile folders are deleted)"]
    return []


TASKS = [
    Task(
        name="client.virtual_smartcard",
        group="clients",
        facts=decide.vsc_facts,
        decide=decide.vsc_decide,
        description="Check the TPM (present, enabled, spec 1.2+) and create the TPM virtual smart card with the "
        "user's PIN and a random admin key",
        params=(
            CARD_NAME,
            PIN,
            Param(
                "puk",
                secret=True,
                description="Optional PIN unlock key (8-127 characters) from vault; unset: "
                "the card has no PUK (a forgotten PIN means a new card)",
            ),
            Param(
                "admin_key",
                default="random",
                choices=("random", "default"),
                description="tpmvscmgr /adminkey: random (nobody knows it) or the documented default (refused, "
                "DEFAULT_ADMIN_KEY)",
            ),
            TIMEOUT,
        ),
        checks=(_secrets, _names),
    ),
    Task(
        name="client.lync_settings",
        group="clients",
        facts=decide.settings_facts,
        decide=decide.settings_decide,
        description="DisableNTCredentials=0 and SavePassword=0 in the Lync policy key; optionally delete the "
        "user's cached SIP profile folders",
        params=(
            OFFICE_VERSIONS,
            Param(
                "clear_sip_profiles",
                "bool",
                default=False,
                description="Delete %localappdata%\\Microsoft\\Office\\<version>\\Lync\\sip_* of client_user",
            ),
            Param("user", description="The Lync-enabled user (only needed for clear_sip_profiles)"),
        ),
        checks=(_versions, _sip_user),
    ),
    Task(
        name="client.enrollment",
        group="clients",
        facts=decide.enrollment_facts,
        decide=decide.enrollment_decide,
        after=("client.virtual_smartcard", "ca.templates_published", "ca.template_permissions", "templates.smartcard"),
        derived={"ca_config": _ca_config, "key_length": _key_length},
        description="Enroll the user's smart-card certificate onto the virtual smart card, in the user's session",
        params=(
            USER,
            TEMPLATE,
            CA_CONFIG,
            CARD_NAME,
            PIN,
            RENEW_DAYS,
            TIMEOUT,
            Param(
                "provider",
                default=SMART_CARD_CSP,
                choices=(SMART_CARD_CSP, SMART_CARD_KSP),
                description="Provider that creates the key on the card (the template may require one)",
            ),
            dataclasses.replace(
                MIN_KEY_SIZE,
                name="key_length",
                default=None,
                description="RSA key length, in bits, of the key made on the card; default: the template's "
                "minimum, templates_min_key_size (a TPM virtual smart card holds 2048-bit keys)",
            ),
        ),
        checks=(_secrets, _names, _ca),
    ),
    Task(
        name="client.verify",
        group="clients",
        facts=decide.verify_facts,
        decide=decide.verify_decide,
        kind="verify",
        derived={"ca_config": _ca_config},
        description="TPM ready, card present, a valid smart-card logon certificate from the CA on it, "
        "DisableNTCredentials=0 and SavePassword=0",
        params=(USER, TEMPLATE, CA_CONFIG, CARD_NAME, OFFICE_VERSIONS, RENEW_DAYS),
        checks=(_names, _ca, _versions),
    ),
    Task(
        name="client.rollback",
        group="clients",
        facts=decide.rollback_facts,
        decide=decide.rollback_decide,
        kind="rollback",
        description="Remove the certificates and virtual smart cards lync2fa created and restore the Lync "
        "policy values it changed",
    ),
]


@hookimpl
def lync2fa_tasks():
    return TASKS


@hookimpl
def lync2fa_validate_plan(plan):
    findings, flagged, hosts_by_pin = [], set(), {}
    for task_name in ("client.virtual_smartcard", "client.enrollment"):
        for step in plan.steps_for(task_name):
            p, where = step.params, {"host": step.host.name, "task": step.task.name}
            if step.host.name not in flagged and p.get("pin") in (None, "", DEFAULT_PIN):
                flagged.add(step.host.name)
                findings.append(
                    Finding(
                        "DEFAULT_PIN",
                        "client_pin is unset or 12345678, the default PIN printed in Microsoft's "
                        "documentation: the card would be protected by a PIN everyone knows",
                        "set client_pin (8+ characters, per user) from ansible-vault",
                        **where,
                    )
                )
    for step in plan.steps_for("client.virtual_smartcard"):
        p, where = step.params, {"host": step.host.name, "task": step.task.name}
        if p.get("puk") == DEFAULT_PIN:
            findings.append(
                Finding(
                    "DEFAULT_PUK",
                    "client_puk is 12345678, tpmvscmgr's documented default PUK",
                    "set another client_puk from vault, or none (no PUK)",
                    **where,
                )
            )
        if p["admin_key"] == "default":
            findings.append(
                Finding(
                    "DEFAULT_ADMIN_KEY",
                    "client_admin_key is default: the card's admin key would be the published "
                    "010203040506070801020304050607080102030405060708, so anyone can reset the PIN",
                    "keep client_admin_key: random",
                    **where,
                )
            )
        if p.get("pin"):
            hosts_by_pin.setdefault(p["pin"], []).append(step.host.name)
    shared = sorted(h for hosts in hosts_by_pin.values() if len(hosts) > 1 for h in hosts)
    if shared:
        findings.append(
            Finding(
                "SHARED_PIN",
                f"{len(shared)} clients ({', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''}) "
                "get the same card PIN",
                "give each client its own client_pin (host_vars, vault-encrypted)",
                severity="warning",
            )
        )
    return findings
