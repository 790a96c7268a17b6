"""Issue 11's benchmark: the whole rollout, side by side, on a lab with a real estate's costs.

    make bench
    python benchmarks/run.py [--clients 10 100 1000] [--latency 0.02] [--profile real-estate]
                             [--forks 50] [--ansible-forks 50] [--faces lync2fa ansible naive]
                             [--ansible-max-clients N] [--no-record]

For each size N it lays out one estate of N clients (plus ca01, adfs01, pool01, dir01), then, on a
fresh copy of it per face, with ``latency`` added to every WinRM request and the lab's cost
profile (``lync2fa.lab.costs``: powershell.exe start, module imports):

* **lync2fa**: ``lync2fa plan``, ``lync2fa apply``, ``lync2fa apply`` again (a no-op re-apply);
* **ansible**: ``ansible-playbook playbooks/deploy_2fa.yml`` with this checkout as the collection
  lync2fa.twofactor (as tests/ansible_support.py runs it);
* **naive**: ``benchmarks/naive.py``, a new pywinrm session per step.

Each command runs as a child process; measured: wall time, controller CPU (user+sys of the whole
process tree, from ``getrusage(RUSAGE_CHILDREN)``), peak memory of the process tree (the sum of
RSS and of PSS over the tree, polled from /proc every 0.25 s), the lab's own CPU, and, from the
lab's ``counters.json``, WS-Management requests, powershell.exe starts and module imports per host
(the authentication handshake is not counted). Beside each figure, the floor: the minimal
requests x the CPU per request measured on the same lab (controller + lab, handshake included) /
cores + latency x round trips / concurrency + the profile's simulated host costs, along the
dependency order (see ``floor``). The table goes to benchmarks/RESULTS.md, the raw figures to
benchmarks/results.json.

The lab runs on the same machine as the controller: what it burns (the simulated Windows: fact
queries, RSA keys of virtual smart cards, the CA signing) competes with the controller for the
same cores, and is not in the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lync2fa import api, hostscript  # noqa: E402
from lync2fa.lab import control, costs  # noqa: E402
from lync2fa.lab.faults import FaultBook  # noqa: E402
from lync2fa.runner import phases  # noqa: E402

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
PAGE = os.sysconf("SC_PAGE_SIZE")

# The modules each group's host imports in the floor (one process per host; clients import none:
# the lab counts 0 imports on a client). The lab profile gives their seconds.
FLOOR_IMPORTS = {
    "ca": ("ServerManager", "ADCSAdministration", "WebAdministration"),
    "adfs": ("ADFS",),
    "lync_pools": ("SkypeForBusiness",),
    "lync_edge": ("SkypeForBusiness",),
    "clients": (),
}
# Minimal WS-Management requests of one host's process: Create, Command, Send+Receive (facts), Delete;
# each apply adds Send+Receive.
MIN_SESSION_REQUESTS, MIN_APPLY_REQUESTS = 5, 2


# -- measuring a command ------------------------------------------------------------------------
class TreeMonitor(threading.Thread):
    """Peak RSS and PSS summed over a process and all its descendants, polled from /proc."""

    def __init__(self, root: int, interval_s: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.interval_s = root, interval_s
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval_s)

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        rss = pss = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    rss += int(fh.read().split()[1]) * PAGE
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                            break
            except (OSError, ValueError, IndexError):
                continue
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(tree))


def _cpu_of(pid: int) -> float:
    """user+sys seconds of a running process (the lab)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _counters(lab_dir: Path) -> dict:
    time.sleep(0.6)  # the lab writes counters.json every 0.2 s
    path = lab_dir / "counters.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _delta(after: dict, before: dict) -> dict[str, dict]:
    out = {}
    for host, now in after.items():
        was = before.get(host, {"process_starts": 0, "imports": 0, "requests": {}})
        requests = {k: v - was["requests"].get(k, 0) for k, v in now["requests"].items()}
        out[host] = {
            "requests": sum(requests.values()),
            "by_action": {k: v for k, v in requests.items() if v},
            "process_starts": now["process_starts"] - was["process_starts"],
            "imports": now["imports"] - was["imports"],
        }
    return out


