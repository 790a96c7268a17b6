"""Issue 8: a wrong name or type in ANY operation fails in the lab with Windows' own text, as a
failed operation (never a Python error): what the primitive library (core/ps) would raise on
Windows for registry values, AD attributes and classes (the schema), ACEs and the named
primitives' arguments. Driven on a ``Machine`` of a fresh estate, as the session loop runs it."""

from __future__ import annotations

import inspect

import pytest

from lync2fa import adcs, hostscript
from lync2fa import hostops as h
from lync2fa.lab.windows import Machine, primitives
from lync2fa.lab.windows.machine import NAMED_FACTS, NAMED_OPERATIONS

KEY = "HKLM:\\SOFTWARE\\Lync2faTypes"
NOT_AN_INT = 'Cannot convert value "abc" to type "System.Int32". Error: "Input string was not in a correct format."'
NOT_BASE64 = (
    'Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 string as it '
    "contains a non-base 64 character, more than two padding characters, or an illegal character among the "
    'padding characters. "'
)
NO_SUCH_ATTRIBUTE = ("The specified directory service attribute or value does not exist.\r\n", -2147016694)
INVALID_SYNTAX = ("The attribute syntax specified to the directory service is invalid.\r\n", -2147016693)
CLASS_VIOLATION = (
    "The requested operation did not satisfy one or more constraints associated with the class of the object.\r\n",
    -2147016684,
)
CONSTRAINT = ("A constraint violation occurred.\r\n", -2147016657)
INVALID_DN = ("An invalid dn syntax has been specified.\r\n", -2147016654)
OID_DN = adcs.OID_CONTAINER


def _answers(m: Machine, *operations: dict) -> list[dict]:
    request = hostscript.apply_request([{"id": "t", "needs": [], "operations": list(operations)}])
    response, _ = primitives.run_request(m, request, {}, m.store.transaction)
    return response["groups"][0]["operations"]


def _error(m: Machine, operation: dict) -> dict:
    answer = _answers(m, operation)[0]
    assert answer["ok"] is False, answer
    return answer["error"]


def _ad_error(m: Machine, operation: dict) -> tuple[str, int]:
    error = _error(m, operation)
    return error["message"], error["hresult"]


def _fact(m: Machine, query: dict) -> dict:
    response, _ = primitives.run_request(m, hostscript.facts_request({"q": query}), {}, m.store.transaction)
    return response["facts"]["q"]


def _attributes(m: Machine, dn: str, *names: str) -> dict:
    return primitives.read_fact(m, h.ad_object_fact(dn, names))["attributes"]


# -- registry_set: Set-Lync2faRegistryValue casts [int] (DWord), [long] (QWord), base64 (Binary) ---
def test_registry_dword_that_is_not_a_number_fails_with_the_int_cast_text_and_writes_nothing(ca01):
    error = _error(ca01, h.registry_set(KEY, "Mode", "abc", "DWord"))
    assert error["message"] == NOT_AN_INT
    assert ca01.registry.read(KEY) is None


def test_registry_integers_convert_as_powershell_casts_them(ca01):
    for value, expected in (("0x10", 16), (" 7 ", 7), (True, 1), (2.5, 2), (-1, -1)):
        assert _answers(ca01, h.registry_set(KEY, "N", value, "DWord"))[0]["ok"]
        assert ca01.registry.value(KEY, "N") == expected
    assert _error(ca01, h.registry_set(KEY, "Q", "abc", "QWord"))["message"] == NOT_AN_INT.replace("Int32", "Int64")
    assert _error(ca01, h.registry_set(KEY, "N", 2**31, "DWord"))["message"] == (
        'Cannot convert value "2147483648" to type "System.Int32". Error: '
        '"Value was either too large or too small for an Int32."'
    )
    assert _error(ca01, h.registry_set(KEY, "N", [1, 2], "DWord"))["message"] == (
        'Cannot convert the "System.Object[]" value of type "System.Object[]" to type "System.Int32".'
    )
    assert ca01.registry.value(KEY, "N") == -1  # the failed writes left the last good one


def test_registry_binary_value_must_be_base64(ca01):
    assert _error(ca01, h.registry_set(KEY, "Blob", "not base64!", "Binary"))["message"] == NOT_BASE64
    assert _answers(ca01, h.registry_set(KEY, "Blob", "AQID", "Binary"))[0]["ok"]


def test_registry_string_value_is_stored_as_its_text(ca01):
    assert _answers(ca01, h.registry_set(KEY, "S", 5, "String"), h.registry_set(KEY, "B", True, "String"))
    assert primitives.read_fact(ca01, h.registry_fact(KEY))["values"] == {"S": "5", "B": "True"}


