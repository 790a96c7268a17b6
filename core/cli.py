"""The ``lync2fa`` command line. Exit codes: 0 success, 1 a task failed, 2 usage/config error."""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from . import api, preflight
from .connection import ConnectionConfigError
from .findings import InsecurePlanError
from .inventory import InventoryError
from .journal import JournalError
from .meta import now as meta_now
from .meta import run_metadata
from .paths import PathError, ensure_dir
from .plan import PlanError
from .plugin_manager import default_plugin_manager, describe_plugins
from .progress import LinePrinter, ProgressDisplay
from .reports import to_json, write_all
from .results import format_diff
from .runlock import RunLockError
from .runner import RunReport, batch_deadline
from .task import ParameterError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Configuration and environment errors (exit 2; 1 is only for "a task failed"): files and
# directories lync2fa cannot use are environment errors, a host that does not answer is not.
USAGE_ERRORS = (
    InventoryError,
    PlanError,
    InsecurePlanError,
    ParameterError,
    ConnectionConfigError,
    JournalError,
    RunLockError,
    PathError,
    PermissionError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
)


class UsageError(Exception):
    pass


def _csv(value: str) -> list[str]:
    """A comma-separated selection; an empty one is refused (it would otherwise mean "all")."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("names nothing (an empty list): name at least one, or leave the option out")
    return items


MAX_FORKS = 256  # hosts worked on at once: threads and WinRM connections on the controller


def _forks(value: str) -> int:
    try:
        forks = int(value)
    except ValueError:
        forks = 0
    if not 1 <= forks <= MAX_FORKS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_FORKS}, not {value[:40]!r}")
    return forks


def _limit(args) -> set[str] | None:
    """--limit as the hosts it names; None when not given (an empty one was refused by _csv)."""
    return set(args.limit) if args.limit is not None else None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a number of seconds") from None
    if not 1 <= seconds <= 86400:
        raise argparse.ArgumentTypeError("expected 1 to 86400 seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lync2fa", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {meta_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p):
        p.add_argument("-i", "--inventory", action="append", required=True, help="Ansible inventory (repeatable)")
        p.add_argument("--vault-password-file", help="file holding the ansible-vault password")
        p.add_argument("--tasks", type=_csv, help="only these tasks or tiers, comma-separated (e.g. ca,adfs)")
        p.add_argument("--limit", type=_csv, help="only these hosts, comma-separated")
        p.add_argument(
            "--allow-insecure",
            action="append",
            default=[],
            metavar="RULE",
            help="accept a refused insecure setting (e.g. SHA1, ESC8); reported as a warning",
        )
        p.add_argument("--state-dir", default=str(api.DEFAULT_STATE_DIR), help="journal directory")
        p.add_argument(
            "--forks", type=_forks, default=16, help=f"hosts worked on at once (1 to {MAX_FORKS}, default 16)"
        )
        p.add_argument("--report-dir", help="also write JSON, JUnit XML and SARIF reports here")
        p.add_argument("--json", action="store_true", help="print the results as JSON")
        p.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0,
            help="also show the operations sent to each host, step by step",
        )
        p.add_argument(
            "--resume",
            action="store_true",
            help="skip steps that succeeded in the last interrupted or failed run of this command",
        )
        p.add_argument(
            "--wait-lock",
            action="store_true",
            help="apply/rollback: wait for another run on the same --state-dir to end instead of exiting 2",
        )
        p.add_argument(
            "--step-timeout",
            type=_seconds,
            default=300.0,
            metavar="SECONDS",
            help="a host that does not answer a step within this time fails (default 300: "
            "on-card enrollment); the others go on. A host's steps of one stage travel together, "
            "so each of its requests gets this once per step (4 steps: 4 x SECONDS)",
        )
        p.add_argument(
            "--skip-preflight",
            action="store_true",
            help="apply/rollback: do not run the read-only preflight checks first",
        )

    run_options(sub.add_parser("plan", help="check mode: show what would change, change nothing"))
    run_options(sub.add_parser("apply", help="make the changes"))
    run_options(
        sub.add_parser(
            "verify",
            help="read-only: every apply task in check mode must find nothing to "
            "change, and every verify task must pass",
        )
    )
    rollback = sub.add_parser("rollback", help="remove what lync2fa created, restore backed-up files")
    run_options(rollback)
    rollback.add_argument("--tier", type=_csv, required=True, help="tier(s) to roll back, e.g. lync")
    rollback.add_argument("--check", action="store_true", help="show what would be removed, change nothing")

    lab = sub.add_parser("lab", help="the simulated estate").add_subparsers(dest="lab_command", required=True)
    up = lab.add_parser("up", help="start the lab in the background (creating it on first use)")
    up.add_argument("--dir", required=True)
    up.add_argument("--clients", type=int, default=2, help="client hosts in a new lab (0 to 10000, default 2)")
    up.add_argument("--https", action="store_true", help="HTTPS endpoints with a generated certificate")
    up.add_argument(
        "--transport",
        choices=("credssp", "ntlm", "basic"),
        default=None,
        help="ansible_winrm_transport in hosts.yml (default: credssp for a new lab, which the "
        "rollout needs to reach AD, the CMS and the CA; an existing lab keeps its own)",
    )
    up.add_argument(
        "--profile",
        choices=("fast", "real-estate"),
        default=None,
        help="real-estate: the lab pays a real host's process start and module import times",
    )
    down = lab.add_parser("down", help="stop the lab (its state is kept)")
    down.add_argument("--dir", required=True)
    fault = lab.add_parser("fault", help="inject faults: HOST (or *) NAME=VALUE ...")
    fault.add_argument("--dir", required=True)
    fault.add_argument("host", nargs="?")
    fault.add_argument("settings", nargs="*", help="e.g. latency_s=0.5 fail_tasks=ca.authority ca_offline=true")
    fault.add_argument("--clear", action="store_true", help="remove HOST's faults (without HOST, or *: every host's)")

    preflight = sub.add_parser(
        "preflight",
        help="read-only checks of every host: PowerShell, execution policy, modules, AD reach, https binding, TPM",
    )
    preflight.add_argument("-i", "--inventory", action="append", required=True, help="Ansible inventory (repeatable)")
    preflight.add_argument("--vault-password-file", help="file holding the ansible-vault password")
    preflight.add_argument("--limit", type=_csv, help="only these hosts, comma-separated")
    preflight.add_argument(
        "--forks", type=_forks, default=16, help=f"hosts checked at once (1 to {MAX_FORKS}, default 16)"
    )
    preflight.add_argument("--json", action="store_true", help="print the checks as JSON")

    plugins = sub.add_parser("plugins", help="list plugins and their tasks")
    plugins.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="a lab in a temporary directory, the rollout applied, the lab stopped")
    demo.add_argument("--clients", type=int, default=3, help="client hosts in the lab (0 to 10000, default 3)")
    demo.add_argument("--dir", help="keep the lab in this directory (default: a temporary one)")
    demo.add_argument("--state-dir", default=str(api.DEFAULT_STATE_DIR), help="journal and reports")

    journal = sub.add_parser("journal", help="show the audit journal")
    journal.add_argument("--state-dir", default=str(api.DEFAULT_STATE_DIR))
    journal.add_argument("--run", type=int, help="results of one run")
    journal.add_argument("--json", action="store_true", help="machine-readable (ISO times, diffs as objects)")

    check = sub.add_parser("validate", help="check an inventory without contacting any host (for CI)")
    check.add_argument("-i", "--inventory", action="append", required=True, help="Ansible inventory (repeatable)")
    check.add_argument("--vault-password-file", help="file holding the ansible-vault password")
    check.add_argument("--format", choices=("human", "json", "junit", "sarif"), default="human")
    check.add_argument(
        "--fail-on",
        choices=("error", "warning", "note"),
        default="error",
        help="exit 1 when a finding of this severity or above is found (default: error)",
    )
    check.add_argument("-o", "--output", help="write the report to this file instead of standard output")
    return parser


def print_report(report: RunReport, console: Console) -> None:
    """Human output; everything a script or host said is escaped (never read as markup)."""
    verb = "would change" if report.check_mode else "changed"
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False)
    for r in report.results:
        what = escape(f"{r.task} on {r.host}")
        if r.failed:
            console.print(f"[red]FAILED[/]  {what}: {escape(r.msg)}", highlight=False)
            for line in format_diff(r.diff) if report.command == "verify" else ():
                console.print(f"    {line}", highlight=False, markup=False)
        elif r.skipped:
            console.print(f"[yellow]skipped[/] {what}: {escape(r.msg)}", highlight=False)
        elif r.changed:
            console.print(f"[cyan]{verb}[/] {what}", highlight=False)
            for line in format_diff(r.diff):
                console.print(f"    {line}", highlight=False, markup=False)
        for w in r.warnings:
            console.print(f"    [yellow]warning:[/] {escape(str(w))}", highlight=False)
    c = report.counts()
    changed = "" if report.command == "verify" else f"{c['changed']} {verb}, "
    console.print(
        f"{report.command}: {c['ok']} ok, {changed}{c['failed']} failed, {c['skipped']} skipped (run {report.run_id})",
        highlight=False,
    )


def cmd_run(args, check_mode: bool, out: Console, kind: str = "apply") -> int:
    # Before anything runs (not after the changes): where reports and the journal go, the run lock.
    if args.report_dir:
        ensure_dir(args.report_dir, "--report-dir")
    api.check_state_dir(
        args.state_dir, changes=kind in ("apply", "rollback") and not check_mode, wait_lock=args.wait_lock
    )
    reports = _default_reports(args, kind, check_mode)
    if reports is not None:
        ensure_dir(reports, "report directory", create=False)
    inventory = api.load_inventory(*args.inventory, vault_password_file=args.vault_password_file)
    pm = default_plugin_manager()
    only = args.tasks
    if kind == "rollback":
        only = (args.tasks or []) + args.tier
    plan = api.plan(
        inventory,
        only=only,
        limit=_limit(args),
        allow_insecure=set(args.allow_insecure),
        kind=api.VERIFY_KINDS if kind == "verify" else kind,
        pm=pm,
    )
    stop, received = threading.Event(), []

    def interrupt(signum, _frame):
        # Start nothing new; steps in flight finish (or time out); the run is journaled as interrupted.
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if kind in ("apply", "rollback") and not check_mode and not args.skip_preflight:
            refused = _preflight(args, inventory, plan, out, stop)
            if received:
                print(
                    f"lync2fa: interrupted by {signal.Signals(received[0]).name} during preflight: nothing was changed",
                    file=sys.stderr,
                    flush=True,
                )
                return 128 + int(received[0])
            if refused:
                return EXIT_FAILED
        display = _progress(plan, args, check_mode or kind == "verify")
        pm.register(display)
        started = meta_now()
        try:
            with display:
                report = _run(args, plan, check_mode, pm, kind, stop)
        finally:
            pm.unregister(display)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    meta = run_metadata(report.command, args.inventory, started, meta_now(), report.run_id, report.check_mode)
    reports = _default_reports(args, kind, check_mode)
    report_dir = args.report_dir or (reports / f"run-{report.run_id or 'latest'}" if reports else None)
    paths = write_all(report, Path(report_dir), meta, {t.name: t.description for t in plan.tasks}) if report_dir else {}
    if args.json:
        print(to_json(report, meta))
    else:
        print_report(report, out)
        if paths:
            out.print(f"report: {paths['html']}", highlight=False)
    if received:
        c = report.counts()
        name = "SIGINT" if received[0] == signal.SIGINT else "SIGTERM"
        print(
            f"lync2fa: interrupted by {name}: {c['changed']} changed, {c['failed']} failed, {c['skipped']} not run; "
            f"run {report.run_id} journaled as interrupted (resume with --resume)",
            file=sys.stderr,
            flush=True,
        )
        return 128 + int(received[0])
    return EXIT_OK if report.ok else EXIT_FAILED


def _default_reports(args, kind: str, check_mode: bool) -> Path | None:
    """Where a run that changes (or verifies) hosts writes its reports without --report-dir."""
    if args.report_dir or check_mode or kind not in ("apply", "verify", "rollback"):
        return None
    return Path(args.state_dir) / "reports"


def _progress(plan, args, check_mode: bool):
    """A live display per tier on a terminal; one line per finished step elsewhere (CI logs)."""
    if sys.stderr.isatty():
        if args.json:
            return LinePrinter(len(plan.steps), args.verbose, check_mode, stream=io.StringIO())
        return ProgressDisplay(len(plan.steps), steps=plan.steps, verbose=args.verbose)
    return LinePrinter(len(plan.steps), args.verbose, check_mode)


def _preflight(args, inventory, plan, out: Console, stop) -> bool:
    """Run the read-only checks first; True (and the table printed) when one failed."""
    checked = preflight.run(
        inventory,
        {t.name: t for t in plan.tasks},
        limit=_limit(args),
        forks=args.forks,
        deadline_s=batch_deadline(args.step_timeout, 1),
        stop=stop,
    )
    if checked.ok:
        return False
    if args.json:
        print(json.dumps({"preflight": checked.as_dict()}, indent=2))
    else:
        preflight.print_table(checked, out)
        out.print(
            "apply refused: preflight failed (nothing was changed); fix the hosts or pass --skip-preflight",
            highlight=False,
        )
    return True


def _run(args, plan, check_mode, pm, kind, stop=None) -> RunReport:
    command = {"apply": "plan" if check_mode else "apply", "verify": "verify", "rollback": "rollback"}[kind]
    return api.run(
        plan,
        check_mode=check_mode,
        state_dir=args.state_dir,
        forks=args.forks,
        pm=pm,
        command=command,
        inventory_name=",".join(args.inventory),
        resume=args.resume,
        verify=kind == "verify",
        wait_lock=args.wait_lock,
        on_wait=lambda message: print(f"lync2fa: {message}", file=sys.stderr, flush=True),
        step_timeout_s=args.step_timeout,
        stop=stop,
    )


def _note_missing_client_library(inventory: Path, out: Console) -> None:
    """CredSSP needs requests-credssp on the controller (the credssp extra); say so up front."""
    import importlib.util

    import yaml

    from .transport import EXTRAS

    try:
        transport = yaml.safe_load(inventory.read_text())["all"]["vars"]["ansible_winrm_transport"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return
    if transport == "credssp" and importlib.util.find_spec("requests_credssp") is None:
        out.print(
            "note: the inventory uses CredSSP, which needs requests-credssp on this controller: "
            f"pip install '{EXTRAS['credssp']}' (or lab up --transport ntlm)",
            highlight=False,
        )


def _lab():
    """The lab, imported only by the commands that use it: it is not part of the production path
    (what runs against a real estate never loads the WinRM server or the Windows model)."""
    from .lab import control

    return control


def cmd_lab(args, out: Console) -> int:
    control = _lab()
    try:
        return _cmd_lab(args, out, control)
    except control.LabError as exc:
        raise UsageError(str(exc)) from None


def _cmd_lab(args, out: Console, control) -> int:
    directory = Path(args.dir)
    if args.lab_command == "up":
        inventory = control.up(
            directory, clients=args.clients, https=args.https, transport=args.transport, profile=args.profile
        )
        out.print(f"lab running; inventory: {inventory}", highlight=False)
        _note_missing_client_library(inventory, out)
    elif args.lab_command == "down":
        was = control.down(directory)
        out.print("lab stopped (state kept)" if was else "lab was not running", highlight=False)
    elif args.lab_command == "fault":
        from .lab.estate import Estate
        from .lab.faults import FaultBook, parse_setting

        store = control.open_store(directory)
        try:
            book = FaultBook(store, hosts=[h.name for h in Estate.load(directory).hosts], tasks=list(api.tasks()))
            if args.clear:
                book.clear(args.host)
            elif args.host:
                book.set(args.host, **dict(parse_setting(s) for s in args.settings))
            print(json.dumps(book.as_dict(), indent=2, sort_keys=True))
        finally:
            store.close()
    return EXIT_OK


def cmd_plugins(args, out: Console) -> int:
    rows = describe_plugins(default_plugin_manager())
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        out.print(f"{row['name']}  ({row['distribution']})", highlight=False)
        for task in row["tasks"]:
            out.print(f"    {task}", highlight=False)
    return EXIT_OK


def cmd_demo(args, out: Console) -> int:
    """The lab lives in a temporary directory (or --dir); reports and journal are kept."""
    state_dir = Path(args.state_dir)
    try:
        if args.dir:
            return _demo(Path(args.dir) / "lab", state_dir, args.clients, out)
        with tempfile.TemporaryDirectory(prefix="lync2fa-demo-") as tmp:
            return _demo(Path(tmp) / "lab", state_dir, args.clients, out)
    except _lab().LabError as exc:
        raise UsageError(str(exc)) from None


def _summary(report: RunReport) -> list[str]:
    by_task: dict[str, list[str]] = {}
    for r in report.changed:
        by_task.setdefault(r.task, []).append(r.host)
    return [
        f"  {task}: {len(hosts)} host(s) ({', '.join(hosts[:5])}{', ...' if len(hosts) > 5 else ''})"
        for task, hosts in by_task.items()
    ]


def _demo(lab_dir: Path, state_dir: Path, clients: int, out: Console) -> int:
    control = _lab()
    report_dir = state_dir / "demo-reports"
    out.print(f"Starting the lab ({clients} clients) in {lab_dir} ...", highlight=False)
    inventory_path = control.up(lab_dir, clients=clients)
    try:
        inventory = api.load_inventory(inventory_path)
        plan = api.plan(inventory)
        out.print(f"Plan: {len(plan.steps)} steps over {len(plan.tasks)} tasks.", highlight=False)
        started = meta_now()
        report = api.run(plan, state_dir=state_dir, command="demo", inventory_name=str(inventory_path))
        meta = run_metadata("demo", str(inventory_path), started, meta_now(), report.run_id)
        print_report(report, out)
        out.print("What changed, by task:", highlight=False)
        for line in _summary(report):
            out.print(line, highlight=False)
        described = {n: t.description for n, t in api.tasks().items()}
        paths = write_all(report, report_dir, meta, described)
        again = api.run(api.plan(inventory), state_dir=state_dir, command="demo (re-run)")
        out.print(
            f"Re-run: {len(again.changed)} changed, {len(again.failed)} failed (idempotent: "
            f"{'yes' if not again.changed and again.ok else 'NO'}).",
            highlight=False,
        )
        started = meta_now()
        proof = api.run(
            api.plan(inventory, kind=api.VERIFY_KINDS),
            state_dir=state_dir,
            verify=True,
            inventory_name=str(inventory_path),
        )
        checked = write_all(
            proof,
            report_dir / "verify",
            run_metadata("verify", str(inventory_path), started, meta_now(), proof.run_id, True),
            described,
        )
        out.print(
            f"Verify: {len(proof.results) - len(proof.failed)} of {len(proof.results)} checks pass.", highlight=False
        )
        out.print(f"Reports: {', '.join(str(p) for p in paths.values())}", highlight=False)
        out.print(f"Verification report: {checked['html']}", highlight=False)
        out.print(f"Journal: {state_dir / 'journal.sqlite'}", highlight=False)
        return EXIT_OK if report.ok and again.ok and not again.changed and proof.ok else EXIT_FAILED
    finally:
        control.down(lab_dir)
        out.print("Lab stopped.", highlight=False)


def cmd_journal(args, out: Console) -> int:
    import sqlite3

    from .journal import JOURNAL_FILE, explain
    from .journal_view import JournalMissing, show

    try:
        show(Path(args.state_dir), args.run, args.json, out)
    except JournalMissing as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.DatabaseError as exc:  # damage found while reading: exit 2 naming the journal
        raise JournalError(explain(Path(args.state_dir) / JOURNAL_FILE, exc)) from None
    return EXIT_OK


def meta_version() -> str:
    from .meta import version

    return version()


def cmd_validate(args, out: Console, err: Console) -> int:
    from . import validate_format as fmt
    from .validate import UnusableInput, validate

    if args.output:
        _check_report_dir(args.output)  # before minutes of checks, not after
    try:
        result = validate(args.inventory, vault_password_file=args.vault_password_file)
    except UnusableInput as exc:
        fmt.unusable(str(exc), exc.issues, err)
        return EXIT_USAGE
    if args.format == "human":
        if args.output:
            _write_report(
                args.output,
                lambda fh: fmt.print_human(result, Console(file=fh, highlight=False, soft_wrap=True), args.fail_on),
            )
        else:
            fmt.print_human(result, out, args.fail_on)
        return result.exit_code(args.fail_on)
    doc = {
        "json": lambda: fmt.to_json(result, args.fail_on),
        "junit": lambda: fmt.to_junit(result, args.fail_on),
        "sarif": lambda: fmt.to_sarif(result),
    }[args.format]()
    if args.output:
        _write_report(args.output, lambda fh: fh.write(doc + "\n"))
        fmt.print_human(result, err, args.fail_on)
    else:
        print(doc)
    return result.exit_code(args.fail_on)


def _check_report_dir(path: str) -> None:
    parent = Path(path).parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"cannot write the report to {path}: {parent} {why}")


def _write_report(path: str, write) -> None:
    """Write a report with ``write(file)``; a path that cannot be written is a usage error that says
    why in words ("not a directory"), not Python's "[Errno 20]"."""
    try:
        with open(path, "w") as fh:
            write(fh)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UsageError(f"cannot write the report to {path}: {reason}") from None


