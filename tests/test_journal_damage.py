"""A damaged or foreign journal never ends in a traceback: a row whose times are not numbers is
shown with "?", and another program's SQLite file is refused (exit 2, naming it) by the commands
that write, not only by ``journal``, and left as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from inventory_files import cli_in_process as _cli
from inventory_files import good

from lync2fa.journal import Journal
from lync2fa.meta import duration, iso


def _journal_with_one_run(state, **damage) -> None:
    journal = Journal(state)
    run = journal.start_run("apply", "hosts.yml", False)
    journal.finish_run(run, "ok")
    journal.close()
    db = sqlite3.connect(state / "journal.sqlite")
    with db:
        for column, value in damage.items():
            db.execute(f"UPDATE runs SET {column} = ?", (value,))  # SQLite's REAL affinity keeps text as text
    db.close()


def test_times_that_are_not_numbers_format_as_a_question_mark():
    assert iso("yesterday") == "?" and iso(b"\x00") == "?" and iso(1e300) == "?" and iso(float("nan")) == "?"
    assert iso(None) is None and iso(60.0)[:4] in ("1969", "1970")  # local time of the epoch's first minute
    assert duration("yesterday", 20.0) is None and duration(10.0, "x") is None and duration(True, 3.0) is None
    assert duration(10.0, 12.5) == 2.5


@pytest.mark.parametrize("argv", [[], ["--json"], ["--run", "1"]], ids=["table", "json", "run"])
def test_journal_shows_a_run_whose_start_is_text_with_a_question_mark(tmp_path, capfd, argv):
    _journal_with_one_run(tmp_path, started_at="yesterday")
    code, out, err = _cli(capfd, "journal", "--state-dir", tmp_path, *argv)
    assert code == 0 and "Traceback" not in err, err
    if argv == ["--json"]:
        [run] = json.loads(out)["runs"]
        assert run["started_at"] == "?" and run["duration_s"] is None and run["finished_at"] not in (None, "?")
    else:
        assert "?" in out and "apply" in out


def test_journal_shows_a_run_whose_end_is_text_with_a_question_mark(tmp_path, capfd):
    _journal_with_one_run(tmp_path, finished_at="soon")
    code, out, err = _cli(capfd, "journal", "--state-dir", tmp_path, "--run", "1")
    assert code == 0 and "Traceback" not in err, err
    assert "-> ?" in out


def _foreign_database(path) -> str:
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'mine');")
    db.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", ["verify", "apply", "plan"])
def test_a_foreign_sqlite_file_is_refused_by_the_commands_that_write_and_left_untouched(
    tmp_path, capfd, no_connection, command
):
    state = tmp_path / "state"
    state.mkdir()
    path = state / "journal.sqlite"
    before = _foreign_database(path)
    code, _out, err = _cli(capfd, command, "-i", good(tmp_path), "--tasks", "ca", "--state-dir", state)
    assert code == 2, err
    assert f"{path} is not a lync2fa journal" in err and "no such table: runs" in err, err
    assert "Traceback" not in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    db.close()


def test_a_new_or_empty_database_becomes_a_journal(tmp_path):
    (tmp_path / "journal.sqlite").touch()  # an empty file is an empty SQLite database
    journal = Journal(tmp_path)
    run = journal.start_run("apply", "hosts.yml", False)
    journal.finish_run(run, "ok")
    assert [r["id"] for r in journal.runs()] == [run]
    journal.close()
    reopened = Journal(tmp_path)  # the journal it wrote is accepted for writing again
    assert len(reopened.runs()) == 1
    reopened.close()
