"""The resource-script contract.

A task's Jinja2 template renders one PowerShell script per (task, host). The template sees
exactly two values: the task name and ``input_json``, the parameters as one line of JSON that
lands in a single-quoted here-string and is read with ``ConvertFrom-Json``. User values are
therefore data, never code. The script prints one JSON object:
``{"changed", "before", "after", "warnings", "failed", "msg"}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2

CORE_SCRIPTS = Path(__file__).parent / "scripts"
TASK_MARKER = "# lync2fa-task: "
INPUT_START = "$Lync2faInput = @'\n"
INPUT_END = "\n'@"
RESULT_KEYS = ("changed", "before", "after", "warnings", "failed", "msg")


class ScriptContractError(ValueError):
    """A script's output does not follow the contract."""


@lru_cache(maxsize=None)
def _environment(template_dir: Path) -> jinja2.Environment:
    """One environment per template folder, so each template compiles once per process."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(template_dir), str(CORE_SCRIPTS)]),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True,
    )


def input_document(params: dict, check_mode: bool) -> str:
    """The script's input as one line of JSON (a line break could end the here-string)."""
    text = json.dumps({"params": params, "check_mode": bool(check_mode)}, sort_keys=True,
                      ensure_ascii=True, separators=(",", ":"))
    assert "\n" not in text and "\r" not in text
    return text


def split_secrets(params: dict, secret_names: frozenset[str] | set[str]) -> tuple[dict, dict]:
    """(params with every secret set to null, the secrets): secrets travel outside the script."""
    public = {k: (None if k in secret_names else v) for k, v in params.items()}
    secrets = {k: v for k, v in params.items() if k in secret_names and v is not None}
    return public, secrets


def render(template: Path, task_name: str, params: dict, check_mode: bool) -> str:
    env = _environment(template.parent)
    script = env.get_template(template.name).render(
        task_name=task_name, input_json=input_document(params, check_mode))
    return script.replace("\r\n", "\n")


def read_input(script: str) -> tuple[str, dict]:
    """Recover (task name, input) from a rendered script: what the lab does on arrival."""
    marker = re.search(r"^" + re.escape(TASK_MARKER) + r"(\S+)\s*$", script, re.M)
    start = script.find(INPUT_START)
    end = script.find(INPUT_END, start + len(INPUT_START)) if start >= 0 else -1
    if not marker or start < 0 or end < 0:
        raise ScriptContractError("not a lync2fa resource script")
    return marker.group(1), json.loads(script[start + len(INPUT_START):end])


@dataclass
class ScriptResult:
    changed: bool = False
    failed: bool = False
    msg: str = ""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def parse_result(stdout: str) -> ScriptResult:
    """Read the one JSON result line a script prints (the last JSON object on stdout)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        missing = [k for k in RESULT_KEYS if k not in data]
        if missing:
            raise ScriptContractError(f"script result lacks {', '.join(missing)}")
        warnings = data["warnings"] or []
        return ScriptResult(
            changed=bool(data["changed"]), failed=bool(data["failed"]), msg=str(data["msg"] or ""),
            before=data["before"] or {}, after=data["after"] or {},
            warnings=[warnings] if isinstance(warnings, str) else list(warnings),
        )
    raise ScriptContractError("script printed no JSON result")
