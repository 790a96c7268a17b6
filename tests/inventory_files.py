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
