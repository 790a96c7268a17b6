"""Windows PowerShell 5.1 is required before anything runs (issue 7): the session loop and the
Ansible module check $PSVersionTable.PSVersion first, so an older host fails with a clear message
even with ``apply --skip-preflight``, and nothing of the request runs on it."""

from __future__ import annotations

import base64
import json

import pytest
from test_ansible_native import ARGS, _ansible_payload

from lync2fa import ansible_payload, hostscript, pscheck
from lync2fa.lab import control
from lync2fa.lab.dispatch import Dispatcher
from lync2fa.lab.estate import Estate
from lync2fa.lab.faults import FaultBook

MESSAGE_4_0 = "lync2fa needs Windows PowerShell 5.1 (WMF 5.1); this host runs 4.0"


def test_apply_skipping_preflight_fails_a_powershell_4_host_and_changes_nothing_on_it(make_lab, run_cli):
    lab = make_lab(clients=2)
    lab.set_machine_props("cl0001", powershell_version="4.0")
    tasks = ("--tasks", "client.lync_settings", "--skip-preflight", "--json")
    applied = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, *tasks)
    assert applied.code == 1, applied.out
    results = {r["host"]: r for r in applied.json()["results"]}
    assert results["cl0001"]["failed"] and MESSAGE_4_0 in results["cl0001"]["msg"]
    assert not results["cl0001"]["changed"] and lab.operations("cl0001") == []
    requests = (lab.dir / "requests.jsonl").read_text().splitlines()
    assert not [r for r in map(json.loads, requests) if r["host"] == "cl0001"]  # no request ever ran there
    assert results["cl0002"]["changed"] and not results["cl0002"]["failed"]  # the other host proceeds
    assert lab.operations("cl0002")


def test_preflight_names_the_version_the_session_refused(make_lab, run_cli):
    lab = make_lab(clients=1)
    lab.set_machine_props("cl0001", powershell_version="4.0")
    result = run_cli("preflight", "-i", lab.inventory, "--json", "--limit", "cl0001")
    assert result.code == 1
    checks = [(c["name"], c["status"], c["detail"]) for c in result.json()["checks"] if c["host"] == "cl0001"]
    assert checks == [("powershell", "fail", MESSAGE_4_0)]


@pytest.mark.parametrize(
    "version, refused",
    [("2.0", True), ("4.0", True), ("5.0.10586.117", True), ("5.1.14409.1005", False), ("5.1.17763.1", False)],
)
def test_the_minimum_is_5_1_as_version_objects_compare(version, refused):
    assert (hostscript.powershell_too_old(version) is not None) is refused


def test_the_version_check_comes_before_anything_else_and_passes_the_static_checks():
    loop = hostscript.SESSION_LOOP
    assert loop.index(hostscript.PS_TOO_OLD) < loop.index("while ($true)")
    assert loop.index("if ($lync2faTooOld)") < loop.index("ConvertFrom-Json") < loop.index("Invoke-Lync2faRequest")
    module = ansible_payload.HOST_REQUEST_PS1
    assert (
        module.index(hostscript.PS_TOO_OLD) < module.index("ConvertFrom-Json") < module.index("Invoke-Lync2faRequest")
    )
    functions = pscheck.defined_functions(hostscript.library())
    assert pscheck.check_text(loop, "session loop", functions) == []
    assert pscheck.check_text(module, "host_request.ps1", functions) == []


@pytest.fixture
def dispatcher(tmp_path):
    """The lab's dispatcher on a fresh estate (no server: the Ansible payload is handed over directly)."""
    control.create(tmp_path, clients=1)
    store = control.open_store(tmp_path)
    yield Dispatcher(store, Estate.load(tmp_path), FaultBook(store))
    store.close()


def _set_version(dispatcher: Dispatcher, version: str) -> None:
    with dispatcher.store.transaction():
        props = dispatcher.store.get("host_props", "cl0001") or {}
        dispatcher.store.put("host_props", "cl0001", {**props, "powershell_version": version})


def _payload_219(args: dict) -> tuple[str, bytes]:
    """What the installed ansible-core (2.19) sends, built from its own bootstrap and exec wrapper."""
    return _ansible_payload(ansible_payload.HOST_REQUEST_PS1, ansible_payload.module_util(), args)


def _payload_216(args: dict) -> tuple[str, bytes]:
    """What ansible-core 2.16's winrm connection sends, in the parts the lab reads: its bootstrap
    (which requires PowerShell 3.0 only) and the exec wrapper payload carrying the module."""
    script = '$exec_wrapper_str = $input | Out-String\n$parts = $exec_wrapper_str.Split(@("`0`0`0`0"), 2)'
    head = "$json_raw = ''\n# common_functions\n"

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    payload = {
        "actions": ["module_powershell_wrapper"],
        "module_entry": b64(ansible_payload.HOST_REQUEST_PS1),
        "powershell_modules": {ansible_payload.UTIL_NAME: b64(ansible_payload.module_util())},
        "module_args": args,
    }
    return script, f"{head}\0\0\0\0{json.dumps(payload)}".encode()


@pytest.mark.parametrize(
    "version, message",
    [
        ("4.0", MESSAGE_4_0),  # past 2.16's bootstrap (3.0): host_request.ps1's own first check
        ("5.0.10586.117", "lync2fa needs Windows PowerShell 5.1 (WMF 5.1); this host runs 5.0.10586.117"),
        ("2.0", "Ansible requires PowerShell v3.0 or newer"),  # 2.16's bootstrap itself
    ],
)
def test_the_ansible_module_fails_below_5_1_without_running_the_request(dispatcher, version, message):
    _set_version(dispatcher, version)
    outcome = dispatcher.run_ansible_module("cl0001", *_payload_216(ARGS))
    result = json.loads(outcome.stdout)
    assert outcome.exit_code == 1 and result["failed"] and result["msg"] == message
    assert "response" not in result and dispatcher.operations == {}


@pytest.mark.parametrize("version", ["4.0", "5.0.10586.117"])
def test_ansible_2_19_bootstrap_refuses_below_5_1_itself(dispatcher, version):
    _set_version(dispatcher, version)
    outcome = dispatcher.run_ansible_module("cl0001", *_payload_219(ARGS))
    assert outcome.exit_code == 1
    assert json.loads(outcome.stdout) == {"failed": True, "msg": "Ansible requires PowerShell v5.1"}


@pytest.mark.parametrize("line", ["2.16", "2.19"])
def test_the_ansible_module_runs_from_5_1(dispatcher, line):
    _set_version(dispatcher, "5.1.14409.1005")
    payload = _payload_216(ARGS) if line == "2.16" else _payload_219(ARGS)
    outcome = dispatcher.run_ansible_module("cl0001", *payload)
    assert outcome.exit_code == 0 and json.loads(json.loads(outcome.stdout)["response"])["lync2fa"] == 1
