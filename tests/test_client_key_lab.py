"""The key made on the card follows the template (issue 8: each constant once): its length is the
templates tier's templates_min_key_size, read where that tier reads it; key spec and export policy
come from the client tier's decision; the library writes none of them. A TPM virtual smart card
makes RSA 2048-bit keys only, so a template that asks for more is refused before a key is made,
and the lab refuses what Windows refuses on the way (the card, then the CA)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from test_client_lab import Windows, card_of, run, seed_template, user_certificate, variant, with_ca

from lync2fa import adcs
from lync2fa.lab.windows import certificates, scheduled_tasks, tpm
from lync2fa.lab.windows.adcs import ca_of
from lync2fa.lab.windows.errors import WindowsError
from lync2fa.lab.windows.machine import Machine
from lync2fa.plugins.client.decide import CHAIN_REVOCATION_MODE, UNTRUSTED_CA, UNTRUSTED_ROOT_HRESULT, VSC_KEY_BITS

TEMPLATE = "TPMVirtualSmartCardLogon"
CERTSRV_E_KEY_LENGTH = -2146875375  # 0x80094811


@pytest.fixture
def lab1(make_lab, run_cli):
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    return lab


def minimal_key_size(lab, bits: int) -> None:
    """msPKI-Minimal-Key-Size of the issued template, as templates.smartcard writes it."""
    with Windows(lab) as w:
        obj = w.directory.get(adcs.template_dn(TEMPLATE))
        obj["attributes"]["msPKI-Minimal-Key-Size"] = [str(bits)]
        w.directory.put(obj)


def executed(lab, name: str) -> list[dict]:
    """The arguments of every ``name`` operation the lab executed."""
    return [op["args"] for op in lab.operations() if op.get("name") == name]


def test_the_client_tier_knows_the_key_size_the_lab_card_makes():
    """The tier's constant states a Windows fact the lab models on its own: they must agree."""
    assert VSC_KEY_BITS == tpm.VSC_KEY_BITS


def test_a_template_asking_for_a_longer_key_than_the_card_holds_is_refused_before_any_key_is_made(lab1, run_cli):
    """templates_min_key_size 4096 (set for the templates tier, on the CA host) reaches the client's
    decision: the card cannot make a 4096-bit key and the CA refuses a 2048-bit one, so enrollment
    is refused naming both, and the card keeps no orphaned key (the old library asked for 2048
    bits, the CA refused it with CERTSRV_E_KEY_LENGTH and the key stayed on the card)."""
    minimal_key_size(lab1, 4096)
    inventory = variant(lab1, "key4096", before="ca_common_name:", templates_min_key_size=4096)
    applied = run(run_cli, lab1, "apply", "--tasks", "client", inventory=inventory)
    assert applied.code != 0
    assert "FAILED  client.enrollment on cl0001" in applied.out
    assert "requires keys of at least 4096 bits (templates_min_key_size)" in applied.out
    assert f"a TPM virtual smart card holds RSA {VSC_KEY_BITS}-bit keys" in " ".join(applied.out.split())
    assert card_of(lab1, "cl0001")[1]["containers"] == {}
    assert executed(lab1, "user_enroll") == []


def test_the_card_key_is_made_as_the_decision_sets_it(lab1, run_cli):
    """Unset, the key length is the templates tier's default minimum; spec and export policy are the
    client's; all three travel in the operation and the lab's card makes that key."""
    applied = run(run_cli, lab1, "apply", "--tasks", "client")
    assert applied.code == 0, applied.out
    [args] = executed(lab1, "user_enroll")
    assert (args["key_length"], args["key_spec"], args["export_policy"]) == (VSC_KEY_BITS, 1, 0)
    [(cert, entry)] = user_certificate(lab1, "cl0001", "user01")
    container = card_of(lab1, "cl0001")[1]["containers"][entry["container"]]
    assert cert.public_key().key_size == tpm.VSC_KEY_BITS
    assert (container["key_spec"], container["export_policy"]) == (1, 0)


def test_the_lab_refuses_what_windows_refuses_on_the_way(lab1, run_cli):
    """The card makes no 4096-bit key (invalid flags: the length travels in CryptGenKey's flags);
    the CA's policy module refuses a 2048-bit key for a 4096-bit template (CERTSRV_E_KEY_LENGTH)."""
    assert run(run_cli, lab1, "apply", "--tasks", "client.virtual_smartcard").code == 0
    minimal_key_size(lab1, 4096)
    pin = str(lab1.load_inventory().host("cl0001").var("client_pin"))
    with Windows(lab1) as w:
        machine = Machine(w.store, w.estate, w.estate.host("cl0001"))
        iid, _ = card_of(lab1, "cl0001")
        with pytest.raises(WindowsError) as long_key:
            tpm.new_key_container(machine, iid, pin, 4096)
        assert long_key.value.hresult == tpm.BAD_FLAGS and "NTE_BAD_FLAGS" in long_key.value.message
        record = w.store.get("ad_user", "user01")
        with pytest.raises(WindowsError) as enrolled:
            scheduled_tasks.user_enroll(
                machine,
                "CORP\\user01",
                record["sid"],
                f"{w.estate.host('ca01').fqdn}\\{ca_of(w.store, 'ca01')['common_name']}",
                TEMPLATE,
                "Microsoft Base Smart Card Crypto Provider",
                key_spec=1,
                key_length=4096,
                export_policy=0,
                pin=pin,
                reader="Lync2FA",
                revocation_mode=CHAIN_REVOCATION_MODE,
                untrusted_hresult=UNTRUSTED_ROOT_HRESULT,
                untrusted_message=UNTRUSTED_CA,
                record_path="HKLM:\\SOFTWARE\\lync2fa\\Enrolled",
                record_name="x",
            )
        assert enrolled.value.hresult == tpm.BAD_FLAGS
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        with pytest.raises(WindowsError) as short_key:
            certificates.submit(machine, "ca01", ca_of(w.store, "ca01"), TEMPLATE, csr, "user01", record)
        assert short_key.value.hresult == CERTSRV_E_KEY_LENGTH and "CERTSRV_E_KEY_LENGTH" in short_key.value.message
    assert card_of(lab1, "cl0001")[1]["containers"] == {}
