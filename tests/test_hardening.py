"""Issue 12 (hardening): refusals before any connection, clear errors instead of tracebacks.

Nothing here sends traffic beyond 127.0.0.0/8: remote hosts are named under ``.invalid`` (which
never resolves) and every refusal is proven before a connection is made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from inventory_files import BASE, REMOTE
from inventory_files import good as _good
from inventory_files import write as _write

from lync2fa import api
from lync2fa.connection import ConnectionConfigError, ConnectionSettings
from lync2fa.inventory import InventoryError
from lync2fa.journal import Journal, JournalError
from lync2fa.plan import Plan, PlanError
from lync2fa.runlock import RunLock, RunLockError


def _inventory(tmp_path, host_vars: dict, name: str = REMOTE, group: str = "ca", fmt: str = "yaml"):
    if fmt == "ini":
        line = " ".join([name] + [f"{k}={v}" for k, v in {**BASE, **host_vars}.items()])
        path = tmp_path / "hosts.ini"
        path.write_text(f"[{group}]\n{line}\n")
    else:
        path = tmp_path / "hosts.yml"
        path.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": {name: {**BASE, **host_vars}}}}}}))
    return api.load_inventory(path)


def _settings(tmp_path, fmt: str = "yaml", name: str = REMOTE, **host_vars) -> ConnectionSettings:
    return ConnectionSettings.from_host(_inventory(tmp_path, host_vars, name=name, fmt=fmt).host(name))


# -- 1. Basic over plain http: no bypass ---------------------------------------------------------
@pytest.mark.parametrize("scheme", ["http", "HTTP", " Http "])
def test_basic_over_http_to_a_remote_host_is_refused_whatever_the_scheme_case(tmp_path, scheme):
    with pytest.raises(ConnectionConfigError, match="Basic authentication over plain http"):
        _settings(tmp_path, ansible_port=5985, ansible_winrm_scheme=scheme, ansible_winrm_transport="basic")


@pytest.mark.parametrize("value", ["false", "no", "0", "off"])
def test_allow_insecure_transport_false_in_an_ini_inventory_is_false(tmp_path, value):
    with pytest.raises(ConnectionConfigError, match="lync2fa_allow_insecure_transport: true"):
        _settings(
            tmp_path,
            fmt="ini",
            ansible_port=5985,
            ansible_winrm_scheme="http",
            ansible_winrm_transport="basic",
            lync2fa_allow_insecure_transport=value,
        )


def test_allow_insecure_transport_must_be_a_boolean(tmp_path):
    with pytest.raises(ConnectionConfigError, match="lync2fa_allow_insecure_transport must be a boolean"):
        _settings(
            tmp_path,
            fmt="ini",
            ansible_port=5985,
            ansible_winrm_transport="basic",
            lync2fa_allow_insecure_transport="maybe",
        )


def test_allow_insecure_transport_true_is_a_warning(tmp_path):
    s = _settings(
        tmp_path, fmt="ini", ansible_port=5985, ansible_winrm_transport="basic", lync2fa_allow_insecure_transport="yes"
    )
    assert any("in clear text" in w and "lync2fa_allow_insecure_transport: true" in w for w in s.warnings)


@pytest.mark.parametrize(
    "path",
    [
        "@ca01.corp.invalid:15985/wsman",
        "wsman",
        "//ca01.corp.invalid/wsman",
        "http://ca01.corp.invalid/wsman",
        "/ws@man",
        "/wsman?x=1",
        "/ws man",
    ],
)
def test_a_winrm_path_that_is_not_a_path_is_refused(tmp_path, path):
    with pytest.raises(ConnectionConfigError, match="ansible_winrm_path .* is not a URL path"):
        _settings(
            tmp_path,
            name="ca01",
            ansible_host="127.0.0.1",
            ansible_port=5985,
            ansible_winrm_transport="basic",
            ansible_winrm_path=path,
        )


@pytest.mark.parametrize("address", ["127.0.0.1@ca01.corp.invalid", "ca01.corp.invalid/x", "127.0.0.1 x"])
def test_a_host_address_that_is_not_an_address_is_refused(tmp_path, address):
    with pytest.raises(ConnectionConfigError, match="is not a host name or IP address"):
        _settings(tmp_path, name="ca01", ansible_host=address, ansible_port=5985, ansible_winrm_transport="basic")


def test_loopback_is_decided_from_the_url_and_its_proxy(tmp_path, monkeypatch):
    s = _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985, ansible_winrm_transport="basic")
    assert s.endpoint == "http://127.0.0.1:5985/wsman" and not s.warnings
    assert (
        _settings(
            tmp_path, name="ca01", ansible_host="::1", ansible_port=5985, ansible_winrm_transport="basic"
        ).endpoint
        == "http://[::1]:5985/wsman"
    )
    # the inventory's proxy carries loopback traffic off this machine
    with pytest.raises(ConnectionConfigError, match="Basic authentication over plain http"):
        _settings(
            tmp_path,
            name="ca01",
            ansible_host="127.0.0.1",
            ansible_port=5985,
            ansible_winrm_transport="basic",
            ansible_winrm_proxy="http://proxy.corp.invalid:3128",
        )
    # the environment's proxy is never used (pywinrm gets proxy=None), so it changes nothing
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp.invalid:3128")
    s = _settings(tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985, ansible_winrm_transport="basic")
    assert s.proxy is None and not s.warnings
    from lync2fa.transport import protocol_kwargs

    assert protocol_kwargs(s)["proxy"] is None


def test_issue11_requests_never_read_proxies_from_the_environment(monkeypatch):
    """trust_env off: requests would look HTTP(S)_PROXY up again on every call (~9 % of the CPU)."""
    from lync2fa.connection import ConnectionSettings
    from lync2fa.transport import WinRMConnection

    settings = ConnectionSettings(
        host="cl1", address="127.0.0.1", port=1, scheme="http", transport="basic", user="u", password="p"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.invalid:3128")
    conn = WinRMConnection(settings)
    conn._call = lambda op, func, *a, **k: "SHELL"  # no network: only the session is built
    conn._shell()
    session = conn._protocol.transport.session
    assert session.trust_env is False and not session.proxies.get("https") and not session.proxies.get("http")


# -- 2. message encryption, certificate validation -----------------------------------------------
def test_message_encryption_never_to_a_remote_http_host_is_refused_and_says_why(tmp_path):
    with pytest.raises(ConnectionConfigError) as err:
        _settings(tmp_path, ansible_port=5985, ansible_winrm_message_encryption="never")
    assert "PINs, PUKs, passwords" in str(err.value) and "in clear" in str(err.value)
    assert "lync2fa_allow_insecure_transport: true" in str(err.value)
    s = _settings(
        tmp_path, ansible_port=5985, ansible_winrm_message_encryption="never", lync2fa_allow_insecure_transport=True
    )
    assert any("message_encryption: never" in w for w in s.warnings)
    # over https, or to loopback, "never" is not a leak
    assert not _settings(tmp_path, ansible_port=5986, ansible_winrm_message_encryption="never").warnings
    assert not _settings(
        tmp_path, name="ca01", ansible_host="127.0.0.1", ansible_port=5985, ansible_winrm_message_encryption="Never"
    ).warnings


@pytest.mark.parametrize(
    "name,value",
    [
        ("ansible_winrm_message_encryption", "sometimes"),
        ("ansible_winrm_server_cert_validation", False),
        ("ansible_winrm_server_cert_validation", "false"),
        ("ansible_winrm_server_cert_validation", "no"),
        ("ansible_winrm_scheme", "ftp"),
    ],
)
def test_connection_choices_are_what_ansible_accepts(tmp_path, name, value):
    with pytest.raises(ConnectionConfigError, match=f"{REMOTE}: {name} must be one of"):
        _settings(tmp_path, **{name: value})


def test_cert_validation_ignore_is_accepted_with_a_warning(tmp_path):
    s = _settings(tmp_path, ansible_winrm_server_cert_validation="ignore")
    assert s.cert_validation == "ignore" and any("validation is off" in w for w in s.warnings)


# -- 8. ports -------------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["notaport", 0, 70000, "5985.5"])
def test_a_port_that_is_not_a_port_names_host_and_variable(tmp_path, port):
    with pytest.raises(ConnectionConfigError, match=f"{REMOTE}: ansible_port must be"):
        _settings(tmp_path, ansible_port=port)


# -- 4. line breaks: refused, never stripped, never echoed when secret ----------------------------


def test_a_pin_with_a_trailing_newline_is_refused_without_echoing_it():
    task = api.tasks()["client.virtual_smartcard"]
    with pytest.raises(Exception) as err:
        task.validate({"pin": "87654321\n"})
    message = str(err.value)
    assert "client_pin has a trailing newline" in message and "echo -n" in message and "printf" in message
    assert "87654321" not in message
    task.validate({"pin": "87654321"})


@pytest.mark.parametrize(
    "task,values,name",
    [
        ("templates.smartcard", {"name": "SmartcardUser2\n"}, "templates_name"),
        ("client.virtual_smartcard", {"pin": "87654321", "card_name": "Lync2FA\n"}, "client_card_name"),
        ("ca.template_permissions", {"template": "SmartcardUser\n"}, "ca_template"),
        ("ca.authority", {"common_name": "Contoso\nRoot"}, "ca_common_name"),
        ("client.lync_settings", {"office_versions": ["16.0\n"]}, "client_office_versions"),
    ],
)
def test_names_with_a_line_break_are_refused_and_the_message_says_so(task, values, name):
    with pytest.raises(Exception, match=f"{name} .* has a (trailing newline|line break): refused, not stripped"):
        api.tasks()[task].validate(values)


def test_validation_patterns_are_full_matches():
    from lync2fa.plugins.adfs.claims import FQDN
    from lync2fa.plugins.ca import SAFE_NAME
    from lync2fa.plugins.client import OFFICE_VERSION, PRINTABLE
    from lync2fa.plugins.templates.model import OID

    for pattern, good in [
        (SAFE_NAME, "SmartcardUser"),
        (OID, "1.3.6.1.4.1.311.20.2.2"),
        (FQDN, "pool.corp.invalid"),
        (OFFICE_VERSION, "16.0"),
        (PRINTABLE, "87654321"),
    ]:
        assert pattern.fullmatch(good) and not pattern.fullmatch(good + "\n"), pattern.pattern
        assert not pattern.fullmatch(good + "\nx")


# -- 8. bounds on every number ---------------------------------------------------------------------
def test_every_int_parameter_has_bounds():
    unbounded = [
        f"{t.name}:{p.name}"
        for t in api.tasks().values()
        for p in t.params
        if p.type == "int" and not p.choices and (p.minimum is None or p.maximum is None)
    ]
    assert not unbounded


@pytest.mark.parametrize("value", [-5, 0, 51, 100000])
def test_out_of_range_values_name_host_variable_and_range(tmp_path, value):
    inventory = _inventory(tmp_path, {"ca_common_name": "Contoso Root CA", "ca_validity_years": value})
    with pytest.raises(Exception) as err:
        api.plan(inventory, only=["ca.authority"])
    assert REMOTE in str(err.value) and "ca_validity_years must be from 1 to 50" in str(err.value)


# -- 10. long values are not echoed back whole -----------------------------------------------------
def test_a_huge_value_is_truncated_in_errors(tmp_path):
    huge = "A" * 100_000
    for values in (
        {"common_name": huge},
        {"common_name": "Contoso", "hash_algorithm": huge},
        {"common_name": "Contoso", "validity_years": huge},
    ):
        with pytest.raises(Exception) as err:
            api.tasks()["ca.authority"].validate(values)
        assert len(str(err.value)) < 2000 and "characters in all" in str(err.value)


# -- 5, 6. broken, empty, group-less inventories; --limit; vault ------------------------------------

# The ca tier reaches AD: a transport that delegates (CredSSP) passes the double-hop check.
GOOD = {
    "all": {
        "vars": {"ansible_winrm_transport": "credssp"},
        "children": {
            "ca": {"hosts": {REMOTE: {**BASE, "ca_common_name": "Contoso Root CA"}}},
            "clients": {"hosts": {"cl01.corp.invalid": {**BASE, "client_user": "CORP\\u1", "client_pin": "87654321"}}},
        },
    }
}


@pytest.mark.parametrize(
    "name,text,reason",
    [
        (
            "broken.yml",
            (
                'all:\n  children:\n    clients:\n      hosts:\n        cl01:\n          client_pin: "87654321"\n'
                "         bad: [\n"
            ),
            "line 7",
        ),
        ("broken.ini", "[clients]\ncl01 client_pin=8765 4321abcd ansible_password=Secr3t-Pw\n", "Expected key=value"),
    ],
)
def test_a_broken_inventory_names_file_and_reason_and_never_shows_secret_lines(tmp_path, capfd, name, text, reason):
    path = _write(tmp_path / name, text)
    with pytest.raises(InventoryError) as err:
        api.load_inventory(path)
    out, errors = capfd.readouterr()
    message = str(err.value)
    assert str(path) in message and reason in message
    for secret in ("87654321", "8765", "4321abcd", "Secr3t-Pw"):
        assert secret not in message + out + errors, secret


def test_a_broken_second_inventory_file_is_not_silently_dropped(tmp_path):
    good = _good(tmp_path, GOOD)
    broken = _write(tmp_path / "broken.yml", "all:\n  hosts: [\n")
    with pytest.raises(InventoryError, match=f"{broken}"):
        api.load_inventory(good, broken)


def test_an_empty_inventory_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="defines no host"):
        api.load_inventory(_write(tmp_path / "empty.yml", ""))


def test_a_groupless_inventory_names_each_tier_and_its_group(tmp_path):
    path = _write(tmp_path / "hosts.yml", yaml.safe_dump({"all": {"hosts": {REMOTE: BASE}}}))
    with pytest.raises(PlanError) as err:
        api.plan(api.load_inventory(path))
    for tier, group in [("ca", "ca"), ("adfs", "adfs"), ("lync", "lync_pools"), ("client", "clients")]:
        assert f"tier {tier}: no host in inventory group {group}" in str(err.value)


def test_a_selected_tier_without_hosts_is_an_error(tmp_path):
    inventory = api.load_inventory(_write(tmp_path / "hosts.yml", yaml.safe_dump(GOOD)))
    assert api.plan(inventory, only=["ca.authority"]).steps
    with pytest.raises(PlanError, match="tier adfs: no host in inventory group adfs"):
        api.plan(inventory, only=["ca", "adfs"])
    with pytest.raises(PlanError, match="tier lync: no host within --limit"):
        api.plan(inventory, only=["lync"], limit={REMOTE})


def test_a_limit_matching_no_host_is_an_error(tmp_path):
    inventory = api.load_inventory(_write(tmp_path / "hosts.yml", yaml.safe_dump(GOOD)))
    with pytest.raises(PlanError, match="--limit ca01.typo: no such host"):
        api.plan(inventory, only=["ca.authority"], limit={"ca01.typo"})
    assert len(api.plan(inventory, only=["ca.authority"], limit={REMOTE}).steps) == 1


@pytest.mark.parametrize("argv", [["plan"], ["apply"], ["verify"], ["rollback", "--tier", "client"]])
def test_the_cli_exits_2_for_an_unusable_inventory(tmp_path, capsys, argv):
    from lync2fa import cli

    broken = _write(tmp_path / "hosts.yml", "all:\n  hosts: [\n")
    assert cli.main([*argv, "-i", str(broken), "--state-dir", str(tmp_path / "state")]) == 2
    assert str(broken) in capsys.readouterr().err
    good = _good(tmp_path, GOOD)
    assert cli.main([*argv, "-i", str(good), "--limit", "nosuchhost", "--state-dir", str(tmp_path / "s")]) == 2
    assert "--limit nosuchhost: no such host" in capsys.readouterr().err


# -- 7. misspelt variables ---------------------------------------------------------------------------
def test_a_misspelt_tier_variable_is_a_warning_with_the_closest_name(tmp_path):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["all"]["children"]["ca"]["hosts"][REMOTE]["ca_commonname"] = "typo"
    doc["all"]["vars"].update({"client_pinn": "x", "lync2fa_domain": "corp.invalid"})
    inventory = api.load_inventory(_write(tmp_path / "hosts.yml", yaml.safe_dump(doc)))
    warnings = api.plan(inventory, only=["ca.authority", "client.virtual_smartcard"]).warnings
    assert any("ca_commonname" in w and "did you mean ca_common_name?" in w for w in warnings), warnings
    assert any("client_pinn" in w and "did you mean client_pin?" in w for w in warnings), warnings
    assert not any("lync2fa_domain" in w or "ca_common_name " in w for w in warnings)


# -- 9, 10. vault password: empty file, missing, from the environment -----------------------------
def _vaulted(tmp_path, password="vault-pass"):
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password.encode()))])
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_bytes(vault.encrypt(yaml.safe_dump({"ansible_password": "Pw-1"})))
    doc = {
        "all": {
            "vars": {"ansible_winrm_transport": "credssp"},
            "children": {"ca": {"hosts": {REMOTE: {"ansible_user": "a", "ca_common_name": "Contoso"}}}},
        }
    }
    return _write(tmp_path / "hosts.yml", yaml.safe_dump(doc))


def test_an_empty_vault_password_file_is_a_clear_error(tmp_path):
    empty = _write(tmp_path / "pass", "")
    with pytest.raises(InventoryError, match=f"vault password file {empty} is empty"):
        api.load_inventory(_write(tmp_path / "hosts.yml", yaml.safe_dump(GOOD)), vault_password_file=empty)


def test_a_missing_vault_password_names_the_file_that_needs_one(tmp_path, monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inventory = _vaulted(tmp_path)
    with pytest.raises((InventoryError, PlanError)) as err:
        api.plan(api.load_inventory(inventory), only=["ca.authority"])
    assert "group_vars/all.yml is vault-encrypted" in str(err.value)
    assert "--vault-password-file" in str(err.value) and "ANSIBLE_VAULT_PASSWORD_FILE" in str(err.value)


def test_the_vault_password_file_comes_from_the_environment(tmp_path, monkeypatch):
    inventory = _vaulted(tmp_path)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(_write(tmp_path / "pass", "vault-pass\n")))
    [step] = api.plan(api.load_inventory(inventory), only=["ca.authority"]).steps
    assert step.connection.password == "Pw-1"


# -- 8. lab fault: only documented values and known hosts -------------------------------------------
@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    from lync2fa.lab import control

    directory = tmp_path_factory.mktemp("lab") / "lab"
    control.create(directory, clients=1)  # state only: no endpoint is started
    return directory


@pytest.mark.parametrize(
    "args,text",
    [
        (["ca01", "latency_s=abc"], "latency_s='abc': expected a number of seconds"),
        (["ca01", "latency_s=-1"], "expected a number of seconds from 0 to 600"),
        (["ca01", "latency_s=nan"], "expected a number of seconds"),
        (["ca01", "drop=yes"], "drop='yes': expected true or false"),
        (["ca01", "http_status=abc"], "expected an HTTP status"),
        (["ca01", "receive_timeouts=1.5"], "expected a whole number"),
        (["ca01", "fail_tasks=ca.nosuch"], "unknown task(s) ca.nosuch"),
        (["nosuchhost", "drop=true"], "no host 'nosuchhost' in the lab"),
        (["ca01", "bogus=1"], "unknown fault 'bogus'"),
    ],
)
def test_lab_fault_refuses_undocumented_values_and_unknown_hosts(lab_dir, capsys, args, text):
    from lync2fa import cli

    assert cli.main(["lab", "fault", "--dir", str(lab_dir), *args]) == 2
    assert text in capsys.readouterr().err


def test_lab_fault_accepts_documented_values(lab_dir, capsys):
    import json

    from lync2fa import cli

    assert (
        cli.main(
            [
                "lab",
                "fault",
                "--dir",
                str(lab_dir),
                "ca01",
                "drop=false",
                "latency_s=0.5",
                "http_status=503",
                "receive_timeouts=2",
                "fail_tasks=ca.authority",
                "ca_offline=true",
            ]
        )
        == 0
    )
    faults = json.loads(capsys.readouterr().out)["ca01"]
    assert faults == {
        "latency_s": 0.5,
        "drop": False,
        "http_status": 503,
        "receive_timeouts": 2,
        "reject_auth": False,
        "fail_tasks": ["ca.authority"],
        "ca_offline": True,
        "hang_receive": False,
        "lose_shell_after": 0,
        "drop_reply_after": 0,
    }
    assert cli.main(["lab", "fault", "--dir", str(lab_dir), "*", "http_status=null"]) == 0
    assert cli.main(["lab", "fault", "--dir", str(lab_dir), "--clear"]) == 0


# -- 9. environment errors are exit 2 with a reason, before anything runs ----------------------------


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_corrupt_journal_is_exit_2_naming_it_before_anything_runs(tmp_path, capsys, command):
    from lync2fa import cli

    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite").write_bytes(b"this is not a database" * 100)
    inventory = str(_good(tmp_path, GOOD))
    assert cli.main([command, "-i", inventory, "--tasks", "ca.authority", "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert f"{state / 'journal.sqlite'} is not a lync2fa journal or is corrupt" in err
    with pytest.raises(JournalError, match="corrupt"):
        Journal(state, readonly=True)


@pytest.mark.parametrize("option", ["--report-dir", "--state-dir"])
def test_a_directory_under_a_file_is_exit_2_before_anything_runs(tmp_path, capsys, option):
    from lync2fa import cli

    blocker = _write(tmp_path / "a-file", "x")
    argv = [
        "apply",
        "-i",
        str(_good(tmp_path, GOOD)),
        "--tasks",
        "ca.authority",
        "--state-dir",
        str(tmp_path / "state"),
        option,
        str(blocker / "reports"),
    ]
    assert cli.main(argv) == 2
    assert f"is under {blocker}, which is a file" in capsys.readouterr().err
    assert not (tmp_path / "state" / "journal.sqlite").exists() or option == "--state-dir"


def test_lab_up_with_a_file_as_directory_is_exit_2(tmp_path, capsys):
    from lync2fa import cli

    blocker = _write(tmp_path / "a-file", "x")
    assert cli.main(["lab", "up", "--dir", str(blocker)]) == 2
    assert f"lab directory {blocker} is a file" in capsys.readouterr().err
    assert cli.main(["lab", "down", "--dir", str(blocker / "lab")]) == 2


def _unprivileged() -> list[str]:
    """A prefix that makes a subprocess obey file permissions (root would not)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def readonly_state(tmp_path):
    state = tmp_path / "state"
    journal = Journal(state)
    run_id = journal.start_run("apply", "hosts.yml", False)
    journal.finish_run(run_id, "ok")
    journal.close()
    os.chmod(state, 0o555)
    os.chmod(state / "journal.sqlite", 0o444)
    yield state
    os.chmod(state, 0o755)


