"""An example third-party plugin: sets the CA's audit filter (AD CS auditing, Locksmith's
"Auditing" check) after the CA is installed."""
from pathlib import Path

from lync2fa.hookspecs import hookimpl
from lync2fa.lab.twin import outcome
from lync2fa.task import Param, Task

HERE = Path(__file__).parent


@hookimpl
def lync2fa_tasks():
    return [Task(name="example.audit_filter", group="ca", template=HERE / "audit_filter.ps1.j2",
                 after=("ca.authority",), description="Set the CA audit filter",
                 params=(Param("audit_filter", "int", default=127, description="CA AuditFilter bits"),))]


def audit_filter_twin(ctx, params):
    before = {"audit_filter": ctx.store.get("example_audit", ctx.host.name, 0)}
    ctx.store.put("example_audit", ctx.host.name, params["audit_filter"])
    return outcome(before, {"audit_filter": params["audit_filter"]})


@hookimpl
def lync2fa_lab_twins():
    return {"example.audit_filter": audit_filter_twin}
