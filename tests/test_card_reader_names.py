"""A virtual smart card's PC/SC reader name is not its PnP name (issue 7 defect 9): Windows' smart
card service names a reader after its device's friendly name plus an index ("Lync2FA 0"). lync2fa
goes from the PnP name to the reader only through Lync2faNativeMethods.Reader (the one helper in
core/ps/Lync2fa.NativeMethods.cs), and the lab names readers as Windows does and models that helper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lync2fa
from lync2fa.lab import control
from lync2fa.lab.estate import Estate
from lync2fa.lab.windows import Machine, tpm
from lync2fa.lab.windows.errors import WindowsError

PS = Path(lync2fa.__file__).parent / "ps"
LAB = Path(lync2fa.__file__).parent / "lab"


@pytest.fixture
def machine(tmp_path):
    """cl0001 of a fresh lab estate, opened in one transaction (no server)."""
    control.create(tmp_path, clients=1)
    estate = Estate.load(tmp_path)
    store = control.open_store(tmp_path)
    with store.transaction():
        yield Machine(store, estate, estate.host("cl0001"))
    store.close()


def create(machine: Machine, name: str) -> str:
    code, text = machine.run_native(
        "tpmvscmgr.exe", ["create", "/name", name, "/pin", "default", "/adminkey", "random"]
    )
    assert code == 0, text
    return tpm.INSTANCE.search(text).group(0)


def readers(machine: Machine) -> dict[str, str]:
    return {iid: tpm.reader_name(card) for iid, card in tpm.cards(machine).items()}


def test_the_lab_names_a_cards_reader_after_its_pnp_name_with_an_index(machine):
    first, backup, second = create(machine, "Lync2FA"), create(machine, "Lync2FA Backup"), create(machine, "Lync2FA")
    assert readers(machine) == {first: "Lync2FA 0", backup: "Lync2FA Backup 0", second: "Lync2FA 1"}
    assert [c["name"] for c in tpm.virtual_smartcards(machine)] == ["Lync2FA", "Lync2FA Backup", "Lync2FA"]
    machine.run_native("tpmvscmgr.exe", ["destroy", "/instance", first])
    again = create(machine, "Lync2FA")
    assert readers(machine)[again] == "Lync2FA 0"  # the lowest free index again


def test_reader_matches_the_exact_name_else_the_single_indexed_one_and_no_other_prefix(machine):
    own = create(machine, "Lync2FA")
    create(machine, "Lync2FA Backup")  # starts with "Lync2FA": a plain prefix rule would find two
    create(machine, "Lync2FA-old")
    assert tpm.pcsc_reader(machine, "Lync2FA") == "Lync2FA 0" and tpm.card_by_name(machine, "Lync2FA")[0] == own
    assert tpm.pcsc_reader(machine, "lync2fa backup 0") == "Lync2FA Backup 0"  # exact, case-insensitive
    create(machine, "Lync2FA")
    with pytest.raises(WindowsError, match=r"^Expected one smart card reader named after 'Lync2FA', found 2\.$"):
        tpm.pcsc_reader(machine, "Lync2FA")
    with pytest.raises(WindowsError, match="found 0"):
        tpm.card_by_name(machine, "Nothing")


def test_containers_are_listed_through_the_reader_and_null_where_reader_throws(machine):
    own = create(machine, "Lync2FA")
    tpm.new_key_container(machine, own, tpm.DEFAULT_PIN)
    listed = {
        c["instance_id"]: c["containers"]
        for c in tpm.virtual_smartcards(machine, "Microsoft Smart Card Key Storage Provider")
    }
    assert len(listed[own]) == 1
    twin = create(machine, "Lync2FA")  # two readers "Lync2FA 0" and "Lync2FA 1": Reader("Lync2FA") throws
    listed = {
        c["instance_id"]: c["containers"]
        for c in tpm.virtual_smartcards(machine, "Microsoft Smart Card Key Storage Provider")
    }
    assert listed == {own: None, twin: None}


def test_a_rollout_beside_a_card_whose_name_starts_like_ours_sets_the_pin_of_its_own_card(make_lab, run_cli):
    lab = make_lab(clients=1)
    store = control.open_store(lab.dir)
    try:
        with store.transaction():
            backup = create(Machine(store, Estate.load(lab.dir), Estate.load(lab.dir).host("cl0001")), "Lync2FA Backup")
    finally:
        store.close()
    args = ("--tasks", "client.virtual_smartcard", "--limit", "cl0001")
    applied = run_cli("apply", "-i", lab.inventory, "--state-dir", lab.state_dir, *args)
    assert applied.code == 0, applied.out
    cards = lab.get(tpm.CARDS, "cl0001")["cards"]
    ours = next(iid for iid, card in cards.items() if card["name"] == "Lync2FA")
    pin = lab.load_inventory().host("cl0001").var("client_pin")
    assert tpm.secret_matches(cards[ours]["pin"], pin) and cards[ours]["reader"] == "Lync2FA 0"
    assert tpm.secret_matches(cards[backup]["pin"], tpm.DEFAULT_PIN)  # the other card untouched


# -- one matching rule: the static side ---------------------------------------------------------
def test_core_ps_reaches_a_reader_only_through_the_one_helper():
    """Every PC/SC reader name the PowerShell library uses comes from [Lync2faNativeMethods]::Reader;
    no script compares reader names itself. A second matching rule fails here."""
    text = "\n".join(path.read_text() for path in sorted(PS.glob("*.ps1")))
    assignments = re.findall(r"(?:\$reader|\.ReaderName)\s*=\s*([^\n]+)", text, re.IGNORECASE)
    assert assignments and all(
        a.startswith(("[Lync2faNativeMethods]::Reader(", "Resolve-Lync2faCardReader ")) for a in assignments
    ), assignments
    resolve = text.split("function Resolve-Lync2faCardReader", 1)[1].split("\nfunction ", 1)[0]
    assert "return [Lync2faNativeMethods]::Reader(" in resolve
    uses = re.findall(r"\[Lync2faNativeMethods\]::(?:Change|Containers)\((\$\w+)", text)
    assert uses and set(uses) == {"$reader"}, uses
    comparing = [
        line
        for line in text.splitlines()
        if re.search(r"reader", line, re.IGNORECASE)
        and re.search(r"-(?:i|c)?(?:like|match|eq|ne|contains)\b|StartsWith|EndsWith|IndexOf", line, re.IGNORECASE)
    ]
    assert comparing == []


def test_the_native_helper_matches_reader_names_in_one_place():
    source = (PS / "Lync2fa.NativeMethods.cs").read_text()
    assert source.count("static string Match(") == 1
    match_body = source.split("static string Match(", 1)[1].split("\n    }\n", 1)[0]
    for comparison in ("string.Equals(", "StartsWith(", "EndsWith(", "IndexOf(", ".Contains("):
        assert source.count(comparison) == match_body.count(comparison), comparison
    assert source.count("SCardListReadersW(") == 3  # the declaration and the two calls in Readers()
    assert source.count("SCardConnectW(") == 2  # the declaration and the one call, on Match's reader
    assert "SCardConnectW(context, Match(Readers(context), reader)," in source
    assert re.findall(r"Match\(Readers\(context\), (\w+)\)", source) == ["name", "reader"]


def test_the_lab_finds_cards_by_pnp_name_only_through_its_model_of_the_helper():
    text = "\n".join(path.read_text() for path in sorted(LAB.rglob("*.py")))
    assert not re.search(r"\[[\"']name[\"']\]\.lower\(\) ==|== card\[[\"']name[\"']\]", text)
    assert "tpm.card_by_name(" in (LAB / "windows" / "scheduled_tasks.py").read_text()
