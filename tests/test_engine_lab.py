"""Engine behaviour against the lab: HTTPS, vault, reports, retries, progress hooks, journal."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from ansible.parsing.vault import VaultLib, VaultSecret

from lync2fa import api
from lync2fa.hookspecs import hookimpl
from lync2fa.plugin_manager import new_plugin_manager


def test_https_with_certificate_validation(make_lab, run_cli, tmp_path):
    lab = make_lab(https=True, clients=1)
    text = lab.inventory.read_text()
    assert "ansible_winrm_scheme: https" in text and "ansible_winrm_server_cert_validation: validate" in text
    ok = run_cli("apply", "-i", lab.inventory, "--tasks", "ca", "--state-dir", lab.state_dir)
    assert ok.code == 0, ok.out
    untrusted = tmp_path / "untrusted.yml"
    untrusted.write_text("\n".join(line for line in text.splitlines() if "ca_trust_path" not in line) + "\n")
    refused = run_cli("apply", "-i", untrusted, "--tasks", "ca", "--state-dir", lab.state_dir)
    assert refused.code == 1 and "apply refused: preflight failed" in refused.out
    failed = run_cli("apply", "-i", untrusted, "--tasks", "ca", "--state-dir", lab.state_dir, "--skip-preflight")
    assert failed.code == 1
    assert "TLS verification failed for https://127.0.0.1:" in failed.out


def test_vault_encrypted_password(lab, run_cli, tmp_path):
    password = next(
        line.split(": ", 1)[1] for line in lab.inventory.read_text().splitlines() if "ansible_password:" in line
    )
    vault = VaultLib([("default", VaultSecret(b"correct horse"))])
    encrypted = vault.encrypt(password).decode()
    vaulted_lines = []
    for line in lab.inventory.read_text().splitlines():
        if "ansible_password:" in line:
            indent = line[: len(line) - len(line.lstrip())]
            vaulted_lines.append(f"{indent}ansible_password: !vault |")
            vaulted_lines += [f"{indent}  {part}" for part in encrypted.splitlines()]
        else:
            vaulted_lines.append(line)
    inventory = tmp_path / "vaulted.yml"
    inventory.write_text("\n".join(vaulted_lines) + "\n")
    assert password not in inventory.read_text()
    pw_file = tmp_path / "vault-pass"
    pw_file.write_text("correct horse\n")
    ok = run_cli(
        "apply",
        "-i",
        inventory,
        "--vault-password-file",
        pw_file,
        "--tasks",
        "ca",
        "--state-dir",
        lab.state_dir,
        "--json",
    )
    assert ok.code == 0, ok.err
    assert ok.json()["counts"]["changed"] == 4
    # ansible-core keeps vault secrets process-wide: a fresh process, as a real invocation is.
    no_secret = subprocess.run(
        [
            sys.executable,
            "-m",
            "lync2fa.cli",
            "plan",
            "-i",
            str(inventory),
            "--tasks",
            "ca",
            "--state-dir",
            str(lab.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_secret.returncode == 2
    assert "variable ansible_password" in no_secret.stderr and "no vault password was given" in no_secret.stderr
    assert password not in no_secret.stdout + no_secret.stderr


def test_reports_json_junit_sarif(lab, run_cli, tmp_path):
    inventory = tmp_path / "broad.yml"
    inventory.write_text(
        lab.inventory.read_text().replace("ca_common_name:", "ca_principal: Domain Users\n          ca_common_name:")
    )
    reports = tmp_path / "reports"
    result = run_cli("apply", "-i", inventory, "--tasks", "ca", "--state-dir", lab.state_dir, "--report-dir", reports)
    assert result.code == 0, result.out
    data = json.loads((reports / "report.json").read_text())
    assert data["counts"] == {"ok": 0, "changed": 4, "failed": 0, "skipped": 0}
    suite = ET.parse(reports / "report.junit.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0"
    assert {c.get("classname") for c in suite.iter("testcase")} == {
        "ca.authority",
        "ca.web_enrollment",
        "ca.templates_published",
        "ca.template_permissions",
    }
    sarif = json.loads((reports / "report.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["BROAD_ENROLL", "TASK_WARNING", "TASK_WARNING"]
    assert results[0]["level"] == "warning"
    # the two feature installs' own warning (the lab's servers have Windows Update off)
    assert all("Windows automatic updating is not enabled" in r["message"]["text"] for r in results[1:])


def test_winrm_timeouts_are_retried_and_5xx_fail_after_backoff(lab, run_cli):
    lab.fault("ca01", receive_timeouts=2)
    assert run_cli("apply", "-i", lab.inventory, "--tasks", "ca.authority", "--state-dir", lab.state_dir).code == 0
    lab.clear_faults()
    lab.fault("ca01", http_status=503)
    failed = run_cli("plan", "-i", lab.inventory, "--tasks", "ca.web_enrollment", "--state-dir", lab.state_dir)
    assert failed.code == 1
    assert "ca01: open shell failed: HTTP 503 from http://127.0.0.1:" in failed.out
    assert "(after 3 attempts)" in failed.out


def test_hooks_observe_every_step_and_the_journal_audits_runs(lab):
    seen = []

    class Observer:
        @hookimpl
        def lync2fa_task_start(self, step):
            seen.append(("start", step.task.name, step.host.name))

        @hookimpl
        def lync2fa_task_finish(self, step, result):
            seen.append(("finish", result.task, result.status))

    pm = new_plugin_manager()
    pm.register(Observer())
    inventory = lab.load_inventory()
    plan = api.plan(inventory, only=["ca"], pm=pm)
    report = api.run(plan, state_dir=lab.state_dir, pm=pm)
    assert report.ok
    assert [s for s in seen if s[0] == "finish"] == [
        ("finish", t, "changed")
        for t in ("ca.authority", "ca.web_enrollment", "ca.templates_published", "ca.template_permissions")
    ]
    assert seen[0] == ("start", "ca.authority", "ca01")

    from lync2fa.journal import Journal

    journal = Journal(lab.state_dir)
    try:
        runs = journal.runs()
        assert runs[-1]["status"] == "ok" and runs[-1]["command"] == "apply" and runs[-1]["check_mode"] == 0
        rows = [r for r in journal.results(runs[-1]["id"]) if r["status"] != "started"]
        assert [r["task"] for r in rows] == [s[1] for s in seen if s[0] == "finish"]
        assert json.loads(rows[0]["diff"])[0]["path"] == "ca_type"
    finally:
        journal.close()


def test_resume_skips_what_the_failed_run_already_did(lab, run_cli):
    lab.fault("ca01", fail_tasks=["ca.template_permissions"])
    first = run_cli("apply", "-i", lab.inventory, "--tasks", "ca", "--state-dir", lab.state_dir, "--json")
    assert first.code == 1
    lab.clear_faults()
    resumed = run_cli(
        "apply", "-i", lab.inventory, "--tasks", "ca", "--state-dir", lab.state_dir, "--resume", "--json"
    ).json()
    by_task = {r["task"]: r for r in resumed["results"]}
    assert by_task["ca.authority"]["msg"] == f"done in run {first.json()['run_id']} (resumed)"
    assert by_task["ca.template_permissions"]["changed"] is True
    # The lab fails the whole request the faulty step was applied in: its steps are redone.
    failed = {r["task"] for r in first.json()["results"] if r["failed"]}
    assert "ca.authority" not in failed and "ca.template_permissions" in failed
    assert {t for t, r in by_task.items() if r["changed"]} == failed
    assert resumed["counts"] == {"ok": 4 - len(failed), "changed": len(failed), "failed": 0, "skipped": 0}
    # The last run ended well: nothing to resume from now, every step runs (and changes nothing).
    again = run_cli(
        "apply", "-i", lab.inventory, "--tasks", "ca", "--state-dir", lab.state_dir, "--resume", "--json"
    ).json()
    assert all("resumed" not in r["msg"] for r in again["results"]) and again["counts"]["changed"] == 0