def measure(
    label: str,
    argv: list[str],
    lab_dir: Path,
    env: dict | None = None,
    cwd: Path | None = None,
    log_dir: Path | None = None,
) -> dict:
    lab_pid = control.running_pid(lab_dir)
    before = _counters(lab_dir)
    lab_cpu = _cpu_of(lab_pid)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    log = open(log_dir / f"{label}.log", "w") if log_dir else subprocess.DEVNULL
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monitor = TreeMonitor(proc.pid)
    monitor.start()
    tail: list[str] = []
    recap: list[str] = []
    for line in proc.stdout:
        if log is not subprocess.DEVNULL:
            log.write(line)
        line = line.rstrip("\n")
        if " : ok=" in line:  # Ansible's PLAY RECAP: one line per host, all kept
            recap.append(line)
        else:
            tail.append(line)
            del tail[:-400]
    proc.wait()
    wall = time.perf_counter() - started
    monitor.stop.set()
    monitor.join()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log is not subprocess.DEVNULL:
        log.close()
    after = _counters(lab_dir)
    per_host = _delta(after, before)
    return {
        "label": label,
        "argv": [str(a) for a in argv],
        "rc": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_user_s": round(used.ru_utime - usage.ru_utime, 2),
        "cpu_sys_s": round(used.ru_stime - usage.ru_stime, 2),
        "peak_rss_mb": round(monitor.peak_rss / 2**20, 1),
        "peak_pss_mb": round(monitor.peak_pss / 2**20, 1),
        "peak_procs": monitor.peak_procs,
        "lab_cpu_s": round(_cpu_of(lab_pid) - lab_cpu, 2),
        "outcome": _outcome(tail + recap, proc.returncode),
        "load_1m_after": round(os.getloadavg()[0], 2),
        "counters": summarize(per_host),
    }


def _outcome(lines: list[str], rc: int) -> str:
    """The command's own summary line (lync2fa, naive) or the PLAY RECAP totals (Ansible)."""
    for line in reversed(lines):
        if line.startswith(("plan:", "apply:", "naive:")):
            return line.split("(run")[0].strip()
    recap = [line for line in lines if " : ok=" in line]
    if recap:
        totals: dict[str, int] = {}
        for line in recap:
            for field in line.split(":", 1)[1].split():
                key, _, value = field.partition("=")
                if value.isdigit():
                    totals[key] = totals.get(key, 0) + int(value)
        return "recap: " + ", ".join(f"{totals.get(k, 0)} {k}" for k in ("ok", "changed", "failed", "unreachable"))
    return f"exit {rc}"


