"""The facts -> decision -> operations seam on the lab, with a task defined here (so that the
Windows model, not a tier, is under test), through real pywinrm and the lab's WinRM endpoint."""

from __future__ import annotations

import json

import pytest

from lync2fa import hostops, hostscript
from lync2fa.connection import ConnectionSettings
from lync2fa.decision import Decision
from lync2fa.journal import Journal
from lync2fa.plan import Plan, PlanError, Step, build_plan
from lync2fa.plugin_manager import default_plugin_manager
from lync2fa.runner import Runner
from lync2fa.task import Param, Task

KEY = "HKLM:\\SOFTWARE\\Contoso\\Seam"


def _registry_decide(ctx):
    current = ctx.facts.value("key")["values"].get("Mode")
    before, after = {"mode": current}, {"mode": ctx.params["mode"]}
    ops = [] if current == ctx.params["mode"] else [hostops.registry_set(KEY, "Mode", ctx.params["mode"])]
    return Decision(before, after, ops)


REGISTRY_TASK = Task(
    name="seam.registry",
    group="clients",
    params=(Param("mode", default="strict"),),
    facts=lambda p: {"key": hostops.registry_fact(KEY, ["Mode"])},
    decide=_registry_decide,
)


def _run(lab, task, params, check_mode=False, host="cl0001"):
    inventory = lab.load_inventory()
    ctx = inventory.host(host)
    step = Step(task, ctx, task.validate(params), ConnectionSettings.from_host(ctx))
    runner = Runner(default_plugin_manager().hook, journal=Journal(lab.state_dir), forks=1)
    return runner.run(Plan(tasks=[task], steps=[step]), check_mode).results[0]


def test_a_request_is_data_and_the_library_must_be_the_shipped_one():
    hostile = "x'@\n$(Remove-Item C:\\ -Recurse)`\"; '@"
    groups = [{"id": "seam.registry", "needs": [], "operations": [hostops.registry_set(KEY, "Mode", hostile)]}]
    frame = hostscript.session_frame(hostscript.apply_request(groups), None, with_library=True)
    assert frame.count(b"\n") == 1 and frame.endswith(b"\n")  # one line of JSON, read as data
    request, _, _ = hostscript.parse_frame(frame.decode(), False)
    assert request["groups"][0]["operations"][0]["value"] == hostile
    import base64
    import gzip
    import json as json_

    doc = json_.loads(frame)
    tampered = hostscript.library().replace("function Invoke-Lync2faNative", "function Invoke-Lync2faNativeX", 1)
    doc["library"] = base64.b64encode(gzip.compress(tampered.encode())).decode()
    with pytest.raises(hostscript.HostScriptError, match="library differs"):
        hostscript.parse_frame(json_.dumps(doc), False)


def test_session_frames_carry_the_library_once_and_secrets_as_data():
    first = hostscript.session_frame({"kind": "facts", "facts": {}}, {"pin": "12345678"}, with_library=True)
    later = hostscript.session_frame({"kind": "facts", "facts": {}}, None, with_library=False)
    request, secrets, loaded = hostscript.parse_frame(first.decode(), False)
    assert loaded and secrets == {"pin": "12345678"}
    assert hostscript.parse_frame(later.decode(), True)[0] == request
    with pytest.raises(hostscript.HostScriptError, match="not recognized"):
        hostscript.parse_frame(later.decode(), False)  # no library yet: Windows would not know the function
    assert len(later) < 200 and b"function " not in later


def test_plan_apply_reapply_and_the_lab_runs_exactly_the_decided_operations(make_lab):
    lab = make_lab(clients=1)
    planned = _run(lab, REGISTRY_TASK, {"mode": "strict"}, check_mode=True)
    assert planned.changed and planned.operations and lab.operations("cl0001") == []
    applied = _run(lab, REGISTRY_TASK, {"mode": "strict"})
    assert applied.changed and not applied.failed
    assert lab.operations("cl0001") == [hostops.registry_set(KEY, "Mode", "strict")]
    again = _run(lab, REGISTRY_TASK, {"mode": "strict"})
    assert not again.changed and not again.failed and again.operations == []
    assert len(lab.operations("cl0001")) == 1  # a no-op re-apply sends no operation


def _cmdlet_task(params):
    return Task(
        name="seam.cmdlet",
        group="clients",
        facts=lambda p: {},
        decide=lambda ctx: Decision({}, {"x": 1}, [hostops.cmdlet("Get-Module", params)]),
    )


