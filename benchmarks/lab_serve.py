"""The lab's server process for the benchmarks: ``python benchmarks/lab_serve.py DIR``.

The same as ``python -m lync2fa.lab.serve DIR`` (what ``lync2fa lab up`` starts) except where the
lab pays a module import of its cost profile: the lab calls ``Machine.import_module`` inside the
estate's transaction (``windows.primitives.run_request``), which holds ``EstateStore``'s one lock,
so an 8 s Lync import on one host stalls every other host's fact read and apply. On a real estate
hosts import their modules in parallel. Here the import seconds a request owes are paid once the
request leaves the transaction, still inside the host's own lock (``Dispatcher.host_lock``): the
host stays busy for as long, the other hosts do not wait. Counters and everything else unchanged.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from lync2fa.lab import costs, serve
from lync2fa.lab.windows import primitives

_local = threading.local()
_pay, _run_request = costs.pay, primitives.run_request


def pay(seconds: float) -> None:
    owed = getattr(_local, "owed", None)
    if owed is None:
        _pay(seconds)
    else:
        _local.owed = owed + seconds


def run_request(*args, **kwargs):
    _local.owed = 0.0
    try:
        return _run_request(*args, **kwargs)
    finally:
        owed, _local.owed = _local.owed, None
        _pay(owed)


costs.pay = pay
primitives.run_request = run_request

if __name__ == "__main__":
    serve.serve(Path(sys.argv[1]))
