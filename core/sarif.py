"""Located findings (file, line, key) and their SARIF 2.1.0 form, for GitHub code scanning.

``lync2fa validate`` and the run reports (plan/apply/verify/rollback) both describe what they
found as :class:`Issue` objects; :func:`sarif_log` turns them into one SARIF run whose results
point at the inventory file and line (or at the PowerShell script), with a rule for each rule
id that carries help text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SEVERITIES = ("error", "warning", "note")
SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


@dataclass
class Issue:
    rule: str
    severity: str  # error | warning | note
    message: str
    file: str = ""  # inventory file (or script) the issue is about
    line: int = 0  # 1-based; 0 = unknown
    col: int = 0
    key: str = ""  # the variable (or host/group) concerned
    host: str = ""
    task: str = ""
    fix: str = ""
    kind: str = "inventory"  # inventory | plan | script | run
    properties: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


def at_or_above(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


# Rule id -> (short description, help). Plugins' rules first, then validate's own and the runs'.
RULES: dict[str, tuple[str, str]] = {
    "ESC1": (
        "Enrollee-supplied subject on a client-authentication template",
        "Low-privileged users who may enroll and name the subject can get a logon certificate for any user. "
        "Build the subject from Active Directory (templates_enrollee_supplies_subject: false) or require "
        "manager approval.",
    ),
    "ESC2": (
        "Any Purpose or no EKU on an enrollable template",
        "A certificate without EKU or with Any Purpose works for client authentication and as an enrollment "
        "agent. Name the EKUs (templates_ekus) or require manager approval.",
    ),
    "ESC3": (
        "Enrollment agent abuse",
        "The Certificate Request Agent EKU, or requests co-signed by any agent, let low-privileged users "
        "enroll on behalf of others. Restrict enrollment or require manager approval.",
    ),
    "ESC4": (
        "Template writable by low-privileged principals",
        "Whoever can write a template can make it vulnerable. Grant Write/FullControl to administrators "
        "only (templates_extra_acl).",
    ),
    "ESC8": (
        "Web enrollment without HTTPS and Extended Protection",
        "NTLM relay to /certsrv issues certificates as the relayed account. Keep ca_require_ssl: true and "
        "ca_extended_protection: Require.",
    ),
    "ESC9": (
        "No security extension on a client-authentication template",
        "Without the SID extension a certificate can be mapped to another account. Keep "
        "templates_no_security_extension: false.",
    ),
    "ESC13": (
        "Issuance policy linked to a group",
        "A certificate with a group-linked issuance policy grants that group's rights. Remove the link or "
        "restrict enrollment.",
    ),
    "ESC15": (
        "Schema version 1 template with an enrollee-supplied subject",
        "Schema 1 templates accept any application policy in the request (EKUwu). Use schema version 2 "
        "and a subject from Active Directory.",
    ),
    "ESC17": (
        "Server-authentication template with an enrollee-supplied subject",
        "Low-privileged users can get a TLS certificate for any server name. Restrict enrollment or "
        "require manager approval.",
    ),
    "SHA1": ("CA signs with SHA-1", "SHA-1 signatures are broken. Set ca_hash_algorithm: sha256 (or stronger)."),
    "KEY_LENGTH": ("RSA key shorter than 2048 bits", "Use ca_key_length 2048 or more (4096 recommended)."),
    "BROAD_ENROLL": (
        "Every account may enroll",
        "Grant Read and Enroll to a dedicated smart-card users group, not Domain Users.",
    ),
    "TOKEN_REPLAY": ("AD FS token replay detection off", "Keep adfs_prevent_token_replays: true."),
    "ROLLBACK_ORDER": ("AD FS rolled back before Lync", "Roll back both tiers together: --tier lync,adfs."),
    "GLOBAL_SCOPE": (
        "Lync change outside service scope",
        "lync2fa changes Service:<service>:<pool FQDN> collections only; Global or site scope would "
        "force 2FA on every client. Leave the identity variables unset.",
    ),
    "METADATA_HTTP": (
        "AD FS metadata over plain http",
        "Use https://<Federation Service Name>/federationmetadata/2007-06/federationmetadata.xml.",
    ),
    "FS_NAME": (
        "Metadata URL names the AD FS server, not its Federation Service Name",
        "Point lync_metadata_uri at the Federation Service Name.",
    ),
    "DEFAULT_PIN": (
        "Default virtual smart card PIN",
        "12345678 is printed in Microsoft's documentation. Set a per-user client_pin from ansible-vault.",
    ),
    "DEFAULT_PUK": ("Default virtual smart card PUK", "Set another client_puk from vault, or none."),
    "DEFAULT_ADMIN_KEY": ("Default virtual smart card admin key", "Keep client_admin_key: random."),
    "SHARED_PIN": ("Several cards share one PIN", "Give each client its own client_pin (host_vars, vault)."),
    "EXPORTABLE_KEY": ("Exportable smart-card logon key", "Keep templates_exportable_key: false."),
    # lync2fa validate
    "YAML_SYNTAX": ("Inventory file is not valid YAML", "Fix the YAML syntax at the position shown."),
    "INVENTORY_SHAPE": (
        "Inventory structure Ansible does not read",
        "A YAML inventory group has only hosts:, vars: and children:, each a mapping; an INI "
        "inventory has [group], [group:vars] and [group:children] sections.",
    ),
    "DUPLICATE_KEY": (
        "Variable set twice in one mapping",
        "YAML keeps the last value only; remove the other one so the file says what applies.",
    ),
    "INVENTORY_READ": ("Inventory file cannot be read", "Check the file's permissions and encoding (UTF-8)."),
    "VAULT": ("Vault-encrypted data cannot be decrypted", "Pass the right --vault-password-file."),
    "UNKNOWN_VAR": (
        "Variable no task declares",
        "A <tier>_<parameter> variable that matches no task parameter is ignored, and so is a misspelt "
        "Ansible connection variable (ansible_pasword): check its spelling against `lync2fa plugins`, "
        "the tier READMEs and Ansible's winrm connection documentation.",
    ),
    "PARAM": (
        "Invalid task parameter",
        "The value does not match the parameter's type, choices or rules (see the tier's README).",
    ),
    "TEMPLATE": (
        "Variable cannot be templated",
        "The value refers to an undefined variable or is not a valid Jinja2 expression.",
    ),
    "CONNECTION": (
        "Invalid WinRM connection variable",
        "Check ansible_host, ansible_port, ansible_user, ansible_winrm_transport and ansible_winrm_scheme.",
    ),
    "INSECURE_TRANSPORT": (
        "Basic authentication over plain http",
        "The password travels in clear text. Use ntlm/kerberos/credssp (encrypted) or https.",
    ),
    "UNENCRYPTED_TRANSPORT": (
        "WinRM message encryption off over http",
        "Keep ansible_winrm_message_encryption: auto (or always), or use https.",
    ),
    "CERT_VALIDATION_OFF": (
        "TLS certificate validation off",
        "Keep ansible_winrm_server_cert_validation: validate and set "
        "ansible_winrm_ca_trust_path to the CA that issued the WinRM listeners' certificates.",
    ),
    "DOUBLE_HOP": (
        "Task needs network credentials the session does not have",
        "Over NTLM, Basic or Kerberos without delegation a WinRM session cannot reach AD, the Lync "
        "CMS or a remote CA. Use ansible_winrm_transport: credssp, Kerberos delegation, or "
        "lync2fa_local_resources when the resource is on the host.",
    ),
    "BAD_FQDN": ("Malformed DNS name", "Use a fully qualified DNS name such as pool01.contoso.com."),
    "BAD_URL": ("Malformed URL", "Use an absolute https URL whose host is a fully qualified DNS name."),
    "ADFS_MISSING": ("Lync pools but no AD FS host", "Add the AD FS server to group adfs."),
    "POOL_WITHOUT_TRUST": (
        "Lync pool without its AD FS relying-party trust",
        "Every host of lync_pools needs a trust: leave adfs_pools unset (every pool) or list the pool's FQDN.",
    ),
    "TRUST_WITHOUT_POOL": (
        "AD FS trust for a pool the inventory does not have",
        "Remove the entry from adfs_pools or add the pool to lync_pools.",
    ),
    "METADATA_HOST": (
        "Metadata URL names no AD FS of the inventory",
        "Use https://<adfs_federation_service_name>/federationmetadata/2007-06/federationmetadata.xml.",
    ),
    "CLIENT_TEMPLATE": (
        "Client enrolls from a template no CA issues",
        "Set client_template to the template the CA issues (templates_name, or one of ca_templates).",
    ),
    "CA_CONFIG": (
        "CA configuration string matches no CA host",
        "client_ca_config is '<CA host FQDN>\\<CA common name>' of a host in group ca; leave it unset to derive it.",
    ),
    "GROUP_NAME": (
        "Group name close to a role group",
        "The role groups are ca, adfs, lync_pools, lync_edge and clients; a misspelt group gets no task.",
    ),
    "PSCHECK": ("PowerShell static checks unavailable", "Install a lync2fa with lync2fa.pscheck."),
    # runs
    "TASK_FAILED": ("A task failed", "Read the message; fix the host or the inventory and run again."),
    "NOT_IN_PLACE": (
        "The rollout is not in place",
        "verify found settings that apply would still change: run lync2fa apply.",
    ),
    "CHECK_FAILED": ("A verification check failed", "Read the message: the check names what is missing."),
    "CERT_CHAIN": (
        "Certificate chain check failed",
        "The client's smart-card certificate is missing, expired, not on the card or does not chain "
        "to the CA: run client.enrollment again.",
    ),
}


def describe(rule: str, fallback_help: str = "") -> tuple[str, str]:
    if rule in RULES:
        return RULES[rule]
    return (rule.replace("_", " ").capitalize(), fallback_help or "See the message.")


def _level(severity: str) -> str:
    return severity if severity in SEVERITIES else "warning"


def _location(issue: Issue, base: Path) -> dict:
    loc: dict = {}
    if issue.file:
        path = Path(issue.file)
        try:
            uri = path.resolve().relative_to(base).as_posix()
            artifact = {"uri": uri, "uriBaseId": "%SRCROOT%"}
        except ValueError:
            artifact = {"uri": path.resolve().as_uri()}
        physical: dict = {"artifactLocation": artifact}
        if issue.line:
            physical["region"] = {"startLine": issue.line, "startColumn": max(1, issue.col or 1)}
        loc["physicalLocation"] = physical
    logical = [
        {"name": n, "kind": k}
        for n, k in ((issue.key, "variable"), (issue.task, "function"), (issue.host, "module"))
        if n
    ]
    if logical:
        loc["logicalLocations"] = logical
    return loc


def sarif_log(
    issues: list[Issue],
    version: str,
    invocation: dict | None = None,
    base: str | Path | None = None,
    automation_id: str = "lync2fa",
) -> dict:
    """A SARIF 2.1.0 log with one run; artifact URIs are relative to ``base`` (the working
    directory: the repository root in CI) under %SRCROOT%."""
    base_path = Path(base or Path.cwd()).resolve()
    rule_ids = sorted({i.rule for i in issues})
    index = {r: n for n, r in enumerate(rule_ids)}
    fixes = {i.rule: i.fix for i in issues if i.fix}
    severity_of: dict[str, str] = {}
    for i in issues:
        if i.rule not in severity_of or SEVERITIES.index(i.severity) < SEVERITIES.index(severity_of[i.rule]):
            severity_of[i.rule] = i.severity
    rules = []
    for rule in rule_ids:
        short, help_text = describe(rule, fixes.get(rule, ""))
        rules.append(
            {
                "id": rule,
                "name": "".join(w.capitalize() for w in rule.lower().split("_")),
                "shortDescription": {"text": short},
                "fullDescription": {"text": short},
                "help": {"text": help_text, "markdown": f"**{short}**\n\n{help_text}"},
                "defaultConfiguration": {"level": _level(severity_of[rule])},
            }
        )
    results = []
    for i in issues:
        text = i.message if not i.fix else f"{i.message.rstrip('.')}. Fix: {i.fix}"
        result = {"ruleId": i.rule, "ruleIndex": index[i.rule], "level": _level(i.severity), "message": {"text": text}}
        loc = _location(i, base_path)
        if loc:
            result["locations"] = [loc]
        props = {k: v for k, v in (("host", i.host), ("task", i.task), ("key", i.key), ("kind", i.kind)) if v}
        props.update(i.properties)
        if props:
            result["properties"] = props
        results.append(result)
    run = {
        "tool": {"driver": {"name": "lync2fa", "version": version, "semanticVersion": version, "rules": rules}},
        "automationDetails": {"id": automation_id},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": base_path.as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if invocation:
        run["invocations"] = [invocation]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def dumps(log: dict) -> str:
    return json.dumps(log, indent=2)
