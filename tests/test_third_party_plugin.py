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
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(HERE / "example_plugin")], check=True)
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