def test_a_read_only_state_directory_is_exit_2_and_its_journal_can_still_be_read(readonly_state, tmp_path):
    code = (
        "import json, sys\nfrom pathlib import Path\nfrom lync2fa import cli\nfrom lync2fa.journal import Journal\n"
        "print(json.dumps([r['status'] for r in Journal(Path(sys.argv[1]), readonly=True).runs()]))\n"
        "assert cli.main(['journal', '--state-dir', sys.argv[1], '--json']) == 0\n"
        "sys.exit(cli.main(['apply', '-i', sys.argv[2], '--tasks', 'ca.authority', '--state-dir', sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [*_unprivileged(), sys.executable, "-c", code, str(readonly_state), str(_good(tmp_path, GOOD))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip().splitlines()[0] == '["ok"]'
    assert f"state directory {readonly_state} is not writable" in done.stderr
    assert "Traceback" not in done.stderr


# -- 13 (part). a run whose process is gone is interrupted, not running --------------------------
def test_a_running_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    journal = Journal(tmp_path)
    mine = journal.start_run("apply", "hosts.yml", False)
    gone = journal.start_run("apply", "hosts.yml", False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal._db.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, gone))
    journal._db.commit()
    with RunLock(tmp_path):  # as a live apply holds it (without it, "mine" is dead too)
        statuses = {r["id"]: (r["status"], r["pid"]) for r in journal.runs()}
    assert statuses[mine] == ("running", os.getpid())
    assert statuses[gone][0] == "interrupted"
    journal.close()
    assert {r["id"]: r["status"] for r in Journal(tmp_path, readonly=True).runs()}[gone] == "interrupted"


