"""The README's promises: the quick start is two commands, and the Python API example runs."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_is_make_demo_and_make_test():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.search(r"```\n(.*?)```", quick, re.S).group(1).split("\n")
    assert [c for c in commands if c.strip()] == ["make demo", "make test"]
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_python_api_example_runs_against_the_lab(lab, capsys):
    code = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {"LAB_INVENTORY": lab.inventory, "STATE": lab.state_dir})
    printed = capsys.readouterr().out
    assert "ca01 ca.authority" in printed and "common_name" in printed
    from lync2fa.lab import control
    from lync2fa.lab.windows.adcs import ca_of

    store = control.open_store(lab.dir)
    try:
        assert ca_of(store, "ca01")["common_name"] == "Lync2FA Lab Root CA"  # CertSvc registry, as Windows
    finally:
        store.close()