def test_a_misspelt_parameter_fails_in_the_lab_with_windows_text(make_lab):
    lab = make_lab(clients=1)
    result = _run(lab, _cmdlet_task({"ListAvailable": True, "Nmae": "TrustedPlatformModule"}), {})
    assert result.failed
    assert "A parameter cannot be found that matches parameter name 'Nmae'." in result.msg


def test_a_wrong_type_fails_in_the_lab_with_windows_text(make_lab):
    lab = make_lab(clients=1)
    result = _run(lab, _cmdlet_task({"ListAvailable": "yes"}), {})
    assert result.failed
    assert (
        "Cannot convert 'System.String' to the type 'System.Management.Automation.SwitchParameter' required by "
        "parameter 'ListAvailable'." in result.msg
    )


def test_a_registry_value_of_the_wrong_type_fails_through_winrm_and_the_session_goes_on(make_lab):
    lab = make_lab(clients=1)
    wrong = Task(
        name="seam.dword",
        group="clients",
        facts=lambda p: {},
        decide=lambda ctx: Decision({}, {"n": "abc"}, [hostops.registry_set(KEY, "Count", "abc", "DWord")]),
    )
    result = _run(lab, wrong, {})
    assert result.failed
    assert 'Cannot convert value "abc" to type "System.Int32". Error: "Input string was not in a correct format."' in (
        result.msg
    )
    assert not _run(lab, REGISTRY_TASK, {"mode": "strict"}).failed  # the host still answers


AD_TASK = Task(
    name="seam.ad",
    group="clients",
    reaches=("ad",),
    facts=lambda p: {"config": hostops.ad_object_fact("{configurationNamingContext}", ["cn"])},
    decide=lambda ctx: Decision({"cn": ctx.facts.value("config")["attributes"]}, {}, []),
)


def test_defect2_double_hop_ntlm_session_cannot_reach_ad(make_lab):
    lab = make_lab(clients=1, transport="ntlm")
    result = _run(lab, AD_TASK, {})
    assert result.failed and "An operations error occurred." in result.msg


def test_defect2_plan_refuses_ad_reaching_steps_over_ntlm_before_anything_runs(make_lab):
    lab = make_lab(clients=1, transport="ntlm")
    with pytest.raises(PlanError) as refused:
        build_plan(lab.load_inventory(), {"seam.ad": AD_TASK})
    text = str(refused.value)
    assert "cl0001: seam.ad reaches Active Directory" in text and "credssp" in text
    assert "ansible_winrm_kerberos_delegation" in text and "runas" in text
    assert lab.operations() == []


def test_credssp_session_reaches_ad(make_lab):
    lab = make_lab(clients=1)
    result = _run(lab, AD_TASK, {})
    assert not result.failed, result.msg


def test_defect8_powershell_2_host_fails_before_anything_runs(make_lab):
    lab = make_lab(clients=1)
    lab.set_machine_props("cl0001", powershell_version="2.0")
    result = _run(lab, REGISTRY_TASK, {"mode": "strict"})
    # the session loop's first check answers, before ConvertFrom-Json (which 2.0 lacks) could fail
    assert result.failed and "lync2fa needs Windows PowerShell 5.1 (WMF 5.1); this host runs 2.0" in result.msg
    assert lab.operations() == []


def _requests(counters: dict) -> int:
    return sum(counters["requests"].values())


def test_issue11_one_process_per_host_and_few_requests(make_lab):
    lab = make_lab(clients=1)
    before = lab.counters("cl0001")
    _run(lab, REGISTRY_TASK, {"mode": "strict"})  # apply: facts, then operations
    applied = lab.counters("cl0001")
    _run(lab, REGISTRY_TASK, {"mode": "strict"})  # no-op re-apply: facts only
    again = lab.counters("cl0001")
    apply_requests = _requests(applied) - _requests(before)
    noop_requests = _requests(again) - _requests(applied)
    # Create, Command, Send+Receive (facts), Send+Receive (operations), Delete; the CredSSP or
    # NTLM handshake is not a WS-Management request.
    assert apply_requests <= 7, json.dumps(applied)
    assert noop_requests <= 5, json.dumps(again)
    assert applied["process_starts"] - before["process_starts"] == 1
    assert again["process_starts"] - applied["process_starts"] == 1
    assert "Signal" not in again["requests"]


def test_what_reaches_a_host_passes_the_static_checks():
    """The session loop and the library it loads (issue 7)."""
    from lync2fa import pscheck

    functions = pscheck.defined_functions(hostscript.library())
    findings = pscheck.check_text(hostscript.SESSION_LOOP, "session loop", functions)
    findings += pscheck.check_text(hostscript.library(), "library")
    assert findings == [], "\n".join(str(f) for f in findings)
