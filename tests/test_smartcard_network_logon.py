"""The smart card service refuses a WinRM network logon (core/ps/Lync2fa.SmartCard.ps1's header):
in the session, SCardEstablishContext fails with SCARD_E_NO_SERVICE, so the key containers on a
card cannot be listed there. The lab refuses it as Windows does; lync2fa lists them in the SYSTEM
scheduled job it already uses for the cards (the named fact virtual_smartcard_keys), so the
"card already holds 30 keys" refusal fires before a key is made."""

from __future__ import annotations

import pytest
from test_client_lab import card_of, run, seed_template, with_ca

from lync2fa.lab import control
from lync2fa.lab.dispatch import Dispatcher
from lync2fa.lab.estate import Estate
from lync2fa.lab.faults import FaultBook
from lync2fa.lab.windows import tpm
from lync2fa.lab.windows.errors import WindowsError
from lync2fa.lab.windows.machine import Machine
from lync2fa.plugins.client.decide import MAX_KEYS, SMART_CARD_KSP

NO_SERVICE = "SCardEstablishContext failed: 0x8010001d"  # Lync2faNativeMethods.Check's text


@pytest.fixture
def windows(tmp_path):
    """cl0001 of a fresh lab estate with one card holding one key, and the lab's dispatcher."""
    control.create(tmp_path, clients=1)
    estate = Estate.load(tmp_path)
    store = control.open_store(tmp_path)
    with store.transaction():
        host = Machine(store, estate, estate.host("cl0001"))
        code, text = host.run_native("tpmvscmgr.exe", ["create", "/name", "Lync2FA", "/pin", "default"])
        assert code == 0, text
        iid = tpm.INSTANCE.search(text).group(0)
        tpm.new_key_container(host, iid, tpm.DEFAULT_PIN)
        yield Dispatcher(store, estate, FaultBook(store)), iid
    store.close()


def test_the_lab_refuses_card_calls_from_a_winrm_session_and_serves_a_scheduled_task(windows):
    dispatcher, iid = windows
    session = dispatcher.machine("cl0001")
    assert session.network_logon
    with pytest.raises(WindowsError, match=f"^{NO_SERVICE}$"):
        tpm.pcsc_reader(session, "Lync2FA")
    with pytest.raises(WindowsError) as key:
        tpm.new_key_container(session, iid, tpm.DEFAULT_PIN)
    assert "SCARD_E_NO_SERVICE" in key.value.message and key.value.hresult == tpm.NO_SERVICE - 2**32
    with pytest.raises(WindowsError, match=f"^{NO_SERVICE}$"):
        tpm.change_pin(session, iid, tpm.DEFAULT_PIN, "87654321")
    # Get-Lync2faVirtualSmartCards in the session: the containers come back null, not listed.
    assert [c["containers"] for c in tpm.virtual_smartcards(session, SMART_CARD_KSP)] == [None]
    # The same listing in the SYSTEM job (the named fact virtual_smartcard_keys) is served.
    [card] = tpm.card_keys(session, SMART_CARD_KSP)
    assert card["instance_id"] == iid and len(card["containers"]) == 1
    assert session.network_logon  # back in the session after the job


def test_a_full_card_is_refused_before_a_key_is_made_as_the_system_job_counts_its_keys(make_lab, run_cli):
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    assert run(run_cli, lab, "apply", "--tasks", "client.virtual_smartcard").code == 0
    iid, card = card_of(lab, "cl0001")
    full = {f"{{C{n:02d}}}": {"key_pem": "", "key_spec": 1, "export_policy": 0} for n in range(MAX_KEYS)}
    lab.put(tpm.CARDS, "cl0001", {"cards": {iid: {**card, "containers": full}}})
    mark = lab.mark()
    applied = run(run_cli, lab, "apply", "--tasks", "client.enrollment")
    assert applied.code != 0
    assert f"already holds {MAX_KEYS} keys" in applied.out
    assert lab.executed(mark) == {}  # no enrollment ran: no key was generated
    assert len(card_of(lab, "cl0001")[1]["containers"]) == MAX_KEYS