def cmd_preflight(args, out: Console) -> int:
    inventory = api.load_inventory(*args.inventory, vault_password_file=args.vault_password_file)
    tasks = {n: t for n, t in api.tasks().items() if t.kind == "apply"}
    checked = preflight.run(inventory, tasks, limit=_limit(args), forks=args.forks)
    if args.json:
        print(json.dumps(checked.as_dict(), indent=2))
    else:
        preflight.print_table(checked, out)
    return EXIT_OK if checked.ok else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if args.command in ("plan", "apply"):
            return cmd_run(args, args.command == "plan", out)
        if args.command == "verify":
            return cmd_run(args, False, out, kind="verify")
        if args.command == "rollback":
            return cmd_run(args, args.check, out, kind="rollback")
        if args.command == "lab":
            return cmd_lab(args, out)
        if args.command == "plugins":
            return cmd_plugins(args, out)
        if args.command == "preflight":
            return cmd_preflight(args, out)
        if args.command == "demo":
            return cmd_demo(args, out)
        if args.command == "validate":
            return cmd_validate(args, out, err)
        if args.command == "journal":
            return cmd_journal(args, out)
    except (UsageError, ValueError, *USAGE_ERRORS) as exc:
        err.print(f"lync2fa: error: {exc}", markup=False)
        return EXIT_USAGE
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
