"""``lab fault --clear '*'`` clears every host's faults, as ``*`` sets one on every host: it used
to remove only the faults set with ``*`` and leave each host's own in place."""

from __future__ import annotations

import json

from lync2fa import cli
from lync2fa.lab import control


def _faults(directory, capsys, *args: str) -> dict:
    capsys.readouterr()
    assert cli.main(["lab", "fault", "--dir", str(directory), *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_clear_star_removes_every_hosts_own_faults(tmp_path, capsys):
    directory = tmp_path / "lab"
    control.create(directory, clients=1)  # state only: no endpoint is started
    _faults(directory, capsys, "ca01", "latency_s=0.5")
    _faults(directory, capsys, "cl0001", "drop=true")
    assert set(_faults(directory, capsys, "*", "ca_offline=true")) == {"*", "ca01", "cl0001"}
    assert _faults(directory, capsys, "--clear", "*") == {}


def test_clear_one_host_leaves_the_others(tmp_path, capsys):
    directory = tmp_path / "lab"
    control.create(directory, clients=1)
    _faults(directory, capsys, "ca01", "latency_s=0.5")
    _faults(directory, capsys, "cl0001", "drop=true")
    assert set(_faults(directory, capsys, "--clear", "ca01")) == {"cl0001"}
