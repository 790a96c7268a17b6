"""Shared fixtures: real labs (``lync2fa lab up`` in a temporary directory) and the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import lab_operations
import pytest
import yaml

from lync2fa import api, cli
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.faults import FaultBook
from lync2fa.lab.windows import Machine
from lync2fa.lab.windows.adcs import ca_of

PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True, scope="session")
def _no_proxies():
    """A CI proxy must never intercept 127.0.0.1."""
    saved = {k: os.environ.pop(k) for k in PROXY_VARS if k in os.environ}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    yield
    os.environ.update(saved)


@dataclass
class Lab:
    dir: Path
    inventory: Path
    state_dir: Path

    def up(self) -> None:
        control.up(self.dir)

    def down(self) -> None:
        control.down(self.dir)

    def snapshot(self, exclude_kinds=("lab_fault",)) -> dict:
        store = control.open_store(self.dir)
        try:
            return store.snapshot(exclude_kinds)
        finally:
            store.close()

    def get(self, kind: str, key: str):
        store = control.open_store(self.dir)
        try:
            return store.get(kind, key)
        finally:
            store.close()

    def put(self, kind: str, key: str, data) -> None:
        """Change the estate behind lync2fa's back (drift)."""
        store = control.open_store(self.dir)
        try:
            with store.transaction():
                store.put(kind, key, data)
        finally:
            store.close()

    def fault(self, host: str, **values) -> None:
        store = control.open_store(self.dir)
        try:
            FaultBook(store).set(host, **values)
        finally:
            store.close()

    def clear_faults(self) -> None:
        store = control.open_store(self.dir)
        try:
            FaultBook(store).clear()
        finally:
            store.close()

    def _oplog(self) -> list[dict]:
        """The lab's log of executed operations: ``{"host", "operation"}`` entries, in order."""
        path = self.dir / "operations.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def operations(self, host: str | None = None) -> list:
        """The operations the lab executed (per host, in order), as the lab logged them."""
        return [e["operation"] for e in self._oplog() if host is None or e["host"] == host]

    def mark(self) -> int:
        """Where the lab's operation log ends now (``ran_as_decided(..., since=mark)``)."""
        return len(self._oplog())

    def executed(self, since: int = 0) -> dict[str, list[dict]]:
        """Per host, in order, the operations the lab executed after ``since`` (a ``mark()``)."""
        out: dict[str, list[dict]] = {}
        for entry in self._oplog()[since:]:
            out.setdefault(entry["host"], []).append(entry["operation"])
        return out

    def ran_as_decided(self, report: dict, since: int = 0) -> dict[str, list[dict]]:
        """Assert that every host executed, after ``since``, exactly the operations the CLI
        ``--json`` report says were decided for it (in full, in order); returns them per host."""
        executed, wanted = self.executed(since), lab_operations.decided(report)
        for host in sorted(set(executed) | set(wanted)):
            assert executed.get(host, []) == wanted.get(host, []), f"{host} executed other operations than decided"
        return executed

    def counters(self, host: str, settle_s: float = 0.6) -> dict:
        """Process starts, module imports and WS-Management requests the lab counted for a host
        (the lab writes them every 0.2 s)."""
        import time

        time.sleep(settle_s)
        path = self.dir / "counters.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        return data.get(host, {"process_starts": 0, "imports": 0, "requests": {}})

    def machine_props(self, host: str) -> dict:
        return self.get("host_props", host) or {}

    def set_machine_props(self, host: str, **changes) -> None:
        """Model a host set up differently (PowerShell version, TPM, modules...)."""
        self.put("host_props", host, {**self.machine_props(host), **changes})

    def ca_of(self, host: str) -> dict | None:
        """The CA installed on ``host``, read back where Windows keeps it (the lab's AD CS
        component); None without one."""
        store = control.open_store(self.dir)
        try:
            return ca_of(store, host)
        finally:
            store.close()

    def inventory_with(self, host_vars: dict[str, dict], name: str = "custom.yml") -> Path:
        """The lab's inventory with extra host vars (what an operator would set), written beside it
        as ``name`` (``self.inventory.name``: the lab's inventory itself)."""
        doc = yaml.safe_load(self.inventory.read_text())
        for group in doc["all"]["children"].values():
            for host, hv in group["hosts"].items():
                hv.update(host_vars.get(host, {}))
        path = self.inventory.parent / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def load_inventory(self):
        return api.load_inventory(self.inventory)


@pytest.fixture
def make_lab(tmp_path_factory):
    """Start a fresh lab: ``make_lab(clients=2, https=False, transport="credssp")``. CredSSP is what a
    rollout needs (AD, the CMS and the CA are beyond the host: the double hop); "ntlm" makes a lab
    whose sessions cannot leave their host."""
    labs: list[Lab] = []

    def factory(clients: int = 2, https: bool = False, transport: str = "credssp") -> Lab:
        base = tmp_path_factory.mktemp("lab")
        inventory = control.up(base / "lab", clients=clients, https=https, transport=transport)
        lab = Lab(base / "lab", inventory, base / "state")
        labs.append(lab)
        return lab

    yield factory
    for lab in labs:
        control.down(lab.dir)


@pytest.fixture
def lab(make_lab) -> Lab:
    """A fresh lab with two clients, CredSSP (with its message encryption) over http."""
    return make_lab()


@pytest.fixture
def ca01(tmp_path):
    """The ``Machine`` of a fresh lab estate's ca01 (not served), with network credentials."""
    control.create(tmp_path / "lab", clients=0)
    store = control.open_store(tmp_path / "lab")
    estate = Estate.load(tmp_path / "lab")
    yield Machine(store, estate, estate.host("ca01"), delegated=True)
    store.close()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def run_cli(capsys):
    """Run ``lync2fa ARGS`` in-process; returns exit code, stdout and stderr."""

    def runner(*args: str) -> CliResult:
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return runner


@pytest.fixture
def no_connection(monkeypatch):
    """Nothing may run: a run or a preflight (the first things that connect) fails the test."""
    from lync2fa import api, preflight

    def tripwire(*_args, **_kwargs):
        raise AssertionError("a host would have been contacted")

    monkeypatch.setattr(api, "run", tripwire)
    monkeypatch.setattr(preflight, "run", tripwire)
