"""The lab's server process: ``python -m lync2fa.lab.serve DIR`` (started by ``lab up``)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from . import tls
from .costs import Counters
from .dispatch import Dispatcher
from .estate import Estate, write_inventory
from .faults import FaultBook
from .state import EstateStore
from .wsman import WSManServer

STORE = "estate.sqlite"
READY = "ready"
COUNTERS = "counters.json"  # process starts, imports and requests per host (lync2fa.lab.costs)
OPLOG = "operations.jsonl"  # every operation a host executed, one JSON line each (for tests)


def serve(directory: Path) -> None:
    estate = Estate.load(directory)
    store = EstateStore(directory / STORE)
    faults = FaultBook(store)
    counters = Counters(directory / COUNTERS)
    dispatcher = Dispatcher(store, estate, faults, oplog=directory / OPLOG, counters=counters)
    server = WSManServer(
        {h.name: h.port for h in estate.hosts},
        dispatcher,
        estate.credentials,
        directory,
        tls=tls.server_context(directory) if estate.https else None,
        faults=lambda host: faults.get(host).transport(),
        rebind_busy_ports=True,  # a saved port taken while the lab was down: rewrite hosts.yml
        on_request=counters.request,
    )
    ports = server.start()
    if any(h.port != ports[h.name] for h in estate.hosts):
        for h in estate.hosts:
            h.port = ports[h.name]
        estate.save(directory)
        write_inventory(estate, directory)
    stop = threading.Event()
    counters.flush_every(0.2, stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    (directory / READY).write_text("ready\n")
    try:
        stop.wait()
    finally:
        (directory / READY).unlink(missing_ok=True)
        server.stop()
        store.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
