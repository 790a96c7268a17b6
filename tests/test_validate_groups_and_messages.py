"""``lync2fa validate`` agrees with ``lync2fa plan`` about groups, keeps each parameter problem whole,
places a grant's ESC findings at the grant's variable, and says clearly when it cannot write its report."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from lync2fa import api
from lync2fa.plan import PlanError
from lync2fa.task import ParameterError
from lync2fa.validate import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventories" / "example"
VAULT = EXAMPLE / ".vault-pass-example"


@pytest.fixture
def inv(tmp_path):
    """A copy of the example inventory that plan accepts as it is (a delegating transport, a CA
    trust file that exists), to seed changes into."""
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    trust = tmp_path / "winrm-ca.pem"
    trust.write_text("")
    vars_file = dest / "group_vars" / "all" / "vars.yml"
    text = re.sub(r"(?m)^ansible_winrm_transport: .*$", "ansible_winrm_transport: credssp", vars_file.read_text())
    vars_file.write_text(
        re.sub(r"(?m)^ansible_winrm_ca_trust_path: .*$", f"ansible_winrm_ca_trust_path: {trust}", text)
    )
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(text)


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def issues(inv: Path):
    return validate([inv], vault_password_file=VAULT, scripts=False).issues


def plan_refusal(inv: Path) -> str:
    """What ``lync2fa plan`` says when it refuses the inventory's groups ("" if it does not)."""
    inventory = api.load_inventory(inv, vault_password_file=VAULT)
    try:
        api.plan(inventory)
    except PlanError as exc:
        return str(exc)
    return ""


def drop_group(hosts: Path, group: str, next_group: str) -> None:
    """Remove ``group`` (and its hosts) from the example's hosts.yml, up to ``next_group``."""
    text = hosts.read_text()
    start, end = text.index(f"    {group}:\n"), text.index(f"    {next_group}:\n")
    hosts.write_text(text[:start] + text[end:])


# --- item 6: one problem, one finding --------------------------------------------------------


def test_a_pin_with_a_trailing_newline_is_one_finding_at_its_variable(inv):
    host_vars = inv / "host_vars" / "ws0101.yml"
    append(host_vars, '---\nclient_pin: "12345678\\n"\n')
    params = [i for i in issues(inv) if i.rule == "PARAM"]
    assert len(params) == 1, [(i.key, i.message) for i in params]
    (issue,) = params
    assert (issue.key, Path(issue.file).name, issue.line) == ("client_pin", "ws0101.yml", 2)
    assert "trailing newline" in issue.message and "printf %s VALUE" in issue.message
    assert "12345678" not in issue.message


def test_parameter_error_lists_its_problems_and_reads_as_before():
    task = api.tasks()["client.enrollment"]
    with pytest.raises(ParameterError) as caught:
        task.validate({"pin": "1234\n", "user": "CONTOSO\\alice\n"})
    exc = caught.value
    assert sorted(p.split(" ", 1)[0] for p in exc.problems) == ["client_pin", "client_user"]
    assert "; " in next(p for p in exc.problems if p.startswith("client_pin"))
    assert str(exc) == "client.enrollment: " + "; ".join(exc.problems)
