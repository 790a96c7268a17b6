"""The Ansible face against real labs: ansible-playbook runs the rollout through the collection's
action plugins (the engine over WinRM), in check/diff mode and for real, idempotently; the CLI
and Ansible make the same changes and reach the same end state."""

from __future__ import annotations

import re
import sqlite3

from ansible_support import PLAYBOOKS, changed_steps, engine_results, recap, results_by_task, run

from lync2fa import api


def playbook(lab, tmp_path, name, *args):
    path = name if "/" in str(name) else PLAYBOOKS / name
    return run(
        "ansible-playbook", "-v", "-i", lab.inventory, path, *args, workdir=tmp_path, LYNC2FA_STATE_DIR=lab.state_dir
    )


def all_steps(lab, kind="apply") -> set[tuple[str, str]]:
    return {step.key for step in api.plan(lab.load_inventory(), kind=kind).steps}


def cli_changed(result) -> set[tuple[str, str]]:
    return {(r["task"], r["host"]) for r in result.json()["results"] if r["changed"]}


VOLATILE = [
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----\n?", re.S), "<pem>"),
    (re.compile(r"^[A-Za-z0-9+/]{200,}={0,2}$"), "<base64>"),  # DER certificates, store blobs
    (re.compile(r"\b\d{14}\.\d+Z\b"), "<time>"),  # AD generalized time
    (re.compile(r"\b(?:[0-9a-f]{2} ){19}[0-9a-f]{2}\b"), "<hex>"),  # certutil-style hashes
    (re.compile(r"\b1\.3\.6\.1\.4\.1\.311\.21\.8(?:\.\d+)+"), "<template-oid>"),  # random per forest/template
    (re.compile(r"\b[0-9A-Fa-f]{16,}\b"), "<hex>"),  # serials, thumbprints
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<guid>"),
]


