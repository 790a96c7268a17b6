"""Records of what lync2fa changed on a host, with the values it replaced (twin side).

The scripts' ``Set-Lync2faRecord`` writes a created-marker under ``HKLM:\\SOFTWARE\\lync2fa\\Created``
whose value is JSON ``{"created": bool, "previous": ...}``: rollback removes what lync2fa created
and puts back the previous values of what it modified. The first record of a resource wins, so
a later apply never overwrites the original values. Used by the AD FS and Lync twins.
"""
from __future__ import annotations

from lync2fa.lab.twin import TwinContext

KIND = "created_marker"   # the store kind behind TwinContext.mark_created


def _key(ctx: TwinContext, resource_id: str) -> str:
    return f"{ctx.host.name}/{resource_id}"


def record(ctx: TwinContext, resource_id: str, created: bool, previous=None) -> None:
    if ctx.check_mode or ctx.was_created(resource_id):
        return
    ctx.store.put(KIND, _key(ctx, resource_id), {"host": ctx.host.name, "created": created, "previous": previous})


def records(ctx: TwinContext, prefix: str) -> dict[str, dict]:
    """This host's records whose id starts with ``prefix``, by id (in id order)."""
    start = _key(ctx, prefix)
    return {key[len(ctx.host.name) + 1:]: {"created": True, "previous": None, **data}
            for key, data in ctx.store.items(KIND).items() if key.startswith(start)}
