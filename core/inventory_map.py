"""Where each inventory variable, host and group is written: file, line, column and key.

Ansible's loaders keep no positions, so ``lync2fa validate`` reads the same files a second time:
YAML through PyYAML's composer (every node has its ``start_mark``), INI by scanning its lines,
and group_vars/host_vars the way ansible-core's ``host_group_vars`` plugin finds them. Values
are not read here (ansible-core reads them, with vault and templating); only where they are and
the shape of the files (a YAML inventory's ``hosts``/``vars``/``children``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# What ansible-core ignores in an inventory directory (INVENTORY_IGNORE_EXTS) and what lync2fa
# reads as inventory there.
IGNORED_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry")
VARS_EXTS = ("", ".yml", ".yaml", ".json")
GROUP_KEYS = ("hosts", "vars", "children")


@dataclass(frozen=True)
class Definition:
    """One place where something is written: a variable (``key``), a host or a group."""

    file: str
    line: int  # 1-based
    col: int = 1  # 1-based
    key: str = ""
    scope: str = "group"  # "host" or "group"
    name: str = "all"  # the host or group it belongs to
    source: str = "inventory"  # "inventory" (the hosts file) or "vars" (group_vars/host_vars)
    encrypted: bool = False  # a whole vault-encrypted file: the line is that of the decrypted text


@dataclass(frozen=True)
class Problem:
    """A shape error in an inventory file (found while mapping it)."""

    rule: str
    message: str
    file: str
    line: int
    col: int = 1
    key: str = ""
    severity: str = "error"
    fix: str = ""


@dataclass
class InventoryMap:
    variables: list[Definition] = field(default_factory=list)
    hosts: dict[str, Definition] = field(default_factory=dict)  # first place a host is named
    groups: dict[str, Definition] = field(default_factory=dict)  # first place a group is named
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file read, in order

    def definitions(self, key: str) -> list[Definition]:
        return [d for d in self.variables if d.key == key]

    def where(self, key: str, host: str, groups: dict[str, int]) -> Definition | None:
        """The definition of ``key`` that wins for ``host`` (``groups``: the host's groups with
        their depth, ``all`` included), by Ansible's precedence: host over group, deeper groups over
        shallower ones, group_vars/host_vars files over the inventory file, later over earlier."""
        best, best_rank = None, None
        for order, d in enumerate(self.variables):
            if d.key != key:
                continue
            if d.scope == "host" and d.name == host:
                rank = (2, 0, d.source == "vars", order)
            elif d.scope == "group" and d.name in groups:
                rank = (1, groups[d.name], d.source == "vars", order)
            else:
                continue
            if best_rank is None or rank > best_rank:
                best, best_rank = d, rank
        return best

    def locate_host(self, host: str) -> Definition | None:
        return self.hosts.get(host)

    def first_file(self) -> str:
        return self.files[0] if self.files else ""


# --- reading -----------------------------------------------------------------------------------


def build(sources: Sequence[str | Path], decrypt=None) -> InventoryMap:
    """Map the inventory ``sources`` (files or directories, as given to ``-i``). ``decrypt``
    turns a vault-encrypted file's bytes into its text (``None``: such files are skipped)."""
    imap = InventoryMap()
    basedirs: list[Path] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and not child.name.startswith(".") and not child.name.endswith(IGNORED_EXTS):
                    _inventory_file(imap, child, decrypt, in_directory=True)
            basedirs.append(path)
        elif path.is_file():
            _inventory_file(imap, path, decrypt)
            basedirs.append(path.parent)
    for base in dict.fromkeys(basedirs):
        for subdir, scope in (("group_vars", "group"), ("host_vars", "host")):
            folder = base / subdir
            if folder.is_dir():
                for entry in sorted(folder.iterdir()):
                    _vars_entry(imap, entry, scope, decrypt)
    return imap


def _read_text(imap: InventoryMap, path: Path, decrypt, quiet: bool = False) -> tuple[str | None, bool]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        imap.problems.append(Problem("INVENTORY_READ", f"cannot read {path}: {exc.strerror}", str(path), 1))
        return None, False
    if raw.lstrip().startswith(b"$ANSIBLE_VAULT"):
        if decrypt is None:
            return None, True
        try:
            return decrypt(raw), True
        except Exception as exc:  # wrong password, damaged file: ansible reports it as well
            imap.problems.append(Problem("VAULT", f"cannot decrypt {path}: {str(exc).splitlines()[0]}", str(path), 1))
            return None, True
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        if quiet:  # a binary file beside the inventory (Ansible skips what no plugin parses)
            return None, False
        imap.problems.append(Problem("INVENTORY_READ", f"{path} is not UTF-8 text", str(path), 1))
        return None, False


