"""Running the collection lync2fa.twofactor from this checkout with the real ansible-* commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAYBOOKS = ROOT / "playbooks"

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
RESULT = re.compile(r"^(ok|changed|fatal): \[([^\]]+)\](?:: FAILED!)? => (\{.*\})$", re.M)


def ansible_env(workdir: Path, **extra) -> dict:
    """An isolated Ansible environment in which ``lync2fa.twofactor`` is this repository
    (a collections path holding ``ansible_collections/lync2fa/twofactor`` -> the checkout)."""
    collections = workdir / "collections"
    link = collections / "ansible_collections" / "lync2fa" / "twofactor"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_HOME": str(workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "NO_COLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_CALLBACK_FORMAT_PRETTY": "0",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(
    command: str, *args, workdir: Path, cwd: Path | None = None, timeout: float = 300, **env
) -> subprocess.CompletedProcess:
    """``command`` (ansible-playbook, ansible-doc ...) from this venv with the isolated environment
    kept in ``workdir`` (a temporary directory), run in ``cwd`` (default: ``workdir``)."""
    return subprocess.run(
        [str(BIN / command), *map(str, args)],
        cwd=cwd or workdir,
        env=ansible_env(workdir, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host."""
    keys = ("ok", "changed", "unreachable", "failed", "skipped")
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]), strict=True)) for m in RECAP.finditer(output)}


def engine_results(output: str) -> list[tuple[str, str, dict]]:
    """(status, host, result) of every lync2fa task in ``ansible-playbook -v`` output."""
    out = []
    for status, host, payload in RESULT.findall(output):
        result = json.loads(payload)
        if "engine_task" in result or status == "fatal":
            out.append((status, host, result))
    return out


def changed_steps(output: str) -> set[tuple[str, str]]:
    return {(r["engine_task"], host) for status, host, r in engine_results(output) if status == "changed"}


TASK_HEADER = re.compile(r"^TASK \[(.+)\] \*+$")


def results_by_task(output: str) -> list[tuple[str, str, str, dict]]:
    """(Ansible task name, status, host, result) in ``ansible-playbook -v`` output order."""
    out, current = [], ""
    for line in output.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            current = header.group(1)
            continue
        result = RESULT.match(line)
        if result:
            out.append((current, result.group(1), result.group(2), json.loads(result.group(3))))
    return out
