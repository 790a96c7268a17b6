"""``lync2fa validate``: offline checks of an inventory, each finding at its file, line and key."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from inventory_files import append, edit, line_of

from lync2fa.validate import UnusableInput, validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventories" / "example"
VAULT = EXAMPLE / ".vault-pass-example"
SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture
def inv(tmp_path):
    """A copy of the example inventory to seed mistakes into."""
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    # A transport that delegates, whatever the example uses: the seeded tests look at one mistake each.
    vars_file = dest / "group_vars" / "all" / "vars.yml"
    vars_file.write_text(
        re.sub(r"(?m)^ansible_winrm_transport: .*$", "ansible_winrm_transport: credssp", vars_file.read_text())
    )
    return dest


def found(inv: Path, rule: str, **where):
    """The issue of ``rule`` at ``where`` (an inventory too broken to use carries its issues too)."""
    try:
        result = validate([inv], vault_password_file=VAULT, scripts=False)
        issues = result.issues
    except UnusableInput as exc:
        result, issues = exc, exc.issues
    hits = [i for i in issues if i.rule == rule]
    assert hits, f"no {rule} among {[(i.rule, i.key, i.message) for i in issues]}"
    for issue in hits:
        if all(getattr(issue, k) == v for k, v in where.items()):
            return issue, result
    pytest.fail(f"{rule} found but not at {where}: {[(i.file, i.line, i.key, i.severity) for i in hits]}")


def inventory_findings(issues):
    """Findings about the inventory (lync2fa's own scripts' findings are warnings of kind script)."""
    return [i for i in issues if i.kind != "script" and i.severity in ("error", "warning")]


def test_example_inventory_is_clean(run_cli):
    result = validate([EXAMPLE], vault_password_file=VAULT)
    assert not inventory_findings(result.issues), result.issues
    cli = run_cli("validate", "-i", EXAMPLE, "--vault-password-file", VAULT)
    assert cli.code == 0, cli.out + cli.err
    assert "validate: ok" in cli.out


def test_lab_inventory_is_clean(lab, run_cli):
    cli = run_cli("validate", "-i", lab.inventory, "--format", "json")
    doc = cli.json()
    assert cli.code == 0 and doc["ok"], doc["findings"]
    assert doc["counts"]["error"] == 0
    assert not [f for f in doc["findings"] if f["kind"] != "script" and f["severity"] == "warning"]
    assert doc["metadata"]["version"] and doc["metadata"]["started_at"]


# --- seeded mistakes: rule, severity, file, line and key --------------------------------------


def test_yaml_shape_unknown_group_key(inv):
    hosts = inv / "hosts.yml"
    edit(hosts, "  children:\n    ca:", "  childern:\n    ca:")
    issue, _ = found(inv, "INVENTORY_SHAPE", key="childern")
    assert (Path(issue.file), issue.line, issue.severity) == (hosts, line_of(hosts, "childern:"), "error")
    assert "children" in issue.fix


def test_yaml_hosts_as_a_list(inv):
    hosts = inv / "hosts.yml"
    edit(
        hosts,
        "    adfs:\n      hosts:\n        adfs01:\n",
        "    adfs:\n      hosts:\n        - adfs01\n      vars:\n        x_unused: 1\n    adfs_old:\n      hosts:\n        adfs01:\n",
    )
    issue, _ = found(inv, "INVENTORY_SHAPE", key="hosts", line=line_of(hosts, "- adfs01") - 1)
    assert issue.severity == "error" and Path(issue.file) == hosts


def test_type_error_in_group_vars(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(vars_file, "ca_key_length: 4096", "ca_key_length: lots")
    issue, _ = found(inv, "PARAM", key="ca_key_length")
    assert (Path(issue.file), issue.line, issue.severity) == (vars_file, line_of(vars_file, "ca_key_length"), "error")
    assert "int" in issue.message


def test_choice_error(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(vars_file, "ca_hash_algorithm: sha256", "ca_hash_algorithm: md5")
    issue, _ = found(inv, "PARAM", key="ca_hash_algorithm")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "ca_hash_algorithm"),
        "error",
    )


def test_unknown_variable_with_closest_name(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(vars_file, "adfs_token_lifetime: 240", "adfs_token_lifetim: 240")
    issue, _ = found(inv, "UNKNOWN_VAR", key="adfs_token_lifetim")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "adfs_token_lifetim"),
        "error",
    )
    assert "adfs_token_lifetime" in issue.message


def test_unknown_variable_without_a_close_name_is_a_warning(inv):
    host_vars = inv / "host_vars" / "ws0101.yml"
    append(host_vars, "---\nclient_favourite_colour: blue\n")
    issue, _ = found(inv, "UNKNOWN_VAR", key="client_favourite_colour")
    assert (Path(issue.file), issue.line, issue.severity) == (host_vars, 2, "warning")


def test_duplicate_key_the_last_one_wins(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "ca_hash_algorithm: sha384\n")
    issue, _ = found(inv, "DUPLICATE_KEY", key="ca_hash_algorithm")
    last = len(vars_file.read_text().splitlines())
    assert (Path(issue.file), issue.line, issue.severity) == (vars_file, last, "warning")


def test_sha1_finding_at_its_variable(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(vars_file, "ca_hash_algorithm: sha256", "ca_hash_algorithm: sha1")
    issue, _ = found(inv, "SHA1", key="ca_hash_algorithm")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "ca_hash_algorithm"),
        "error",
    )


def test_default_pin_in_host_vars(inv):
    host_vars = inv / "host_vars" / "ws0102.yml"
    append(host_vars, "---\n# bob's card\nclient_pin: '12345678'\n")
    issue, result = found(inv, "DEFAULT_PIN", key="client_pin", host="ws0102")
    assert (Path(issue.file), issue.line, issue.severity) == (host_vars, 3, "error")
    assert "12345678" not in json.dumps([i.as_dict() for i in result.issues if i.rule != "DEFAULT_PIN"])


def test_global_scope_lync_identity(inv):
    hosts = inv / "hosts.yml"
    edit(
        hosts,
        "          lync2fa_fqdn: pool01.contoso.com\n",
        "          lync2fa_fqdn: pool01.contoso.com\n          lync_web_service_identity: Global\n",
    )
    issue, _ = found(inv, "GLOBAL_SCOPE", key="lync_web_service_identity")
    assert (Path(issue.file), issue.line, issue.severity) == (
        hosts,
        line_of(hosts, "lync_web_service_identity"),
        "error",
    )


def test_esc1_on_the_template(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "templates_enrollee_supplies_subject: true\ntemplates_enroll_principal_note: x\n")
    issue, _ = found(inv, "ESC1", key="templates_enrollee_supplies_subject")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "templates_enrollee_supplies_subject"),
        "error",
    )


def test_basic_over_http(inv):
    edge = inv / "group_vars" / "lync_edge" / "vars.yml"
    append(edge, "ansible_port: 5985\nansible_winrm_scheme: http\nansible_winrm_transport: basic\n")
    issue, _ = found(inv, "INSECURE_TRANSPORT", key="ansible_winrm_transport")
    assert (Path(issue.file), issue.line, issue.severity) == (edge, line_of(edge, "transport: basic"), "error")
    assert issue.properties["hosts"] == ["edgepool01"]


def test_certificate_validation_off(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(vars_file, "ansible_winrm_server_cert_validation: validate", "ansible_winrm_server_cert_validation: ignore")
    issue, _ = found(inv, "CERT_VALIDATION_OFF", key="ansible_winrm_server_cert_validation")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "server_cert_validation"),
        "warning",
    )
    assert len(issue.properties["hosts"]) == 8  # one finding for the group_vars line, every host named


def test_pool_without_its_trust(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "adfs_pools:\n  - pool01.contoso.com\n")
    issue, _ = found(inv, "POOL_WITHOUT_TRUST", key="adfs_pools")
    assert (Path(issue.file), issue.line, issue.severity) == (vars_file, line_of(vars_file, "adfs_pools:"), "error")
    assert "dirpool01" in issue.message


def test_client_template_not_issued(inv):
    clients = inv / "group_vars" / "clients" / "vars.yml"
    append(clients, "client_template: SmartcardLogonOld\n")
    issue, _ = found(inv, "CLIENT_TEMPLATE", key="client_template")
    assert (Path(issue.file), issue.line, issue.severity) == (clients, line_of(clients, "client_template"), "error")


def test_ca_config_names_no_ca_host(inv):
    clients = inv / "group_vars" / "clients" / "vars.yml"
    append(clients, "client_ca_config: 'ca02.contoso.com\\Contoso Smart Card Root CA'\n")
    issue, _ = found(inv, "CA_CONFIG", key="client_ca_config")
    assert (Path(issue.file), issue.line, issue.severity) == (clients, line_of(clients, "client_ca_config"), "error")


def test_ca_config_names_another_ca(inv):
    clients = inv / "group_vars" / "clients" / "vars.yml"
    append(clients, "client_ca_config: 'ca01.contoso.com\\Some Other CA'\n")
    issue, _ = found(inv, "CA_CONFIG", key="client_ca_config")
    assert "Contoso Smart Card Root CA" in issue.message


def test_malformed_fqdn(inv):
    hosts = inv / "hosts.yml"
    edit(hosts, "lync2fa_fqdn: dirpool01.contoso.com", "lync2fa_fqdn: dirpool01..contoso.com")
    issue, _ = found(inv, "BAD_FQDN", key="lync2fa_fqdn", host="dirpool01")
    assert (Path(issue.file), issue.line, issue.severity) == (hosts, line_of(hosts, "dirpool01..contoso"), "error")


def test_malformed_metadata_url(inv):
    pools = inv / "group_vars" / "lync_pools.yml"
    append(pools, "---\nlync_metadata_uri: https://sts.contoso.com:badport/federationmetadata.xml\n")
    issue, _ = found(inv, "BAD_URL", key="lync_metadata_uri")
    assert (Path(issue.file), issue.line, issue.severity) == (pools, 2, "error")


def test_metadata_url_names_no_adfs(inv):
    pools = inv / "group_vars" / "lync_pools.yml"
    append(
        pools, "---\nlync_metadata_uri: https://sts.fabrikam.com/federationmetadata/2007-06/federationmetadata.xml\n"
    )
    issue, _ = found(inv, "METADATA_HOST", key="lync_metadata_uri")
    assert (Path(issue.file), issue.line, issue.severity) == (pools, 2, "error")


def test_token_replay_off_is_a_warning(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "adfs_prevent_token_replays: false\n")
    issue, _ = found(inv, "TOKEN_REPLAY", key="adfs_prevent_token_replays")
    assert (Path(issue.file), issue.line, issue.severity) == (
        vars_file,
        line_of(vars_file, "adfs_prevent_token_replays"),
        "warning",
    )


def test_misspelt_role_group(inv):
    hosts = inv / "hosts.yml"
    edit(hosts, "    lync_edge:\n", "    lync_edgee:\n")
    issue, _ = found(inv, "GROUP_NAME", key="lync_edgee")
    assert (Path(issue.file), issue.line, issue.severity) == (hosts, line_of(hosts, "lync_edgee:"), "warning")


def test_undefined_template_variable(inv):
    clients = inv / "group_vars" / "clients" / "vars.yml"
    edit(clients, "vault_client_pins[inventory_hostname]", "vault_client_pinz[inventory_hostname]")
    issue, _ = found(inv, "TEMPLATE", key="client_pin")
    assert (Path(issue.file), issue.line, issue.severity) == (clients, line_of(clients, "client_pin"), "error")


def test_ini_inventory(tmp_path):
    ini = tmp_path / "hosts.ini"
    ini.write_text(
        "[all:vars]\nansible_user=CONTOSO\\svc\nansible_password=secret-pass\n"
        "ansible_winrm_scheme=https\nca_common_name=Contoso CA\n\n"
        "[ca]\nca01 ansible_host=ca01.contoso.com lync2fa_fqdn=ca01.contoso.com\n\n"
        "[clients]\nws01 ansible_host=ws01.contoso.com client_user=CONTOSO\\alice client_pin=87654321 "
        "ansible_port=port5986\n\n[clients:vars]\nclient_office_version=16.0\n"
    )
    result = validate([ini])
    port = next(i for i in result.issues if i.key == "ansible_port")
    assert (Path(port.file), port.line, port.rule, port.severity) == (ini, 11, "CONNECTION", "error")
    assert port.col == ini.read_text().splitlines()[10].index("ansible_port") + 1
    typo = next(i for i in result.issues if i.key == "client_office_version")
    assert (typo.line, typo.rule, typo.severity) == (14, "UNKNOWN_VAR", "error")
    assert "client_office_versions" in typo.message
    assert "secret-pass" not in json.dumps([i.as_dict() for i in result.issues])


def test_exit_codes_and_fail_on(inv, run_cli):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "adfs_prevent_token_replays: false\n")  # a warning only
    args = ("validate", "-i", inv, "--vault-password-file", VAULT)
    assert run_cli(*args).code == 0
    assert run_cli(*args, "--fail-on", "warning").code == 1
    append(vars_file, "ca_key_length: 1024\n")
    result = run_cli(*args)
    assert result.code == 1 and "errors (" in result.out and "warnings (" in result.out
    assert result.out.index("errors (") < result.out.index("warnings (")


def test_unusable_input_exits_2(tmp_path, inv, run_cli):
    assert run_cli("validate", "-i", tmp_path / "missing.yml").code == 2
    assert run_cli("validate", "-i", inv, "--vault-password-file", tmp_path / "nope").code == 2
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    ca01: {ansible_host: [\n")
    result = run_cli("validate", "-i", bad)
    assert result.code == 2 and "YAML_SYNTAX" in result.err and "bad.yml:" in result.err


def test_double_hop_at_the_transport(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    text = vars_file.read_text()
    vars_file.write_text(re.sub(r"(?m)^ansible_winrm_transport: .*$", "ansible_winrm_transport: ntlm", text))
    issue, _ = found(inv, "DOUBLE_HOP", key="ansible_winrm_transport")
    assert (Path(issue.file), issue.line, issue.severity) == (vars_file, line_of(vars_file, "transport: ntlm"), "error")
    assert "lync.web_service" in issue.message and "pool01" in issue.properties["hosts"]


def test_scripts_are_checked_with_pscheck(inv, monkeypatch):
    from lync2fa import pscheck

    seen = []

    def fake(paths):
        seen.extend(paths)
        return [pscheck.Finding(str(paths[0]), 7, 3, "PS005", "Read-Host prompts in a non-interactive session")]

    monkeypatch.setattr(pscheck, "check_files", fake)
    result = validate([inv], vault_password_file=VAULT)
    assert seen and all(p.endswith((".ps1", ".ps1.j2")) for p in seen)
    issue = next(i for i in result.issues if i.rule == "PS005")
    assert (issue.file, issue.line, issue.col, issue.kind, issue.severity) == (seen[0], 7, 3, "script", "warning")


def test_without_pscheck_scripts_are_skipped_with_a_note(inv, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lync2fa.pscheck", None)
    result = validate([inv], vault_password_file=VAULT)
    assert [i.severity for i in result.issues if i.rule == "PSCHECK"] == ["note"]


def test_without_the_vault_password_the_rest_is_still_checked(inv, run_cli):
    """A pull request from a fork has no secrets: encrypted data is a note, every other check runs."""
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    clean = run_cli("validate", "-i", inv, "--format", "json").json()
    assert clean["ok"] and clean["counts"]["error"] == 0
    notes = {(f["rule"], Path(f["file"]).name, f["key"]) for f in clean["findings"] if f["severity"] == "note"}
    assert ("VAULT", "vault.yml", "") in notes and ("TEMPLATE", "vars.yml", "client_pin") in notes
    edit(vars_file, "ca_key_length: 4096", "ca_key_length: lots")
    found(inv, "PARAM", key="ca_key_length")  # (with the password)
    result = validate([inv], scripts=False)
    assert [(i.rule, i.line) for i in result.issues if i.severity == "error"] == [
        ("PARAM", line_of(vars_file, "ca_key_length"))
    ]
    vars_file.write_text(
        re.sub(r"(?m)^ansible_winrm_transport: .*$", "ansible_winrm_transport: ntlm", vars_file.read_text())
    )
    assert "DOUBLE_HOP" in {i.rule for i in validate([inv], scripts=False).issues}  # password vaulted


# --- each seeded mistake: exactly its own finding, at its variable -----------------------------

# (file to seed, how: (old, new) to replace or a text to append, the rule, key and line expected)
OWN_FINDING = {
    "out of range in group_vars": (
        "group_vars/all/vars.yml",
        "templates_min_key_size: 1024\n",
        ("PARAM", "templates_min_key_size", "templates_min_key_size"),
    ),
    "out of range in host_vars": (
        "host_vars/ca01.yml",
        "---\nca_validity_years: 99\n",
        ("PARAM", "ca_validity_years", "ca_validity_years"),
    ),
    "token lifetime out of range": (
        "group_vars/all/vars.yml",
        ("adfs_token_lifetime: 240", "adfs_token_lifetime: 99999"),
        ("PARAM", "adfs_token_lifetime", "adfs_token_lifetime"),
    ),
    "malformed pool FQDN": (
        "hosts.yml",
        ("lync2fa_fqdn: pool01.contoso.com", "lync2fa_fqdn: pool_01.contoso.com"),
        ("BAD_FQDN", "lync2fa_fqdn", "pool_01.contoso.com"),
    ),
    "malformed Director FQDN": (
        "hosts.yml",
        ("lync2fa_fqdn: dirpool01.contoso.com", "lync2fa_fqdn: dirpool01..contoso.com"),
        ("BAD_FQDN", "lync2fa_fqdn", "dirpool01..contoso.com"),
    ),
    "malformed Edge FQDN": (
        "hosts.yml",
        ("lync2fa_fqdn: edgepool01.contoso.com", "lync2fa_fqdn: -edgepool01.contoso.com"),
        ("BAD_FQDN", "lync2fa_fqdn", "-edgepool01.contoso.com"),
    ),
}


@pytest.mark.parametrize("case", OWN_FINDING, ids=str)
def test_each_seeded_mistake_gives_exactly_its_own_finding_at_its_variable(inv, case):
    """No finding that only follows from it (a cross-reference to the parameters it broke, a
    scope built from the malformed name), none at the host's line instead of the variable's."""
    relpath, seed, (rule, key, needle) = OWN_FINDING[case]
    path = inv / relpath
    if isinstance(seed, tuple):
        edit(path, *seed)
    else:
        append(path, seed)
    result = validate([inv], vault_password_file=VAULT, scripts=False)
    got = [(i.rule, i.key, Path(i.file), i.line) for i in inventory_findings(result.issues)]
    assert got == [(rule, key, path, line_of(path, needle))]


def test_out_of_range_message_names_the_variable_once(inv):
    append(inv / "host_vars" / "ca01.yml", "---\nca_validity_years: 99\n")
    issue, _ = found(inv, "PARAM", key="ca_validity_years")
    assert issue.message == "variable ca_validity_years must be from 1 to 50, not 99"


def set_vars(path: Path, **values) -> None:
    """Set top-level variables of a vars file in place (no duplicate keys)."""
    text = path.read_text()
    for name, value in values.items():
        text, n = re.subn(rf"(?m)^{name}: .*$", f"{name}: {value}", text)
        if not n:
            text += f"{name}: {value}\n"
    path.write_text(text)


@pytest.mark.parametrize(
    "seed, rule, key",
    [
        ({"ansible_winrm_transport": "basic"}, "INSECURE_TRANSPORT", "ansible_winrm_transport"),
        ({"ansible_winrm_message_encryption": "never"}, "UNENCRYPTED_TRANSPORT", "ansible_winrm_message_encryption"),
    ],
    ids=["basic", "message_encryption never"],
)
def test_insecure_http_for_every_host_is_one_finding_at_group_vars(inv, seed, rule, key):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    set_vars(vars_file, ansible_port=5985, ansible_winrm_scheme="http", **seed)
    result = validate([inv], vault_password_file=VAULT, scripts=False)
    findings = inventory_findings(result.issues)
    assert [(i.rule, i.key, Path(i.file), i.line) for i in findings] == [
        (rule, key, vars_file, line_of(vars_file, f"{key}:"))
    ]
    assert len(findings[0].properties["hosts"]) == 8


def test_misspelt_variables_outside_the_tiers_warn_without_their_values(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    append(vars_file, "clinet_pin: '87654321'\nansible_pasword: not-shown-pw\nansible_usr: not-shown-user\n")
    result = validate([inv], vault_password_file=VAULT, scripts=False)
    unknown = {i.key: i for i in result.issues if i.rule == "UNKNOWN_VAR"}
    for typo, meant in (
        ("clinet_pin", "client_pin"),
        ("ansible_pasword", "ansible_password"),
        ("ansible_usr", "ansible_user"),
    ):
        issue = unknown[typo]
        assert (Path(issue.file), issue.line, issue.severity) == (vars_file, line_of(vars_file, f"{typo}:"), "warning")
        assert meant in issue.message and meant in issue.fix
    text = json.dumps([i.as_dict() for i in result.issues])
    assert "87654321" not in text and "not-shown" not in text


def test_unrelated_user_variables_do_not_warn(inv):
    append(
        inv / "group_vars" / "all" / "vars.yml",
        "site_name: HQ\nbackup_dir: /srv/backup\nntp_server: ntp.contoso.com\nansible_python_interpreter: auto\n"
        "ansible_become_method: runas\nansible_psrp_auth: negotiate\nvault_edge_passwords: {}\n",
    )
    result = validate([inv], vault_password_file=VAULT, scripts=False)
    assert not [(i.key, i.message) for i in result.issues if i.rule == "UNKNOWN_VAR"]


def test_known_ansible_variables_cover_what_ansible_documents():
    """Every variable Ansible's winrm and psrp connections, runas become and PowerShell shell
    plugins read, and every connection/become magic variable, is known (none is taken for a typo)."""
    from ansible.constants import MAGIC_VARIABLE_MAPPING
    from ansible.plugins.loader import (
        become_loader,
        connection_loader,
        fragment_loader,
        init_plugin_loader,
        shell_loader,
    )
    from ansible.utils.plugin_docs import get_docstring

    from lync2fa.ansible_vars import ANSIBLE_VARS

    init_plugin_loader()
    documented = {name for names in MAGIC_VARIABLE_MAPPING.values() for name in names}
    for loader, plugin in (
        (connection_loader, "winrm"),
        (connection_loader, "psrp"),
        (become_loader, "runas"),
        (shell_loader, "powershell"),
    ):
        doc = get_docstring(loader.find_plugin_with_context(plugin).plugin_resolved_path, fragment_loader)[0]
        documented |= {v["name"] for o in doc["options"].values() for v in o.get("vars") or ()}
    documented.discard("inventory_hostname")  # set by Ansible, not the inventory
    assert not sorted(documented - ANSIBLE_VARS)


# --- formats -----------------------------------------------------------------------------------


def seeded(inv: Path) -> None:
    append(inv / "group_vars" / "all" / "vars.yml", "ca_hash_algorithm_x: 1\nadfs_prevent_token_replays: false\n")
    append(inv / "host_vars" / "ws0101.yml", "client_pin: '12345678'\n")


def test_sarif_validates_against_the_schema(inv, run_cli):
    jsonschema = pytest.importorskip("jsonschema")
    seeded(inv)
    result = run_cli("validate", "-i", inv, "--vault-password-file", VAULT, "--format", "sarif")
    assert result.code == 1
    log = json.loads(result.out)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {"DEFAULT_PIN", "TOKEN_REPLAY", "UNKNOWN_VAR"} <= set(rules)
    assert all(r["help"]["text"] for r in rules.values())
    pin = next(r for r in run["results"] if r["ruleId"] == "DEFAULT_PIN")
    physical = pin["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("host_vars/ws0101.yml")
    assert physical["region"]["startLine"] == 1 and pin["level"] == "error"
    assert run["tool"]["driver"]["rules"][pin["ruleIndex"]]["id"] == "DEFAULT_PIN"


def test_sarif_of_a_clean_inventory_validates(run_cli):
    jsonschema = pytest.importorskip("jsonschema")
    result = run_cli("validate", "-i", EXAMPLE, "--vault-password-file", VAULT, "--format", "sarif")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(json.loads(result.out))


def test_junit_parses(inv, run_cli, tmp_path):
    seeded(inv)
    out = tmp_path / "validate.xml"
    result = run_cli("validate", "-i", inv, "--vault-password-file", VAULT, "--format", "junit", "-o", out)
    assert result.code == 1 and "errors (" in result.err
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) > 0
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failures) >= 2
    assert all(c.get("classname") and c.get("name") for c in cases)
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromfile(str(out))
    assert sum(s.failures for s in xml) == len(failures)


def test_json_findings(inv, run_cli):
    seeded(inv)
    doc = run_cli("validate", "-i", inv, "--vault-password-file", VAULT, "--format", "json").json()
    assert not doc["ok"] and doc["counts"]["error"] >= 2
    keys = {(f["rule"], f["key"]) for f in doc["findings"]}
    assert ("UNKNOWN_VAR", "ca_hash_algorithm_x") in keys and ("DEFAULT_PIN", "client_pin") in keys
    pin = next(f for f in doc["findings"] if f["rule"] == "DEFAULT_PIN")
    assert pin["file"].endswith("host_vars/ws0101.yml") and pin["line"] == 1 and pin["severity"] == "error"


def test_ci_recipe_is_valid_yaml_and_covers_the_pipeline():
    import yaml

    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 2
    github, gitlab = (yaml.safe_load(b) for b in blocks)
    steps = [s for job in github["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "lync2fa validate" in runs and "--format sarif" in runs and "lync2fa lab up" in runs
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    assert "merge_request_event" in str(gitlab["lync2fa-validate"]["rules"])
    assert gitlab["lync2fa-lab-plan"]["artifacts"]["paths"] == ["reports/"]


def test_every_plugin_rule_has_sarif_help():
    from lync2fa.plugins.templates import esc
    from lync2fa.sarif import RULES

    rules = set(esc.RULES)
    for source in list((ROOT / "plugins").glob("*/*.py")) + list((ROOT / "core").glob("*.py")):
        rules.update(re.findall(r'Finding\(\s*"([A-Z][A-Z0-9_]+)"', source.read_text()))
    rules.discard("HARD1")  # the hookspec's example
    assert rules and not sorted(rules - set(RULES)), "add help text to lync2fa.sarif.RULES"
    assert all(short and help_text for short, help_text in RULES.values())