def test_an_old_journal_gets_the_pid_column(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "journal.sqlite")
    db.executescript("""CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL,
        finished_at REAL, operator TEXT NOT NULL, controller TEXT NOT NULL, command TEXT NOT NULL,
        inventory TEXT NOT NULL, check_mode INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'running');
        CREATE TABLE results (run_id INTEGER NOT NULL REFERENCES runs(id), host TEXT NOT NULL, task TEXT NOT NULL,
        status TEXT NOT NULL, changed INTEGER NOT NULL, failed INTEGER NOT NULL, msg TEXT NOT NULL,
        diff TEXT NOT NULL, warnings TEXT NOT NULL, duration REAL NOT NULL, finished_at REAL NOT NULL);
        INSERT INTO runs(started_at, operator, controller, command, inventory, check_mode)
        VALUES (1, 'op', 'elsewhere', 'apply', 'i', 0);""")
    db.close()
    assert [r["pid"] for r in Journal(tmp_path, readonly=True).runs()] == [None]
    journal = Journal(tmp_path)
    journal.start_run("apply", "i", False)
    assert [r["pid"] for r in journal.runs()] == [None, os.getpid()]


# -- 15. one changing run per state directory ------------------------------------------------------
def test_a_second_apply_on_the_same_state_directory_exits_2_naming_the_holder(tmp_path, capsys):
    from lync2fa import cli

    state, inventory = tmp_path / "state", str(_good(tmp_path, GOOD))
    with RunLock(state, command="apply"):
        assert cli.main(["apply", "-i", inventory, "--tasks", "ca.authority", "--state-dir", str(state)]) == 2
        assert f"PID {os.getpid()}" in capsys.readouterr().err
        with pytest.raises(RunLockError, match=f"holds the state directory {state} \\(PID {os.getpid()}"):
            api.run(Plan(tasks=[], steps=[]), state_dir=state)
        # check-mode runs (plan, verify) change nothing and do not wait for it
        assert api.run(Plan(tasks=[], steps=[]), check_mode=True, state_dir=state).ok
        with pytest.raises(RunLockError):
            RunLock(state, shared=True).acquire()
    with (
        RunLock(state, shared=True),
        RunLock(state, shared=True),
        pytest.raises(RunLockError),
    ):  # Ansible forks hold it together, an apply cannot
        api.run(Plan(tasks=[], steps=[]), state_dir=state)


