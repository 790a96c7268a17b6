"""Opt-in: read-only checks against a REAL estate (the lab cannot run PowerShell; this can).

    LYNC2FA_REAL_INVENTORY=inventories/prod/hosts.yml \\
    LYNC2FA_REAL_VAULT_PASSWORD_FILE=~/.vault-pass  make test

Runs only `plan` (check mode: nothing changes) and `verify` (read-only tasks). Skipped unless
LYNC2FA_REAL_INVENTORY is set.
"""

from __future__ import annotations

import os

import pytest

INVENTORY = os.environ.get("LYNC2FA_REAL_INVENTORY")
pytestmark = pytest.mark.skipif(not INVENTORY, reason="set LYNC2FA_REAL_INVENTORY to run against a real estate")


def _options(tmp_path):
    vault = os.environ.get("LYNC2FA_REAL_VAULT_PASSWORD_FILE")
    return [
        "-i",
        INVENTORY,
        "--state-dir",
        str(tmp_path),
        "--json",
        *(["--vault-password-file", vault] if vault else []),
    ]


def test_plan_runs_every_script_on_the_real_estate_without_errors(run_cli, tmp_path):
    result = run_cli("plan", *_options(tmp_path))
    assert result.code in (0, 1), result.err
    failed = [r for r in result.json()["results"] if r["failed"]]
    assert failed == [], "\n".join(f"{r['task']} on {r['host']}: {r['msg']}" for r in failed)


def test_verify_reports_on_the_real_estate(run_cli, tmp_path):
    result = run_cli("verify", *_options(tmp_path))
    assert result.code in (0, 1), result.err
    assert result.json()["results"], "verify ran no task"
