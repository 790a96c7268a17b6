"""Inventory files for tests that prove refusals before any connection: the remote hosts are named
under ``.invalid`` (never resolved), so nothing is sent beyond 127.0.0.0/8."""

from __future__ import annotations

from pathlib import Path

import yaml

REMOTE = "ca01.corp.invalid"
PASSWORD = "S3cret-Passw0rd"
BASE = {"ansible_user": "CORP\\admin", "ansible_password": PASSWORD}
# The ca tier reaches AD: a transport that delegates (CredSSP) passes the double-hop check.
ONE_CA = {
    "all": {
        "vars": {"ansible_winrm_transport": "credssp"},
        "children": {"ca": {"hosts": {REMOTE: {**BASE, "ca_common_name": "Contoso Root CA"}}}},
    }
}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good(tmp_path: Path, doc: dict = ONE_CA) -> Path:
    """A valid inventory, ``doc`` (by default one CA host), as ``good.yml``."""
    return write(tmp_path / "good.yml", yaml.safe_dump(doc))


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in the file (which must hold it)."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(text)


def line_of(path: Path, needle: str) -> int:
    """The first line (1-based) of the file holding ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def cli_in_process(capfd, *argv) -> tuple[int, str, str]:
    """``lync2fa ARGV`` in-process: exit code (argparse's refusals included), stdout, stderr."""
    from lync2fa import cli

    capfd.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capfd.readouterr()
    return code, out, err
