"""lync2fa is on no package index: every instruction installs it by path (the checkout, a wheel),
never by name. A bare name fails today and, once anyone registers it, installs their package, in
CI jobs that hold the vault password (dependency confusion)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
# What users read (docs, READMEs, the collection's metadata) and what the code prints.
TEXTS = [
    *ROOT.glob("*.md"),
    *ROOT.glob("docs/**/*.md"),
    *ROOT.glob("plugins/*/README.md"),
    ROOT / "galaxy.yml",
    ROOT / "execution-environment.yml",
    ROOT / "Makefile",
    *ROOT.glob("core/**/*.py"),
    *ROOT.glob("plugins/**/*.py"),
    *ROOT.glob("tools/*.py"),
]
# `pip install` and its arguments, up to the end of the line, a backtick or a closing parenthesis.
PIP_INSTALL = re.compile(r"pip install\s+([^`\n)]*)")
# A requirement that an index resolves: lync2fa, lync2fa[kerberos], lync2fa==0.1.0, lync2fa[{extra}] ...
BY_NAME = re.compile(r"lync2fa(\[.*\])?\s*([=<>!~].*)?", re.I)


def _arguments(command: str) -> list[str]:
    """The command's arguments, up to a comment or the prose that follows it: "(the ...", "# or"."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # an unclosed quote in prose: split on blanks
        words = [w.strip("'\"") for w in command.split()]
    arguments = []
    for word in words:
        if word.startswith(("(", "#")):
            break
        arguments.append(word.rstrip(",;"))
    return arguments


def pip_installs_by_name(text: str) -> list[str]:
    """The `pip install` commands in ``text`` that ask an index for lync2fa by name."""
    return [m.group(0) for m in PIP_INSTALL.finditer(text) if any(BY_NAME.fullmatch(a) for a in _arguments(m.group(1)))]


def test_the_check_finds_every_bare_name_form_and_spares_paths():
    assert pip_installs_by_name("run: pip install lync2fa          # or ...")
    assert pip_installs_by_name("(`pip install 'lync2fa[credssp]'`)")
    assert pip_installs_by_name("pip install --upgrade lync2fa==0.1.0\n")
    assert pip_installs_by_name("python3 -m pip install -U pip lync2fa (the engine)")
    assert pip_installs_by_name("f\"(install it with: pip install 'lync2fa[{EXTRAS[transport]}]')\"")
    assert not pip_installs_by_name("pip install ./dist/lync2fa-0.1.0-py3-none-any.whl[kerberos]")
    assert not pip_installs_by_name("pip install '.[kerberos]' and pip install ./.lync2fa")
    assert not pip_installs_by_name("pip install 'pywinrm[kerberos]'")
    assert not pip_installs_by_name("pip install ./.lync2fa   # by path: lync2fa is on no index")


def test_no_doc_or_message_installs_lync2fa_by_name_from_an_index():
    found = {
        f"{path.relative_to(ROOT)}: {command}"
        for path in TEXTS
        if path.is_file()
        for command in pip_installs_by_name(path.read_text())
    }
    assert not found, sorted(found)


def test_collection_requirements_name_the_engine_by_its_wheel_file_not_by_name():
    """ansible-builder keeps a file:// line as it is (it drops --no-index and reduces a
    `name @ url` requirement to the bare name), so the engine is the wheel's file in the installed
    collection, and its kerberos extra is spelt out as pyproject.toml has it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    engine = (
        "file:///usr/share/ansible/collections/ansible_collections/lync2fa/twofactor/engine/"
        f"lync2fa-{project['version']}-py3-none-any.whl"
    )
    assert lines == [engine, *project["optional-dependencies"]["kerberos"]]
    assert not [line for line in lines if BY_NAME.match(line)]
