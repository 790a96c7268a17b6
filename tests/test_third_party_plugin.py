"""A third-party plugin, pip-installed from tests/example_plugin, is planned and run like a
built-in one (registered through the same entry-point group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LYNC2FA = [sys.executable, "-m", "lync2fa.cli"]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(HERE / "example_plugin"),
        ],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    return env


def lync2fa(env, *args):
    return subprocess.run([*LYNC2FA, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def test_plugin_is_listed_with_its_task(plugin_env):
    listed = json.loads(lync2fa(plugin_env, "plugins", "--json").stdout)
    example = next(p for p in listed if p["name"] == "example")
    assert example["tasks"] == ["example.audit_filter"]
    assert example["distribution"] == "lync2fa-example-plugin 1.0.0"
    assert any(p["name"] == "ca" for p in listed)


def test_plugin_is_absent_without_installation():
    listed = json.loads(subprocess.run([*LYNC2FA, "plugins", "--json"], capture_output=True, text=True).stdout)
    assert "example" not in {p["name"] for p in listed}


def test_plugin_task_is_planned_and_run(plugin_env, tmp_path):
    lab_dir, state = tmp_path / "lab", tmp_path / "state"
    assert lync2fa(plugin_env, "lab", "up", "--dir", lab_dir, "--clients", "1").returncode == 0
    try:
        inventory = lab_dir / "hosts.yml"
        planned = lync2fa(plugin_env, "plan", "-i", inventory, "--tasks", "ca,example", "--state-dir", state, "--json")
        assert planned.returncode == 0, planned.stderr
        tasks = [r["task"] for r in json.loads(planned.stdout)["results"]]
        assert tasks.index("example.audit_filter") > tasks.index("ca.authority")  # runs after its dependency
        applied = lync2fa(plugin_env, "apply", "-i", inventory, "--tasks", "ca,example", "--state-dir", state)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "changed example.audit_filter on ca01" in applied.stdout
        assert "~ audit_filter: 0 -> 127" in applied.stdout
        again = lync2fa(plugin_env, "apply", "-i", inventory, "--tasks", "example", "--state-dir", state, "--json")
        assert json.loads(again.stdout)["counts"]["changed"] == 0
    finally:
        lync2fa(plugin_env, "lab", "down", "--dir", lab_dir)


def _example():
    sys.path.insert(0, str(HERE / "example_plugin"))
    try:
        import lync2fa_example
    finally:
        sys.path.pop(0)
    return lync2fa_example


def test_example_decides_from_facts_without_a_lab():
    from lync2fa.decision import Context, Facts, More

    example = _example()
    task = example.lync2fa_tasks()[0]
    params = task.validate({})
    key = example.CONFIGURATION + "\\Contoso CA"

    def decide(facts, check_mode=False):
        ctx = Context(task.name, "ca01", params, Facts(facts), check_mode=check_mode)
        answer = task.decide(ctx)
        while isinstance(answer, More):
            ctx.facts = ctx.facts.merged({name: facts_after[name] for name in answer.facts})
            answer = task.decide(ctx)
        return answer

    no_ca = {"configuration": {"ok": True, "value": {"exists": False, "values": {}, "subkeys": []}}}
    facts_after = {"ca": {"ok": True, "value": {"exists": True, "values": {"AuditFilter": 0}, "subkeys": []}}}
    assert decide(no_ca).failed  # apply: refused until the CA exists
    planned = decide(no_ca, check_mode=True)
    assert not planned.failed and planned.after == {"audit_filter": 127} and planned.warnings
    with_ca = {
        "configuration": {
            "ok": True,
            "value": {"exists": True, "values": {"Active": "Contoso CA"}, "subkeys": ["Contoso CA"]},
        }
    }
    decision = decide(with_ca)
    assert decision.operations[0] == {
        "op": "registry_set",
        "path": key,
        "name": "AuditFilter",
        "value": 127,
        "type": "DWord",
    }
    assert decision.operations[1]["cmdlet"] == "Restart-Service"
    facts_after["ca"]["value"]["values"]["AuditFilter"] = 127
    assert decide(with_ca).operations == []


def test_a_misspelt_hook_implementation_is_refused():
    """A hook lync2fa does not define would silently never be called (issue 8: check_pending)."""
    import types

    from lync2fa.hookspecs import hookimpl
    from lync2fa.plugin_manager import PluginError, check, new_plugin_manager

    plugin = types.ModuleType("typo_plugin")

    @hookimpl
    def lync2fa_taks():  # noqa: ANN202 - the misspelling under test
        return []

    plugin.lync2fa_taks = lync2fa_taks
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="typo")
    with pytest.raises(PluginError, match="typo"):
        check(pm)


def test_two_plugins_contributing_one_task_name_are_refused():
    import types

    from lync2fa import hostops
    from lync2fa.decision import Decision
    from lync2fa.hookspecs import hookimpl
    from lync2fa.plugin_manager import collect_tasks, new_plugin_manager
    from lync2fa.task import Task

    def make(name):
        plugin = types.ModuleType(name)

        @hookimpl
        def lync2fa_tasks():
            return [
                Task(
                    name="dup.task",
                    group="ca",
                    facts=lambda p: {"h": hostops.host_fact()},
                    decide=lambda ctx: Decision(),
                )
            ]

        plugin.lync2fa_tasks = lync2fa_tasks
        return plugin

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(make("one"), name="one")
    pm.register(make("two"), name="two")
    with pytest.raises(ValueError, match="dup.task"):
        collect_tasks(pm)