# -- AD: the schema (ADSI and the DC refuse what it does not allow) --------------------------------
def test_ad_create_of_an_undefined_class_fails_with_the_class_violation_and_creates_nothing(ca01):
    assert _ad_error(ca01, h.ad_create(OID_DN, "x1", "noSuchClass", {})) == CLASS_VIOLATION
    assert ca01.directory.get(f"CN=x1,{OID_DN}") is None


def test_ad_create_with_an_unknown_attribute_fails_and_leaves_the_bare_object_as_adsi_does(ca01):
    # New-Lync2faDirectoryObject commits the new entry, then writes its attributes.
    operation = h.ad_create(
        OID_DN, "x2", adcs.OID_CLASS, {"flags": h.typed("int", 1), "noSuchAttr": h.typed("string", "v")}
    )
    assert _ad_error(ca01, operation) == NO_SUCH_ATTRIBUTE
    created = ca01.directory.get(f"CN=x2,{OID_DN}")
    assert created is not None and created["class"] == adcs.OID_CLASS
    assert _attributes(ca01, created["dn"], "cn", "flags", "noSuchAttr") == {
        "cn": ["x2"],
        "flags": [],
        "noSuchAttr": [],
    }


def test_ad_value_of_the_wrong_syntax_fails_with_invalid_attribute_syntax(ca01):
    assert _ad_error(ca01, h.ad_create(OID_DN, "x3", adcs.OID_CLASS, {"flags": h.typed("string", "abc")})) == (
        INVALID_SYNTAX
    )
    assert _ad_error(ca01, h.ad_set(OID_DN, {"displayName": h.typed("int", 5)})) == INVALID_SYNTAX
    assert _ad_error(ca01, h.ad_set(OID_DN, {"flags": h.typed("bytes", "AQID")})) == INVALID_SYNTAX
    assert _ad_error(ca01, h.ad_set(OID_DN, {"flags": h.typed("string", "4294967296")})) == INVALID_SYNTAX
    assert _ad_error(ca01, h.ad_set(OID_DN, {adcs.OID_LINK_ATTRIBUTE: h.typed("string", "not a dn")})) == INVALID_DN
    # A decimal string is an Integer to the DC: it is stored as the number.
    assert _answers(ca01, h.ad_set(OID_DN, {"flags": h.typed("string", "12")}))[0]["ok"]
    assert _attributes(ca01, OID_DN, "flags") == {"flags": [12]}


def test_ad_int_that_is_not_a_number_fails_with_the_int_cast_text_and_changes_nothing(ca01):
    before = _attributes(ca01, OID_DN, "displayName", "flags")
    operation = h.ad_set(OID_DN, {"displayName": h.typed("string", "new"), "flags": h.typed("int", "abc")})
    assert _error(ca01, operation)["message"] == NOT_AN_INT
    assert _attributes(ca01, OID_DN, "displayName", "flags") == before


def test_ad_several_values_on_a_single_valued_attribute_are_a_constraint_violation(ca01):
    assert _ad_error(ca01, h.ad_set(OID_DN, {"displayName": h.typed("strings", ["a", "b"])})) == CONSTRAINT


def test_ad_bytes_must_be_base64(ca01):
    assert _error(ca01, h.ad_set(OID_DN, {"pKIExpirationPeriod": h.typed("bytes", "!!")}))["message"] == NOT_BASE64


def test_ad_unknown_attribute_in_ad_set_fails_even_when_clearing_it(ca01):
    assert _ad_error(ca01, h.ad_set(OID_DN, {"noSuchAttr": h.typed("string", None)})) == NO_SUCH_ATTRIBUTE


# -- ACEs: New-Lync2faAce casts [ActiveDirectoryRights][int] and [guid] ----------------------------
def _ace(rights, object_type=None) -> dict:
    return {**h.ace_add(OID_DN, "Domain Users", 0, object_type), "rights": rights}


def test_ace_rights_that_are_not_an_int_fail_with_the_int_cast_text(ca01):
    assert _error(ca01, _ace("abc"))["message"] == NOT_AN_INT
    assert _error(ca01, _ace("ReadProperty"))["message"] == NOT_AN_INT.replace("abc", "ReadProperty")


def test_ace_rights_with_bits_activedirectoryrights_does_not_define_fail_with_the_enum_text(ca01):
    assert _error(ca01, _ace(0x40000000))["message"] == (
        'Cannot convert value "1073741824" to type "System.DirectoryServices.ActiveDirectoryRights" due to '
        "enumeration values that are not valid. Specify one of the following enumeration values and try again. "
        'The possible enumeration values are "CreateChild,DeleteChild,ListChildren,Self,ReadProperty,'
        "WriteProperty,DeleteTree,ListObject,ExtendedRight,Delete,ReadControl,GenericExecute,GenericWrite,"
        'GenericRead,WriteDacl,WriteOwner,GenericAll,Synchronize,AccessSystemSecurity".'
    )
    assert _answers(ca01, _ace(adcs.GENERIC_ALL))[0]["ok"]


