"""``lync2fa lab up/down``: create or restart the simulated estate in the background."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..paths import PathError, ensure_dir
from ..plugin_manager import default_plugin_manager
from . import costs, tls, windows
from .directory import seed_directory
from .estate import DEFAULT_TRANSPORT, HOSTS_YML, LAB_JSON, LAB_TRANSPORTS, Estate, default_estate, write_inventory
from .serve import READY, STORE
from .state import EstateStore

PID = "lab.pid"
LOG = "lab.log"
MAX_CLIENTS = 10000  # what one lab process serves (each client is a simulated host in its store)


class LabError(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / PID).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def create(directory: Path, clients: int = 2, https: bool = False, transport: str = DEFAULT_TRANSPORT) -> Estate:
    """Lay out a new estate and seed its state (AD, then each plugin's objects)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    estate = default_estate(clients=clients, https=https, transport=transport)
    if https:
        tls.generate(directory)
    estate.save(directory)
    store = EstateStore(directory / STORE)
    try:
        with store.transaction():
            seed_directory(store, estate)
            windows.seed(store, estate)
            default_plugin_manager().hook.lync2fa_lab_seed(store=store, estate=estate)
    finally:
        store.close()
    write_inventory(estate, directory, transport)
    return estate


def up(
    directory: Path,
    clients: int = 2,
    https: bool = False,
    transport: str | None = None,
    timeout_s: float = 60.0,
    profile: str | None = None,
) -> Path:
    """Start the lab (creating it on first use); returns the inventory once every endpoint answers.

    ``transport`` (``ansible_winrm_transport`` in hosts.yml): credssp for a new lab unless given;
    given for an existing lab, the inventory is rewritten with it (the lab accepts them all).
    """
    if isinstance(clients, bool) or not isinstance(clients, int) or not 0 <= clients <= MAX_CLIENTS:
        raise LabError(f"--clients must be from 0 to {MAX_CLIENTS}, not {clients!r}")
    directory = _lab_dir(directory)
    if transport is not None and transport not in LAB_TRANSPORTS:
        raise LabError(f"the lab accepts {', '.join(LAB_TRANSPORTS)}, not {transport!r}")
    if (directory / LAB_JSON).exists() and transport is not None:
        estate = Estate.load(directory)
        if estate.transport != transport:
            estate.transport = transport
            estate.save(directory)
            write_inventory(estate, directory)
    if profile is not None and profile not in costs.PROFILES:
        raise LabError(f"lab profiles: {', '.join(costs.PROFILES)}, not {profile!r}")
    if not (directory / LAB_JSON).exists():
        if running_pid(directory):
            raise LabError(f"{directory}: a lab process runs there but its estate (lab.json) is missing")
        create(directory, clients, https, transport or DEFAULT_TRANSPORT)
    if profile is not None:
        set_profile(directory, profile)
    if running_pid(directory):
        return directory / HOSTS_YML
    (directory / READY).unlink(missing_ok=True)
    with open(directory / LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lync2fa.lab.serve", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    (directory / PID).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while not (directory / READY).exists():
        if proc.poll() is not None:
            raise LabError(f"the lab did not start (exit code {proc.returncode}):\n{_tail(directory / LOG)}")
        if time.monotonic() > deadline:
            down(directory)
            raise LabError(f"the lab did not start within {timeout_s:.0f} s:\n{_tail(directory / LOG)}")
        time.sleep(0.05)
    _wait_for_endpoints(Estate.load(directory), deadline)
    return directory / HOSTS_YML


def set_profile(directory: Path, profile: str) -> None:
    """The lab's cost profile (lync2fa.lab.costs): read by the running lab at each new process."""
    store = open_store(directory)
    try:
        with store.transaction():
            store.put(*costs.SETTING, profile)
    finally:
        store.close()


def _wait_for_endpoints(estate: Estate, deadline: float) -> None:
    pending = {h.name: h.port for h in estate.hosts}
    while pending:
        for name, port in list(pending.items()):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    del pending[name]
            except OSError:
                pass
        if pending and time.monotonic() > deadline:
            raise LabError(f"endpoints not answering: {', '.join(sorted(pending))}")
        if pending:
            time.sleep(0.05)


def down(directory: Path, timeout_s: float = 15.0) -> bool:
    """Stop the lab; its state stays in the directory. Returns whether it was running."""
    directory = _lab_dir(directory, create=False)
    pid = running_pid(directory)
    if pid is None:
        (directory / PID).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    (directory / PID).unlink(missing_ok=True)
    return True


def _lab_dir(directory: Path, create: bool = True) -> Path:
    """The lab directory, resolved; a path that is (or is under) a file is a LabError."""
    try:
        return ensure_dir(Path(directory), "lab directory", create=create).resolve()
    except PathError as exc:
        raise LabError(str(exc)) from None


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def open_store(directory: Path) -> EstateStore:
    """The estate's state, for inspection and fault injection (works while the lab runs)."""
    path = directory / STORE
    if not path.exists():
        raise LabError(f"no lab in {directory}")
    return EstateStore(path)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
