"""`lync2fa demo` (what `make demo` runs): lab up, rollout applied, re-applied, lab down."""

from __future__ import annotations

import json
import re
import subprocess
import sys


def test_demo_applies_the_rollout_and_is_idempotent(tmp_path):
    state = tmp_path / "state"
    run = subprocess.run(
        [sys.executable, "-m", "lync2fa.cli", "demo", "--clients", "2", "--dir", tmp_path, "--state-dir", state],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "changed ca.authority on ca01" in run.stdout
    assert "Re-run: 0 changed, 0 failed (idempotent: yes)." in run.stdout
    verified = re.search(r"Verify: (\d+) of (\d+) checks pass\.", run.stdout)
    assert verified and verified.group(1) == verified.group(2) and int(verified.group(2)) > 20
    assert "Lab stopped." in run.stdout
    report = json.loads((state / "demo-reports" / "report.json").read_text())
    assert report["counts"]["failed"] == 0 and report["counts"]["changed"] > 0
    assert not (tmp_path / "lab" / "lab.pid").exists()
