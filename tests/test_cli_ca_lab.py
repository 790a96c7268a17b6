"""The CA tier end to end: inventory -> plan -> WinRM -> lab -> result -> journal, via the CLI.

What the tier did is read back where Windows keeps it: the CA through the lab's AD CS component
(``ca_of``: CertSvc registry, the My store, the enrollment service object in AD), IIS's
configuration for /certsrv, the template's ACL in AD.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from lab_operations import by_task, timeless

from lync2fa import adcs
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import Machine, iis
from lync2fa.lab.windows import adcs as lab_adcs


def with_machine(lab, func, commit: bool = False):
    """Run ``func(machine)`` on the lab's ca01 model (reads, or a change behind lync2fa's back)."""
    store = control.open_store(lab.dir)
    estate = Estate.load(lab.dir)
    try:
        with store.transaction(commit=commit):
            return func(Machine(store, estate, estate.host("ca01")))
    finally:
        store.close()


def lync_users_rights(machine) -> set:
    obj = machine.directory.get(adcs.template_dn("SmartcardUser"))
    return {(a["rights"], a["object_type"]) for a in obj["acl"]["aces"] if a["account"] == "CORP\\Lync 2FA Users"}


def apply_args(lab, *extra):
    return ("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "ca", *extra)


def plan_args(lab, *extra):
    return ("plan", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "ca", *extra)


def test_plan_apply_reapply(lab, run_cli):
    before = lab.snapshot()

    planned = run_cli(*plan_args(lab, "--json"))
    assert planned.code == 0, planned.err
    report = planned.json()
    assert report["check_mode"] is True
    assert {r["task"] for r in report["results"] if r["changed"]} == {
        "ca.authority",
        "ca.web_enrollment",
        "ca.templates_published",
        "ca.template_permissions",
    }
    authority = next(r for r in report["results"] if r["task"] == "ca.authority")
    assert {"path": "common_name", "before": None, "after": "Lync2FA Lab Root CA"} in authority["diff"]
    assert lab.snapshot() == before, "plan must not change the estate"

    applied = run_cli(*apply_args(lab))
    assert applied.code == 0, applied.out + applied.err
    assert "changed ca.authority on ca01" in applied.out
    assert "+ common_name: Lync2FA Lab Root CA" in applied.out
    ca = lab.ca_of("ca01")
    assert ca["ca_type"] == "EnterpriseRootCA" and ca["hash_algorithm"] == "sha256" and ca["key_length"] == 4096
    # A new Enterprise CA issues its default templates (those in AD) plus the three of the procedure.
    assert ca["published"] == ["EnrollmentAgent", "SmartcardLogon", "SmartcardUser", "User", "WebServer"]

    def web(machine):
        return (
            iis.config(machine, "Default Web Site/CertSrv", iis.ACCESS)["sslFlags"],
            iis.config(machine, "Default Web Site/CertSrv", iis.EXTENDED_PROTECTION)["tokenChecking"],
            iis.certsrv_status(machine, "http"),
            iis.certsrv_status(machine, "https"),
        )

    assert with_machine(lab, web) == ("Ssl", "Require", "403.4", 200)
    assert with_machine(lab, lync_users_rights) == {
        (adcs.GENERIC_READ, adcs.ALL_EXTENDED_RIGHTS),
        (adcs.EXTENDED_RIGHT, adcs.ENROLL),
    }

    again = run_cli(*apply_args(lab, "--json"))
    assert again.code == 0
    assert again.json()["counts"] == {"ok": 4, "changed": 0, "failed": 0, "skipped": 0}


def test_lab_runs_exactly_the_planned_operations(lab, run_cli):
    """Issue 8: what the lab host executed is the operation list the plan's decisions produced, in full."""
    planned = run_cli(*plan_args(lab, "--json")).json()
    mark = lab.mark()
    applied = run_cli(*apply_args(lab, "--json"))
    assert applied.code == 0, applied.out
    executed = lab.ran_as_decided(applied.json(), since=mark)
    assert list(executed) == ["ca01"]
    assert timeless(executed["ca01"]) == timeless([op for ops in by_task(planned).values() for op in ops])
    assert [op["cmdlet"] for op in executed["ca01"] if op["op"] == "cmdlet"][:2] == [
        "Install-WindowsFeature",
        "Install-AdcsCertificationAuthority",
    ]


