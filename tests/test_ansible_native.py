"""The Ansible face runs over the play's own connection (issue 9): what the lab sees, become
runas, unreachable hosts, group names as data, and what the lab refuses."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from ansible_support import PLAYBOOKS, changed_steps, recap, results_by_task, run

from lync2fa import ansible_payload, hostscript
from lync2fa.lab.dispatch import REQUEST_LOG


def requests(lab) -> list[dict]:
    path = lab.dir / REQUEST_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def playbook(lab, tmp_path, path, *args, inventory=None):
    return run(
        "ansible-playbook",
        "-v",
        "-i",
        inventory or lab.inventory,
        path,
        *args,
        workdir=tmp_path,
        LYNC2FA_STATE_DIR=lab.state_dir,
    )


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_deploy_reaches_the_lab_through_ansibles_exec_wrapper(make_lab, tmp_path, run_cli):
    lab = make_lab(clients=1)
    planned = run_cli("plan", "-i", lab.inventory, "--state-dir", tmp_path / "cli-state", "--json")
    assert planned.code == 0, planned.err
    cli_seen = requests(lab)
    assert cli_seen and {r["via"] for r in cli_seen} == {"lync2fa session loop"}

    checked = playbook(lab, tmp_path, PLAYBOOKS / "deploy_2fa.yml", "--check", "--diff")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert changed_steps(checked.stdout) == {(r["task"], r["host"]) for r in planned.json()["results"] if r["changed"]}
    ansible_seen = requests(lab)[len(cli_seen) :]
    assert ansible_seen and {r["via"] for r in ansible_seen} == {"ansible exec wrapper (2.19 manifest)"}
    assert {r["kind"] for r in ansible_seen} == {"facts"} and all(r["check_mode"] for r in ansible_seen)

    applied = playbook(lab, tmp_path, PLAYBOOKS / "deploy_2fa.yml")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    after_apply = requests(lab)[len(cli_seen) + len(ansible_seen) :]
    assert {r["via"] for r in after_apply} == {"ansible exec wrapper (2.19 manifest)"}
    assert "apply" in {r["kind"] for r in after_apply}
    assert all(r["logon"]["auth"] == "credssp" and r["logon"]["delegated"] for r in after_apply)

    again = playbook(lab, tmp_path, PLAYBOOKS / "deploy_2fa.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(again.stdout).values()), recap(again.stdout)
    replanned = run_cli("plan", "-i", lab.inventory, "--state-dir", tmp_path / "cli-state", "--json")
    assert replanned.code == 0 and not [r for r in replanned.json()["results"] if r["changed"]]


def test_become_runas_gives_an_ntlm_session_network_credentials(make_lab, tmp_path):
    lab = make_lab(clients=0, transport="ntlm")
    book = write(
        tmp_path,
        "become.yml",
        """---
- name: The CA tier over NTLM
  hosts: ca01
  gather_facts: false
  tasks:
    - name: Without become (the double hop)
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      ignore_errors: true
    - name: With become runas
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      become: true
      become_method: runas
      become_user: "{{ ansible_user }}"
      vars:
        ansible_become_password: "{{ ansible_password }}"
    - name: With become runas and a wrong password
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      become: true
      become_method: runas
      become_user: "{{ ansible_user }}"
      ignore_errors: true
      vars:
        ansible_become_password: not-the-password
