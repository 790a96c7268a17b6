"""The lab (WS-Management server, Windows model) is not on the production import path: what runs
against a real estate never imports it (issue 8, code health)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import lync2fa.cli
from lync2fa import api
api.tasks()
import importlib, pkgutil
import lync2fa.plugins
action_dir = __import__('pathlib').Path(lync2fa.plugins.__file__).parent / 'action'
loaded = sorted(m for m in sys.modules if m.startswith('lync2fa.lab'))
print(','.join(loaded))
"""


def test_cli_api_and_tasks_do_not_import_the_lab():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"production code imported the lab: {out.strip()}"


def test_action_plugins_do_not_import_the_lab():
    probe = (
        "import sys, runpy, pathlib, lync2fa.plugins as p\n"
        "for f in sorted((pathlib.Path(p.__file__).parent / 'action').glob('*.py')):\n"
        "    src = f.read_text()\n"
        "    assert 'lync2fa.lab' not in src and 'from ..lab' not in src, f\n"
        "import lync2fa.ansible_bridge\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('lync2fa.lab'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
