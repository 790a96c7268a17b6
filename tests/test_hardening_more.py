"""Issue 12 (hardening), the auditor's second pass: secrets kept out of Ansible's deprecation
warnings, empty selections refused, one connection judgement for plan and validate, clear journal
errors, clipped values, bounded counts, redacted proxy passwords, live runs told from reused PIDs.

Every refusal is proven before any connection: ``api.run`` and ``preflight.run`` are replaced by
a tripwire, and remote hosts are named under ``.invalid``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from inventory_files import BASE, PASSWORD, REMOTE
from inventory_files import cli_in_process as _cli
from inventory_files import good as _good
from inventory_files import write as _write

from lync2fa import api, cli
from lync2fa.connection import ConnectionConfigError, ConnectionSettings
from lync2fa.journal import Journal
from lync2fa.runlock import RunLock
from lync2fa.validate import validate

CLIENT = "cl01.invalid"
PIN = "87654321"


def _ca_inventory(tmp_path: Path, host_vars: dict, fmt: str) -> Path:
    """One CA host with ``host_vars`` on top of ONE_CA's, as YAML or as one INI line."""
    merged = {**BASE, "ansible_winrm_transport": "credssp", "ca_common_name": "Contoso", **host_vars}
    if fmt == "ini":
        return _write(tmp_path / "hosts.ini", "[ca]\n" + " ".join([REMOTE] + [f"{k}={v}" for k, v in merged.items()]))
    return _write(tmp_path / "hosts.yml", yaml.safe_dump({"all": {"children": {"ca": {"hosts": {REMOTE: merged}}}}}))


# -- item 5: Ansible's deprecation warnings quote the source lines, secrets included ----------------
DEPRECATED_NAME = {
    "ini": (
        "hosts.ini",
        f"[clients]\n{CLIENT} client_user=u1 client_pin={PIN} card-name=x ansible_user=a ansible_password={PASSWORD}\n",
        2,
    ),
    "yaml": (
        "hosts.yml",
        f"all:\n  children:\n    clients:\n      hosts:\n        {CLIENT}:\n          ansible_user: a\n"
        f"          client_user: u1\n          ansible_password: {PASSWORD}\n          client_pin: '{PIN}'\n"
        "          my-var: x\n",
        10,
    ),
}


@pytest.mark.parametrize("command", ["plan", "validate"])
@pytest.mark.parametrize("fmt", ["ini", "yaml"])
def test_ansible_deprecation_warnings_never_print_secret_inventory_lines(tmp_path, capfd, no_connection, fmt, command):
    name, text, line = DEPRECATED_NAME[fmt]
    path = _write(tmp_path / name, text)
    extra = ["--tasks", "client", "--state-dir", tmp_path / "state"] if command == "plan" else []
    code, out, err = _cli(capfd, command, "-i", path, *extra)
    assert code in (1, 2)  # a client without a CA: refused or a finding, never run
    for secret in (PIN, PASSWORD):
        assert secret not in out + err, secret
    # the deprecation is kept with its file and line (the words of a line with a secret redacted)
    warnings = api.load_inventory(path).warnings
    assert any(w.startswith(f"{path}, line {line}") and "invalid name" in w for w in warnings), warnings
    assert not any(PIN in w or PASSWORD in w for w in warnings)


# -- item 6: an empty selection is not "everything" -------------------------------------------------
@pytest.mark.parametrize(
    "argv, option",
    [
        (["plan", "--tasks", "ca.authority", "--limit", ""], "--limit"),
        (["plan", "--tasks", "ca.authority", "--limit", ","], "--limit"),
        (["apply", "--tasks", "ca.authority", "--limit", " , "], "--limit"),
        (["verify", "--tasks", "ca", "--limit", ""], "--limit"),
        (["plan", "--tasks", "", "--limit", REMOTE], "--tasks"),
        (["rollback", "--check", "--tier", ""], "--tier"),
        (["rollback", "--tier", ","], "--tier"),
    ],
)
def test_an_empty_selection_is_refused_naming_its_option(tmp_path, capfd, no_connection, argv, option):
    code, _out, err = _cli(capfd, *argv, "-i", _good(tmp_path), "--state-dir", tmp_path / "state")
    assert code == 2
    assert f"argument {option}: names nothing" in err


