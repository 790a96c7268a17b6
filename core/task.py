"""Tasks: named idempotent units contributed by plugins.

A task declares the inventory group it targets, the tasks it runs after, its parameter
schema (written as Ansible argument-spec entries, so the CLI and the Ansible module validate
with the very same code), and its PowerShell resource script (a Jinja2 template).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator


class ParameterError(ValueError):
    """Invalid task parameters (a usage/config error: exit code 2)."""


@dataclass(frozen=True)
class Param:
    """One task parameter; maps 1:1 onto an Ansible argument-spec entry."""

    name: str
    type: str = "str"  # str, int, bool, list, dict
    default: Any = None
    required: bool = False
    choices: tuple = ()
    elements: str | None = None
    secret: bool = False
    description: str = ""

    def argument_spec(self) -> dict:
        spec: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.default is not None:
            spec["default"] = self.default
        if self.choices:
            spec["choices"] = list(self.choices)
        if self.elements:
            spec["elements"] = self.elements
        if self.secret:
            spec["no_log"] = True
        return spec


# A host-derived default: gets the HostContext (inventory view of one host), returns a value.
Derived = Callable[["HostContext"], Any]  # noqa: F821 (defined in lync2fa.inventory)
# A semantic check on validated parameters: returns error strings.
Checker = Callable[[dict], list]


@dataclass(frozen=True)
class Task:
    name: str                      # "<tier>.<what>", e.g. "ca.authority"
    group: str                     # inventory group it targets
    template: Path                 # PowerShell resource script, *.ps1.j2
    params: tuple[Param, ...] = ()
    after: tuple[str, ...] = ()    # tasks that must have succeeded first
    description: str = ""
    derived: dict[str, Derived] = field(default_factory=dict)  # defaults computed per host
    checks: tuple[Checker, ...] = ()
    # "apply" tasks make the rollout; "verify" tasks only read (lync2fa verify);
    # "rollback" tasks undo what lync2fa created (lync2fa rollback --tier T).
    kind: str = "apply"
    # Optional controller-side reading of a script's result, before it is reported and
    # journaled: ``interpret(result, params)`` may add warnings or mark the result failed
    # (e.g. the ESC rules evaluated on the templates a CA returned).
    interpret: Callable[["Result", dict], None] | None = None  # noqa: F821

    @property
    def tier(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def var_prefix(self) -> str:
        """Inventory variables for this task are named ``<tier>_<param>``."""
        return f"{self.tier}_"

    def argument_spec(self) -> dict:
        return {p.name: p.argument_spec() for p in self.params}

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.secret)

    def validate(self, values: dict) -> dict:
        """Validate and coerce with Ansible's validator, then run the task's own checks."""
        # A secret is never coerced (a list would become its repr) and never echoed.
        wrong = [n for n in sorted(self.secret_params) if values.get(n) is not None and not isinstance(values[n], str)]
        if wrong:
            raise ParameterError(f"{self.name}: {', '.join(wrong)} must be a string (value not shown); quote it "
                                 "in YAML: an unquoted number is read as a number (01234567 even as octal)")
        result = ArgumentSpecValidator(self.argument_spec()).validate(dict(values))
        if result.error_messages:
            raise ParameterError(f"{self.name}: " + "; ".join(result.error_messages))
        params = result.validated_parameters
        problems = [msg for check in self.checks for msg in check(params)]
        if problems:
            raise ParameterError(f"{self.name}: " + "; ".join(problems))
        return params
