"""Performance harness: the whole rollout against a lab of N clients.

    python benchmarks/run.py --clients 100 500 --forks 32 [--transport ntlm|basic] [--latency 0.02]

For each size it starts a fresh lab, then times `plan` (dry run), `apply`, and a second
`apply` (nothing to change), and appends a row per measurement to benchmarks/RESULTS.md.
The lab runs on the same 2 cores as the controller, so the figures are a floor for a real
estate, where hosts work in parallel and WinRM latency dominates (use --latency to add it).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from lync2fa import api
from lync2fa.lab import control
from lync2fa.lab.faults import FaultBook

RESULTS = Path(__file__).parent / "RESULTS.md"
HEADER = ("| date | clients | hosts | transport | latency s | forks | phase | steps | seconds | steps/s | failed |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|\n")


def measure(clients: int, forks: int, transport: str, latency: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lync2fa-bench-") as tmp:
        lab_dir, state = Path(tmp) / "lab", Path(tmp) / "state"
        inventory_path = control.up(lab_dir, clients=clients, transport=transport, timeout_s=300)
        try:
            if latency:
                store = control.open_store(lab_dir)
                FaultBook(store).set("*", latency_s=latency)
                store.close()
            started = time.perf_counter()
            inventory = api.load_inventory(inventory_path)
            plan = api.plan(inventory)
            rows.append(_row("load+plan build", clients, inventory, transport, latency, forks, len(plan.steps),
                             time.perf_counter() - started, 0))
            for phase, check in (("plan (dry run)", True), ("apply", False), ("re-apply", False)):
                started = time.perf_counter()
                report = api.run(plan, check_mode=check, state_dir=state, forks=forks)
                rows.append(_row(phase, clients, inventory, transport, latency, forks, len(report.results),
                                 time.perf_counter() - started, len(report.failed)))
        finally:
            control.down(lab_dir)
    return rows


def _row(phase, clients, inventory, transport, latency, forks, steps, seconds, failed) -> dict:
    return {"date": dt.date.today().isoformat(), "clients": clients, "hosts": len(inventory.all_hosts()),
            "transport": transport, "latency": latency, "forks": forks, "phase": phase, "steps": steps,
            "seconds": round(seconds, 2), "rate": round(steps / seconds, 1) if seconds else 0, "failed": failed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--forks", type=int, default=32)
    parser.add_argument("--transport", choices=("ntlm", "basic"), default="ntlm")
    parser.add_argument("--latency", type=float, default=0.0, help="added per WinRM request, seconds")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    lines = []
    for clients in args.clients:
        for row in measure(clients, args.forks, args.transport, args.latency):
            line = (f"| {row['date']} | {row['clients']} | {row['hosts']} | {row['transport']} | {row['latency']} | "
                    f"{row['forks']} | {row['phase']} | {row['steps']} | {row['seconds']} | {row['rate']} | "
                    f"{row['failed']} |")
            print(line, flush=True)
            lines.append(line)
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(f"# Benchmark results\n\nMachine: {os.cpu_count()} cores, Python "
                               f"{platform.python_version()}, lab and controller on one host.\n\n" + HEADER)
        with RESULTS.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
