"""Security findings and the gate that refuses insecure plans unless explicitly allowed."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. "ESC1", "SHA1", "GLOBAL_SCOPE"
    message: str  # what is wrong, naming the setting
    fix: str = ""  # how to make it right
    severity: str = "error"  # error (refuses the plan) or warning
    host: str = ""
    task: str = ""
    # The inventory variable that causes it, when the finding's builder knows (validate places the
    # finding there instead of guessing from the message's words).
    var: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.task} on {self.host}: " if self.task else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"[{self.rule}] {where}{self.message}.{fix}"


class InsecurePlanError(Exception):
    """The plan carries error findings that the operator did not allow (exit code 2)."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        lines = "\n".join(f"  {f}" for f in findings)
        super().__init__(
            f"refused: {len(findings)} insecure setting(s):\n{lines}\n"
            "Override one rule with --allow-insecure RULE (it is then reported as a warning)."
        )


def gate(findings: list[Finding], allowed: set[str]) -> list[Finding]:
    """Raise for disallowed error findings; return the findings to report as warnings."""
    allowed = {a.upper() for a in allowed}
    refused = [f for f in findings if f.severity == "error" and f.rule.upper() not in allowed]
    if refused:
        raise InsecurePlanError(refused)
    return [
        Finding(
            **{
                **f.as_dict(),
                "severity": "warning",
                "message": f.message + (" (allowed by --allow-insecure)" if f.severity == "error" else ""),
            }
        )
        for f in findings
    ]