def test_preflight_refuses_an_empty_limit(tmp_path, capfd, no_connection):
    code, _out, err = _cli(capfd, "preflight", "-i", _good(tmp_path), "--limit", ",")
    assert code == 2 and "argument --limit: names nothing" in err


# -- item 1 in validate: plan and validate judge the connection with the same code -----------------
CONNECTION_RULES = ("CONNECTION", "INSECURE_TRANSPORT", "UNENCRYPTED_TRANSPORT", "BAD_FQDN")
HTTP_BASIC = {"ansible_port": 5985, "ansible_winrm_transport": "basic"}


@pytest.mark.parametrize(
    "fmt, host_vars, refused",
    [
        ("ini", {**HTTP_BASIC, "lync2fa_allow_insecure_transport": "false"}, True),
        ("ini", {**HTTP_BASIC, "lync2fa_allow_insecure_transport": "off"}, True),
        ("ini", {**HTTP_BASIC, "lync2fa_allow_insecure_transport": "yes"}, False),
        (
            "yaml",
            {**HTTP_BASIC, "ansible_host": "127.0.0.1", "ansible_winrm_path": "@ca01.corp.invalid:15985/wsman"},
            True,
        ),
        ("yaml", {**HTTP_BASIC, "ansible_host": "127.0.0.1", "ansible_winrm_proxy": "http://proxy.invalid:3128"}, True),
        ("yaml", {**HTTP_BASIC, "ansible_host": "127.0.0.1"}, False),
        ("yaml", {"ansible_port": 5985, "ansible_winrm_scheme": "HTTP"}, False),
        ("yaml", {"ansible_winrm_server_cert_validation": "Ignore"}, False),
        ("yaml", {"ansible_winrm_transport": "CredSSP"}, False),
        ("yaml", {"ansible_port": 5985, "ansible_winrm_message_encryption": "never"}, True),
        ("yaml", {"ansible_winrm_read_timeout_sec": 10, "ansible_winrm_operation_timeout_sec": 20}, True),
        ("yaml", {"ansible_host": "127.0.0.1:15985"}, True),
    ],
)
def test_validate_refuses_exactly_the_connections_plan_refuses(tmp_path, fmt, host_vars, refused):
    path = _ca_inventory(tmp_path, host_vars, fmt)
    try:
        ConnectionSettings.from_host(api.load_inventory(path).host(REMOTE))
        plan_refuses = False
    except ConnectionConfigError:
        plan_refuses = True
    result = validate([path], scripts=False)
    errors = [i for i in result.issues if i.rule in CONNECTION_RULES and i.severity == "error"]
    assert (plan_refuses, bool(errors)) == (refused, refused), [i.message for i in result.issues]
    if refused:
        assert result.exit_code() == 1 and len(errors) == 1, [i.message for i in errors]
    if not refused:  # clear text let through says why: the host's override, or it stays on loopback
        risky = [i.message for i in result.issues if "clear text" in i.message]
        assert all("allow_insecure_transport: true" in m or "loopback only" in m for m in risky), risky


def test_validate_places_each_connection_finding_at_its_variable(tmp_path):
    cases = {
        "ansible_winrm_path": {**HTTP_BASIC, "ansible_host": "127.0.0.1", "ansible_winrm_path": "@x.invalid/wsman"},
        "ansible_winrm_transport": HTTP_BASIC,
        "ansible_winrm_message_encryption": {"ansible_port": 5985, "ansible_winrm_message_encryption": "never"},
        "ansible_winrm_read_timeout_sec": {"ansible_winrm_read_timeout_sec": 10},
        "ansible_winrm_server_cert_validation": {"ansible_winrm_server_cert_validation": "Ignore"},
    }
    for key, host_vars in cases.items():
        folder = tmp_path / key
        folder.mkdir()
        result = validate([_ca_inventory(folder, host_vars, "yaml")], scripts=False)
        found = [i for i in result.issues if i.rule in (*CONNECTION_RULES, "CERT_VALIDATION_OFF")]
        assert [i.key for i in found] == [key], (key, [(i.rule, i.key, i.message) for i in found])
        text = (folder / "hosts.yml").read_text().splitlines()
        assert key in text[found[0].line - 1]


