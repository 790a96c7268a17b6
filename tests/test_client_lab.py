"""The client tier end to end through the CLI and WinRM: TPM virtual smart card, Lync client
policy values, the user's certificate on the card (real X.509 from the lab's AD CS), verify and
rollback, on a lab of three clients. State is read where Windows keeps it (the lab's model)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import sqlite3

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lab_operations import by_task, timeless

from lync2fa import adcs
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import certificates, scheduled_tasks, tpm
from lync2fa.lab.windows.adcs import UPN_OID, ca_of
from lync2fa.lab.windows.adcs_templates import builtin_template_object
from lync2fa.lab.windows.directory import Directory
from lync2fa.lab.windows.registry import Registry
from lync2fa.plugins.client.decide import VSC_KEY

TEMPLATE = "TPMVirtualSmartCardLogon"
POLICY = "HKLM:\\Software\\Policies\\Microsoft\\Office\\15.0\\Lync"
CLIENTS = ("cl0001", "cl0002", "cl0003")
GPO_POLICY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell"


def run(run_cli, lab, command, *extra, inventory=None):
    return run_cli(command, "-i", inventory or lab.inventory, "--state-dir", lab.state_dir, *extra)


def host_vars(lab, host):
    return lab.load_inventory().host(host)


def variant(lab, name, before="client_user:", **host_vars):
    """The lab inventory with more vars on every host that has a ``before`` var."""
    extra = "".join(f"{k}: {v}\n          " for k, v in host_vars.items())
    path = lab.inventory.parent / f"{name}.yml"
    path.write_text(lab.inventory.read_text().replace(before, extra + before))
    return path


class Windows:
    """The lab's store, opened for one look or change (as an administrator at the console would)."""

    def __init__(self, lab):
        self.lab = lab

    def __enter__(self):
        self.store = control.open_store(self.lab.dir)
        self.estate = Estate.load(self.lab.dir)
        self.tx = self.store.transaction()
        self.tx.__enter__()
        return self

    def __exit__(self, *exc):
        self.tx.__exit__(*exc)
        self.store.close()

    def registry(self, host):
        return Registry(self.store, host)

    @property
    def directory(self):
        return Directory(self.store, self.estate.domain)


def seed_template(lab, grant=True, validity_days=None):
    """The smart-card template as the templates tier makes it (a SmartcardLogon duplicate the
    Lync 2FA Users may enroll for), issued by the CA: this file does not depend on that tier."""
    with Windows(lab) as w:
        obj = builtin_template_object(w.store, w.estate, "SmartcardLogon")
        obj["dn"] = w.directory.resolve(adcs.template_dn(TEMPLATE))
        obj["attributes"]["cn"] = [TEMPLATE]
        if validity_days:
            obj["attributes"]["pKIExpirationPeriod"] = [adcs.period_bytes(validity_days)]
        if grant:
            group = w.store.get("ad_group", "Lync 2FA Users")
            obj["acl"]["aces"].append(
                {
                    "sid": group["sid"],
                    "account": "CORP\\Lync 2FA Users",
                    "rights": adcs.EXTENDED_RIGHT,
                    "object_type": adcs.ENROLL,
                    "allow": True,
                    "inherited": False,
                }
            )
        w.directory.put(obj)
        service = w.directory.get(adcs.enrollment_service_dn(ca_of(w.store, "ca01")["common_name"]))
        issued = service["attributes"][adcs.ISSUED_TEMPLATES_ATTRIBUTE]
        if TEMPLATE not in issued:
            issued.append(TEMPLATE)
        w.directory.put(service)


def with_ca(lab, run_cli):
    """The lab's CA installed through the CA tier (a 2048-bit CA key: quicker to generate)."""
    inventory = variant(lab, "ca2048", before="ca_common_name:", ca_key_length=2048)
    result = run(run_cli, lab, "apply", "--tasks", "ca.authority", inventory=inventory)
    assert result.code == 0, result.out + result.err
    return lab


