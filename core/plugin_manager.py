"""Loads the lync2fa plugins: everything registered in the ``lync2fa`` entry-point group."""

from __future__ import annotations

from functools import lru_cache

import pluggy

from . import hookspecs
from .task import Task


def new_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        check(pm)
    return pm


class PluginError(ValueError):
    """A plugin implements a hook lync2fa does not define (a misspelt name, a removed hook, a
    wrong argument): it would silently never be called, so it is refused."""


def check(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) if getattr(exc, "plugin", None) is not None else "?"
        raise PluginError(f"plugin {name!r}: {exc}") from None


@lru_cache(maxsize=1)
def default_plugin_manager() -> pluggy.PluginManager:
    return new_plugin_manager()


def collect_tasks(pm: pluggy.PluginManager) -> dict[str, Task]:
    """All tasks contributed by the plugins, by name; a duplicate name is a plugin bug."""
    tasks: dict[str, Task] = {}
    for contributed in pm.hook.lync2fa_tasks():
        for task in contributed or ():
            if task.name in tasks:
                raise ValueError(f"two plugins contribute the task {task.name!r}")
            tasks[task.name] = task
    return tasks


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Name, distribution and tasks of every registered plugin (for ``lync2fa plugins``)."""
    dist_of = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or name == hookspecs.PROJECT:
            continue
        impl = getattr(plugin, "lync2fa_tasks", None)
        tasks = [t.name for t in (impl() if impl else [])]
        dist = dist_of.get(id(plugin))
        rows.append(
            {
                "name": name,
                "distribution": f"{dist.project_name} {dist.version}" if dist else "(not installed)",
                "tasks": tasks,
            }
        )
    return sorted(rows, key=lambda r: r["name"])