def test_validate_notes_basic_over_http_to_loopback_as_plan_allows_it(tmp_path):
    result = validate([_ca_inventory(tmp_path, {**HTTP_BASIC, "ansible_host": "127.0.0.1"}, "yaml")], scripts=False)
    [issue] = [i for i in result.issues if i.rule == "INSECURE_TRANSPORT"]
    assert issue.severity == "note" and "loopback" in issue.message


def test_validate_suggests_the_transport_meant(tmp_path):
    result = validate([_ca_inventory(tmp_path, {"ansible_winrm_transport": "credsp"}, "yaml")], scripts=False)
    [issue] = [i for i in result.issues if i.key == "ansible_winrm_transport"]
    assert issue.severity == "error" and issue.fix == "did you mean credssp?"


# -- item 9: journal errors; the default report directory checked before the run -------------------
def test_journal_on_a_corrupt_journal_is_exit_2_naming_it(tmp_path, capfd):
    state = tmp_path / "state"
    state.mkdir()
    _write(state / "journal.sqlite", "this is not a database" * 100)
    code, _out, err = _cli(capfd, "journal", "--state-dir", state)
    assert code == 2, err
    assert f"{state / 'journal.sqlite'} is not a lync2fa journal or is corrupt" in err
    assert "Traceback" not in err


def test_journal_with_another_schema_is_exit_2_naming_the_missing_column(tmp_path, capfd):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "journal.sqlite")
    db.executescript("CREATE TABLE runs (x INTEGER); CREATE TABLE results (y TEXT);")
    db.close()
    for argv in (["journal"], ["journal", "--json"], ["plan", "-i", _good(tmp_path), "--tasks", "ca.authority"]):
        code, _out, err = _cli(capfd, *argv, "--state-dir", state)
        assert code == 2, (argv, err)
        assert f"{state / 'journal.sqlite'} is not a lync2fa journal" in err and "no such column: runs.id" in err, err


def test_journal_without_its_results_table_is_exit_2_naming_it(tmp_path, capfd):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "journal.sqlite")
    db.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at REAL, finished_at REAL, operator TEXT, "
        "controller TEXT, command TEXT, inventory TEXT, check_mode INTEGER, status TEXT);"
    )
    db.close()
    code, _out, err = _cli(capfd, "journal", "--state-dir", state)
    assert code == 2 and f"{state / 'journal.sqlite'} is not a lync2fa journal" in err and "results" in err, err


@pytest.mark.parametrize("command", ["apply", "verify"])
def test_a_reports_file_in_the_state_directory_is_exit_2_before_the_run(tmp_path, capfd, no_connection, command):
    state = tmp_path / "state"
    state.mkdir()
    _write(state / "reports", "a file")
    code, _out, err = _cli(capfd, command, "-i", _good(tmp_path), "--tasks", "ca", "--state-dir", state)
    assert code == 2
    assert f"{state / 'reports'} is a file" in err


# -- item 10 in validate: values clipped; the vault password from the environment -----------------
@pytest.mark.parametrize(
    "name", ["ansible_port", "ansible_host", "ansible_winrm_transport", "ansible_winrm_scheme", "lync2fa_fqdn"]
)
def test_validate_clips_a_huge_value_in_its_messages(tmp_path, name):
    huge = "x" * 100_000
    result = validate([_ca_inventory(tmp_path, {name: huge}, "yaml")], scripts=False)
    mine = [i for i in result.issues if i.key == name]
    assert mine, [(i.rule, i.key) for i in result.issues]
    for issue in result.issues:
        assert len(issue.message) < 1000 and len(issue.fix) < 1000, (issue.rule, len(issue.message))
        assert huge[:1000] not in issue.message


def test_validate_reads_the_vault_password_file_from_the_environment_as_plan_does(tmp_path, monkeypatch):
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(b"vault-pass"))])
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_bytes(
        vault.encrypt(yaml.safe_dump({"ansible_password": PASSWORD, "ca_common_name": "x" * 5000}))
    )
    doc = {
        "all": {"children": {"ca": {"hosts": {REMOTE: {"ansible_user": "a", "ansible_winrm_transport": "credssp"}}}}}
    }
    inventory = _write(tmp_path / "hosts.yml", yaml.safe_dump(doc))
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(_write(tmp_path / "pass", "vault-pass\n")))
    assert api.load_inventory(inventory).host(REMOTE).var("ansible_password") == PASSWORD
    result = validate([inventory], scripts=False)
    assert not any(i.rule == "VAULT" for i in result.issues), [i.message for i in result.issues]
    # the decrypted values were checked: the 5000-character CA name is a finding
    assert any(i.key == "ca_common_name" and i.severity == "error" for i in result.issues)


