"""Tasks: named idempotent units contributed by plugins.

A task declares the inventory group it targets, the tasks it runs after, its parameter
schema (written as Ansible argument-spec entries, so the CLI and the Ansible module validate
with the very same code), the facts it reads on a host and the pure Python decision that turns
parameters + facts into operations (``lync2fa.decision``), and what it reaches beyond its host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

if TYPE_CHECKING:
    from .inventory import HostContext


class ParameterError(ValueError):
    """Invalid task parameters (a usage/config error: exit code 2): ``problems``, each one whole
    (a problem may itself contain "; "), read as ``"<task>: <problem>; <problem>"``."""

    def __init__(self, task: str, problems: list[str]):
        self.task, self.problems = task, list(problems)
        super().__init__(f"{task}: " + "; ".join(self.problems))


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
    minimum: int | None = None  # bounds of an int parameter (or of each element of a list of int)
    maximum: int | None = None

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
Derived = Callable[["HostContext"], Any]
# A semantic check on validated parameters: returns error strings.
Checker = Callable[[dict], list]


# Beyond its host, a task may reach: Active Directory, the Lync Central Management Store, a
# remote CA. Over a session without network credentials (NTLM, Kerberos without delegation:
# the double hop) Windows refuses those, so the planner refuses such steps first.
REACHES = ("ad", "cms", "ca")


@dataclass(frozen=True)
class Task:
    name: str  # "<tier>.<what>", e.g. "ca.authority"
    group: str  # inventory group it targets
    params: tuple[Param, ...] = ()
    after: tuple[str, ...] = ()  # tasks that must have succeeded first
    description: str = ""
    derived: dict[str, Derived] = field(default_factory=dict)  # defaults computed per host
    checks: tuple[Checker, ...] = ()
    # "apply" tasks make the rollout; "verify" tasks only read (lync2fa verify);
    # "rollback" tasks undo what lync2fa created (lync2fa rollback --tier T).
    kind: str = "apply"
    # params -> {fact name: query} (lync2fa.hostops *_fact); read on the host in one script.
    facts: Callable[[dict], dict] | None = None
    # Context -> Decision | More: pure Python, the only place a setting is decided.
    decide: Callable[..., Any] | None = None
    reaches: tuple[str, ...] = ()

    def __post_init__(self):
        if self.decide is None or self.facts is None:
            raise TypeError(f"task {self.name}: a task needs facts (what to read) and decide (what to do)")
        unknown = [r for r in self.reaches if r not in REACHES]
        if unknown:
            raise TypeError(f"task {self.name}: unknown reaches {unknown}; known: {REACHES}")

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
            raise ParameterError(
                self.name,
                [
                    f"{', '.join(wrong)} must be a string (value not shown); quote it in YAML: an "
                    "unquoted number is read as a number (01234567 even as octal)"
                ],
            )
        problems = self._line_breaks(values) or self._untrimmed(values)
        if problems:
            raise ParameterError(self.name, problems)
        result = ArgumentSpecValidator(self.argument_spec()).validate(dict(values))
        if result.error_messages:
            raise ParameterError(self.name, [clip(m) for m in result.error_messages])
        params = result.validated_parameters
        problems = self._out_of_bounds(params) or [msg for check in self.checks for msg in check(params)]
        if problems:
            raise ParameterError(self.name, [clip(m) for m in problems])
        return params

    def _line_breaks(self, values: dict) -> list[str]:
        """No parameter is multi-line: a line break in one is refused, never stripped (a PIN
        "12345678\\n" is not the PIN 12345678, and a name with a newline would be a new object)."""
        problems = []
        for p in self.params:
            value = values.get(p.name)
            texts = value if isinstance(value, list) else [value]
            broken = [t for t in texts if isinstance(t, str) and ("\n" in t or "\r" in t)]
            if not broken:
                continue
            trailing = all(not set("\r\n") & set(t.rstrip("\r\n")) for t in broken)
            where = "a trailing newline" if trailing else "a line break"
            if p.secret:
                problems.append(
                    f"{self.var_prefix}{p.name} has {where} (value not shown): refused, not stripped; "
                    f"`echo VALUE | ansible-vault encrypt_string` adds one, use `echo -n VALUE` or "
                    f"`printf %s VALUE` instead"
                )
            else:
                problems.append(
                    f"{self.var_prefix}{p.name} {clip(repr(value))} has {where}: refused, not "
                    "stripped; remove it from the inventory value"
                )
        return problems

    def _untrimmed(self, values: dict) -> list[str]:
        """No name begins or ends with whitespace (issue 12 items 3/4): refused, never stripped.
        Windows drops it when it looks a name up (an unescaped space at either end of a DN's value
        is not part of it, RFC 4514 section 3), so "WebServer " would grant on the built-in
        WebServer while the ESC gate and the built-in checks saw another name. Secrets are not
        names: a PIN is taken as given."""
        problems = []
        for p in self.params:
            if p.secret or p.type not in ("str", "list"):
                continue
            value = values.get(p.name)
            items = value if isinstance(value, list) else [value]
            texts = [t for item in items for t in (item.values() if isinstance(item, dict) else [item])]
            for text in texts:
                if not isinstance(text, str) or text == text.strip():
                    continue
                leading = text != text.lstrip()
                where = "its start" if leading else "its end"
                what = "a space" if (text[0] if leading else text[-1]) == " " else "whitespace"
                problems.append(
                    f"{self.var_prefix}{p.name} {clip(repr(text))} has {what} at {where}: refused, not stripped "
                    "(Active Directory and Windows ignore it when they look a name up, so it would name another "
                    "object than the checks saw); remove it from the inventory value"
                )
        return problems

    def _out_of_bounds(self, params: dict) -> list[str]:
        problems = []
        for p in self.params:
            if p.minimum is None and p.maximum is None:
                continue
            value = params.get(p.name)
            numbers = value if isinstance(value, list) else [value]
            bad = [
                v
                for v in numbers
                if isinstance(v, int)
                and not ((p.minimum is None or v >= p.minimum) and (p.maximum is None or v <= p.maximum))
            ]
            if bad:
                problems.append(
                    f"variable {self.var_prefix}{p.name} must be {bounds_text(p)}, not {clip(repr(bad[0]))}"
                )
        return problems


def bounds_text(p: Param) -> str:
    if p.minimum is not None and p.maximum is not None:
        return f"from {p.minimum} to {p.maximum}"
    return f"at least {p.minimum}" if p.minimum is not None else f"at most {p.maximum}"


def clip(text: str, limit: int = 300) -> str:
    """A message or value as shown to the operator: at most ``limit`` characters (a 100 KB value
    pasted into an inventory is not echoed back whole)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters in all)"