def test_wait_lock_waits_for_the_holder(tmp_path):
    state = tmp_path / "state"
    holder = RunLock(state, command="apply").acquire()
    told = []
    threading.Timer(0.3, holder.release).start()
    started = time.monotonic()
    assert api.run(Plan(tasks=[], steps=[]), state_dir=state, wait_lock=True, on_wait=told.append).ok
    assert time.monotonic() - started >= 0.25
    assert told and f"PID {os.getpid()}" in told[0]


def test_the_readme_says_different_state_directories_are_not_coordinated():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "--wait-lock" in readme and "not coordinated" in readme


# -- 16. deleting the journal mid-run fails the journaling loudly ------------------------------------
@pytest.mark.parametrize("how", ["delete", "replace"])
def test_a_journal_deleted_or_replaced_mid_run_raises_naming_it(tmp_path, how):
    from lync2fa.results import Result

    journal = Journal(tmp_path)
    run_id = journal.start_run("apply", "hosts.yml", False)
    journal.record(run_id, Result("ca01", "ca.authority"))
    path = tmp_path / "journal.sqlite"
    path.unlink()
    if how == "replace":
        Journal(tmp_path).close()
    with pytest.raises(JournalError, match=f"the journal {path} was deleted or replaced during the run"):
        journal.record(run_id, Result("ca01", "ca.web_enrollment"))
    with pytest.raises(JournalError):
        journal.finish_run(run_id, "ok")