# -- calibration and floor ----------------------------------------------------------------------
def calibrate(lab_dir: Path, inventory_path: Path, hosts: int = 16) -> dict:
    """CPU per WS-Management request (controller + lab, the handshake included) and the HTTP
    round trips of the handshake, from minimal sessions: one empty fact read on ``hosts`` clients
    (Create, Command, Send, Receive, Delete) through lync2fa's transport."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from lync2fa.transport import WinRMConnection

    plan = api.plan(api.load_inventory(inventory_path))
    settings = list({s.host.name: s.connection for s in plan.steps if "clients" in s.host.groups}.values())[:hosts]
    posts = [0]
    lock = threading.Lock()
    original = requests.adapters.HTTPAdapter.send  # below the auth handlers' own resends

    def counting(self, request, *args, **kwargs):
        with lock:
            posts[0] += 1
        return original(self, request, *args, **kwargs)

    def one(setting) -> None:
        conn = WinRMConnection(setting)
        try:
            conn.request(hostscript.facts_request({}), idempotent=True)
        finally:
            conn.close()

    lab_pid = control.running_pid(lab_dir)
    before = _counters(lab_dir)
    lab_cpu, mine = _cpu_of(lab_pid), resource.getrusage(resource.RUSAGE_SELF)
    requests.adapters.HTTPAdapter.send = counting
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, settings))
    finally:
        requests.adapters.HTTPAdapter.send = original
    now = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (now.ru_utime + now.ru_stime - mine.ru_utime - mine.ru_stime) + (_cpu_of(lab_pid) - lab_cpu)
    counted = sum(h["requests"] for h in _delta(_counters(lab_dir), before).values())
    return {
        "hosts": len(settings),
        "requests": counted,
        "http_posts": posts[0],
        "handshake_round_trips": round((posts[0] - counted) / max(1, len(settings)), 1),
        "cpu_per_request_s": round(cpu / max(1, counted), 5),
    }


def floor(inventory_path: Path, kind: str, forks: int, latency: float, profile: str, calib: dict, cores: int) -> dict:
    """The least a run could take on this lab, for ``kind`` "apply" (a fresh estate) or "noop"
    (plan of a rolled-out or fresh estate, re-apply): per host one powershell.exe (its start and
    its group's imports, FLOOR_IMPORTS), the minimal requests (Create, Command, one fact read,
    Delete, and one apply per phase the host is in when applying) plus the handshake, each paying
    ``latency``. apply: phases one after the other (a phase needs the previous one done), hosts of
    a phase ``forks`` at a time; noop: every host at once, ``forks`` at a time. Plus the CPU of
    those requests (calibrated, controller + lab) spread over ``cores``."""
    plan = api.plan(api.load_inventory(inventory_path))
    cost = costs.PROFILES[profile]
    stages = phases(plan)
    host_phases: dict[str, list[int]] = {}
    groups: dict[str, tuple] = {}
    for index, tasks in enumerate(stages):
        for task in tasks:
            for step in plan.steps_for(task.name):
                host_phases.setdefault(step.host.name, [])
                if index not in host_phases[step.host.name]:
                    host_phases[step.host.name].append(index)
                groups[step.host.name] = step.host.groups
    handshake = calib["handshake_round_trips"]

    def start_cost(host: str) -> float:
        mods = {m for g in groups[host] for m in FLOOR_IMPORTS.get(g, ())}
        return cost["process_start_s"] + sum(cost["imports_s"].get(m, 0.0) for m in mods)

    def wave(times: list[float]) -> float:
        return max(max(times, default=0.0), sum(times) / max(1, forks))

    requests_total = 0
    if kind == "apply":
        elapsed = 0.0
        for index in range(len(stages)):
            times = []
            for host, mine in host_phases.items():
                if index not in mine:
                    continue
                first = index == mine[0]
                t = MIN_APPLY_REQUESTS * latency
                if first:
                    t += start_cost(host) + (handshake + MIN_SESSION_REQUESTS) * latency
                times.append(t)
            elapsed += wave(times)
        requests_total = sum(MIN_SESSION_REQUESTS + MIN_APPLY_REQUESTS * len(p) for p in host_phases.values())
    else:
        elapsed = wave([start_cost(h) + (handshake + MIN_SESSION_REQUESTS) * latency for h in host_phases])
        requests_total = MIN_SESSION_REQUESTS * len(host_phases)
    cpu = requests_total * calib["cpu_per_request_s"] / cores
    return {
        "kind": kind,
        "seconds": round(elapsed + cpu, 2),
        "waiting_s": round(elapsed, 2),
        "cpu_s": round(cpu, 2),
        "requests": requests_total,
        "hosts": len(host_phases),
    }


def lab_up(lab_dir: Path, profile: str, timeout_s: float = 900) -> Path:
    """Start a laid-out lab with a cost profile (``lync2fa lab up --profile``)."""
    return control.up(lab_dir, profile=profile, timeout_s=timeout_s)


# -- one size -----------------------------------------------------------------------------------
def run_size(clients: int, args, work: Path, log_dir: Path) -> dict:
    template = work / f"estate-{clients}"
    started = time.perf_counter()
    control.create(template, clients=clients)
    print(f"[{clients} clients] estate laid out in {time.perf_counter() - started:.0f} s", flush=True)
    out: dict = {"clients": clients, "runs": {}, "floors": {}}
    for face in args.faces:
        if face == "ansible" and clients > args.ansible_max_clients:
            print(f"[{clients} clients] ansible-playbook skipped (> --ansible-max-clients); extrapolated", flush=True)
            continue
        lab_dir = work / f"{face}-{clients}"
        shutil.copytree(template, lab_dir)
        inventory = lab_up(lab_dir, args.profile)
        try:
            store = control.open_store(lab_dir)
            FaultBook(store).set("*", latency_s=args.latency)
            store.close()
            if "calibration" not in out:
                out["calibration"] = calibrate(lab_dir, inventory)
                print(f"[{clients} clients] calibration {out['calibration']}", flush=True)
                for kind in ("apply", "noop"):
                    out["floors"][kind] = floor(
                        inventory, kind, args.forks, args.latency, args.profile, out["calibration"], os.cpu_count() or 1
                    )
                print(f"[{clients} clients] floors {out['floors']}", flush=True)
            state = lab_dir / "state"
            for label, argv, env in _commands(face, inventory, state, args, work):
                name = f"{face}-{label}-{clients}"
                result = measure(name, argv, lab_dir, env=env, cwd=work, log_dir=log_dir)
                out["runs"][f"{face} {label}"] = result
                print(
                    f"[{clients} clients] {face} {label}: {result['wall_s']} s, cpu "
                    f"{result['cpu_user_s'] + result['cpu_sys_s']:.1f} s, pss {result['peak_pss_mb']} MB, "
                    f"{result['outcome']}",
                    flush=True,
                )
        finally:
            control.down(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)
    shutil.rmtree(template, ignore_errors=True)
    return out


def _commands(face: str, inventory: Path, state: Path, args, work: Path):
    if face == "lync2fa":
        common = ["-i", str(inventory), "--state-dir", str(state), "--forks", str(args.forks)]
        yield "plan", [str(BIN / "lync2fa"), "plan", *common], None
        yield "apply", [str(BIN / "lync2fa"), "apply", *common, "--skip-preflight"], None
        yield "re-apply", [str(BIN / "lync2fa"), "apply", *common, "--skip-preflight"], None
    elif face == "ansible":
        import ansible_support

        env = ansible_support.ansible_env(work / "ansible")
        yield (
            "apply",
            [
                str(BIN / "ansible-playbook"),
                "-i",
                str(inventory),
                "-f",
                str(args.ansible_forks),
                str(ansible_support.PLAYBOOKS / "deploy_2fa.yml"),
            ],
            env,
        )
    elif face == "naive":
        yield "apply", [sys.executable, str(HERE / "naive.py"), "-i", str(inventory), "--forks", str(args.forks)], None


# -- reporting ----------------------------------------------------------------------------------
def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )

    def version(dist: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(dist)
        except PackageNotFoundError:
            return "-"

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "lync2fa": version("lync2fa"),
        "ansible-core": version("ansible-core"),
        "pywinrm": version("pywinrm"),
        "loadavg_at_start": os.getloadavg(),
    }


def summarize(per_host: dict[str, dict]) -> dict:
    """The lab's counters of a run: the clients' means (and extremes), each server host as is."""
    clients = [h for name, h in per_host.items() if name.startswith("cl")]
    out: dict = {"servers": {name: h for name, h in sorted(per_host.items()) if not name.startswith("cl")}}
    if clients:
        n = len(clients)
        actions = sorted({a for h in clients for a in h["by_action"]})
        out["clients"] = {
            "hosts": n,
            **{k: round(sum(h[k] for h in clients) / n, 2) for k in ("requests", "process_starts", "imports")},
            "requests_min": min(h["requests"] for h in clients),
            "requests_max": max(h["requests"] for h in clients),
            "by_action": {a: round(sum(h["by_action"].get(a, 0) for h in clients) / n, 2) for a in actions},
        }
    return out


def _per_host(run: dict) -> tuple[str, str]:
    """(clients: mean requests / starts / imports, servers: host req/starts/imports ...)."""
    counters = run["counters"]
    c = counters.get("clients")
    clients = f"{c['requests']:.1f} / {c['process_starts']:.1f} / {c['imports']:.1f}" if c else "-"
    servers = " ".join(
        f"{name} {h['requests']}/{h['process_starts']}/{h['imports']}"
        for name, h in counters["servers"].items()
        if h["requests"]
    )
    return clients, servers or "-"


def _extrapolate(sizes: list[dict], face_label: str, clients: int) -> dict | None:
    """Linear in the clients through the two largest sizes where ``face_label`` ran."""
    known = [(s["clients"], s["runs"][face_label]) for s in sizes if face_label in s["runs"]]
    if len(known) < 2:
        return None
    (n1, r1), (n2, r2) = known[-2], known[-1]

    def line(key):
        slope = (r2[key] - r1[key]) / (n2 - n1)
        return round(r2[key] + slope * (clients - n2), 1)

    return {k: line(k) for k in ("wall_s", "cpu_user_s", "cpu_sys_s", "peak_rss_mb", "peak_pss_mb")} | {
        "from": f"{n1} and {n2} clients"
    }


RUN_ORDER = ("lync2fa plan", "lync2fa apply", "lync2fa re-apply", "ansible apply", "naive apply")


def _order(label: str) -> int:
    return RUN_ORDER.index(label) if label in RUN_ORDER else len(RUN_ORDER)


def render(results: dict) -> str:
    m, a = results["machine"], results["args"]
    lines = [
        "# Benchmark results (issue 11)",
        "",
        f"Run {results['date']} by `make bench` (`benchmarks/run.py`), {results['total_minutes']} min in all.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; Python {m['python']}, "
        f"lync2fa {m['lync2fa']}, ansible-core {m['ansible-core']}, pywinrm {m['pywinrm']}; the lab (one process) "
        f"and the controller share these cores (load average at start: "
        f"{' '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}).",
        "",
        f"Lab: profile `{a['profile']}` (powershell.exe start {costs.PROFILES[a['profile']]['process_start_s']} s; "
        "imports: "
        + ", ".join(f"{k} {v} s" for k, v in costs.PROFILES[a["profile"]]["imports_s"].items())
        + f"), {a['latency'] * 1000:.0f} ms added to every WinRM request, CredSSP over http (the lab's default; the "
        f"rollout needs delegation). Concurrency: `lync2fa --forks {a['forks']}`, naive script "
        f"`--forks {a['forks']}` (threads), `ansible-playbook -f {a['ansible_forks']}`.",
        "",
        "Columns: wall time; controller CPU = user+sys of the command's whole process tree; peak memory of the tree "
        "(sum of PSS; sum of RSS in brackets, which counts the pages Ansible's forks share once per process); "
        "lab CPU = the simulated estate's own CPU (same cores); per client = mean WS-Management requests / "
        "powershell.exe starts / module imports per client (handshake excluded); servers: the same per server host; "
        "floor = the least the run could take on this lab (see benchmarks/README.md); load = the machine's 1-minute "
        "load average when the run ended (other work on the machine shows there).",
        "",
        "| clients | run | wall s | floor s | x floor | controller CPU s | CPU ms/host | peak PSS MB (RSS) | "
        "lab CPU s | per client req/starts/imports | servers req/starts/imports | outcome | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in results["sizes"]:
        n = size["clients"]
        hosts = n + 4
        for label, run in sorted(size["runs"].items(), key=lambda item: _order(item[0])):
            kind = "noop" if label in ("lync2fa plan", "lync2fa re-apply") else "apply"
            fl = size["floors"].get(kind, {}).get("seconds")
            cpu = run["cpu_user_s"] + run["cpu_sys_s"]
            c, s = _per_host(run)
            lines.append(
                f"| {n} | {label} | {run['wall_s']} | {fl} | {run['wall_s'] / fl:.2f} | {cpu:.1f} | "
                f"{cpu / hosts * 1000:.0f} | {run['peak_pss_mb']:.0f} ({run['peak_rss_mb']:.0f}) | "
                f"{run['lab_cpu_s']} | {c} | {s} | {run['outcome']} | {run.get('load_1m_after', '-')} |"
            )
        for label, ex in size.get("extrapolated", {}).items():
            fl = size["floors"]["apply"]["seconds"]
            cpu = ex["cpu_user_s"] + ex["cpu_sys_s"]
            lines.append(
                f"| {n} | {label} **extrapolated** (linear from {ex['from']}) | ~{ex['wall_s']} | {fl} | "
                f"~{ex['wall_s'] / fl:.1f} | ~{cpu:.0f} | ~{cpu / hosts * 1000:.0f} | "
                f"~{ex['peak_pss_mb']:.0f} ({ex['peak_rss_mb']:.0f}) | - | - | - | not run | - |"
            )
    lines += [
        "",
        "Floors and calibration per size (CPU per request: controller + lab, handshake included, "
        "from minimal sessions on 16 clients):",
        "",
    ]
    for size in results["sizes"]:
        cal, fa, fn = size["calibration"], size["floors"]["apply"], size["floors"]["noop"]
        lines.append(
            f"* {size['clients']} clients: {cal['cpu_per_request_s'] * 1000:.1f} ms CPU per request, "
            f"{cal['handshake_round_trips']} handshake round trips per session; apply floor "
            f"{fa['seconds']} s ({fa['waiting_s']} s waiting + {fa['cpu_s']} s CPU, {fa['requests']} requests); "
            f"plan/re-apply floor {fn['seconds']} s ({fn['waiting_s']} s + {fn['cpu_s']} s, "
            f"{fn['requests']} requests)"
        )
    lines += ["", "Ratios:", ""] + [f"* {r}" for r in results["ratios"]]
    return "\n".join(lines) + "\n"


def ratios(results: dict) -> list[str]:
    out = []

    def wall(size, label):
        run = size["runs"].get(label) or size.get("extrapolated", {}).get(label)
        return run["wall_s"] if run else None

    for size in results["sizes"]:
        n = size["clients"]
        apply_, reapply, plan = (wall(size, f"lync2fa {x}") for x in ("apply", "re-apply", "plan"))
        naive, ansible = wall(size, "naive apply"), wall(size, "ansible apply")
        parts = []
        if apply_ and naive:
            parts.append(f"naive / lync2fa apply {naive / apply_:.2f}x")
        if apply_ and ansible:
            extra = " (extrapolated)" if "ansible apply" not in size["runs"] else ""
            parts.append(f"ansible-playbook / lync2fa apply {ansible / apply_:.2f}x{extra}")
        if apply_ and reapply:
            parts.append(f"apply / re-apply {apply_ / reapply:.2f}x")
        if apply_:
            parts.append(f"lync2fa apply / floor {apply_ / size['floors']['apply']['seconds']:.2f}x")
        if reapply:
            parts.append(f"re-apply / floor {reapply / size['floors']['noop']['seconds']:.2f}x")
        if plan:
            parts.append(f"plan / floor {plan / size['floors']['noop']['seconds']:.2f}x")
        out.append(f"{n} clients: " + "; ".join(parts))
    by_n = {s["clients"]: s for s in results["sizes"]}
    if 100 in by_n and 1000 in by_n:
        for label in ("lync2fa apply", "lync2fa re-apply", "ansible apply", "naive apply"):
            a = by_n[100]["runs"].get(label)
            b = by_n[1000]["runs"].get(label) or by_n[1000].get("extrapolated", {}).get(label)
            if a and b:
                note = " (1000: extrapolated)" if label not in by_n[1000]["runs"] else ""
                cpu_a, cpu_b = a["cpu_user_s"] + a["cpu_sys_s"], b["cpu_user_s"] + b["cpu_sys_s"]
                out.append(
                    f"{label}, 100 -> 1000 clients{note}: peak PSS {b['peak_pss_mb'] / a['peak_pss_mb']:.2f}x, "
                    f"controller CPU {cpu_b / cpu_a:.2f}x ({cpu_a / 104 * 1000:.0f} -> "
                    f"{cpu_b / 1004 * 1000:.0f} ms per host)"
                )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--latency", type=float, default=0.02, help="added to every WinRM request, seconds")
    parser.add_argument("--profile", choices=sorted(costs.PROFILES), default="real-estate")
    parser.add_argument("--forks", type=int, default=50, help="lync2fa --forks, and the naive script's threads")
    parser.add_argument("--ansible-forks", type=int, default=50, help="ansible-playbook -f")
    parser.add_argument(
        "--faces", nargs="+", choices=("lync2fa", "ansible", "naive"), default=["lync2fa", "ansible", "naive"]
    )
    parser.add_argument(
        "--ansible-max-clients",
        type=int,
        default=1000,
        help="larger sizes are extrapolated for ansible-playbook (linear, labelled)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md / results.json")
    parser.add_argument("--keep-logs", type=Path, help="directory for each command's output")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sizes": [],
    }
    print(json.dumps(results["machine"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="lync2fa-bench-") as tmp:
        work = Path(tmp)
        log_dir = args.keep_logs or work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for clients in args.clients:
            results["sizes"].append(run_size(clients, args, work, log_dir))
            for size in results["sizes"]:
                if "ansible apply" not in size["runs"] and "ansible" in args.faces:
                    ex = _extrapolate(results["sizes"], "ansible apply", size["clients"])
                    if ex:
                        size["extrapolated"] = {"ansible apply": ex}
    results["total_minutes"] = round((time.perf_counter() - started) / 60, 1)
    results["ratios"] = ratios(results)
    text = render(results)
    print(text)
    if not args.no_record:
        RESULTS_MD.write_text(text)
        RESULTS_JSON.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
