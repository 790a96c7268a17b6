"""One run at a time per state directory: ``apply`` and ``rollback`` hold an exclusive lock on
``<state dir>/run.lock`` (``fcntl.flock``) for the whole run; a second one exits 2 naming the
holder's PID, or waits for it (``--wait-lock``). The Ansible face's steps hold it shared (many
forks of one play together, but not alongside a CLI apply).

The lock is advisory and local: controllers that use different state directories (or different
machines) are not coordinated; give them one state directory on one machine.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from .paths import PathError, ensure_dir

LOCK_FILE = "run.lock"


class RunLockError(RuntimeError):
    """The state directory's run lock is held by another run (a usage error: exit code 2)."""


class RunLock:
    def __init__(
        self, state_dir: str | Path, shared: bool = False, wait: bool = False, on_wait=None, command: str = ""
    ):
        self.path = Path(state_dir) / LOCK_FILE
        self.shared, self.wait, self.on_wait, self.command = shared, wait, on_wait, command
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            ensure_dir(self.path.parent, "state directory")
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except PathError as exc:
            raise RunLockError(str(exc)) from None
        except OSError as exc:
            raise RunLockError(f"cannot open the run lock {self.path}: {exc.strerror or exc}") from None
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holders(self.path, fd)
            if not self.wait:
                os.close(fd)
                raise RunLockError(
                    f"another lync2fa run holds the state directory {self.path.parent} "
                    f"({holder}); wait for it to end, or pass --wait-lock"
                ) from None
            if self.on_wait:
                self.on_wait(f"waiting for the run lock on {self.path.parent} ({holder}) ...")
            fcntl.flock(fd, mode)
        if not self.shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()} {self.command}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                if not self.shared:
                    os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_held(state_dir: Path) -> bool | None:
    """Whether any process holds ``<state_dir>/run.lock`` (exclusive or shared), read from the
    kernel's lock table without taking the lock; None when that table cannot be read."""
    path = Path(state_dir) / LOCK_FILE
    if not path.exists():
        return False
    pids = _kernel_holders(path)
    return None if pids is None else bool(pids)


def _kernel_holders(path: Path) -> list[int] | None:
    """The PIDs holding a flock on ``path`` (Linux /proc/locks), None when it cannot be read."""
    pids: list[int] = []
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
                    pid = int(parts[4])
                    if pid not in pids:
                        pids.append(pid)
    except (OSError, ValueError):
        return None
    return pids


def holders(path: Path, own_fd: int | None = None) -> str:
    """Who holds the lock: the PIDs the kernel lists for the lock file (Linux /proc/locks), else
    the PID the exclusive holder wrote into it."""
    pids = _kernel_holders(path) or []
    try:
        written = path.read_text().split()
    except OSError:
        written = []
    host = written[1] if len(written) > 1 else socket.gethostname()
    if not pids and written and written[0].isdigit():
        pids = [int(written[0])]
    if not pids:
        return "holder unknown"
    label = "PID" if len(pids) == 1 else "PIDs"
    return f"{label} {', '.join(str(p) for p in pids)} on {host}"