def test_ace_object_type_must_be_a_guid(ca01):
    assert _error(ca01, _ace(adcs.EXTENDED_RIGHT, "enroll"))["message"] == (
        'Cannot convert value "enroll" to type "System.Guid". Error: "Guid should contain 32 digits with 4 dashes '
        '(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."'
    )
    assert _answers(ca01, _ace(adcs.EXTENDED_RIGHT, adcs.ENROLL.upper()))[0]["ok"]
    aces = primitives.read_fact(ca01, h.ad_object_fact(OID_DN, ["cn"], acl=True))["acl"]["aces"]
    assert [a["object_type"] for a in aces if a["rights"] == adcs.EXTENDED_RIGHT] == [adcs.ENROLL]  # as [string]$guid


# -- named primitives: the keys core/ps reads from $Arguments are their parameters -----------------
def test_named_operation_with_a_misspelt_argument_fails_as_a_powershell_function(ca01):
    operation = h.named("vsc_destroy", instance_id="ROOT\\SMARTCARDREADER\\0000", timeout=5)
    error = _error(ca01, operation)
    assert error["message"] == "A parameter cannot be found that matches parameter name 'timeout'."
    assert error["error_id"] == "NamedParameterNotFound,Remove-Lync2faVirtualSmartCard"


def test_named_fact_with_a_misspelt_argument_fails_the_same_way(ca01):
    answer = _fact(ca01, h.named_fact("file_text", pth="C:\\x.txt"))
    assert answer["ok"] is False
    assert answer["error"]["message"] == "A parameter cannot be found that matches parameter name 'pth'."


def test_named_operation_without_an_argument_it_needs_fails_before_it_runs(ca01):
    error = _error(ca01, h.named("file_replace", path="C:\\x.txt", text="t"))
    assert error["message"] == "Cannot process command because of one or more missing mandatory parameters: sha256."


def test_named_int_argument_that_is_not_a_number_fails_with_the_int_cast_text(ca01):
    error = _error(ca01, h.named("vsc_destroy", instance_id="ROOT\\SMARTCARDREADER\\0000", timeout_s="abc"))
    assert error["message"] == NOT_AN_INT


def test_each_named_primitive_of_the_lab_takes_exactly_the_arguments_core_ps_reads():
    for kind, table in (("fact", NAMED_FACTS), ("operation", NAMED_OPERATIONS)):
        declared = primitives.named_signatures(kind)
        assert set(declared) == set(table), kind
        for name, implementation in table.items():
            parameters = list(inspect.signature(implementation).parameters)[1:]  # after the Machine
            assert set(parameters) == set(declared[name].keys), (kind, name)


# -- nothing escapes as a Python error ------------------------------------------------------------
def test_a_lab_defect_is_a_failed_operation_and_the_next_one_still_runs(ca01, monkeypatch):
    def broken(machine, path, text, sha256):
        raise KeyError("oops")

    monkeypatch.setitem(NAMED_OPERATIONS, "file_replace", broken)
    request = hostscript.apply_request(
        [
            {"id": "a", "needs": [], "operations": [h.named("file_replace", path="p", text="t", sha256="s")]},
            {"id": "b", "needs": [], "operations": [h.registry_set(KEY, "After", "ok")]},
        ]
    )
    response, _ = primitives.run_request(ca01, request, {}, ca01.store.transaction)
    failed, after = response["groups"]
    assert failed["operations"][0]["ok"] is False
    assert failed["operations"][0]["error"]["message"].startswith("lync2fa lab defect: KeyError")
    assert after["operations"] == [{"ok": True, "output": None, "warnings": []}]


@pytest.mark.parametrize(
    "name, like",
    [("..", "sip_*"), ("sip_a\\..\\..", "sip_*"), ("Documents", "sip_*"), ("sip_x", "")],
)
def test_a_sip_profile_removal_never_leaves_a_matching_direct_child(name, like):
    """The one recursive removal a decision can send: the library (and the lab) refuse any folder
    that is not a direct child matching the filter that found it."""
    from lync2fa.lab.windows import scheduled_tasks
    from lync2fa.lab.windows.errors import WindowsError

    with pytest.raises(WindowsError, match="not a folder matching"):
        scheduled_tasks.sip_profile_remove(
            None, "S-1-5-21-1", "AppData\\Local\\Microsoft\\Office\\15.0\\Lync", name, like
        )
