"""``lync2fa journal``: a table of runs, one run's steps with readable diffs, JSON for machines."""

from __future__ import annotations

from datetime import datetime

from lync2fa.journal import Journal
from lync2fa.results import Result


def seed(state_dir):
    """Two runs: an apply that changed and failed things, and a plan (check mode)."""
    journal = Journal(state_dir)
    try:
        run = journal.start_run("apply", "inventories/example", False)
        journal.record(
            run,
            Result(
                "ca01",
                "ca.authority",
                changed=True,
                before={"Hash": "SHA1"},
                after={"Hash": "SHA256", "KeyLength": 4096},
                duration=1.25,
            ),
        )
        journal.record(
            run,
            Result(
                "ws0101",
                "client.enrollment",
                failed=True,
                msg="no <b>card</b> [red]here[/]",
                warnings=["TPM 1.2: slow"],
                duration=0.5,
            ),
        )
        journal.record(run, Result("ws0102", "client.enrollment", skipped=True, msg="skipped: TPM"))
        journal.finish_run(run, "failed")
        check = journal.start_run("plan", "inventories/example", True)
        journal.record(check, Result("ca01", "ca.authority"))
        journal.finish_run(check, "ok")
    finally:
        journal.close()
    return run, check


def test_runs_table(tmp_path, run_cli):
    seed(tmp_path)
    result = run_cli("journal", "--state-dir", tmp_path)
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if "inventories/example" in line]
    assert len(lines) == 2
    apply, plan = lines
    for word in ("apply", "failed", "1", datetime.now().strftime("%Y-%m-%d")):
        assert word in apply
    assert "plan" in plan and " ok " in plan
    assert "@" in apply  # user@controller


def test_one_run_with_readable_diffs(tmp_path, run_cli):
    run, _ = seed(tmp_path)
    result = run_cli("journal", "--state-dir", tmp_path, "--run", run)
    assert result.code == 0, result.err
    assert "~ Hash: SHA1 -> SHA256" in result.out and "+ KeyLength: 4096" in result.out
    assert "no <b>card</b> [red]here[/]" in result.out  # host text shown as is, never as markup
    assert "warning: TPM 1.2: slow" in result.out
    assert "1 changed, 1 failed, 1 skipped" in result.out


def test_json_for_machines(tmp_path, run_cli):
    run, check = seed(tmp_path)
    runs = run_cli("journal", "--state-dir", tmp_path, "--json").json()["runs"]
    assert [r["id"] for r in runs] == [run, check]
    first = runs[0]
    assert first["counts"] == {"ok": 0, "changed": 1, "failed": 1, "skipped": 1}
    assert datetime.fromisoformat(first["started_at"]).tzinfo is not None
    assert first["check_mode"] is False and runs[1]["check_mode"] is True
    steps = run_cli("journal", "--state-dir", tmp_path, "--run", run, "--json").json()["steps"]
    authority = next(s for s in steps if s["task"] == "ca.authority")
    assert authority["diff"] == [
        {"path": "Hash", "before": "SHA1", "after": "SHA256"},
        {"path": "KeyLength", "before": None, "after": 4096},
    ]
    assert next(s for s in steps if s["failed"])["warnings"] == ["TPM 1.2: slow"]
    assert datetime.fromisoformat(authority["finished_at"])


def test_missing_state_directory_is_an_error_and_creates_nothing(tmp_path, run_cli):
    missing = tmp_path / "nowhere"
    result = run_cli("journal", "--state-dir", missing)
    assert result.code == 2 and "no state directory" in result.err
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("journal", "--state-dir", empty, "--json")
    assert result.code == 2 and "no journal" in result.err
    assert list(empty.iterdir()) == []


def test_unknown_run_is_an_error(tmp_path, run_cli):
    seed(tmp_path)
    result = run_cli("journal", "--state-dir", tmp_path, "--run", 99)
    assert result.code == 2 and "no run 99" in result.err