# -- item 8: a port in ansible_host; bounded counts; proxy passwords -------------------------------
def test_a_port_in_ansible_host_names_host_and_variable(tmp_path, capfd, no_connection):
    path = _ca_inventory(tmp_path, {"ansible_host": "127.0.0.1:15985"}, "yaml")
    with pytest.raises(ConnectionConfigError, match=f"{REMOTE}: ansible_host '127.0.0.1:15985' .*ansible_port"):
        ConnectionSettings.from_host(api.load_inventory(path).host(REMOTE))
    code, _out, err = _cli(capfd, "plan", "-i", path, "--tasks", "ca.authority", "--state-dir", tmp_path / "s")
    assert code == 2 and f"{REMOTE}: ansible_host" in err
    code, out, _err = _cli(capfd, "validate", "-i", path)
    assert code == 1 and "ansible_host" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--forks", "0"],
        ["apply", "--forks", "-3"],
        ["plan", "--forks", "1000000"],
        ["plan", "--forks", "many"],
        ["preflight", "--forks", "0"],
    ],
)
def test_forks_out_of_bounds_is_refused(tmp_path, capfd, no_connection, argv):
    state = [] if argv[0] == "preflight" else ["--state-dir", tmp_path / "s"]
    code, _out, err = _cli(capfd, *argv, "-i", _good(tmp_path), *state)
    assert code == 2 and "argument --forks: expected a whole number from 1 to 256" in err


@pytest.mark.parametrize("argv", [["lab", "up", "--clients", "-2"], ["lab", "up", "--clients", "10001"]])
def test_lab_clients_out_of_bounds_is_refused_before_anything_is_created(tmp_path, capfd, argv):
    from lync2fa.lab import control

    lab_dir = tmp_path / "lab"
    try:
        code, _out, err = _cli(capfd, *argv, "--dir", lab_dir)
    finally:
        control.down(lab_dir)  # had one been started
    assert code == 2 and "--clients must be from 0 to 10000" in err
    assert not lab_dir.exists()


def test_the_bounds_are_in_the_help():
    from lync2fa.lab import control

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert "(1 to 256," in subparsers["plan"].format_help() and "(1 to 256," in subparsers["preflight"].format_help()
    lab_up = next(a for a in subparsers["lab"]._actions if a.dest == "lab_command").choices["up"]
    assert f"(0 to {control.MAX_CLIENTS}," in lab_up.format_help()
    assert f"(0 to {control.MAX_CLIENTS}," in subparsers["demo"].format_help()


@pytest.mark.parametrize(
    "proxy, shown",
    [
        ("socks5://admin:ProxyPa55@proxy.invalid:1080", "ansible_winrm_proxy 'socks5://***@proxy.invalid:1080'"),
        ("http://admin:ProxyPa55@proxy.invalid:3128", "through ansible_winrm_proxy http://***@proxy.invalid:3128"),
    ],
)
def test_a_proxy_password_is_never_echoed(tmp_path, capfd, no_connection, proxy, shown):
    host_vars = {**HTTP_BASIC, "ansible_host": "127.0.0.1", "ansible_winrm_proxy": proxy}
    path = _ca_inventory(tmp_path, host_vars, "yaml")
    with pytest.raises(ConnectionConfigError) as err:
        ConnectionSettings.from_host(api.load_inventory(path).host(REMOTE))
    assert "ProxyPa55" not in str(err.value) and shown in str(err.value)
    code, out, cli_err = _cli(capfd, "plan", "-i", path, "--tasks", "ca.authority", "--state-dir", tmp_path / "s")
    assert code == 2 and "ProxyPa55" not in out + cli_err
    result = validate([path], scripts=False)
    assert "ProxyPa55" not in json.dumps([i.as_dict() for i in result.issues])


def test_redact_url_hides_userinfo_only():
    from lync2fa.connection import redact_url

    assert redact_url("socks5://admin:ProxyPa55@proxy.invalid:1080/x") == "socks5://***@proxy.invalid:1080/x"
    assert redact_url("proxy 'http://u@p.invalid' and https://q.invalid/") == (
        "proxy 'http://***@p.invalid' and https://q.invalid/"
    )


