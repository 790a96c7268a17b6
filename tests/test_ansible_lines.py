"""The collection on a clean controller, on both tested ansible-core lines (issue 9 items 3, 8).

For ansible-core 2.16 and 2.19: a fresh venv holding only ansible-core, the collection built with
``ansible-galaxy collection build`` and installed into an empty collections path, a playbook that
fails every lync2fa task with the exact "install lync2fa: ..." command; then the engine installed
from the wheel the collection carries, as that message (and the collection's README) says, and the deploy playbook applies through
Ansible's winrm connection (the lab names the exec wrapper of that line) and re-runs with
changed=0.

The venvs are created offline from the wheels ``make ansible-lines`` built at install time
(``make test`` depends on it and sets LYNC2FA_WHEELS): nothing is downloaded while testing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_support import ROOT, recap

WHEELS = Path(os.environ.get("LYNC2FA_WHEELS") or ROOT / ".venvs" / "wheels")
LINES = {
    "2.16": ("ansible-core>=2.16,<2.17", "ansible exec wrapper (2.16 payload)"),
    "2.19": ("ansible-core>=2.19,<2.20", "ansible exec wrapper (2.19 manifest)"),
}

pytestmark = pytest.mark.skipif(
    not (WHEELS / "..").joinpath(".lines").exists() and not os.environ.get("LYNC2FA_WHEELS"),
    reason="the wheels of `make ansible-lines` are not built (make test builds them)",
)


def sh(*args, env=None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )


def clean_env(home: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANSIBLE_", "PIP_", "VIRTUAL_ENV", "PYTHON")) and k != "PATH"
    }
    env.update(
        {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "ANSIBLE_HOME": str(home / "ansible"),
            "ANSIBLE_NOCOLOR": "1",
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(WHEELS),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.mark.parametrize("line", sorted(LINES))
def test_clean_controller_fails_cleanly_then_deploys_after_installing_the_engine(line, make_lab, tmp_path):
    requirement, wrapper = LINES[line]
    venv = tmp_path / "venv"
    made = sh(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    env = clean_env(tmp_path)
    core = sh(python, "-m", "pip", "install", "--quiet", requirement, env=env)
    assert core.returncode == 0, core.stdout + core.stderr
    freeze = sh(python, "-m", "pip", "freeze", env=env).stdout
    assert "lync2fa" not in freeze and "winrm" not in freeze.lower()

    # The collection from its tarball, into an empty collections path.
    collections = tmp_path / "collections"
    built = sh(
        sys.executable,
        ROOT / "tools" / "build_collection.py",
        "--output-path",
        tmp_path / "dist",
        "--galaxy",
        venv / "bin" / "ansible-galaxy",
        env=env,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = (tmp_path / "dist").glob("lync2fa-twofactor-*.tar.gz")
    installed = sh(
        venv / "bin" / "ansible-galaxy", "collection", "install", tarball, "-p", collections, env=env, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    collection = collections / "ansible_collections" / "lync2fa" / "twofactor"

    lab = make_lab(clients=1)
    env = clean_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=collections, LYNC2FA_STATE_DIR=tmp_path / "state")

    def deploy(*args):
        return sh(
            venv / "bin" / "ansible-playbook",
            "-i",
            lab.inventory,
            "lync2fa.twofactor.deploy_2fa",
            *args,
            env=env,
            cwd=tmp_path,
        )

    missing = deploy("--tags", "ca")
    assert missing.returncode != 0
    wheel = collection.resolve() / "engine" / "lync2fa-0.1.0-py3-none-any.whl"
    command = f"{venv}/bin/python -m pip install '{wheel}'"
    assert f"install lync2fa: {command}" in missing.stdout, missing.stdout[-3000:]
    assert "Traceback" not in missing.stdout + missing.stderr and "Unexpected Exception" not in missing.stdout

    # As the message says (offline here: PIP_NO_INDEX and PIP_FIND_LINKS point at the wheels).
    engine = sh(python, "-m", "pip", "install", "--quiet", wheel, env=env, cwd=tmp_path)
    assert engine.returncode == 0, engine.stdout + engine.stderr
    assert (
        sh(
            python, "-c", f"import ansible, sys; sys.exit(not ansible.__version__.startswith({line!r}))", env=env
        ).returncode
        == 0
    ), "installing the engine must keep the ansible-core line"

    first = deploy()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    again = deploy()
    assert again.returncode == 0, again.stdout[-3000:]
    counts = recap(again.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts
    seen = [json.loads(x) for x in (lab.dir / "requests.jsonl").read_text().splitlines()]
    assert seen and {r["via"] for r in seen} == {wrapper}
    assert re.search(r"ok=\d+\s+changed=0", again.stdout)