def test_issue7_defect2_over_ntlm_the_ad_reaching_ca_tasks_are_refused_before_anything_runs(make_lab, run_cli):
    lab = make_lab(transport="ntlm", clients=1)
    before = lab.snapshot()
    result = run_cli(*plan_args(lab))
    assert result.code == 2
    for task in ("ca.authority", "ca.templates_published", "ca.template_permissions"):
        assert f"ca01: {task} reaches Active Directory" in result.err
    assert "ca.web_enrollment reaches" not in result.err
    assert "credssp" in result.err
    assert lab.snapshot() == before


def test_issue7_defect5_add_ca_template_right_after_the_template_was_written_is_retried(lab, run_cli):
    """Issue 7 defect 5: a template written to AD moments ago is not visible to the CA yet;
    Add-CATemplate is retried with back-off until it is."""
    authority = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, "--tasks", "ca.authority")
    assert authority.code == 0, authority.out

    def fresh_template(machine):
        directory = machine.directory
        source = directory.get(adcs.template_dn("SmartcardLogon"))
        directory.create(
            adcs.TEMPLATES_CONTAINER,
            "Fresh Smartcard",
            adcs.TEMPLATE_CLASS,
            {
                **{k: v for k, v in source["attributes"].items() if k.lower() not in ("cn", "whencreated")},
                "whenCreated": [lab_adcs.generalized_time()],
            },
        )
        machine.store.put(lab_adcs.LAB_OPTION, lab_adcs.REPLICATION_DELAY_OPTION, 1.5)

    with_machine(lab, fresh_template, commit=True)
    inventory = lab.inventory.parent / "fresh.yml"
    inventory.write_text(
        lab.inventory.read_text().replace(
            "ca_common_name:", "ca_templates: [Fresh Smartcard]\n          ca_common_name:"
        )
    )
    result = run_cli(
        "apply", "-i", inventory, "--state-dir", lab.state_dir, "--tasks", "ca.templates_published", "--json"
    )
    assert result.code == 0, result.out
    assert "Fresh Smartcard" in lab.ca_of("ca01")["published"]
    done = next(r for r in result.json()["results"] if r["task"] == "ca.templates_published")
    assert done["operations"][0]["result"]["output"]["attempts"] >= 2


def test_issue7_defect6_web_enrollment_without_https_binding_is_refused(lab, run_cli):
    """Issue 7 defect 6: SSL is never required on /certsrv without an https binding (403.4)."""
    lab.put(iis.BINDINGS, "ca01", [{"site": "Default Web Site", "protocol": "http", "bindingInformation": "*:80:"}])
    before = lab.snapshot()
    preflight = run_cli(*apply_args(lab))
    assert preflight.code == 1 and "certsrv https" in preflight.out and lab.snapshot() == before
    # Past preflight, the task itself refuses; the others run.
    result = run_cli(*apply_args(lab, "--skip-preflight", "--json"))
    assert result.code == 1
    web = next(r for r in result.json()["results"] if r["task"] == "ca.web_enrollment")
    assert web["status"] == "failed" and "no https binding" in web["msg"]
    assert with_machine(lab, lambda m: iis.applications(m)) == []  # nothing was installed


def test_ca_certificate_is_real_and_self_signed(lab, run_cli):
    assert run_cli(*apply_args(lab)).code == 0
    ca = lab.ca_of("ca01")
    cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Lync2FA Lab Root CA"
    assert cert.public_key().key_size == 4096
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 365 * 10
    cert.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
    )  # raises if the self-signature is bad


def test_state_survives_lab_restart(lab, run_cli):
    assert run_cli(*apply_args(lab)).code == 0
    snapshot = lab.snapshot()
    lab.down()
    lab.up()
    assert lab.snapshot() == snapshot
    again = run_cli(*apply_args(lab, "--json"))
    assert again.code == 0 and again.json()["counts"]["changed"] == 0


