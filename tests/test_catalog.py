"""The cmdlet catalog (lync2fa/data/cmdlets.json) and the parameter-binder model over it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lync2fa.catalog import Catalog, CmdletError

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference" / "cmdlets.json"
CAT = Catalog.load()


def bind_error(cmdlet: str, params: dict) -> CmdletError:
    with pytest.raises(CmdletError) as info:
        CAT.bind(cmdlet, params)
    return info.value


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/reference/cmdlets.json is not on this machine")
def test_committed_catalog_is_what_the_tool_generates():
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_cmdlet_catalog.py"), "--check", str(SHARED)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/reference/cmdlets.json is not on this machine")
def test_generated_catalog_does_not_depend_on_where_the_checkout_lives(tmp_path):
    """CI checks out elsewhere (not /work): the same source must give the same committed file."""
    project = tmp_path / "elsewhere" / "main"
    (project / "tools").mkdir(parents=True)
    (project / "core" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere" / "shared" / "reference").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "gen_cmdlet_catalog.py", project / "tools")
    shutil.copy(ROOT / "core" / "data" / "cmdlets.json", project / "core" / "data")
    shutil.copy(SHARED, tmp_path / "elsewhere" / "shared" / "reference")
    done = subprocess.run(
        [
            sys.executable,
            "tools/gen_cmdlet_catalog.py",
            "--check",
            str(project.parent / "shared" / "reference" / "cmdlets.json"),
        ],
        cwd=project,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_header_names_the_source_and_the_tool():
    header = CAT.header
    assert header["source"].endswith("cmdlets.json")
    assert header["generated_by"] == "tools/gen_cmdlet_catalog.py"
    assert "MicrosoftDocs/PowerShell-Docs" in header["generated_from"]


def test_load_is_cached_and_names_are_case_insensitive():
    assert Catalog.load() is CAT
    assert CAT.has("add-catemplate") and CAT.has("ADD-CATEMPLATE") and not CAT.has("Add-CATemplates")
    assert CAT.canonical("get-website") == "Get-Website"
    assert CAT.module("install-adcscertificationauthority") == "ADCSDeployment"
    with pytest.raises(CmdletError) as info:
        CAT.canonical("Get-CertificationAuthority")  # PSPKI, not Microsoft's
    assert info.value.category == "ObjectNotFound" and "is not recognized" in info.value.message


def test_binds_to_canonical_names_through_case_prefix_and_alias():
    assert CAT.bind("Add-CATemplate", {"name": "SmartcardLogon", "force": True}) == {
        "Name": "SmartcardLogon",
        "Force": True,
    }
    assert CAT.bind("Get-ChildItem", {"LiteralPa": "C:\\", "ea": "stop"}) == {
        "LiteralPath": ["C:\\"],
        "ErrorAction": "Stop",
    }
    assert CAT.bind("New-Item", {"Path": "x", "Type": "Directory"})["ItemType"] == "Directory"
    assert CAT.bind("Add-CATemplate", {"-Name": "x", "Confirm": False}) == {"Name": "x", "Confirm": False}


def test_unknown_parameter():
    err = bind_error("Add-CATemplate", {"Nmae": "x", "Force": True})
    assert err.message == "A parameter cannot be found that matches parameter name 'Nmae'."
    assert err.category == "InvalidArgument" and err.fq_error_id.startswith("NamedParameterNotFound,")


def test_ambiguous_prefix_lists_the_matches():
    err = bind_error("Get-Item", {"Path": "x", "e": "Stop"})
    assert err.message.startswith(
        "Parameter cannot be processed because the parameter name 'e' is ambiguous. Possible matches include: -"
    )
    assert " -ErrorAction -ErrorVariable" in err.message and err.message.endswith(".")
    assert err.error_id == "AmbiguousParameter"


def test_parameter_given_twice():
    err = bind_error("Add-CATemplate", {"Name": "x", "name": "y"})
    assert err.error_id == "ParameterAlreadyBound" and "'Name' is specified more than once" in err.message


def test_ps7_only_parameters_are_unknown_in_5_1():
    assert "AsHashtable" in CAT.ps7_only_parameters("ConvertFrom-Json")
    for name in ("AsHashtable", "Depth"):
        err = bind_error("ConvertFrom-Json", {"InputObject": "{}", name: True if name == "AsHashtable" else 5})
        assert err.message == f"A parameter cannot be found that matches parameter name '{name}'."
    # ProgressAction is a 7.4 common parameter; Start-Process has no ShouldProcess in 5.1
    assert (
        bind_error("Get-Item", {"Path": "x", "ProgressAction": "SilentlyContinue"}).error_id == "NamedParameterNotFound"
    )
    assert bind_error("Start-Process", {"FilePath": "x", "WhatIf": True}).error_id == "NamedParameterNotFound"


OLD = "Windows Server 2012 R2"


def test_catalog_keeps_what_the_2012_r2_docs_lack():
    """The generator keeps the reference's 2012 R2 comparison: the 2016+-only parameters of AD FS and
    a cmdlet that came later."""
    assert CAT.platforms == {OLD}
    assert "ClientAuthenticationMethods" in CAT.absent_in("Set-AdfsGlobalAuthenticationPolicy", OLD)
    assert "ExtranetLockoutMode" in CAT.absent_in("Set-AdfsProperties", OLD)
    assert CAT.absent_in("Get-AdfsFarmInformation", OLD) == "cmdlet"
    assert CAT.absent_in("Set-AdfsGlobalAuthenticationPolicy", None) == []
    with pytest.raises(ValueError):
        CAT.absent_in("Set-AdfsProperties", "Windows Server 2016")  # the current docs: platform None


def test_an_older_platform_does_not_find_the_parameters_it_lacks():
    params = {"ClientAuthenticationMethods": "None", "PrimaryIntranetAuthenticationProvider": ["x"]}
    assert CAT.bind("Set-AdfsGlobalAuthenticationPolicy", params)["ClientAuthenticationMethods"] == "None"
    with pytest.raises(CmdletError) as info:
        CAT.bind("Set-AdfsGlobalAuthenticationPolicy", params, OLD)
    assert (
        info.value.message == "A parameter cannot be found that matches parameter name 'ClientAuthenticationMethods'."
    )
    assert info.value.error_id == "NamedParameterNotFound"
    # What 2012 R2 has still binds there, by prefix too: -Client no longer means the missing parameter.
    assert CAT.bind("Set-AdfsGlobalAuthenticationPolicy", {"PrimaryIntranet": ["x"]}, OLD) == {
        "PrimaryIntranetAuthenticationProvider": ["x"]
    }
    with pytest.raises(CmdletError) as info:
        CAT.bind("Set-AdfsGlobalAuthenticationPolicy", {"Client": "None"}, OLD)
    assert info.value.error_id == "NamedParameterNotFound"


def test_an_older_platform_does_not_recognize_a_cmdlet_that_came_later():
    assert CAT.bind("Get-AdfsFarmInformation", {}) == {}
    with pytest.raises(CmdletError) as info:
        CAT.bind("Get-AdfsFarmInformation", {}, OLD)
    assert info.value.category == "ObjectNotFound" and "is not recognized" in info.value.message


def test_switch_takes_bool_or_number_never_a_string():
    assert CAT.bind("Add-CATemplate", {"Name": "x", "Force": 0})["Force"] is False
    err = bind_error("Add-CATemplate", {"Name": "x", "Force": "true"})
    assert err.message == (
        "Cannot convert 'System.String' to the type 'System.Management.Automation.SwitchParameter' "
        "required by parameter 'Force'."
    )
    assert err.error_id == "CannotConvertArgument"
    assert bind_error("Set-ADUser", {"Identity": "u", "Enabled": "yes"}).error_id == "CannotConvertArgument"


def test_integers_convert_numeric_strings_and_refuse_the_rest():
    assert CAT.bind("Start-Sleep", {"Seconds": "5"}) == {"Seconds": 5}
    err = bind_error("Start-Sleep", {"Seconds": "abc"})
    assert err.message == (
        'Cannot bind parameter \'Seconds\'. Cannot convert value "abc" to type "System.Int32". '
        'Error: "Input string was not in a correct format."'
    )
    assert bind_error("Start-Sleep", {"Seconds": 2**40}).message.endswith(
        'Error: "Value was either too large or too small for an Int32."'
    )


def test_strings_take_scalars_not_collections_or_dicts():
    assert CAT.bind("Add-CATemplate", {"Name": 42}) == {"Name": "42"}
    assert CAT.bind("Get-Item", {"Path": "a"}) == {"Path": ["a"]}  # String[] takes one string
    err = bind_error("Add-CATemplate", {"Name": ["a", "b"]})
    assert err.message == (
        "Cannot convert 'System.Object[]' to the type 'System.String' required by parameter "
        "'Name'. Specified method is not supported."
    )
    assert bind_error("Add-CATemplate", {"Name": {"a": 1}}).message == (
        "Cannot bind parameter 'Name'. Cannot convert the \"System.Collections.Hashtable\" value of type "
        '"System.Collections.Hashtable" to type "System.String".'
    )


def test_validate_set_is_case_insensitive_and_refuses_other_values():
    assert CAT.bind("Get-FileHash", {"Path": "x", "Algorithm": "sha256"})["Algorithm"] == "sha256"
    err = bind_error("Get-FileHash", {"Path": "x", "Algorithm": "SHA3"})
    assert err.message == (
        "Cannot validate argument on parameter 'Algorithm'. The argument \"SHA3\" does not belong "
        'to the set "SHA1,SHA256,SHA384,SHA512,MACTripleDES,MD5,RIPEMD160" specified by the '
        "ValidateSet attribute. Supply an argument that is in the set and then try the command "
        "again."
    )
    assert err.category == "InvalidData"


def test_enum_types_take_their_documented_names():
    bound = CAT.bind("Install-AdcsCertificationAuthority", {"CAType": "enterpriserootca", "Force": True})
    assert bound["CAType"] == "EnterpriseRootCA"
    err = bind_error("Install-AdcsCertificationAuthority", {"CAType": "EnterpriseCA", "Force": True})
    assert "Unable to match the identifier name EnterpriseCA to a valid enumerator name" in err.message
    # values_from_description stand in for the enum when the docs give no list
    assert CAT.bind("Set-CsClientPolicy", {"Identity": "x", "TracingLevel": "light"})["TracingLevel"] == "Light"
    assert "Unable to match" in bind_error("Set-CsClientPolicy", {"Identity": "x", "TracingLevel": "Max"}).message
    # a 7.x-only value of a 5.1 enum
    assert "UTF8BOM" in bind_error("Get-Content", {"Path": "x", "Encoding": "UTF8BOM"}).message
    assert "Break" in bind_error("Get-Item", {"Path": "x", "ErrorAction": "Break"}).message


def test_parameter_sets():
    assert CAT.bind_set("Get-ChildItem", {"LiteralPath": "x"})[0] == "LiteralItems"
    assert CAT.bind_set("Get-ChildItem", {})[0] == "Items"  # the default set
    assert (
        CAT.bind_set("Install-AdcsCertificationAuthority", {"CertFile": "c.pfx"})[0]
        == "ExistingCertificateParameterSet"
    )
    err = bind_error("Install-AdcsCertificationAuthority", {"CACommonName": "x", "CertFile": "y"})
    assert err.message == "Parameter set cannot be resolved using the specified named parameters."
    assert err.error_id == "AmbiguousParameterSet"
    assert bind_error("Get-ChildItem", {"Path": "x", "LiteralPath": "y"}).error_id == "AmbiguousParameterSet"


def test_missing_mandatory_parameters_as_a_non_interactive_host_reports_them():
    err = bind_error("Add-CATemplate", {"Force": True})
    assert err.message == "Cannot process command because of one or more missing mandatory parameters: Name."
    assert err.error_id == "MissingMandatoryParameter"
    err = bind_error("New-Item", {"ItemType": "Directory", "Name": None})
    assert err.message == "Cannot bind argument to parameter 'Name' because it is null."


def test_common_parameters_and_should_process():
    bound = CAT.bind(
        "Remove-CATemplate",
        {
            "Name": "x",
            "Force": True,
            "WhatIf": True,
            "Verbose": True,
            "WarningAction": "SilentlyContinue",
            "OutBuffer": "3",
        },
    )
    assert bound["WhatIf"] is True and bound["OutBuffer"] == 3
    assert not CAT.supports_should_process("Get-Item")
    assert bind_error("Get-Item", {"Path": "x", "WhatIf": True}).error_id == "NamedParameterNotFound"


def test_resolve_parameter_for_static_checks():
    assert CAT.resolve_parameter("Add-CATemplate", "-na") == "Name"
    with pytest.raises(CmdletError):
        CAT.resolve_parameter("ConvertFrom-Json", "-AsHashtable")


@pytest.mark.parametrize(
    "args",
    [
        ["create", "/name", "Lync2fa", "/adminkey", "random", "/generate"],
        ["create", "/name", "x", "/PIN", "DEFAULT", "/pinpolicy", "minlen", "4", "maxlen", "8"],
        ["destroy", "/instance", "ROOT\\SMARTCARDREADER\\0000"],
    ],
)
def test_native_tpmvscmgr_documented_forms(args):
    CAT.bind_native("tpmvscmgr.exe", args)


@pytest.mark.parametrize(
    "program,args,fragment",
    [
        ("tpmvscmgr.exe", ["list"], "unknown command 'list'"),
        ("TpmVscMgr", ["create", "/name", "x", "/pin", "12345678"], "/PIN '12345678' is not one of"),
        ("tpmvscmgr.exe", ["create", "/name", "x", "/force"], "'/force' is not a documented option"),
        ("tpmvscmgr.exe", ["destroy"], "requires /instance"),
        ("certutil.exe", ["-pulsee"], "unknown verb or option '-pulsee'"),
        ("C:\\Windows\\System32\\certutil.exe", ["-f", "-pulse"], "-f is not a documented option of -pulse"),
        ("certreq", ["-zap"], "unknown verb or option '-zap'"),
    ],
)
def test_native_refuses_unknown_verbs_and_options(program, args, fragment):
    with pytest.raises(CmdletError) as info:
        CAT.bind_native(program, args)
    assert fragment in info.value.message


def test_native_certutil_and_certreq_documented_forms():
    CAT.bind_native("certutil.exe", ["-user", "-pulse"])
    CAT.bind_native("certutil", ["-config", "-", "-ping"])
    CAT.bind_native("certutil.exe", ["-setreg", "CA\\AuditFilter", "127"])
    CAT.bind_native("certreq.exe", ["-submit", "-config", "ca.contoso.com\\CA", "req.req"])
    CAT.bind_native("certreq.exe", ["req.req"])  # -submit is the default verb
    with pytest.raises(CmdletError) as info:
        CAT.bind_native("reg.exe", ["query"])
    assert info.value.category == "ObjectNotFound"
