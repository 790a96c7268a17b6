"""Group names are data: each task group's name in the inventory is a variable (issue 9 item 4).

Tasks declare the group they target by its default name (``ca``, ``adfs``, ``lync_pools``,
``lync_edge``, ``clients``). An inventory that calls its CA group ``pki`` says so once, in
``group_vars/all``: ``lync2fa_ca_group: pki``. Both faces read it: the CLI's planner and the
Ansible face's plays and modules target the group it names, and a module run on a host outside
that group fails (unless ``force_group: true``), as does a play whose group is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT_GROUPS = ("ca", "adfs", "lync_pools", "lync_edge", "clients")


def var_name(group: str) -> str:
    """``ca`` -> ``lync2fa_ca_group``."""
    return f"lync2fa_{group}_group"


def actual(group: str, read: Callable[[str], Any]) -> str:
    """The inventory's name for the task group ``group``: ``read(var_name(group))`` or ``group``."""
    if group == "all":
        return group
    value = read(var_name(group))
    return str(value).strip() if value not in (None, "") else group


def outside(task, inventory, host: str) -> str | None:
    """Why ``task`` must not run on ``host`` (not in its group, or the group is empty), or None."""
    if task.group == "all":
        return None
    name = inventory.group_name(task.group)
    members = (
        inventory.members(name) if hasattr(inventory, "members") else [h.name for h in inventory.hosts_in(task.group)]
    )
    named = f"'{name}'" + (
        f" ({var_name(task.group)})" if name != task.group else f" (set {var_name(task.group)} to use another group)"
    )
    if not members:
        return f"{task.name} targets the inventory group {named}, which has no hosts"
    if host not in members:
        return f"{host} is not in the inventory group {named} that {task.name} targets"
    return None