def test_drift_is_planned_and_repaired(lab, run_cli):
    assert run_cli(*apply_args(lab)).code == 0

    def unpublish(machine):  # someone removes SmartcardLogon from the CA (certificateTemplates in AD)
        dn = adcs.enrollment_service_dn("Lync2FA Lab Root CA")
        issued = machine.directory.get(dn)["attributes"][adcs.ISSUED_TEMPLATES_ATTRIBUTE]
        machine.directory.set_attributes(
            dn, {adcs.ISSUED_TEMPLATES_ATTRIBUTE: [t for t in issued if t != "SmartcardLogon"]}
        )

    with_machine(lab, unpublish, commit=True)
    planned = run_cli(*plan_args(lab, "--json")).json()
    changed = [r for r in planned["results"] if r["changed"]]
    assert [r["task"] for r in changed] == ["ca.templates_published"]
    assert changed[0]["diff"] == [
        {
            "path": "published",
            "before": ["EnrollmentAgent", "SmartcardUser", "User", "WebServer"],
            "after": ["EnrollmentAgent", "SmartcardLogon", "SmartcardUser", "User", "WebServer"],
        }
    ]
    assert run_cli(*apply_args(lab)).code == 0
    assert "SmartcardLogon" in lab.ca_of("ca01")["published"]


