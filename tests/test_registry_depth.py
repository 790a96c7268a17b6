"""registry_fact(path, names, depth) on the lab (issue 11): a key and its subkeys down to ``depth``
levels in one fact, the named values selected at every level; and ca.authority decides from the
first read alone (no further round trip)."""

from __future__ import annotations

from test_adcs_lab_windows import INSTALL_CA

from lync2fa import adcs, api
from lync2fa import hostops as h
from lync2fa.decision import Context, Facts
from lync2fa.lab.windows import Machine, primitives

KEY = "HKLM:\\SOFTWARE\\Lync2faTest"


def _apply(m: Machine, operation: dict):
    with m.store.transaction():
        return primitives.apply_operation(m, operation)


def test_depth_reads_subkeys_down_to_n_levels(ca01):
    for path, name, value in (
        (KEY, "Top", "t"),
        (f"{KEY}\\A", "Wanted", 1),
        (f"{KEY}\\A", "Other", 2),
        (f"{KEY}\\A\\B", "Wanted", 3),
        (f"{KEY}\\A\\B\\C", "Wanted", 4),
    ):
        _apply(ca01, h.registry_set(path, name, value, "DWord" if isinstance(value, int) else "String"))
    assert h.registry_fact(KEY) == {"kind": "registry", "path": KEY, "names": None}  # depth 0: as before
    flat = primitives.read_fact(ca01, h.registry_fact(KEY))
    assert flat == {"exists": True, "values": {"Top": "t"}, "subkeys": ["A"]}
    deep = primitives.read_fact(ca01, h.registry_fact(KEY, ["Top", "Wanted"], depth=2))
    assert deep == {
        "exists": True,
        "values": {"Top": "t"},
        "subkeys": ["A"],
        "keys": {
            "A": {"values": {"Wanted": 1}, "subkeys": ["B"], "keys": {"B": {"values": {"Wanted": 3}, "subkeys": ["C"]}}}
        },
    }
    everything = primitives.read_fact(ca01, h.registry_fact(KEY, depth=1))
    assert everything["keys"]["A"] == {"values": {"Wanted": 1, "Other": 2}, "subkeys": ["B"]}
    assert primitives.read_fact(ca01, h.registry_fact(f"{KEY}\\Missing", depth=2)) == {
        "exists": False,
        "values": {},
        "subkeys": [],
    }


def test_ca_authority_decides_from_one_read(ca01):
    task = api.tasks()["ca.authority"]
    params = task.validate({"common_name": "Test Root CA", "key_length": 2048})
    _apply(
        ca01,
        h.cmdlet(
            "Install-WindowsFeature", {"Name": adcs.FEATURE_CA, "IncludeManagementTools": True}, module="ServerManager"
        ),
    )
    _apply(
        ca01,
        h.cmdlet("Install-AdcsCertificationAuthority", INSTALL_CA, module="ADCSDeployment"),
    )
    raw = {}
    for name, query in task.facts(params).items():
        ca01.import_module(query.get("module"))
        raw[name] = {"ok": True, "value": primitives.read_fact(ca01, query)}
    decision = task.decide(
        Context(task=task.name, host="ca01", params=params, facts=Facts(raw), check_mode=False, hostvars={}, planned={})
    )
    assert not decision.failed and decision.operations == [], decision.msg
    assert decision.before == {
        "role_installed": True,
        "ca_type": "EnterpriseRootCA",
        "common_name": "Test Root CA",
        "key_length": 2048,
        "hash_algorithm": "sha256",
        "validity_years": 10,
    }
