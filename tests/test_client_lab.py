"""The client tier end to end through the CLI and WinRM: TPM virtual smart card, Lync client
policy values, the user's certificate on the card (real X.509 from the CA twin), verify and
rollback, on a lab of three clients."""
from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from lync2fa.plugins.ca.builtin_templates import EKU, builtin_templates
from lync2fa.plugins.client import client_state, issue

TEMPLATE = "TPMVirtualSmartCardLogon"
POLICY = "HKLM\\Software\\Policies\\Microsoft\\Office\\15.0\\Lync"
CLIENTS = ("cl0001", "cl0002", "cl0003")


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


def seed_template(lab, grant=True, **overrides):
    """The smart-card template as the templates tier makes it (a SmartcardLogon duplicate the
    Lync 2FA Users may enroll for), issued by the CA: this file does not depend on that tier."""
    template = {**builtin_templates()["SmartcardLogon"], "name": TEMPLATE, "created_by": "test", **overrides}
    if grant:
        template["acl"] = template["acl"] + [{"principal": "Lync 2FA Users", "rights": ["Enroll", "Read"]}]
    lab.put("template", TEMPLATE, template)
    ca = lab.get("ca", "ca01")
    ca["published"] = sorted(set(ca["published"]) | {TEMPLATE})
    lab.put("ca", "ca01", ca)


def with_ca(lab, run_cli):
    """The lab's CA installed through the CA tier (a 2048-bit CA key: quicker to generate)."""
    inventory = variant(lab, "ca2048", before="ca_common_name:", ca_key_length=2048)
    assert run(run_cli, lab, "apply", "--tasks", "ca", inventory=inventory).code == 0
    return lab


@pytest.fixture
def lab3(make_lab, run_cli):
    """Three clients, the CA installed and the smart-card template issued."""
    lab = with_ca(make_lab(clients=3), run_cli)
    seed_template(lab)
    return lab


def card_of(lab, host):
    cards = (lab.get(client_state.CARDS, host) or {}).get("cards", {})
    assert len(cards) <= 1
    return next(iter(cards.items()), (None, None))


def policy(lab, host, path=POLICY):
    return lab.get(client_state.REGISTRY, f"{host}|{path}") or {}


def user_certificate(lab, host, user):
    sid = lab.get("ad_user", user)["sid"]
    store = lab.get(client_state.USER_STORE, f"{host}/{sid}") or {"My": {}}
    return [(x509.load_pem_x509_certificate(e["cert_pem"].encode()), e) for e in store["My"].values()]


def der_string(value: bytes) -> str:
    assert value[1] < 0x80
    return value[2:2 + value[1]].decode()


