"""The enrollment job's trust check is the client tier's decision (issue 8, each setting once): the
revocation mode, the HResult the job reports for a CA that does not chain to a trusted root, and the
message, travel as arguments of user_enroll; neither the library nor the lab writes them."""

from __future__ import annotations

import pytest
from test_client_lab import card_of, run, seed_template, set_props, with_ca

from lync2fa.lab.windows.errors import WindowsError
from lync2fa.lab.windows.scheduled_tasks import cast_revocation_mode
from lync2fa.plugins.client import decide


def test_the_untrusted_root_failure_is_the_decisions_message_and_hresult(make_lab, run_cli, monkeypatch):
    lab = with_ca(make_lab(clients=1, transport="credssp"), run_cli)
    seed_template(lab)
    set_props(lab, "cl0001", autoenrollment=False)  # the root never arrives: not trusted yet
    monkeypatch.setattr(decide, "UNTRUSTED_CA", "decided: {0} is not trusted here ({1})")
    # the job reports the decision's HResult: give it one the decision has a hint for
    monkeypatch.setattr(decide, "UNTRUSTED_ROOT_HRESULT", decide.WRONG_PIN_HRESULT)
    failed = run(run_cli, lab, "apply", "--tasks", "client")
    assert failed.code == 1
    assert "decided: CN=" in failed.out and "is not trusted here (UntrustedRoot)" in failed.out
    assert "no key was generated" not in failed.out
    assert decide.WRONG_PIN_HINT in failed.out
    assert card_of(lab, "cl0001")[1]["containers"] == {}


def test_the_revocation_mode_is_cast_as_powershell_casts_it():
    assert cast_revocation_mode("nocheck") == "NoCheck"
    with pytest.raises(WindowsError) as bogus:
        cast_revocation_mode("Bogus")
    assert bogus.value.message.startswith(
        'Cannot convert value "Bogus" to type "System.Security.Cryptography.X509Certificates.X509RevocationMode".'
    )
    assert "NoCheck, Online, Offline" in bogus.value.message
    with pytest.raises(WindowsError, match="not modelled"):
        cast_revocation_mode("Online")  # the lab's CAs publish no CRL a PC could fetch
    with pytest.raises(WindowsError, match='Cannot convert value ""'):
        cast_revocation_mode("")  # a decision without the argument: [X509RevocationMode][string]$null