""",
    )
    result = playbook(lab, tmp_path, book)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    by_name = {name: (status, r) for name, status, host, r in results_by_task(result.stdout)}
    status, refused = by_name["Without become (the double hop)"]
    assert status == "fatal" and "double hop" in refused["msg"] and "runas" in refused["msg"]
    status, became = by_name["With become runas"]
    assert status == "changed" and became["engine_task"] == "ca.authority"
    status, wrong = by_name["With become runas and a wrong password"]
    assert status == "fatal" and "LogonUser failed" in wrong["msg"]
    seen = [r for r in requests(lab) if r["host"] == "ca01"]
    assert seen and all(r["via"] == "ansible exec wrapper (2.19 manifest)" for r in seen)
    runas = [r for r in seen if r["become"]]
    assert runas and runas[0]["become"]["logon_type"] == "Interactive"
    assert runas[0]["logon"] == {"auth": "runas:Interactive", "user": runas[0]["logon"]["user"], "delegated": True}


def test_an_unreachable_host_is_unreachable(lab, tmp_path):
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["children"]["ca"]["hosts"]["ca01"]["ansible_port"] = 9  # nothing listens there
    broken = write(tmp_path, "hosts.yml", yaml.safe_dump(inventory))
    book = write(
        tmp_path,
        "one.yml",
        "---\n- name: One CA task\n  hosts: ca01\n  gather_facts: false\n"
        "  tasks:\n    - name: CA\n      lync2fa.twofactor.ca_authority: {}\n",
    )
    result = playbook(lab, tmp_path, book, "--check", inventory=broken)
    assert recap(result.stdout)["ca01"]["unreachable"] == 1, result.stdout[-2000:]
    assert recap(result.stdout)["ca01"]["failed"] == 0


def test_group_names_are_data(lab, tmp_path, run_cli):
    inventory = yaml.safe_load(lab.inventory.read_text())
    children = inventory["all"]["children"]
    children["pki"] = children.pop("ca")
    inventory["all"]["vars"]["lync2fa_ca_group"] = "pki"
    renamed = write(tmp_path, "hosts.yml", yaml.safe_dump(inventory))
    book = write(
        tmp_path,
        "groups.yml",
        """---
- name: Groups
  hosts: ca01:cl0001
  gather_facts: false
  tasks:
    - name: CA on the CA of group pki
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      when: inventory_hostname == 'ca01'
    - name: CA on a workstation
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      when: inventory_hostname == 'cl0001'
      ignore_errors: true