@pytest.fixture
def lab3(make_lab, run_cli):
    """Three clients, the CA installed and the smart-card template issued."""
    lab = with_ca(make_lab(clients=3, transport="credssp"), run_cli)
    seed_template(lab)
    return lab


def card_of(lab, host):
    cards = (lab.get(tpm.CARDS, host) or {}).get("cards", {})
    assert len(cards) <= 1
    return next(iter(cards.items()), (None, None))


def policy(lab, host, path=POLICY):
    with Windows(lab) as w:
        return (w.registry(host).read(path) or {}).get("values", {})


def user_certificate(lab, host, user):
    sid = lab.get("ad_user", user)["sid"]
    with Windows(lab) as w:
        path = certificates.user_store_path(sid)
        entries = [
            certificates.read_blob(w.registry(host).value(f"{path}\\{t}", "Blob"))
            for t in w.registry(host).subkeys(path)
        ]
    return [(x509.load_der_x509_certificate(base64.b64decode(e["der"])), e) for e in entries]


def set_props(lab, host, **changes):
    lab.put("host_props", host, {**lab.get("host_props", host), **changes})


def der_string(value: bytes) -> str:
    assert value[1] < 0x80
    return value[2 : 2 + value[1]].decode()


def test_plan_then_apply_puts_a_real_smartcard_certificate_on_each_card(lab3, run_cli):
    before = lab3.snapshot()
    planned = run(run_cli, lab3, "plan", "--tasks", "client", "--json")
    assert planned.code == 0, planned.err
    assert lab3.snapshot() == before, "plan must not change the estate"
    results = {(r["task"], r["host"]): r for r in planned.json()["results"]}
    card = results[("client.virtual_smartcard", "cl0001")]
    assert {"path": "present", "before": False, "after": True} in card["diff"]
    assert {"path": "policies.15.0.SavePassword", "before": None, "after": 0} in results[
        ("client.lync_settings", "cl0002")
    ]["diff"]
    enrollment = results[("client.enrollment", "cl0003")]
    assert {"path": "status", "before": "missing", "after": "valid"} in enrollment["diff"]
    assert any("assuming client.virtual_smartcard creates it" in w for w in enrollment["warnings"])

    applied = run(run_cli, lab3, "apply", "--tasks", "client", "--json")
    assert applied.code == 0, applied.out + applied.err
    assert applied.json()["counts"] == {"ok": 0, "changed": 9, "failed": 0, "skipped": 0}
    ca_cert = x509.load_pem_x509_certificate(ca_of(control.open_store(lab3.dir), "ca01")["cert_pem"].encode())
    now = dt.datetime.now(dt.UTC)
    for number, host in enumerate(CLIENTS, start=1):
        user, pin = f"user{number:02d}", host_vars(lab3, host).var("client_pin")
        iid, card = card_of(lab3, host)
        assert iid == "ROOT\\SMARTCARDREADER\\0000" and card["name"] == "Lync2FA"
        assert card["admin_key"] == "random" and card["puk"] is None
        assert tpm.secret_matches(card["pin"], pin)
        assert not tpm.secret_matches(card["pin"], tpm.DEFAULT_PIN)
        assert {n: v for n, v in policy(lab3, host).items()} == {
            "DisableNTCredentials": {"type": "DWord", "value": 0},
            "SavePassword": {"type": "DWord", "value": 0},
        }

        [(cert, entry)] = user_certificate(lab3, host, user)
        ca_cert.public_key().verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )  # raises unless the CA signed it
        assert cert.issuer == ca_cert.subject
        assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        assert 364 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366
        ekus = {o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
        assert ekus == {adcs.EKU["client_auth"], adcs.EKU["smart_card_logon"]}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        [upn] = [n for n in san if isinstance(n, x509.OtherName) and n.type_id == UPN_OID]
        assert der_string(upn.value) == f"{user}@corp.lync2fa.test"
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[-1].value == user
        sid_ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2")).value
        assert lab3.get("ad_user", user)["sid"].encode() in sid_ext.value
        # The key is the card's (it never left the card: the result carries no key).
        card_key = serialization.load_pem_private_key(card["containers"][entry["container"]]["key_pem"].encode(), None)
        assert card_key.public_key().public_numbers() == cert.public_key().public_numbers()
        assert cert.public_key().key_size == 2048
        assert entry["provider"] == "Microsoft Base Smart Card Crypto Provider"
    assert "PRIVATE KEY" not in applied.out

    again = run(run_cli, lab3, "apply", "--tasks", "client", "--json")
    assert again.json()["counts"] == {"ok": 9, "changed": 0, "failed": 0, "skipped": 0}
    verified = run(run_cli, lab3, "verify", "--tasks", "client")
    # 3 clients x (virtual_smartcard, lync_settings, enrollment in check mode + client.verify)
    assert verified.code == 0 and "verify: 12 ok" in verified.out, verified.out


def test_the_lab_runs_exactly_the_operations_the_decisions_produced(lab3, run_cli):
    planned = run(run_cli, lab3, "plan", "--tasks", "client", "--limit", "cl0001", "--json")
    mark = lab3.mark()
    applied = run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001", "--json")
    assert applied.code == 0, applied.out
    executed = lab3.ran_as_decided(applied.json(), since=mark)
    assert list(executed) == ["cl0001"]
    decided = [op for ops in by_task(applied.json()).values() for op in ops]
    assert timeless([op for ops in by_task(planned.json()).values() for op in ops]) == timeless(decided)
    names = [op.get("name") for op in decided]
    assert "vsc_create" in names and "user_enroll" in names
    # secrets travelled as placeholders: the executed operations name them, never carry them
    pin = str(host_vars(lab3, "cl0001").var("client_pin"))
    assert pin not in (lab3.dir / "operations.jsonl").read_text()
    [placeholder] = [op["args"]["pin"] for op in executed["cl0001"] if op.get("name") == "vsc_create"]
    assert placeholder == {"secret": "client.virtual_smartcard/pin"}


def test_pins_never_reach_output_journal_reports_or_the_estate(lab3, run_cli, tmp_path):
    pins = [host_vars(lab3, h).var("client_pin") for h in CLIENTS]
    assert all(len(p) >= 8 for p in pins) and len(set(pins)) == 3
    outputs = [
        run(run_cli, lab3, "plan", "--tasks", "client"),
        run(run_cli, lab3, "apply", "--tasks", "client", "--json", "--report-dir", tmp_path / "reports"),
        run(run_cli, lab3, "verify", "--tasks", "client", "--json"),
        run(run_cli, lab3, "rollback", "--tier", "client"),
    ]
    assert [o.code for o in outputs] == [0, 0, 0, 0], [o.out[-2000:] for o in outputs]
    text = "\n".join(o.out + o.err for o in outputs)
    text += "".join(p.read_text() for p in (tmp_path / "reports").iterdir())
    text += "\n".join(sqlite3.connect(lab3.state_dir / "journal.sqlite").iterdump())
    text += (lab3.dir / "lab.log").read_text() + str(lab3.snapshot())
    for pin in pins:
        assert pin not in text


def test_default_pin_and_admin_key_are_refused_unless_allowed(lab3, run_cli, tmp_path):
    no_pin = tmp_path / "no_pin.yml"
    no_pin.write_text("\n".join(line for line in lab3.inventory.read_text().splitlines() if "client_pin" not in line))
    refused = run(run_cli, lab3, "apply", "--tasks", "client", inventory=no_pin)
    assert refused.code == 2
    assert "[DEFAULT_PIN] client.virtual_smartcard on cl0001" in refused.err and "--allow-insecure" in refused.err
    assert card_of(lab3, "cl0001") == (None, None)

    admin_key = variant(lab3, "admin_key", client_admin_key="default")
    refused = run(run_cli, lab3, "plan", "--tasks", "client", inventory=admin_key)
    assert refused.code == 2 and "[DEFAULT_ADMIN_KEY]" in refused.err

    short = variant(lab3, "short", client_puk="'1234'")
    refused = run(run_cli, lab3, "plan", "--tasks", "client", inventory=short)
    assert refused.code == 2 and "puk must be 8 to 127 printable ASCII characters" in refused.err
    assert "'1234'" not in refused.err

    allowed = run(
        run_cli,
        lab3,
        "apply",
        "--tasks",
        "client",
        "--limit",
        "cl0001",
        "--allow-insecure",
        "DEFAULT_PIN",
        inventory=no_pin,
    )
    assert allowed.code == 0, allowed.out
    assert "warning: [DEFAULT_PIN]" in allowed.out and "allowed by --allow-insecure" in allowed.out
    assert "The card keeps the documented default PIN 12345678" in allowed.out
    assert tpm.secret_matches(card_of(lab3, "cl0001")[1]["pin"], "12345678")

    shared = tmp_path / "shared.yml"
    # quoted: the lab's random PIN may be dumped unquoted (e.g. 09876543), and a bare 24681357 is an int
    text, count = re.subn(r"(client_pin: )'?[0-9]+'?", r"\1'24681357'", lab3.inventory.read_text())
    assert count == len(CLIENTS)
    shared.write_text(text)
    planned = run(run_cli, lab3, "plan", "--tasks", "client", inventory=shared)
    assert planned.code == 0 and "warning: [SHARED_PIN] 3 clients (cl0001, cl0002, cl0003)" in planned.out


def test_one_broken_client_does_not_stop_the_others(lab3, run_cli):
    set_props(lab3, "cl0002", tpm={"present": True, "ready": True, "enabled": True, "spec_version": "1.1, 0, 1"})
    lab3.fault("cl0003", ca_offline=True)
    result = run(run_cli, lab3, "apply", "--tasks", "client")
    assert result.code == 1
    assert (
        "FAILED  client.virtual_smartcard on cl0002: The TPM specification version is 1.1; virtual smart "
        "cards need 1.2 or later."
    ) in result.out
    assert (
        "skipped client.enrollment on cl0002: skipped: client.virtual_smartcard on cl0002 did not succeed" in result.out
    )
    assert "FAILED  client.enrollment on cl0003" in result.out and "The RPC server is unavailable" in result.out
    assert "changed client.enrollment on cl0001" in result.out
    assert len(user_certificate(lab3, "cl0001", "user01")) == 1
    assert card_of(lab3, "cl0002") == (None, None) and card_of(lab3, "cl0003")[0] is not None
    assert policy(lab3, "cl0002")["SavePassword"]["value"] == 0  # lync_settings does not need the TPM

    set_props(lab3, "cl0002", tpm={"present": False, "ready": False})
    lab3.clear_faults()
    refused = run(run_cli, lab3, "apply", "--tasks", "client")
    assert refused.code == 1 and "preflight failed" in refused.out  # no TPM on cl0002: nothing runs
    again = run(run_cli, lab3, "apply", "--tasks", "client", "--skip-preflight")
    assert "FAILED  client.virtual_smartcard on cl0002: No compatible Trusted Platform Module (TPM)" in again.out
    assert "changed client.enrollment on cl0003" in again.out


def test_enrollment_fails_the_way_the_ca_and_the_card_would(make_lab, run_cli, tmp_path):
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    first = run(run_cli, lab, "apply", "--tasks", "client")
    assert "FAILED  client.enrollment on cl0001" in first.out
    assert "The requested certificate template is not supported by this CA" in first.out
    assert card_of(lab, "cl0001")[0] is not None

    seed_template(lab, grant=False)
    denied = run(run_cli, lab, "apply", "--tasks", "client")
    assert "Denied by Policy Module 0x80094012" in denied.out

    seed_template(lab)
    lab.put(scheduled_tasks.SESSIONS, "cl0001", {"users": []})
    signed_out = run(run_cli, lab, "apply", "--tasks", "client")
    assert "FAILED  client.enrollment on cl0001: user01 is not signed in on CL0001" in signed_out.out

    lab.put(scheduled_tasks.SESSIONS, "cl0001", {"users": ["user01"]})
    wrong = tmp_path / "wrong.yml"
    pin = str(host_vars(lab, "cl0001").var("client_pin"))
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["children"]["clients"]["hosts"]["cl0001"]["client_pin"] = (
        "87654321" if pin != "87654321" else "13572468"
    )
    wrong.write_text(yaml.safe_dump(inventory))
    containers = len(card_of(lab, "cl0001")[1]["containers"])
    bad_pin = run(run_cli, lab, "apply", "--tasks", "client", inventory=wrong)
    # issue 7 defect 10: the wrong PIN is recognised by the base exception's HResult
    assert "the wrong PIN was presented. 0x8010006b (-2146434965 SCARD_W_WRONG_CHV)" in bad_pin.out
    assert "client_pin does not match the PIN set on the card" in bad_pin.out
    assert user_certificate(lab, "cl0001", "user01") == []
    assert len(card_of(lab, "cl0001")[1]["containers"]) == containers  # the wrong PIN made no key
    assert "ca_issued" not in lab.snapshot()

    good = run(run_cli, lab, "apply", "--tasks", "client")
    assert good.code == 0 and "changed client.enrollment on cl0001" in good.out


def test_drift_and_the_renewal_window_are_repaired(lab3, run_cli):
    assert run(run_cli, lab3, "apply", "--tasks", "client").code == 0
    with Windows(lab3) as w:
        w.registry("cl0001").set(POLICY, "DisableNTCredentials", "0", "String")
        w.registry("cl0001").set(POLICY, "SavePassword", 1, "DWord")
    verified = run(run_cli, lab3, "verify", "--tasks", "client", "--limit", "cl0001")
    assert verified.code == 1
    assert "DisableNTCredentials is String:0, expected 0" in verified.out
    assert "SavePassword is 1, expected 0" in verified.out
    planned = run(run_cli, lab3, "plan", "--tasks", "client", "--json").json()
    [changed] = [r for r in planned["results"] if r["changed"]]
    assert changed["task"] == "client.lync_settings" and changed["host"] == "cl0001"
    assert {"path": "policies.15.0.SavePassword", "before": 1, "after": 0} in changed["diff"]

    seed_template(lab3, validity_days=730)
    renew = variant(lab3, "renew", client_renew_days=400)
    [(old, _)] = user_certificate(lab3, "cl0002", "user02")
    applied = run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001,cl0002", inventory=renew)
    assert applied.code == 0, applied.out
    assert "~ status: renewal_due -> valid" in applied.out
    renewed = {c.serial_number for c, _ in user_certificate(lab3, "cl0002", "user02")}
    assert old.serial_number in renewed and len(renewed) == 2
    assert policy(lab3, "cl0001")["DisableNTCredentials"] == {"type": "DWord", "value": 0}
    assert run(run_cli, lab3, "verify", "--tasks", "client").code == 0


def test_rollback_removes_what_lync2fa_made_and_restores_what_was_there(lab3, run_cli):
    with Windows(lab3) as w:
        w.registry("cl0001").set(POLICY, "SavePassword", 1, "DWord")
    foreign = {
        "name": "Corporate VSC",
        "pin": tpm.hash_secret("99999999"),
        "admin_key": "random",
        "puk": None,
        "containers": {},
    }
    lab3.put(tpm.CARDS, "cl0001", {"cards": {"ROOT\\SMARTCARDREADER\\0000": foreign}})
    sip = variant(lab3, "sip", client_clear_sip_profiles="true")

    applied = run(run_cli, lab3, "apply", "--tasks", "client", inventory=sip)
    assert applied.code == 0, applied.out
    assert (
        "Other virtual smart cards on this device are left alone: ROOT\\SMARTCARDREADER\\0000 (Corporate VSC)"
        in applied.out
    )
    assert '~ sip_profiles: ["15.0\\\\sip_user01@corp.lync2fa.test"] -> []' in applied.out
    assert lab3.get(scheduled_tasks.PROFILES, "cl0001/user01") is None
    assert set((lab3.get(tpm.CARDS, "cl0001") or {})["cards"]) == {
        "ROOT\\SMARTCARDREADER\\0000",
        "ROOT\\SMARTCARDREADER\\0001",
    }

    rolled = run(run_cli, lab3, "rollback", "--tier", "client", "--json")
    assert rolled.code == 0, rolled.out
    assert {r["host"]: r["before"]["virtual_smartcards"] for r in rolled.json()["results"]} == {
        h: ["Lync2FA"] for h in CLIENTS
    }
    assert policy(lab3, "cl0001") == {"SavePassword": {"type": "DWord", "value": 1}}
    assert policy(lab3, "cl0002") == {}
    assert lab3.get(tpm.CARDS, "cl0001") == {"cards": {"ROOT\\SMARTCARDREADER\\0000": foreign}}
    assert lab3.get(tpm.CARDS, "cl0002") is None
    for number, host in enumerate(CLIENTS, start=1):
        assert user_certificate(lab3, host, f"user{number:02d}") == []
    with Windows(lab3) as w:
        for host in CLIENTS:
            for key in ("HKLM:\\SOFTWARE\\lync2fa\\Created", VSC_KEY, "HKLM:\\SOFTWARE\\lync2fa\\Enrolled"):
                assert not (w.registry(host).read(key) or {}).get("values"), (host, key)
    assert run(run_cli, lab3, "rollback", "--tier", "client", "--json").json()["counts"]["changed"] == 0
    failed = run(run_cli, lab3, "verify", "--tasks", "client", "--limit", "cl0002")
    assert failed.code == 1 and "virtual smart card 'Lync2FA' not found" in failed.out


def _enterprise_roots(lab, host):
    with Windows(lab) as w:
        return certificates.certificates_in(_machine(w, host), certificates.store_path("Root"))


def _machine(w, host):
    from lync2fa.lab.windows.machine import Machine

    return Machine(w.store, w.estate, w.estate.host(host))


def test_verify_trusts_the_ca_certificate_not_the_ca_name(make_lab, run_cli):
    """chains_to_ca: a CA certificate in the PC's enterprise stores signed the user's, not merely a
    CA of that name; a CA the PC does not know is named in a warning."""
    from lync2fa.lab.windows.adcs import make_ca_certificate

    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    assert run(run_cli, lab, "apply", "--tasks", "client").code == 0
    assert run(run_cli, lab, "verify", "--tasks", "client.verify").code == 0
    name = ca_of(control.open_store(lab.dir), "ca01")["common_name"]
    impostor = x509.load_pem_x509_certificate(make_ca_certificate(name, 2048, "sha256", 5)[0].encode())
    with Windows(lab) as w:
        machine = _machine(w, "cl0001")
        for store in ("Root", "NTAuth"):
            w.registry("cl0001").remove_key(certificates.store_path(store))
            certificates.add(machine, certificates.store_path(store), impostor)
    same_name = run(run_cli, lab, "verify", "--tasks", "client.verify")
    assert same_name.code == 1 and "does not chain to the CA" in same_name.out, same_name.out

    elsewhere = variant(lab, "elsewhere", client_ca_config="'nowhere.corp.lync2fa.test\\Other CA'")
    unknown = run(run_cli, lab, "verify", "--tasks", "client.verify", "--json", inventory=elsewhere)
    [result] = unknown.json()["results"]
    assert result["after"]["certificate"]["chains_to_ca"] is False
    assert any(
        w.startswith(
            "The certificate of the CA nowhere.corp.lync2fa.test\\Other CA is not among this "
            "computer's enterprise CA certificates"
        )
        for w in result["warnings"]
    ), result["warnings"]


# -- issue 7 -------------------------------------------------------------------------------------
def test_issue7_defect3_verify_reads_the_ca_from_the_pcs_enterprise_stores(make_lab, run_cli):
    """No DCOM to the CA from the WinRM session (a second hop): the CA certificate comes from
    NTAuth/Root under HKLM EnterpriseCertificates, so verify passes over NTLM and with the CA down."""
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    assert run(run_cli, lab, "apply", "--tasks", "client").code == 0
    assert _enterprise_roots(lab, "cl0001"), "enrollment pulled the enterprise root"
    ntlm = lab.inventory.parent / "ntlm.yml"
    ntlm.write_text(
        lab.inventory.read_text().replace("ansible_winrm_transport: credssp", "ansible_winrm_transport: ntlm")
    )
    lab.fault("cl0001", ca_offline=True)
    lab.fault("ca01", ca_offline=True)
    verified = run(run_cli, lab, "verify", "--tasks", "client.verify", "--json", inventory=ntlm)
    assert verified.code == 0, verified.out
    [result] = verified.json()["results"]
    assert result["after"]["certificate"]["chains_to_ca"] is True


def test_issue7_defect4_an_untrusted_root_fails_before_any_key_is_made(make_lab, run_cli):
    """First enrollment after a new root CA: the root arrives with Group Policy (certutil -pulse);
    where it does not, enrollment fails early and the card gets no orphaned key."""
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    set_props(lab, "cl0001", autoenrollment=False)
    failed = run(run_cli, lab, "apply", "--tasks", "client")
    assert failed.code == 1
    assert "does not chain to a root trusted on this computer" in failed.out
    assert "no key was generated on the card" in failed.out
    assert card_of(lab, "cl0001")[1]["containers"] == {}
    assert _enterprise_roots(lab, "cl0001") == {}
    set_props(lab, "cl0001", autoenrollment=True)
    assert run(run_cli, lab, "apply", "--tasks", "client").code == 0
    assert len(card_of(lab, "cl0001")[1]["containers"]) == 1


def test_issue7_defect4_lab_install_response_refuses_an_untrusted_root_and_orphans_the_key(make_lab, run_cli):
    """The lab models Windows: InstallResponse with an untrusted root fails and leaves the key
    container on the card; a card holds at most 30 keys."""
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    assert run(run_cli, lab, "apply", "--tasks", "client.virtual_smartcard").code == 0
    pin = str(host_vars(lab, "cl0001").var("client_pin"))
    store = control.open_store(lab.dir)
    try:
        estate = Estate.load(lab.dir)
        from lync2fa.lab.windows.errors import WindowsError
        from lync2fa.lab.windows.machine import Machine

        machine = Machine(store, estate, estate.host("cl0001"))
        record = store.get("ad_user", "user01")
        with pytest.raises(WindowsError) as untrusted:
            scheduled_tasks.enroll_on_card(
                machine,
                "user01",
                record,
                host_vars(lab, "cl0001").var("client_ca_config")
                or f"ca01.{estate.domain}\\{ca_of(store, 'ca01')['common_name']}",
                TEMPLATE,
                "Microsoft Base Smart Card Crypto Provider",
                pin,
                "Lync2FA",
                check_trust=False,
            )
        assert (
            untrusted.value.hresult == certificates.UNTRUSTED_ROOT and "CERT_E_UNTRUSTEDROOT" in untrusted.value.message
        )
        iid, card = next(iter(tpm.cards(machine).items()))
        assert len(card["containers"]) == 1  # orphaned: the key stays on the card
        for _ in range(tpm.MAX_CONTAINERS - 1):
            tpm.new_key_container(machine, iid, pin)
        with pytest.raises(WindowsError) as full:
            tpm.new_key_container(machine, iid, pin)
        assert full.value.hresult == tpm.CARD_FULL
    finally:
        store.close()


def test_issue7_defect7_the_task_runner_is_not_blocked_by_a_gpo_execution_policy(lab3, run_cli):
    """AllSigned by Group Policy overrides -ExecutionPolicy Bypass for -File scripts: the old runner's
    task never wrote its output. The runner passes -EncodedCommand with a hidden window, and when a
    -File runner is blocked the error names the policy: the decision read it from the registry and
    gave the job its note (the library knows no policy of its own)."""
    from pathlib import Path

    import lync2fa

    text = (Path(lync2fa.__file__).parent / "ps" / "Lync2fa.UserTask.ps1").read_text()
    assert f"-Argument ('{scheduled_tasks.RUNNER_ARGUMENTS} ' + $encoded)" in text
    assert "-File" not in text.split("function Invoke-Lync2faScheduledJob")[1].split("\nfunction ")[0]
    for host in CLIENTS:
        with Windows(lab3) as w:
            w.registry(host).set(GPO_POLICY, "EnableScripts", 1, "DWord")
            w.registry(host).set(GPO_POLICY, "ExecutionPolicy", "AllSigned", "String")
    applied = run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001")
    assert applied.code == 0, applied.out
    note = " The execution policy set by Group Policy is AllSigned (MachinePolicy)."
    executed = lab3.operations()
    jobs = {o["name"]: o["args"]["policy_note"] for o in executed if o["op"] == "named" and "policy_note" in o["args"]}
    assert jobs == {"vsc_create": note, "user_enroll": note}
    with Windows(lab3) as w:
        machine = _machine(w, "cl0002")
        from lync2fa.lab.windows.errors import WindowsError

        with pytest.raises(WindowsError) as blocked:
            scheduled_tasks.run_job(
                machine,
                "SYSTEM",
                lambda: {"ok": True},
                300,
                arguments="-NoProfile -ExecutionPolicy Bypass -File C:\\run.ps1",
                policy_note=jobs["vsc_create"],
            )
        assert "wrote no result" in blocked.value.message
        assert blocked.value.message.endswith(note)


def test_issue7_defect9_rollback_destroys_the_card_the_way_creation_made_it(lab3, run_cli):
    assert run(run_cli, lab3, "apply", "--tasks", "client.virtual_smartcard", "--limit", "cl0001").code == 0
    rolled = run(run_cli, lab3, "rollback", "--tier", "client", "--limit", "cl0001", "--json")
    assert rolled.code == 0, rolled.out
    executed = lab3.operations()
    named_ops = [o["name"] for o in executed if o["op"] == "named"]
    assert named_ops == ["vsc_create", "vsc_destroy"]  # both SYSTEM jobs of Lync2fa.SmartCard.ps1
    assert not [o for o in executed if o["op"] == "native"]  # never tpmvscmgr from the WinRM session


def test_issue12_item11_card_rename(lab3, run_cli):
    """Renaming client_card_name is refused while lync2fa's card exists (naming it): one card per
    device; and verify checks the configured card, not any card with a certificate."""
    assert run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001").code == 0
    renamed = variant(lab3, "renamed", client_card_name="Lync2FA-new")
    refused = run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001", inventory=renamed)
    assert refused.code == 1
    assert "The virtual smart card 'Lync2FA' (ROOT\\SMARTCARDREADER\\0000) that lync2fa created" in refused.out
    assert "run client.rollback first" in refused.out
    assert len((lab3.get(tpm.CARDS, "cl0001") or {})["cards"]) == 1
    verified = run(run_cli, lab3, "verify", "--tasks", "client.verify", "--limit", "cl0001", inventory=renamed)
    assert verified.code == 1
    assert "virtual smart card 'Lync2FA-new' not found" in verified.out
    assert "certificate of user01 is not on the smart card 'Lync2FA-new'" in " ".join(verified.out.split())


def test_issue7_defect10_the_wrong_pin_is_recognised_by_the_base_exceptions_hresult():
    """COM errors arrive wrapped (MethodInvocationException): the user job reports the base
    exception's HResult, and the decision's hint for SCARD_W_WRONG_CHV is matched on it."""
    from pathlib import Path

    import lync2fa
    from lync2fa.plugins.client import decide
    from lync2fa.pscheck import check_text

    path = Path(lync2fa.__file__).parent / "ps" / "Lync2fa.UserTask.ps1"
    text = path.read_text()
    assert "$base = $_.Exception.GetBaseException()" in text and "hresult = [int]$base.HResult" in text
    assert "$_.Exception.HResult" not in text
    assert [f for f in check_text(text, path.name) if f.rule == "PS007"] == []
    assert decide.WRONG_PIN_HRESULT == tpm.WRONG_PIN == -2146434965  # 0x8010006B SCARD_W_WRONG_CHV
