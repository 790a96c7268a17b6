"""``lync2fa validate`` agrees with ``lync2fa plan`` about groups, keeps each parameter problem whole,
places a grant's ESC findings at the grant's variable, and says clearly when it cannot write its report."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from inventory_files import append, edit, line_of

from lync2fa import api
from lync2fa.groups import DEFAULT_GROUPS, var_name
from lync2fa.plan import PlanError
from lync2fa.task import ParameterError
from lync2fa.validate import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventories" / "example"
VAULT = EXAMPLE / ".vault-pass-example"


@pytest.fixture
def inv(tmp_path):
    """A copy of the example inventory that plan accepts as it is (a delegating transport, a CA
    trust file that exists), to seed changes into."""
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    trust = tmp_path / "winrm-ca.pem"
    trust.write_text("")
    vars_file = dest / "group_vars" / "all" / "vars.yml"
    text = re.sub(r"(?m)^ansible_winrm_transport: .*$", "ansible_winrm_transport: credssp", vars_file.read_text())
    vars_file.write_text(
        re.sub(r"(?m)^ansible_winrm_ca_trust_path: .*$", f"ansible_winrm_ca_trust_path: {trust}", text)
    )
    return dest


def issues(inv: Path):
    return validate([inv], vault_password_file=VAULT, scripts=False).issues


def plan_refusal(inv: Path) -> str:
    """What ``lync2fa plan`` says when it refuses the inventory's groups ("" if it does not)."""
    inventory = api.load_inventory(inv, vault_password_file=VAULT)
    try:
        api.plan(inventory)
    except PlanError as exc:
        return str(exc)
    return ""


def drop_group(hosts: Path, group: str, next_group: str) -> None:
    """Remove ``group`` (and its hosts) from the example's hosts.yml, up to ``next_group``."""
    text = hosts.read_text()
    start, end = text.index(f"    {group}:\n"), text.index(f"    {next_group}:\n")
    hosts.write_text(text[:start] + text[end:])


# --- item 5: groups, as plan resolves them ---------------------------------------------------


def test_an_inventory_without_groups_is_an_error_with_plans_own_message(tmp_path):
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all:\n  hosts:\n    ws01:\n      ansible_host: ws01.contoso.invalid\n")
    refusal = plan_refusal(hosts)
    assert refusal.startswith("nothing to run for tier "), refusal
    errors = [i for i in issues(hosts) if i.severity == "error"]
    groups = [i for i in errors if i.rule == "NOTHING_TO_RUN"]
    assert [i.message for i in groups] == [refusal]
    assert groups[0].file == str(hosts) and groups[0].line == 1


def test_an_inventory_missing_the_lync_pools_group_is_an_error_at_the_inventory_file(inv):
    drop_group(inv / "hosts.yml", "lync_pools", "lync_edge")
    refusal = plan_refusal(inv)
    assert "tier lync: no host in inventory group lync_pools" in refusal
    found = [i for i in issues(inv) if i.rule == "NOTHING_TO_RUN"]
    assert [(i.severity, i.message, Path(i.file).name) for i in found] == [("error", refusal, "hosts.yml")]


def test_allow_empty_groups_lets_an_inventory_cover_part_of_the_rollout_in_both_plan_and_validate(inv):
    """The playbooks' lync2fa_allow_empty_groups: an inventory for the clients alone (say) skips the
    tiers it has no hosts for; plan and validate honour it alike."""
    drop_group(inv / "hosts.yml", "lync_pools", "lync_edge")
    append(inv / "group_vars" / "all" / "vars.yml", "lync2fa_allow_empty_groups: true\n")
    assert plan_refusal(inv) == ""
    assert not [i for i in issues(inv) if i.rule == "NOTHING_TO_RUN"]


def test_a_complete_inventory_has_nothing_plan_refuses_about_groups(inv):
    assert plan_refusal(inv) == ""
    assert not [i for i in issues(inv) if i.rule in ("NOTHING_TO_RUN", "MISSING_GROUP", "GROUP_NAME")]