def test_wrong_password_is_a_clear_failure(lab, run_cli, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(lab.inventory.read_text().replace("ansible_password: ", "ansible_password: x"))
    refused = run_cli(*apply_args(lab)[:2], bad, "--state-dir", lab.state_dir, "--tasks", "ca")
    assert refused.code == 1 and "apply refused: preflight failed (nothing was changed)" in refused.out
    result = run_cli(*apply_args(lab)[:2], bad, "--state-dir", lab.state_dir, "--tasks", "ca", "--skip-preflight")
    assert result.code == 1
    assert "ca01: open shell failed: authentication refused for user" in result.out
    assert lab.ca_of("ca01") is None
    # No shell, no step: each of the host's steps fails with the shell's error, none is done.
    assert _journal_statuses(lab) == {
        (task, "failed")
        for task in ("ca.authority", "ca.web_enrollment", "ca.templates_published", "ca.template_permissions")
    }


def test_unreachable_host_is_a_clear_failure(lab, run_cli):
    lab.down()
    assert "apply refused: preflight failed" in run_cli(*apply_args(lab)).out
    result = run_cli(*apply_args(lab, "--skip-preflight"))
    assert result.code == 1
    assert "ca01: open shell failed: host unreachable at http://127.0.0.1:" in result.out
    assert not any(status in ("ok", "changed") for _, status in _journal_statuses(lab))


def test_failing_script_changes_nothing_and_is_not_recorded_done(lab, run_cli):
    lab.fault("ca01", fail_tasks=["ca.templates_published"])
    result = run_cli(*apply_args(lab))
    assert result.code == 1
    assert "FAILED  ca.templates_published on ca01" in result.out
    assert "injected failure" in result.out
    assert lab.ca_of("ca01")["published"] == ["User", "WebServer"]  # the CA's defaults only
    statuses = dict(_journal_statuses(lab))
    assert statuses["ca.templates_published"] == "failed"
    assert statuses["ca.authority"] == "changed"
    # The steps applied in the same request as the failed one failed with it (the lab fails the
    # whole request); none of them is recorded done, and the retry does exactly those.
    failed = {task for task, status in statuses.items() if status == "failed"}
    lab.clear_faults()
    retry = run_cli(*apply_args(lab, "--json")).json()
    assert {r["task"] for r in retry["results"] if r["changed"]} == failed


def test_secrets_never_reach_output_or_journal(lab, run_cli):
    password = next(
        line.split(": ", 1)[1] for line in lab.inventory.read_text().splitlines() if "ansible_password" in line
    ).strip()
    bad = lab.inventory.parent / "leak.yml"
    # A password that also appears in a parameter must be masked wherever it shows up.
    bad.write_text(lab.inventory.read_text() + f"    ca_template_principal_note: {password}\n")
    result = run_cli(*apply_args(lab, "--json"))
    assert password not in result.out + result.err
    dump = "\n".join(sqlite3.connect(lab.state_dir / "journal.sqlite").iterdump())
    assert password not in dump


def test_usage_errors_exit_2(lab, run_cli, tmp_path):
    assert run_cli("plan", "-i", tmp_path / "missing.yml").code == 2
    assert run_cli("plan", "-i", lab.inventory, "--tasks", "nosuchtier").code == 2
    weak = tmp_path / "weak.yml"
    weak.write_text(
        lab.inventory.read_text().replace("ca_common_name:", "ca_key_length: 1024\n          ca_common_name:")
    )
    result = run_cli("plan", "-i", weak, "--state-dir", lab.state_dir)
    assert result.code == 2 and "key_length" in result.err


def test_sha1_is_refused_unless_allowed(lab, run_cli, tmp_path):
    sha1 = tmp_path / "sha1.yml"
    sha1.write_text(
        lab.inventory.read_text().replace("ca_common_name:", "ca_hash_algorithm: sha1\n          ca_common_name:")
    )
    refused = run_cli("apply", "-i", sha1, "--state-dir", lab.state_dir, "--tasks", "ca")
    assert refused.code == 2
    assert "[SHA1]" in refused.err and "--allow-insecure" in refused.err
    assert lab.ca_of("ca01") is None
    # Allowed: planned with a warning (the lab's OpenSSL 3 cannot sign with sha1, so plan only).
    allowed = run_cli("plan", "-i", sha1, "--state-dir", lab.state_dir, "--tasks", "ca", "--allow-insecure", "sha1")
    assert allowed.code == 0, allowed.out
    assert "warning: [SHA1]" in allowed.out and "allowed by --allow-insecure" in allowed.out
    assert "+ hash_algorithm: sha1" in allowed.out


def _journal_statuses(lab) -> set[tuple[str, str]]:
    db = sqlite3.connect(lab.state_dir / "journal.sqlite")
    # Each step's outcome ('started' is written before its operations are sent, then replaced by it).
    return set(db.execute("SELECT task, status FROM results WHERE status != 'started'").fetchall())


def test_lab_fault_and_journal_commands(lab, run_cli):
    set_fault = run_cli("lab", "fault", "--dir", lab.dir, "ca01", "fail_tasks=ca.authority", "latency_s=0.01")
    assert set_fault.code == 0
    assert set_fault.json()["ca01"]["fail_tasks"] == ["ca.authority"]
    assert run_cli(*apply_args(lab)).code == 1
    assert run_cli("lab", "fault", "--dir", lab.dir, "ca01", "no_such_fault=1").code == 2
    cleared = run_cli("lab", "fault", "--dir", lab.dir, "--clear")
    assert cleared.code == 0 and cleared.json() == {}
    assert run_cli(*apply_args(lab)).code == 0
    runs = run_cli("journal", "--state-dir", lab.state_dir, "--json").json()["runs"]
    assert [r["status"] for r in runs] == ["failed", "ok"]
    rows = run_cli("journal", "--state-dir", lab.state_dir, "--run", runs[1]["id"], "--json").json()["steps"]
    assert {r["task"] for r in rows if r["status"] == "changed"} == {
        "ca.authority",
        "ca.web_enrollment",
        "ca.templates_published",
        "ca.template_permissions",
    }


def test_restart_moves_an_endpoint_whose_port_was_taken_and_rewrites_the_inventory(lab, run_cli):
    import socket

    import yaml

    assert run_cli(*apply_args(lab)).code == 0
    old_port = yaml.safe_load(lab.inventory.read_text())["all"]["children"]["ca"]["hosts"]["ca01"]["ansible_port"]
    lab.down()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", old_port))
    squatter.listen()
    try:
        lab.up()
        new_port = yaml.safe_load(lab.inventory.read_text())["all"]["children"]["ca"]["hosts"]["ca01"]["ansible_port"]
        assert new_port != old_port
        again = run_cli(*apply_args(lab, "--json"))
        assert again.code == 0 and again.json()["counts"]["changed"] == 0  # same estate, new port
    finally:
        squatter.close()


def test_a_warning_the_host_writes_while_applying_is_reported_with_its_step(make_lab, run_cli):
    """Install-WindowsFeature warns when Windows Update is off: the warning travels as data with its
    operation's result (never as a stray stdout line) and is reported on the step that caused it."""
    lab = make_lab(clients=0)
    lab.set_machine_props("ca01", windows_update=True)  # web enrollment's feature install stays quiet
    applied = run_cli(*apply_args(lab, "--json"))
    assert applied.code == 0, applied.err
    warned = {r["task"]: r["warnings"] for r in applied.json()["results"]}
    assert not any("automatic updating" in w for ws in warned.values() for w in ws), warned
    fresh = make_lab(clients=0)  # Windows Update not turned on: the common case
    applied = run_cli(*apply_args(fresh, "--json"))
    assert applied.code == 0, applied.err
    warned = {r["task"]: r["warnings"] for r in applied.json()["results"]}
    assert any(
        w.startswith("Install-WindowsFeature") and "Windows automatic updating is not enabled" in w
        for w in warned["ca.authority"]
    ), warned["ca.authority"]
