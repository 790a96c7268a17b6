"""--step-timeout applies once per step of a host batch (a host's steps of one stage travel in the
same requests, and several enrollments legitimately take that long together): the failure says
how its seconds were reckoned, so "no answer in 3 s" for --step-timeout 1 is not a mystery."""

from __future__ import annotations

import json

from lync2fa.runner import batch_deadline
from lync2fa.transport import no_answer


def test_batch_deadline_is_steps_times_the_step_timeout_and_says_so():
    deadline = batch_deadline(5, 4)
    assert deadline == 20.0 and deadline > 19.5  # still the number of seconds the transport waits
    assert no_answer(deadline) == "no answer in 20 s (4 steps × 5 s, --step-timeout)"
    assert no_answer(batch_deadline(2.5, 1)) == "no answer in 2.5 s (--step-timeout)"
    assert no_answer(7.0) == "no answer in 7 s"  # a plain deadline (the API's callers) as before


def test_a_hung_host_fails_naming_steps_times_step_timeout(make_lab, run_cli):
    lab = make_lab(clients=1)
    folder = lab.inventory.parent / "host_vars"
    folder.mkdir(exist_ok=True)
    # Each held Receive lasts the client's operation timeout (1 s), so the deadline is what ends it.
    (folder / "cl0001.yml").write_text("ansible_winrm_operation_timeout_sec: 1\nansible_winrm_read_timeout_sec: 2\n")
    lab.fault("cl0001", hang_receive=True)
    done = run_cli(
        "apply", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "client",
        "--step-timeout", "1", "--skip-preflight", "--json",
    )  # fmt: skip
    assert done.code == 1, done.err
    hung = json.loads(done.out)["results"]
    steps = len(hung)
    assert steps > 1 and all(r["host"] == "cl0001" and r["status"] == "failed" for r in hung), hung
    expected = f"no answer in {steps} s ({steps} steps × 1 s, --step-timeout)"
    assert all(expected in r["msg"] for r in hung), hung