def test_renamed_groups_are_what_plan_targets_not_unknown_or_missing(inv):
    hosts = inv / "hosts.yml"
    edit(hosts, "    ca:\n", "    pki:\n")
    edit(hosts, "    clients:\n", "    client:\n")  # a near miss of "clients", named on purpose
    (inv / "group_vars" / "clients").rename(inv / "group_vars" / "client")
    append(inv / "group_vars" / "all" / "vars.yml", "lync2fa_ca_group: pki\nlync2fa_clients_group: client\n")
    assert plan_refusal(inv) == ""
    found = [(i.rule, i.key, i.message) for i in issues(inv)]
    assert not [f for f in found if f[0] in ("UNKNOWN_VAR", "MISSING_GROUP", "GROUP_NAME", "NOTHING_TO_RUN")], found


def test_a_group_variable_naming_no_group_is_refused_as_plan_refuses_it(inv):
    # The clients' CA named outright: its default is derived from the CA group's hosts.
    append(
        inv / "group_vars" / "all" / "vars.yml",
        "lync2fa_ca_group: pki\nclient_ca_config: ca01.contoso.com\\Contoso Smart Card Root CA\n",
    )
    refusal = plan_refusal(inv)
    assert "tier ca: no host in inventory group pki (lync2fa_ca_group)" in refusal
    assert [i.message for i in issues(inv) if i.rule == "NOTHING_TO_RUN"] == [refusal]


def test_engine_variables_are_known_to_validate(inv):
    names = [var_name(g) for g in DEFAULT_GROUPS]
    append(
        inv / "group_vars" / "all" / "vars.yml",
        "".join(f"{name}: {group}\n" for name, group in zip(names, DEFAULT_GROUPS, strict=True))
        + "lync2fa_allow_empty_groups: false\nlync2fa_force_group: false\n"
        + "lync2fa_allow_insecure_transport: false\n",
    )
    unknown = [(i.key, i.message) for i in issues(inv) if i.rule == "UNKNOWN_VAR"]
    assert unknown == []


# --- item 6: one problem, one finding --------------------------------------------------------


def test_a_pin_with_a_trailing_newline_is_one_finding_at_its_variable(inv):
    host_vars = inv / "host_vars" / "ws0101.yml"
    append(host_vars, '---\nclient_pin: "12345678\\n"\n')
    params = [i for i in issues(inv) if i.rule == "PARAM"]
    assert len(params) == 1, [(i.key, i.message) for i in params]
    (issue,) = params
    assert (issue.key, Path(issue.file).name, issue.line) == ("client_pin", "ws0101.yml", 2)
    assert "trailing newline" in issue.message and "printf %s VALUE" in issue.message
    assert "12345678" not in issue.message


def test_parameter_error_lists_its_problems_and_reads_as_before():
    task = api.tasks()["client.enrollment"]
    with pytest.raises(ParameterError) as caught:
        task.validate({"pin": "1234\n", "user": "CONTOSO\\alice\n"})
    exc = caught.value
    assert sorted(p.split(" ", 1)[0] for p in exc.problems) == ["client_pin", "client_user"]
    assert "; " in next(p for p in exc.problems if p.startswith("client_pin"))
    assert str(exc) == "client.enrollment: " + "; ".join(exc.problems)


# --- item 9: a grant's ESC findings at the grant's variable ----------------------------------


def test_esc_findings_of_a_grant_point_at_the_granted_template(inv):
    vars_file = inv / "group_vars" / "all" / "vars.yml"
    edit(
        vars_file, "ca_principal: CONTOSO\\Lync 2FA Users", "ca_principal: Authenticated Users\nca_template: WebServer"
    )
    found = {i.rule: i for i in issues(inv) if i.rule in ("ESC15", "ESC17")}
    assert set(found) == {"ESC15", "ESC17"}, found
    for issue in found.values():
        assert (Path(issue.file).name, issue.line, issue.key) == (
            "vars.yml",
            line_of(vars_file, "ca_template: WebServer"),
            "ca_template",
        ), issue
        assert issue.file == str(vars_file)


# --- minor: the report's path -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["human", "sarif"])
def test_an_output_path_under_a_file_is_a_clear_usage_error(inv, tmp_path, run_cli, fmt):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "x"
    result = run_cli("validate", "-i", inv, "--vault-password-file", VAULT, "--format", fmt, "-o", out)
    assert result.code == 2
    assert "Errno" not in result.err
    assert f"cannot write the report to {out}" in result.err and "not a directory" in result.err


def test_a_report_path_that_cannot_be_opened_is_a_usage_error_in_words(tmp_path):
    from lync2fa import cli

    with pytest.raises(cli.UsageError, match=r"cannot write the report to .*: is a directory$"):
        cli._write_report(str(tmp_path), lambda fh: fh.write("report"))