# -- 10. a 401 without an NTLM challenge is an authentication error, not "internal error" ----------
@pytest.mark.parametrize("offered", [None, "NTLM", "Negotiate", "Basic realm=x"])
@pytest.mark.parametrize("transport", ["ntlm", "basic", "credssp"])
def test_a_401_without_a_challenge_is_a_clear_authentication_error(offered, transport):
    import http.server

    from lync2fa.transport import TransportError, WinRMConnection

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(401)
            if offered:
                self.send_header("WWW-Authenticate", offered)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = ConnectionSettings(
            host="win01",
            address="127.0.0.1",
            port=server.server_address[1],
            scheme="http",
            transport=transport,
            user="CORP\\admin",
            password="pw",
        )
        with pytest.raises(TransportError) as err:
            WinRMConnection(settings, retries=0).request({"kind": "facts", "facts": {}})
    finally:
        server.shutdown()
    assert "authentication" in str(err.value) and "CORP\\\\admin" in str(err.value)
    assert f"({transport})" in str(err.value) and "open shell" in str(err.value)


# -- docs/security.md lists every refusal ------------------------------------------------------------
def test_security_doc_lists_every_rule_and_override():
    import re

    root = Path(__file__).parent.parent
    doc = " ".join((root / "docs" / "security.md").read_text().split())
    from lync2fa.plugins.templates import esc

    rules = set(esc.RULES)
    for source in (root / "plugins").glob("*/*.py"):
        rules.update(re.findall(r'Finding\(\s*"([A-Z][A-Z0-9_]+)"', source.read_text()))
    missing = sorted(r for r in rules if f"`{r}`" not in doc)
    assert not missing, f"docs/security.md does not list {missing}"
    for name in (
        "lync2fa_allow_insecure_transport",
        "--allow-insecure",
        "lync2fa_local_resources",
        "templates_accepted_findings",
        "not coordinated",
    ):
        assert name in doc


def test_deleting_the_journal_during_an_apply_stops_it_loudly(lab, run_cli):
    """Against the lab: an observer deletes the journal after the first step; the run stops with
    exit 2 naming the journal, instead of journaling into a deleted file."""
    from lync2fa.hookspecs import hookimpl
    from lync2fa.plugin_manager import default_plugin_manager

    journal = lab.state_dir / "journal.sqlite"

    class DeleteJournal:
        @hookimpl
        def lync2fa_task_finish(self, step, result):
            journal.unlink(missing_ok=True)

    pm = default_plugin_manager()
    pm.register(DeleteJournal())
    plan = api.plan(lab.load_inventory(), only=["ca"], pm=pm)
    with pytest.raises(JournalError, match=f"the journal {journal} was deleted or replaced during the run"):
        api.run(plan, state_dir=lab.state_dir, pm=pm)