""",
    )
    result = playbook(lab, tmp_path, book, inventory=renamed)
    assert result.returncode == 0, result.stdout[-3000:]
    by_name = {(name, host): (status, r) for name, status, host, r in results_by_task(result.stdout)}
    assert by_name[("CA on the CA of group pki", "ca01")][0] == "changed"
    status, outside = by_name[("CA on a workstation", "cl0001")]
    assert status == "fatal" and "cl0001 is not in the inventory group 'pki' (lync2fa_ca_group)" in outside["msg"]
    assert "force_group" in outside["msg"]
    assert not [r for r in requests(lab) if r["host"] == "cl0001"], "nothing may reach the workstation"
    # The CLI reads the same variable.
    planned = run_cli("plan", "-i", renamed, "--tasks", "ca", "--state-dir", tmp_path / "cli", "--json")
    assert planned.code == 0, planned.err
    assert {r["host"] for r in planned.json()["results"]} == {"ca01"}
    # The playbook's first play fails loudly on a tier whose group is empty.
    del children["adfs"]
    no_adfs = write(tmp_path, "no-adfs.yml", yaml.safe_dump(inventory))
    deploy = playbook(lab, tmp_path, PLAYBOOKS / "deploy_2fa.yml", "--check", "--tags", "adfs", inventory=no_adfs)
    assert deploy.returncode != 0 and "the inventory group 'adfs' of the adfs tier has no hosts" in deploy.stdout


# -- what the lab refuses -------------------------------------------------------------------


def _ansible_payload(
    module_text: str, util_text: str, args: dict, module=ansible_payload.MODULE_FQN, extra_actions=()
) -> tuple[str, bytes]:
    """What ansible-core 2.19's winrm connection sends for a PowerShell module (its bootstrap as
    the -EncodedCommand, the exec wrapper manifest on stdin), built from its own scripts."""
    from ansible.executor.powershell.module_manifest import _get_powershell_script

    def info(name, text):
        return {"path": name, "script": base64.b64encode(text.encode()).decode()}

    util = f"{ansible_payload.UTIL_FQN.rsplit('.', 1)[0]}.{ansible_payload.UTIL_NAME}.psm1"
    manifest = {
        "scripts": {
            f"{module}.ps1": info(module, module_text),
            util: info(util, util_text),
            "module_wrapper.ps1": info("module_wrapper.ps1", ""),
        },
        "actions": [
            *extra_actions,
            {
                "name": "module_wrapper.ps1",
                "params": {
                    "Script": f"{module}.ps1",
                    "Environment": {},
                    "CSharpModules": ["Ansible.Basic.cs"],
                    "PowerShellModules": [util],
                    "ForModule": True,
                    "Variables": [{"Name": "complex_args", "Value": args, "Scope": "Global"}],
                },
                "secure_params": {},
            },
        ],
        "signed_hashlist": [],
    }
    bootstrap = {"name": "exec_wrapper", "script": _get_powershell_script("exec_wrapper.ps1").decode(), "params": {}}
    stdin = f"{json.dumps(bootstrap)}\n\0\0\0\0\n{json.dumps(manifest)}".encode()
    return _get_powershell_script("bootstrap_wrapper.ps1").decode(), stdin


ARGS = {"request": json.dumps({"kind": "facts", "facts": {}}), "secrets": "{}", "_ansible_check_mode": False}


def test_the_lab_reads_ansibles_exec_wrapper_and_refuses_anything_else():
    script, stdin = _ansible_payload(ansible_payload.HOST_REQUEST_PS1, ansible_payload.module_util(), ARGS)
    invocation = ansible_payload.parse_exec_wrapper(script, stdin)
    assert invocation.wrapper == "ansible exec wrapper (2.19 manifest)" and invocation.args == ARGS
    assert invocation.become is None
    become = {
        "name": "become_wrapper.ps1",
        "params": {"BecomeUser": "CORP\\admin", "LogonType": "Batch"},
        "secure_params": {"BecomePassword": "pw"},
    }
    script, stdin = _ansible_payload(
        ansible_payload.HOST_REQUEST_PS1, ansible_payload.module_util(), ARGS, extra_actions=[become]
    )
    assert ansible_payload.parse_exec_wrapper(script, stdin).become["logon_type"] == "Batch"

    refused = {
        "another module": _ansible_payload(
            "#!powershell\n",
            ansible_payload.module_util(),
            ARGS,
            module="ansible_collections.ansible.windows.plugins.modules.win_shell",
        ),
        "a changed module": _ansible_payload(
            ansible_payload.HOST_REQUEST_PS1 + "Remove-Item C:\\\n", ansible_payload.module_util(), ARGS
        ),
        "a changed library": _ansible_payload(
            ansible_payload.HOST_REQUEST_PS1, ansible_payload.module_util() + "Invoke-Expression $x\n", ARGS
        ),
        "async": _ansible_payload(
            ansible_payload.HOST_REQUEST_PS1,
            ansible_payload.module_util(),
            ARGS,
            extra_actions=[{"name": "async_wrapper.ps1", "params": {}}],
        ),
    }
    for what, (script, stdin) in refused.items():
        with pytest.raises(ansible_payload.ExecWrapperError):
            ansible_payload.parse_exec_wrapper(script, stdin)
            pytest.fail(f"the lab accepted {what}")
    with pytest.raises(ansible_payload.ExecWrapperError):
        ansible_payload.parse_exec_wrapper("Write-Output hello", b"")


def test_the_module_util_is_the_primitive_library():
    assert hostscript.library().strip() in ansible_payload.module_util()
    args = ansible_payload.module_args({"kind": "apply", "groups": []}, {"t/pin": "1234"})
    assert json.loads(args["request"]) == {"kind": "apply", "groups": []}
    assert "1234" not in args["request"] and json.loads(args["secrets"]) == {"t/pin": "1234"}


def test_an_unusable_journal_location_is_a_clear_task_error(lab, tmp_path):
    """Under AWX the journal's directory is lync2fa_state_dir (or LYNC2FA_STATE_DIR): one that
    cannot be written fails the task naming the path and the variable, never '[Errno 2]'."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    book = write(
        tmp_path,
        "journal.yml",
        """---
- name: Journal
  hosts: ca01
  gather_facts: false
  tasks:
    - name: Check mode
      lync2fa.twofactor.ca_authority: {}
      check_mode: true
      ignore_errors: true
    - name: Apply
      lync2fa.twofactor.ca_authority: {}
      ignore_errors: true
""",
    )
    result = run(
        "ansible-playbook",
        "-v",
        "-i",
        lab.inventory,
        book,
        "-e",
        f"lync2fa_state_dir={blocker}/state",
        workdir=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    for name, status, _host, r in results_by_task(result.stdout):
        assert status == "fatal", (name, r)
        assert f"{blocker}/state" in r["msg"] and "lync2fa_state_dir" in r["msg"], r["msg"]
        assert "Errno" not in r["msg"] and "Traceback" not in r["msg"], r["msg"]
    assert not requests(lab), "nothing may reach a host without its journal"


def test_the_gate_judges_the_inventory_once_per_play(tmp_path, monkeypatch):
    """Issue 11 item 3: the Ansible face's steps share the gate's view of the inventory (one
    judgement per play and kind), so a step costs the same from 100 to 1,000 clients."""
    from lync2fa import api
    from lync2fa.gate_cache import GateCache
    from lync2fa.lab import control
    from lync2fa.plugin_manager import default_plugin_manager

    control.create(tmp_path / "lab", clients=12)
    inventory = api.load_inventory(tmp_path / "lab" / "hosts.yml")
    pm = default_plugin_manager()
    tasks = api.tasks(pm)
    built = []
    real = api._gate_context
    monkeypatch.setattr(api, "_gate_context", lambda *a, **k: built.append(1) or real(*a, **k))
    cache = GateCache(tmp_path / "state", "play-1")
    clients = [h.name for h in inventory.hosts_in("clients")]
    assert len(clients) == 12
    for name in clients:
        step = api.Step(
            tasks["client.virtual_smartcard"],
            inventory.host(name),
            api.params_for(tasks["client.virtual_smartcard"], inventory.host(name)),
            None,
        )
        findings = api.gate_findings(inventory, tasks, step, pm, cache)
        assert all(f.host in ("", name) for f in findings)
    assert len(built) == 1, "the inventory's steps were judged more than once in one play"
    # A module option that differs from the inventory is judged again, in its place.
    step = api.Step(
        tasks["client.virtual_smartcard"],
        inventory.host(clients[0]),
        api.params_for(tasks["client.virtual_smartcard"], inventory.host(clients[0]), {"pin": "12345678"}),
        None,
    )
    assert "DEFAULT_PIN" in {f.rule for f in api.gate_findings(inventory, tasks, step, pm, cache, {"pin": "12345678"})}
    assert len(built) == 2


def test_a_fresh_checkout_runs_the_readme_command(tmp_path):
    """`ansible-playbook -i lab/hosts.yml playbooks/deploy_2fa.yml` from a checkout, with no
    collections path configured: playbooks/collections links the checkout as lync2fa.twofactor."""
    import os
    import subprocess

    from ansible_support import BIN, ROOT

    from lync2fa.lab import control

    control.create(tmp_path / "lab", clients=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(tmp_path), ANSIBLE_NOCOLOR="1", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    listed = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "lab" / "hosts.yml"),
            "playbooks/deploy_2fa.yml",
            "--list-tasks",
            "--tags",
            "lync",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    assert "lync2fa.twofactor.lync_server : Passive (AD FS) authentication" in listed.stdout
    assert "lync2fa.twofactor.ca : Install" not in listed.stdout  # --tags lync: the other tiers' tasks are out


def test_the_collections_powershell_passes_the_static_checks():
    """host_request.ps1 and the module_util are PowerShell that reaches hosts: the same checks as
    core/ps (documented cmdlets and parameters, PowerShell 5.1, scopes, prompts, exit codes)."""
    from ansible_support import ROOT

    from lync2fa import pscheck

    assert (
        pscheck.main(
            [
                str(ROOT / "plugins" / "modules" / "host_request.ps1"),
                str(ROOT / "plugins" / "module_utils" / "Lync2faPrimitives.psm1"),
            ]
        )
        == 0
    )


def test_async_is_refused_with_ansibles_message(lab, tmp_path):
    book = write(
        tmp_path,
        "async.yml",
        "---\n- name: Async\n  hosts: ca01\n  gather_facts: false\n  tasks:\n"
        "    - name: CA\n      lync2fa.twofactor.ca_authority: {}\n      async: 30\n      poll: 5\n",
    )
    result = playbook(lab, tmp_path, book, "--check")
    assert "does not support async" in result.stdout, result.stdout[-2000:]
    assert not requests(lab)


def test_renamed_groups_hold_under_limit_roles_and_rollback(lab, tmp_path):
    """A misnamed or renamed group never gives a green run that did nothing: the plays find the
    renamed group under --limit, a role fails on a host outside its group, and rollback checks the
    groups of the tiers it is asked to roll back."""
    inventory = yaml.safe_load(lab.inventory.read_text())
    children = inventory["all"]["children"]
    children["pki"] = children.pop("ca")
    inventory["all"]["vars"]["lync2fa_ca_group"] = "pki"
    renamed = write(tmp_path, "hosts.yml", yaml.safe_dump(inventory))
    limited = playbook(
        lab, tmp_path, PLAYBOOKS / "deploy_2fa.yml", "--check", "--tags", "ca", "--limit", "ca01", inventory=renamed
    )
    assert limited.returncode == 0, limited.stdout[-3000:]
    assert recap(limited.stdout)["ca01"]["ok"] >= 5, limited.stdout[-3000:]  # the CA play ran on pki's host
    # A role on a host outside the group it targets fails (no variable names the group here).
    del inventory["all"]["vars"]["lync2fa_ca_group"]
    unnamed = write(tmp_path, "unnamed.yml", yaml.safe_dump(inventory))
    book = write(
        tmp_path,
        "role.yml",
        "---\n- name: CA role on group pki\n  hosts: pki\n  gather_facts: false\n"
        "  roles:\n    - role: lync2fa.twofactor.ca\n",
    )
    role = playbook(lab, tmp_path, book, "--check", inventory=unnamed)
    assert role.returncode != 0 and recap(role.stdout)["ca01"]["failed"] == 1, role.stdout[-3000:]
    assert "targets the inventory group 'ca'" in role.stdout, role.stdout[-3000:]
    # The multi-group verify role: a host in none of its groups fails its first task.
    book = write(
        tmp_path,
        "verify.yml",
        "---\n- name: Verify role on group pki\n  hosts: pki\n  gather_facts: false\n"
        "  roles:\n    - role: lync2fa.twofactor.verify\n",
    )
    verify = playbook(lab, tmp_path, book, inventory=unnamed)
    assert verify.returncode != 0 and "ca01 is in none of the groups lync2fa.twofactor.verify acts on" in verify.stdout
    # Rollback of a tier whose group is empty fails; another tier's empty group does not matter.
    rollback = playbook(
        lab,
        tmp_path,
        PLAYBOOKS / "rollback_2fa.yml",
        "--check",
        "-e",
        "lync2fa_rollback_tiers=templates",
        inventory=unnamed,
    )
    assert rollback.returncode != 0, rollback.stdout[-3000:]
    assert "the inventory group 'ca' of the templates tier has no hosts" in rollback.stdout
    other = playbook(
        lab,
        tmp_path,
        PLAYBOOKS / "rollback_2fa.yml",
        "--check",
        "-e",
        "lync2fa_rollback_tiers=adfs",
        inventory=unnamed,
    )
    assert other.returncode == 0, other.stdout[-3000:]


@pytest.mark.parametrize(
    "connection, refused",
    [
        ({"ansible_winrm_transport": "basic"}, "Basic authentication over plain http"),
        ({}, "Basic authentication over plain http"),  # ansible.builtin.winrm's default over http: plaintext
        ({"ansible_winrm_transport": "ntlm", "ansible_winrm_message_encryption": "never"}, "message_encryption: never"),
    ],
)
def test_the_ansible_face_refuses_clear_text_before_connecting(tmp_path, connection, refused):
    """Issue 12 items 1-2 on the Ansible face: the play's own winrm connection is judged as the CLI
    judges the inventory, before anything is sent (the host does not resolve: a connection attempt
    would be UNREACHABLE, not a refusal)."""
    hostvars = {
        "ansible_host": "ca01.invalid",
        "ansible_connection": "winrm",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
        "ansible_user": "CORP\\\\admin",
        "ansible_password": "not-sent",
        **connection,
    }
    inventory = write(
        tmp_path, "hosts.yml", yaml.safe_dump({"all": {"children": {"ca": {"hosts": {"ca01": hostvars}}}}})
    )
    book = write(
        tmp_path,
        "one.yml",
        "---\n- name: One CA task\n  hosts: ca01\n  gather_facts: false\n"
        "  tasks:\n    - name: CA\n      lync2fa.twofactor.ca_authority: {}\n      check_mode: true\n",
    )
    result = run("ansible-playbook", "-i", inventory, book, workdir=tmp_path, LYNC2FA_STATE_DIR=tmp_path / "state")
    counts = recap(result.stdout)["ca01"]
    assert counts["failed"] == 1 and counts["unreachable"] == 0, result.stdout[-2000:]
    assert refused in result.stdout and "lync2fa_allow_insecure_transport" in result.stdout


def test_force_group_is_read_as_ansible_reads_a_boolean(lab, tmp_path):
    """force_group: "false" (a string, as INI inventories and -a k=v give it) is false, not truthy."""
    book = write(
        tmp_path,
        "forced.yml",
        "---\n- name: CA on a workstation\n  hosts: cl0001\n  gather_facts: false\n  tasks:\n"
        "    - name: Not forced\n      lync2fa.twofactor.ca_authority:\n        force_group: 'false'\n"
        "      check_mode: true\n",
    )
    result = playbook(lab, tmp_path, book)
    assert recap(result.stdout)["cl0001"]["failed"] == 1, result.stdout[-2000:]
    assert "cl0001 is not in the inventory group 'ca'" in result.stdout
    assert not [r for r in requests(lab) if r["host"] == "cl0001"], "nothing may reach the workstation"


def _stored_run_statuses(lab) -> list[str]:
    """The runs' statuses as the journal stores them (``Journal.runs`` shows a dead 'running' run
    as interrupted: this is what was written)."""
    import sqlite3

    from lync2fa.journal import Journal

    journal = Journal(lab.state_dir)
    path = journal.path
    journal.close()
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY id")]


def test_a_task_timeout_is_the_engines_deadline_and_nothing_is_applied_after_it(lab, tmp_path):
    """Issue 9 item 1: Ansible's ``timeout:`` used to fail the task (changed=0) while the engine went
    on and applied the change. The task's timeout is now the step's deadline: the host's slow fact
    read ends the step with lync2fa's own "no answer", before Ansible's alarm, and no operation is
    sent after it; the run is journaled as ended (never left 'running')."""
    lab.fault("ca01", latency_s=3)
    book = write(
        tmp_path,
        "timeout.yml",
        "---\n- name: Slow CA\n  hosts: ca01\n  gather_facts: false\n  tasks:\n"
        "    - name: Autoenroll\n      lync2fa.twofactor.ca_template_permissions: {autoenroll: true}\n"
        "      timeout: 2\n",
    )
    result = playbook(lab, tmp_path, book)
    counts = recap(result.stdout)["ca01"]
    assert counts["failed"] == 1, result.stdout[-3000:]
    [(_name, status, _host, failed)] = results_by_task(result.stdout)
    assert status == "fatal" and "no answer in" in failed["msg"] and "timeout: 2 s" in failed["msg"], failed
    assert "Timed out after" not in result.stdout, "Ansible's alarm came before the engine's deadline"
    assert not [r for r in requests(lab) if r["kind"] == "apply"], "an operation was sent after the timeout"
    assert counts["changed"] == 0
    assert _stored_run_statuses(lab) and "running" not in _stored_run_statuses(lab)


def test_an_apply_without_an_answer_in_time_may_have_run():
    """The play's connection stops waiting at the deadline: a fact read is simply unanswered, an
    apply request already sent is reported as possibly run (never as nothing done)."""
    import threading

    from lync2fa.ansible_bridge import PlayConnection
    from lync2fa.transport import TransportError

    release = threading.Event()

    class SlowAction:
        def _execute_module(self, **_kwargs):
            release.wait(5)
            return {"response": json.dumps({"ok": True})}

    connection = PlayConnection(SlowAction(), {"inventory_hostname": "ca01"}, timeout=1)  # type: ignore[arg-type]
    connection.requests = 1  # the collection's library check is another test's subject
    try:
        with pytest.raises(TransportError) as read:
            connection.request(hostscript.facts_request({}), None, 0.2, idempotent=True)
        assert "no answer in 0.2 s" in str(read.value) and not read.value.may_have_run
        assert "may have run" not in str(read.value)
        with pytest.raises(TransportError) as refused:
            connection.request(hostscript.apply_request([]), None, 0.2)
        assert "not sent" in str(refused.value), "a request went out on a connection still waiting for an answer"
        fresh = PlayConnection(SlowAction(), {"inventory_hostname": "ca01"}, timeout=1)  # type: ignore[arg-type]
        fresh.requests = 1
        with pytest.raises(TransportError) as applied:
            fresh.request(hostscript.apply_request([]), None, 0.2)
        assert applied.value.may_have_run and "may have run" in str(applied.value)
        assert fresh.apply_sent
    finally:
        release.set()


def test_delegate_to_is_refused_naming_both_hosts(lab, tmp_path):
    """Issue 9 item 2: ``delegate_to`` sent a CA task to a workstation (past the group check, which
    judged the play's host) and journaled the play's host. lync2fa decides per host from that host's
    facts and inventory variables, so a delegated task is refused before anything is sent."""
    book = write(
        tmp_path,
        "delegated.yml",
        "---\n- name: Delegated\n  hosts: ca01\n  gather_facts: false\n  tasks:\n"
        "    - name: CA through a workstation\n      lync2fa.twofactor.ca_authority: {}\n"
        "      delegate_to: cl0001\n      check_mode: true\n",
    )
    result = playbook(lab, tmp_path, book)
    assert recap(result.stdout)["ca01"]["failed"] == 1, result.stdout[-3000:]
    [(_name, status, _host, refused)] = results_by_task(result.stdout)
    assert status == "fatal" and "delegate_to" in refused["msg"], refused
    assert "ca01" in refused["msg"] and "cl0001" in refused["msg"]
    assert not [r for r in requests(lab) if r["host"] == "cl0001"], "nothing may reach the delegated host"


def test_a_forced_delegated_task_is_judged_and_journaled_as_the_delegated_host(lab, tmp_path):
    """With force_group, a delegated task is the delegated host's step: the journal names the host
    that was reached, not the play's host."""
    from lync2fa.journal import Journal

    book = write(
        tmp_path,
        "delegated.yml",
        "---\n- name: Delegated\n  hosts: ca01\n  gather_facts: false\n  tasks:\n"
        "    - name: Client task through the CA's play\n      lync2fa.twofactor.client_virtual_smartcard:\n"
        "        force_group: true\n      delegate_to: cl0001\n      check_mode: true\n",
    )
    result = playbook(lab, tmp_path, book)
    assert recap(result.stdout)["ca01"]["failed"] == 0, result.stdout[-3000:]
    assert {r["host"] for r in requests(lab)} == {"cl0001"}
    journal = Journal(lab.state_dir)
    try:
        assert {r["host"] for r in journal.results()} == {"cl0001"}
    finally:
        journal.close()