# -- item 13: a reused PID does not keep a dead run "running" -------------------------------------
def test_a_changing_run_is_live_only_while_the_run_lock_is_held(tmp_path, capfd):
    journal = Journal(tmp_path)
    apply_run = journal.start_run("apply", "hosts.yml", False)  # this live PID: a reused one
    plan_run = journal.start_run("plan", "hosts.yml", True)  # plan holds no lock
    journal.close()

    def statuses() -> dict[int, str]:
        code, out, err = _cli(capfd, "journal", "--state-dir", tmp_path, "--json")
        assert code == 0, err
        shown = {r["id"]: r["status"] for r in json.loads(out)["runs"]}
        assert shown == {r["id"]: r["status"] for r in Journal(tmp_path, readonly=True).runs()}
        return shown

    assert statuses() == {apply_run: "interrupted", plan_run: "running"}
    with RunLock(tmp_path, command="apply"):
        assert statuses() == {apply_run: "running", plan_run: "running"}


def test_an_empty_task_selection_through_the_api_is_an_error_not_everything():
    """Issue 12 item 6 below the command line: ``only=[]`` selects nothing, and says so."""
    from lync2fa.plan import PlanError, select_tasks
    from lync2fa.plugin_manager import collect_tasks, default_plugin_manager

    tasks = collect_tasks(default_plugin_manager())
    assert select_tasks(tasks, None) == {n: t for n, t in tasks.items() if t.kind == "apply"}
    with pytest.raises(PlanError, match="empty selection"):
        select_tasks(tasks, [])


def test_a_malformed_proxy_url_is_a_configuration_error_not_a_crash(tmp_path):
    path = _ca_inventory(tmp_path, {"ansible_winrm_proxy": "http://[abc"}, "yaml")
    with pytest.raises(ConnectionConfigError, match="is not an http"):
        ConnectionSettings.from_host(api.load_inventory(path).host(REMOTE))


def test_a_live_verify_reads_running_though_it_holds_no_run_lock(tmp_path):
    """verify changes nothing and takes no run lock: a free lock (an earlier apply's run.lock
    file left behind) must not make it look interrupted; a changing run without it does."""
    journal = Journal(tmp_path)
    verify = journal.start_run("verify", "hosts.yml", False)
    apply = journal.start_run("apply", "hosts.yml", False)
    RunLock(tmp_path).acquire().release()  # the lock file exists, nobody holds it
    statuses = {r["id"]: r["status"] for r in journal.runs()}
    assert statuses[verify] == "running" and statuses[apply] == "interrupted"
    journal.close()


def test_a_missing_ca_trust_path_fails_the_connection_naming_the_variable(tmp_path):
    """Not an "internal error: OSError" on every step; and not a validate error either (CI may not
    have the bundle the controller has)."""
    from lync2fa.transport import TransportError, WinRMConnection

    path = _ca_inventory(tmp_path, {"ansible_winrm_ca_trust_path": str(tmp_path / "no-such-ca.pem")}, "yaml")
    settings = ConnectionSettings.from_host(api.load_inventory(path).host(REMOTE))
    with pytest.raises(TransportError, match="ansible_winrm_ca_trust_path .* does not exist on this controller"):
        WinRMConnection(settings).request({"kind": "facts", "facts": {}})


def test_the_ansible_face_judges_loopback_through_the_environments_proxy(monkeypatch):
    """pywinrm (so Ansible's winrm connection) honours HTTP_PROXY: Basic over http to 127.0.0.1 then
    leaves the machine through the proxy, and is judged as remote."""
    from lync2fa.ansible_bridge import _proxy_for
    from lync2fa.connection import clear_text_risks

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    endpoint = "http://127.0.0.1:5985/wsman"
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert _proxy_for(endpoint, None) is None and not clear_text_risks("http", ["basic"], "auto", endpoint, None)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    proxy = _proxy_for(endpoint, None)
    assert proxy == "http://proxy.invalid:3128"
    assert clear_text_risks("http", ["basic"], "auto", endpoint, proxy)
    assert _proxy_for(endpoint, "http://127.0.0.1:3128") == "http://127.0.0.1:3128"  # the configured one wins
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.invalid:1080")  # requests (so pywinrm) uses it too
    assert _proxy_for(endpoint, None) == "socks5://proxy.invalid:1080"