def test_plan_then_apply_puts_a_real_smartcard_certificate_on_each_card(lab3, run_cli):
    before = lab3.snapshot()
    planned = run(run_cli, lab3, "plan", "--tasks", "client", "--json")
    assert planned.code == 0, planned.err
    assert lab3.snapshot() == before, "plan must not change the estate"
    results = {(r["task"], r["host"]): r for r in planned.json()["results"]}
    card = results[("client.virtual_smartcard", "cl0001")]
    assert {"path": "present", "before": False, "after": True} in card["diff"]
    assert {"path": "policies.15.0.SavePassword", "before": None, "after": 0} in \
        results[("client.lync_settings", "cl0002")]["diff"]
    enrollment = results[("client.enrollment", "cl0003")]
    assert {"path": "status", "before": "missing", "after": "valid"} in enrollment["diff"]
    assert any("assuming client.virtual_smartcard creates it" in w for w in enrollment["warnings"])

    applied = run(run_cli, lab3, "apply", "--tasks", "client", "--json")
    assert applied.code == 0, applied.out + applied.err
    assert applied.json()["counts"] == {"ok": 0, "changed": 9, "failed": 0, "skipped": 0}
    ca_cert = x509.load_pem_x509_certificate(lab3.get("ca", "ca01")["cert_pem"].encode())
    now = dt.datetime.now(dt.timezone.utc)
    for number, host in enumerate(CLIENTS, start=1):
        user, pin = f"user{number:02d}", host_vars(lab3, host).var("client_pin")
        iid, card = card_of(lab3, host)
        assert iid == "ROOT\\SMARTCARDREADER\\0000" and card["friendly_name"] == "Lync2FA"
        assert card["admin_key"] == "random" and card["puk"] is None
        assert client_state.secret_matches(card["pin"], pin)
        assert not client_state.secret_matches(card["pin"], client_state.DEFAULT_PIN)
        assert {n: v for n, v in policy(lab3, host).items()} == {
            "DisableNTCredentials": {"type": "DWord", "value": 0}, "SavePassword": {"type": "DWord", "value": 0}}

        [(cert, entry)] = user_certificate(lab3, host, user)
        ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                    cert.signature_hash_algorithm)     # raises unless the CA signed it
        assert cert.issuer == ca_cert.subject
        assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        assert 364 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366
        ekus = {o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
        assert ekus == {EKU["client_auth"], EKU["smart_card_logon"]}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        [upn] = [n for n in san if isinstance(n, x509.OtherName) and n.type_id == issue.UPN_OID]
        assert der_string(upn.value) == f"{user}@corp.lync2fa.test"
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[-1].value == user
        sid_ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2")).value
        assert lab3.get("ad_user", user)["sid"].encode() in sid_ext.value
        # The key is the card's (it never left the card: the result carries no key).
        card_key = serialization.load_pem_private_key(card["containers"][entry["container"]]["key_pem"].encode(), None)
        assert card_key.public_key().public_numbers() == cert.public_key().public_numbers()
        assert cert.public_key().key_size == 2048
        assert entry["reader"] == iid and entry["provider"] == "Microsoft Base Smart Card Crypto Provider"
    assert "PRIVATE KEY" not in applied.out

    again = run(run_cli, lab3, "apply", "--tasks", "client", "--json")
    assert again.json()["counts"] == {"ok": 9, "changed": 0, "failed": 0, "skipped": 0}
    verified = run(run_cli, lab3, "verify", "--tasks", "client")
    # 3 clients x (virtual_smartcard, lync_settings, enrollment in check mode + client.verify)
    assert verified.code == 0 and "verify: 12 ok" in verified.out, verified.out


def test_pins_never_reach_output_journal_reports_or_the_estate(lab3, run_cli, tmp_path):
    pins = [host_vars(lab3, h).var("client_pin") for h in CLIENTS]
    assert all(len(p) >= 8 for p in pins) and len(set(pins)) == 3
    outputs = [run(run_cli, lab3, "plan", "--tasks", "client"),
               run(run_cli, lab3, "apply", "--tasks", "client", "--json", "--report-dir", tmp_path / "reports"),
               run(run_cli, lab3, "verify", "--tasks", "client", "--json"),
               run(run_cli, lab3, "rollback", "--tier", "client")]
    assert [o.code for o in outputs] == [0, 0, 0, 0]
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

    allowed = run(run_cli, lab3, "apply", "--tasks", "client", "--limit", "cl0001", "--allow-insecure", "DEFAULT_PIN",
                  inventory=no_pin)
    assert allowed.code == 0, allowed.out
    assert "warning: [DEFAULT_PIN]" in allowed.out and "allowed by --allow-insecure" in allowed.out
    assert "The card keeps the documented default PIN 12345678" in allowed.out
    assert client_state.secret_matches(card_of(lab3, "cl0001")[1]["pin"], "12345678")

    shared = tmp_path / "shared.yml"
    # quoted: the lab's random PIN may be dumped unquoted (e.g. 09876543), and a bare 24681357 is an int
    text, count = re.subn(r"(client_pin: )'?[0-9]+'?", r"\1'24681357'", lab3.inventory.read_text())
    assert count == len(CLIENTS)
    shared.write_text(text)
    planned = run(run_cli, lab3, "plan", "--tasks", "client", inventory=shared)
    assert planned.code == 0 and "warning: [SHARED_PIN] 3 clients (cl0001, cl0002, cl0003)" in planned.out


def test_one_broken_client_does_not_stop_the_others(lab3, run_cli):
    lab3.put(client_state.TPM, "cl0002", {"present": True, "enabled": True, "spec_version": "1.1"})
    lab3.fault("cl0003", ca_offline=True)
    result = run(run_cli, lab3, "apply", "--tasks", "client")
    assert result.code == 1
    assert ("FAILED  client.virtual_smartcard on cl0002: The TPM specification version is 1.1; virtual smart "
            "cards need 1.2 or later.") in result.out
    assert ("skipped client.enrollment on cl0002: skipped: client.virtual_smartcard on cl0002 did not succeed"
            in result.out)
    assert "FAILED  client.virtual_smartcard on cl0003: The RPC server is unavailable" in result.out
    assert "changed client.enrollment on cl0001" in result.out
    assert len(user_certificate(lab3, "cl0001", "user01")) == 1
    assert card_of(lab3, "cl0002") == (None, None) and card_of(lab3, "cl0003") == (None, None)
    assert policy(lab3, "cl0002")["SavePassword"]["value"] == 0     # lync_settings does not need the TPM

    lab3.put(client_state.TPM, "cl0002", {"present": False, "enabled": False, "spec_version": None})
    lab3.clear_faults()
    again = run(run_cli, lab3, "apply", "--tasks", "client")
    assert "FAILED  client.virtual_smartcard on cl0002: No compatible Trusted Platform Module (TPM)" in again.out
    assert "changed client.enrollment on cl0003" in again.out


def test_enrollment_fails_the_way_the_ca_and_the_card_would(make_lab, run_cli, tmp_path):
    lab = with_ca(make_lab(clients=1), run_cli)
    first = run(run_cli, lab, "apply", "--tasks", "client")
    assert "FAILED  client.enrollment on cl0001: The requested certificate template is not supported by this CA" \
        in first.out
    assert card_of(lab, "cl0001")[0] is not None

    seed_template(lab, grant=False)
    denied = run(run_cli, lab, "apply", "--tasks", "client")
    assert "Denied by Policy Module 0x80094012" in denied.out

    seed_template(lab)
    lab.put(client_state.SESSIONS, "cl0001", {"users": []})
    signed_out = run(run_cli, lab, "apply", "--tasks", "client")
    assert "FAILED  client.enrollment on cl0001: user01 is not signed in on CL0001" in signed_out.out

    lab.put(client_state.SESSIONS, "cl0001", {"users": ["user01"]})
    wrong = tmp_path / "wrong.yml"
    pin = str(host_vars(lab, "cl0001").var("client_pin"))
    wrong.write_text(lab.inventory.read_text().replace(pin, "87654321" if pin != "87654321" else "13572468"))
    bad_pin = run(run_cli, lab, "apply", "--tasks", "client", inventory=wrong)
    assert "the wrong PIN was presented. 0x8010006b (-2146434965 SCARD_W_WRONG_CHV)" in bad_pin.out
    assert "client_pin does not match the PIN set on the card" in bad_pin.out
    assert user_certificate(lab, "cl0001", "user01") == []
    assert "ca_issued" not in lab.snapshot()

    good = run(run_cli, lab, "apply", "--tasks", "client")
    assert good.code == 0 and "changed client.enrollment on cl0001" in good.out


def test_drift_and_the_renewal_window_are_repaired(lab3, run_cli):
    assert run(run_cli, lab3, "apply", "--tasks", "client").code == 0
    lab3.put(client_state.REGISTRY, f"cl0001|{POLICY}", {"DisableNTCredentials": {"type": "String", "value": "0"},
                                                        "SavePassword": {"type": "DWord", "value": 1}})
    verified = run(run_cli, lab3, "verify", "--tasks", "client", "--limit", "cl0001")
    assert verified.code == 1
    assert "DisableNTCredentials is String:0, expected 0" in verified.out
    assert "SavePassword is 1, expected 0" in verified.out
    planned = run(run_cli, lab3, "plan", "--tasks", "client", "--json").json()
    [changed] = [r for r in planned["results"] if r["changed"]]
    assert changed["task"] == "client.lync_settings" and changed["host"] == "cl0001"
    assert {"path": "policies.15.0.SavePassword", "before": 1, "after": 0} in changed["diff"]

    lab3.put("template", TEMPLATE, {**lab3.get("template", TEMPLATE), "validity_days": 730})
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
    lab3.put(client_state.REGISTRY, f"cl0001|{POLICY}", {"SavePassword": {"type": "DWord", "value": 1}})
    foreign = {"friendly_name": "Corporate VSC", "pin": client_state.hash_secret("99999999"), "admin_key": "random",
               "puk": None, "containers": {}}
    lab3.put(client_state.CARDS, "cl0001", {"cards": {"ROOT\\SMARTCARDREADER\\0000": foreign}})
    lab3.put(client_state.TPM, "cl0001", {**lab3.get(client_state.TPM, "cl0001"), "next_instance": 1})
    sip = variant(lab3, "sip", client_clear_sip_profiles="true")

    applied = run(run_cli, lab3, "apply", "--tasks", "client", inventory=sip)
    assert applied.code == 0, applied.out
    assert "Other virtual smart cards on this device are left alone: ROOT\\SMARTCARDREADER\\0000 (Corporate VSC)" \
        in applied.out
    assert "~ sip_profiles: [\"15.0\\\\sip_user01@corp.lync2fa.test\"] -> []" \
        in applied.out
    assert lab3.get(client_state.PROFILES, "cl0001/user01") is None
    assert set(((lab3.get(client_state.CARDS, "cl0001") or {})["cards"])) == {
        "ROOT\\SMARTCARDREADER\\0000", "ROOT\\SMARTCARDREADER\\0001"}

    rolled = run(run_cli, lab3, "rollback", "--tier", "client", "--json")
    assert rolled.code == 0, rolled.out
    assert {r["host"]: r["before"]["virtual_smartcards"] for r in rolled.json()["results"]} == {
        h: ["Lync2FA"] for h in CLIENTS}
    assert policy(lab3, "cl0001") == {"SavePassword": {"type": "DWord", "value": 1}}
    assert policy(lab3, "cl0002") == {}
    assert lab3.get(client_state.CARDS, "cl0001") == {"cards": {"ROOT\\SMARTCARDREADER\\0000": foreign}}
    assert lab3.get(client_state.CARDS, "cl0002") is None
    for number, host in enumerate(CLIENTS, start=1):
        assert user_certificate(lab3, host, f"user{number:02d}") == []
    snapshot = lab3.snapshot()
    assert not [k for k in snapshot.get("created_marker", {}) if k.startswith("cl")]
    assert not [k for k in snapshot.get(client_state.REGISTRY, {}) if "lync2fa" in k]
    assert run(run_cli, lab3, "rollback", "--tier", "client", "--json").json()["counts"]["changed"] == 0
    failed = run(run_cli, lab3, "verify", "--tasks", "client", "--limit", "cl0002")
    assert failed.code == 1 and "virtual smart card 'Lync2FA' not found" in failed.out


def test_verify_trusts_the_ca_certificate_not_the_ca_name(make_lab, run_cli):
    """chains_to_ca: the CA's own certificate signed the user's, not merely a CA of that name;
    a CA that cannot be read is named in a warning."""
    from lync2fa.plugins.ca.twin import make_ca_certificate

    lab = with_ca(make_lab(clients=1), run_cli)
    seed_template(lab)
    assert run(run_cli, lab, "apply", "--tasks", "client").code == 0
    assert run(run_cli, lab, "verify", "--tasks", "client.verify").code == 0
    real = lab.get("ca", "ca01")
    name = real["common_name"]
    impostor, _ = make_ca_certificate(name, 2048, "sha256", 5)
    assert x509.load_pem_x509_certificate(impostor.encode()).subject == \
        x509.load_pem_x509_certificate(real["cert_pem"].encode()).subject
    lab.put("ca", "ca01", {**real, "cert_pem": impostor})
    same_name = run(run_cli, lab, "verify", "--tasks", "client.verify")
    assert same_name.code == 1 and "does not chain to the CA" in same_name.out, same_name.out

    lab.put("ca", "ca01", real)
    elsewhere = variant(lab, "elsewhere", client_ca_config="'nowhere.corp.lync2fa.test\\Other CA'")
    unreachable = run(run_cli, lab, "verify", "--tasks", "client.verify", "--json", inventory=elsewhere)
    [result] = unreachable.json()["results"]
    assert result["after"]["certificate"]["chains_to_ca"] is False
    assert set(result["after"]["certificate"]) == set(result["before"]["certificate"])
    assert any(w.startswith("Cannot read the CA certificate from nowhere.corp.lync2fa.test\\Other CA: "
                            "CCertRequest::GetCACertificate: The RPC server is unavailable") for w in result["warnings"]), \
        result["warnings"]