def normalise(value, secrets=()):
    """A lab snapshot without what differs between two identical runs: keys, certificates,
    serials, random OIDs, timestamps, and the lab's own random secrets (password, PINs)."""
    if isinstance(value, dict):
        return {normalise(k, secrets): normalise(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "<secret>")
        for pattern, mask in VOLATILE:
            value = pattern.sub(mask, value)
    return value


def lab_secrets(lab) -> list[str]:
    return sorted(api.plan(lab.load_inventory()).secrets(), key=len, reverse=True)


def test_check_diff_then_deploy_is_idempotent_verifies_and_rolls_back(make_lab, tmp_path, run_cli):
    lab = make_lab(clients=1)
    fresh = lab.snapshot()
    planned = run_cli("plan", "-i", lab.inventory, "--state-dir", tmp_path / "cli-state", "--json")
    assert planned.code == 0, planned.err

    # --check --diff on a fresh lab: what the CLI's plan shows, with diffs; nothing changes.
    checked = playbook(lab, tmp_path, "deploy_2fa.yml", "--check", "--diff")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert changed_steps(checked.stdout) == cli_changed(planned) != set()
    assert "--- before: ca.authority on ca01\n+++ after: ca.authority on ca01" in checked.stdout
    assert '+    "common_name": "Lync2FA Lab Root CA",' in checked.stdout
    assert lab.snapshot() == fresh, "--check must not change the estate"

    # Deploy: every step that was shown changes; a second run changes nothing.
    applied = playbook(lab, tmp_path, "deploy_2fa.yml")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert changed_steps(applied.stdout) == cli_changed(planned)
    assert {(r["engine_task"], host) for _, host, r in engine_results(applied.stdout)} == all_steps(lab)
    assert lab.snapshot() != fresh
    again = playbook(lab, tmp_path, "deploy_2fa.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    counters = recap(again.stdout)
    assert set(counters) - {"localhost"} == {host for _, host in all_steps(lab)}  # localhost: the group play
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counters.values()), counters

    # verify_2fa.yml passes, and runs what lync2fa verify runs: every apply and verify task.
    verified = playbook(lab, tmp_path, "verify_2fa.yml")
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert {(r["engine_task"], h) for s, h, r in engine_results(verified.stdout)} == all_steps(lab, api.VERIFY_KINDS)
    assert all(c["failed"] == 0 and c["changed"] == 0 for c in recap(verified.stdout).values())

    # Drift behind lync2fa's back: both faces' verify fail on exactly that setting, change nothing.
    key = "CsWebServiceConfiguration/service:webserver:pool01.corp.lync2fa.test"
    web = lab.get("cs_config", key)
    web["UsePinAuth"] = True
    lab.put("cs_config", key, web)
    drifted = lab.snapshot()
    cli_verify = run_cli("verify", "-i", lab.inventory, "--state-dir", tmp_path / "cli-state", "--json")
    assert cli_verify.code == 1
    failed = [(r["task"], r["host"], r["msg"]) for r in cli_verify.json()["results"] if r["failed"]]
    assert failed == [("lync.web_service", "pool01", "not in place: UsePinAuth")]
    ansible_verify = playbook(lab, tmp_path, "verify_2fa.yml")
    assert ansible_verify.returncode != 0
    assert [
        (r["engine_task"], h, r["msg"]) for s, h, r in engine_results(ansible_verify.stdout) if s == "fatal"
    ] == failed
    assert lab.snapshot() == drifted, "verify must not change the estate"
    repaired = playbook(lab, tmp_path, "deploy_2fa.yml")
    assert repaired.returncode == 0 and changed_steps(repaired.stdout) == {("lync.web_service", "pool01")}

    # Rollback needs its tiers named (as --tier), then removes what the CLI would remove.
    unnamed = playbook(lab, tmp_path, "rollback_2fa.yml")
    assert unnamed.returncode != 0 and "lync2fa_rollback_tiers=TIER" in unnamed.stdout
    tiers = sorted({task.split(".", 1)[0] for task, _ in all_steps(lab, "rollback")})
    would = run_cli(
        "rollback",
        "-i",
        lab.inventory,
        "--tier",
        ",".join(tiers),
        "--check",
        "--json",
        "--state-dir",
        tmp_path / "cli-state",
    )
    assert would.code == 0, would.out
    rolled = playbook(lab, tmp_path, "rollback_2fa.yml", "-e", "lync2fa_rollback_tiers=" + ",".join(tiers))
    assert rolled.returncode == 0, rolled.stdout[-3000:]
    assert changed_steps(rolled.stdout) == cli_changed(would) != set()


def test_cli_and_ansible_make_the_same_changes_and_reach_the_same_state(make_lab, tmp_path, run_cli):
    by_cli, by_ansible = make_lab(clients=1), make_lab(clients=1)
    secrets = lab_secrets(by_cli) + lab_secrets(by_ansible)
    assert normalise(by_cli.snapshot(), secrets) == normalise(by_ansible.snapshot(), secrets), "identical estates"

    cli = run_cli("apply", "-i", by_cli.inventory, "--state-dir", by_cli.state_dir, "--json")
    assert cli.code == 0, cli.out[-3000:]
    ansible = playbook(by_ansible, tmp_path, "deploy_2fa.yml")
    assert ansible.returncode == 0, ansible.stdout[-3000:]

    assert changed_steps(ansible.stdout) == cli_changed(cli)
    assert normalise(by_ansible.snapshot(), secrets) == normalise(by_cli.snapshot(), secrets)
    # Each face finds nothing left to do on the estate the other one made.
    replanned = run_cli("plan", "-i", by_ansible.inventory, "--state-dir", by_ansible.state_dir, "--json")
    assert replanned.code == 0 and cli_changed(replanned) == set()
    rechecked = playbook(by_cli, tmp_path, "deploy_2fa.yml", "--check")
    assert rechecked.returncode == 0 and changed_steps(rechecked.stdout) == set()


def test_module_errors_gate_and_secrets(lab, tmp_path):
    """Unknown options and refused insecure settings fail the task with the engine's message;
    allow_insecure turns a refusal into a warning; secrets never reach the output or the journal."""
    pin = "83920174"
    book = tmp_path / "errors.yml"
    book.write_text(f"""---
- name: Module behaviour
  hosts: ca01:cl0001
  gather_facts: false
  tasks:
    - name: Unknown option
      lync2fa.twofactor.ca_authority:
        bogus: 1
      when: inventory_hostname == 'ca01'
      ignore_errors: true
    - name: SHA1 refused
      lync2fa.twofactor.ca_authority:
        hash_algorithm: sha1
      when: inventory_hostname == 'ca01'
      check_mode: true
      ignore_errors: true
    - name: SHA1 allowed
      lync2fa.twofactor.ca_authority:
        hash_algorithm: sha1
        allow_insecure: [SHA1]
      when: inventory_hostname == 'ca01'
      check_mode: true
    - name: Card with a PIN
      lync2fa.twofactor.client_virtual_smartcard:
        pin: "{pin}"
      when: inventory_hostname == 'cl0001'
      check_mode: true
""")
    result = playbook(lab, tmp_path, book, "--diff")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    by_name = {name: (status, r) for name, status, host, r in results_by_task(result.stdout)}
    status, failure = by_name["Unknown option"]
    assert status == "fatal" and "Unsupported parameters" in failure["msg"] and "bogus" in failure["msg"]
    status, refused = by_name["SHA1 refused"]
    assert status == "fatal" and "[SHA1]" in refused["msg"] and "allow_insecure" in refused["msg"]
    status, allowed = by_name["SHA1 allowed"]
    assert status == "changed" and "[WARNING]: [SHA1] ca.authority on ca01" in result.stdout + result.stderr
    assert {"path": "hash_algorithm", "before": None, "after": "sha1"} in allowed["changes"]
    status, card = by_name["Card with a PIN"]
    assert status == "changed" and card["engine_task"] == "client.virtual_smartcard"
    assert pin not in result.stdout + result.stderr
    journal = "\n".join(sqlite3.connect(lab.state_dir / "journal.sqlite").iterdump())
    assert "ansible:client.virtual_smartcard" in journal and pin not in journal
    from lync2fa.lab import control
    from lync2fa.lab.windows.adcs import ca_of

    store = control.open_store(lab.dir)
    try:
        assert ca_of(store, "ca01") is None, "check mode changed the CA"
    finally:
        store.close()
    # On an estate without the rollout, verify fails.
    assert playbook(lab, tmp_path, "verify_2fa.yml").returncode != 0
