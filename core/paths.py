"""Directories lync2fa writes to (state, reports, lab), checked before anything runs: a path
under a file, or a directory that cannot be written, is a clear error (exit code 2), not a
traceback after the hosts were changed."""

from __future__ import annotations

import os
from pathlib import Path


class PathError(ValueError):
    """A directory lync2fa needs cannot be used (a usage/environment error: exit code 2)."""


def ensure_dir(path: str | Path, what: str, create: bool = True) -> Path:
    """``path`` as a writable directory (created with its parents when ``create``), or PathError
    naming ``what`` ("state directory", "--report-dir" ...), the path and the reason."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                where = "is a file" if parent == path else f"is under {parent}, which is a file"
                raise PathError(f"{what} {path} {where}, not a directory")
            break
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PathError(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.W_OK | os.X_OK):
        raise PathError(f"{what} {path} is not writable")
    return path