def _compose(imap: InventoryMap, path: Path, text: str):
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        imap.problems.append(
            Problem(
                "YAML_SYNTAX",
                f"YAML syntax error: {exc.problem or exc.context}",
                str(path),
                (mark.line + 1) if mark else 1,
                (mark.column + 1) if mark else 1,
            )
        )
    except yaml.YAMLError as exc:
        imap.problems.append(Problem("YAML_SYNTAX", f"YAML error: {exc}", str(path), 1))
    return None


def _inventory_file(imap: InventoryMap, path: Path, decrypt, in_directory: bool = False) -> None:
    text, encrypted = _read_text(imap, path, decrypt, quiet=in_directory)
    if text is None and in_directory and not encrypted:
        return
    imap.files.append(str(path))
    if text is None:
        return
    if path.suffix.lower() in (".yml", ".yaml", ".json") or _looks_like_yaml(text):
        node = _compose(imap, path, text)
        if node is not None:
            _yaml_inventory(imap, str(path), node, encrypted)
        return
    _ini_inventory(imap, str(path), text)


def _looks_like_yaml(text: str) -> bool:
    try:
        return isinstance(yaml.safe_load(text), dict)
    except yaml.YAMLError:
        return False


def _pos(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _pairs(node):
    """(key text, key node, value node) of a mapping node."""
    for key, value in node.value:
        yield str(key.value), key, value


def _yaml_inventory(imap: InventoryMap, file: str, root, encrypted: bool) -> None:
    if isinstance(root, yaml.ScalarNode) and root.value in ("", "~", "null"):
        return
    if not isinstance(root, yaml.MappingNode):
        line, col = _pos(root)
        imap.problems.append(
            Problem("INVENTORY_SHAPE", "a YAML inventory must be a mapping of group names", file, line, col)
        )
        return
    for name, key, value in _pairs(root):
        _yaml_group(imap, file, name, key, value, encrypted)


def _yaml_group(imap: InventoryMap, file: str, group: str, key_node, node, encrypted: bool) -> None:
    line, col = _pos(key_node)
    imap.groups.setdefault(group, Definition(file, line, col, group, "group", group))
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return
    if not isinstance(node, yaml.MappingNode):
        imap.problems.append(
            Problem(
                "INVENTORY_SHAPE",
                f"group {group!r} must be a mapping with hosts, vars and children",
                file,
                line,
                col,
                group,
                fix="write `" + group + ":` followed by indented `hosts:`, `vars:` or `children:`",
            )
        )
        return
    for name, key, value in _pairs(node):
        kline, kcol = _pos(key)
        if name not in GROUP_KEYS:
            close = closest(name, GROUP_KEYS)
            imap.problems.append(
                Problem(
                    "INVENTORY_SHAPE",
                    f"group {group!r} has the key {name!r}; only hosts, vars and children are "
                    "allowed (Ansible skips the rest)",
                    file,
                    kline,
                    kcol,
                    name,
                    fix=f"did you mean {close!r}?" if close else "move it under vars:",
                )
            )
            continue
        empty = isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null")
        if empty:
            continue
        if not isinstance(value, yaml.MappingNode):
            imap.problems.append(
                Problem(
                    "INVENTORY_SHAPE",
                    f"{name} of group {group!r} must be a mapping, not a "
                    f"{'list' if isinstance(value, yaml.SequenceNode) else 'single value'}",
                    file,
                    kline,
                    kcol,
                    name,
                    fix=f"write each entry as `name:` on its own line under {name}:",
                )
            )
            continue
        if name == "vars":
            _yaml_vars(imap, file, value, "group", group, "inventory", encrypted)
        elif name == "children":
            for child, ckey, cvalue in _pairs(value):
                _yaml_group(imap, file, child, ckey, cvalue, encrypted)
        else:
            for host, hkey, hvalue in _pairs(value):
                hline, hcol = _pos(hkey)
                imap.hosts.setdefault(host, Definition(file, hline, hcol, host, "host", host))
                if isinstance(hvalue, yaml.MappingNode):
                    _yaml_vars(imap, file, hvalue, "host", host, "inventory", encrypted)
                elif not (isinstance(hvalue, yaml.ScalarNode) and hvalue.value in ("", "~", "null")):
                    imap.problems.append(
                        Problem(
                            "INVENTORY_SHAPE",
                            f"host {host!r} must be followed by a mapping of its variables (or nothing)",
                            file,
                            hline,
                            hcol,
                            host,
                        )
                    )


def _yaml_vars(imap, file, node, scope, name, source, encrypted) -> None:
    seen: dict[str, int] = {}
    for key, knode, _ in _pairs(node):
        line, col = _pos(knode)
        if key in seen:
            imap.problems.append(
                Problem(
                    "DUPLICATE_KEY",
                    f"{key} is set twice here (lines {seen[key]} and {line}): the last one wins",
                    file,
                    line,
                    col,
                    key,
                    severity="warning",
                    fix=f"keep one {key}",
                )
            )
        seen[key] = line
        imap.variables.append(Definition(file, line, col, key, scope, name, source, encrypted))


def _vars_entry(imap: InventoryMap, entry: Path, scope: str, decrypt) -> None:
    """group_vars/<name>[.yml|.yaml|.json] or group_vars/<name>/ (every file below it)."""
    if entry.name.startswith("."):
        return
    if entry.is_dir():
        files = sorted(
            p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VARS_EXTS
        )
        name = entry.name
    else:
        if entry.suffix.lower() not in VARS_EXTS:
            return
        files, name = [entry], entry.stem if entry.suffix.lower() in VARS_EXTS[1:] else entry.name
    for path in files:
        imap.files.append(str(path))
        text, encrypted = _read_text(imap, path, decrypt)
        if text is None:
            continue
        node = _compose(imap, path, text)
        if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
            continue
        if not isinstance(node, yaml.MappingNode):
            line, col = _pos(node)
            imap.problems.append(
                Problem("INVENTORY_SHAPE", f"{path.name} must be a mapping of variables", str(path), line, col)
            )
            continue
        _yaml_vars(imap, str(path), node, scope, name, "vars", encrypted)


def _ini_inventory(imap: InventoryMap, file: str, text: str) -> None:
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        indent = len(raw) - len(raw.lstrip()) + 1
        if line.startswith("[") and line.endswith("]"):
            section, _, kind = line[1:-1].strip().partition(":")
            kind = kind or "hosts"
            imap.groups.setdefault(section, Definition(file, number, indent + 1, section, "group", section))
            if kind not in ("hosts", "vars", "children"):
                imap.problems.append(
                    Problem(
                        "INVENTORY_SHAPE",
                        f"section [{line[1:-1]}]: only [group], [group:vars] and [group:children]",
                        file,
                        number,
                        indent,
                        section,
                    )
                )
            continue
        if kind == "vars":
            key, eq, _ = line.partition("=")
            if not eq:
                imap.problems.append(
                    Problem("INVENTORY_SHAPE", f"[{section}:vars] line is not key=value", file, number, indent, line)
                )
                continue
            imap.variables.append(Definition(file, number, indent, key.strip(), "group", section))
        elif kind == "children":
            child = line.split()[0]
            imap.groups.setdefault(child, Definition(file, number, indent, child, "group", child))
        else:
            _ini_host_line(imap, file, number, raw, section)


def _ini_host_line(imap, file, number, raw, section) -> None:
    try:
        tokens = shlex.split(raw, comments=True)
    except ValueError as exc:
        imap.problems.append(Problem("INVENTORY_SHAPE", f"cannot split the host line: {exc}", file, number))
        return
    if not tokens:
        return
    host = tokens[0]
    col = raw.find(host) + 1
    imap.hosts.setdefault(host, Definition(file, number, col, host, "host", host))
    search_from = col - 1 + len(host)
    for token in tokens[1:]:
        key, eq, _ = token.partition("=")
        where = raw.find(key, search_from)
        search_from = max(search_from, where + len(key))
        if not eq:
            imap.problems.append(
                Problem("INVENTORY_SHAPE", f"host {host!r}: {token!r} is not key=value", file, number, where + 1, token)
            )
            continue
        imap.variables.append(Definition(file, number, where + 1, key, "host", host))


# --- names -------------------------------------------------------------------------------------


def closest(name: str, known, cutoff: float = 0.75) -> str | None:
    """The known name most like ``name`` (a typo's intended name), or None."""
    import difflib

    found = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def relative(path: str, base: str | Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when it is below it."""
    base = Path(base or os.getcwd()).resolve()
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return Path(path).as_posix()
