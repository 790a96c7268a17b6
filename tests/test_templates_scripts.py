"""The templates tier's PowerShell: what the lab cannot run is checked against what it must say."""
from __future__ import annotations

import re

import pytest

from lync2fa import api
from lync2fa.plugins.ca.builtin_templates import EKU
from lync2fa.plugins.templates import model
from lync2fa.script import render

TASKS = api.tasks()
HELPERS = (model.__file__.rsplit("/", 1)[0] + "/scripts/_template_ad.ps1.j2")


def script(task: str, **params) -> str:
    t = TASKS[task]
    return render(t.template, task, {**t.validate({}), **params}, False)


def body(text: str) -> str:
    """The statements inside the frame's try block (helpers are defined before it)."""
    return text.split("\ntry {\n", 1)[1].split("\ncatch {\n", 1)[0]


def test_script_view_keys_are_the_twins():
    text = open(HELPERS).read()
    keys = re.search(r"^\$ViewKeys = @\((.*)\)$", text, re.M).group(1)
    assert tuple(re.findall(r"'([a-z_]+)'", keys)) == model.VIEW_KEYS
    # ...and the twin's view of a template carries exactly those plus identity and publication.
    assert set(model.view({"name": "x"}, "x", False)) == {"name", "exists", "published", *model.VIEW_KEYS}


def test_script_eku_names_are_builtin_templates_eku():
    text = open(HELPERS).read()
    assert dict(re.findall(r"^\s+'([a-z_]+)' = '([0-9.]+)'$", text, re.M)) == EKU


@pytest.mark.parametrize("name, value", [
    ("NameEnrolleeSuppliesSubject", 0x00000001), ("NameAltRequireUpn", 0x02000000),
    ("NameRequireDirectoryPath", 0x80000000), ("EnrollPendAllRequests", 0x00000002),
    ("EnrollUserInteractionRequired", 0x00000100), ("EnrollNoSecurityExtension", 0x00080000),
    ("KeyExportable", 0x00000010)])
def test_flag_values_are_ms_crtd(name, value):
    """msPKI-* flag bits as MS-CRTD defines them."""
    text = open(HELPERS).read()
    assert int(re.search(rf"^\${name} = (0x[0-9A-F]+)$", text, re.M).group(1), 16) == value


def test_smartcard_script_duplicates_registers_and_publishes():
    text = script("templates.smartcard")
    for needle in [
        "CN=Public Key Services,CN=Services,", "'Certificate Templates'", "'pKICertificateTemplate'",
        "'msPKI-Enterprise-Oid'", "'msPKI-Cert-Template-OID'", "'pKIExtendedKeyUsage'",
        "'msPKI-Certificate-Application-Policy'", "'msPKI-Minimal-Key-Size'", "'pKIDefaultCSPs'",
        "'msPKI-Private-Key-Flag'", "'msPKI-Certificate-Name-Flag'", "'msPKI-Enrollment-Flag'",
        "'msPKI-RA-Signature'", "'msPKI-RA-Application-Policies'", "'msPKI-Certificate-Policy'",
        "'pKIExpirationPeriod'", "'pKIOverlapPeriod'", "'msPKI-Template-Schema-Version'",
        "'msPKI-Template-Minor-Revision'", "AccountDomainAdminsSid", "SetOwner(",
        "Add-CATemplate -Name $name -Force", "Remove-CATemplate -Name $name -Force",
        "-RecordId ('template/' + $name)", "$EnrollRight", "$AutoenrollRight",
    ]:
        assert needle in text, needle
    # Periods are negative FILETIME intervals (100 ns ticks), 8 bytes.
    assert "[long]864000000000" in text and "[BitConverter]::GetBytes([long](-1 * $Days * $TicksPerDay))" in text
    # Nothing is written in check mode: every writer sits behind "if (-not $CheckMode)".
    writes = body(text)
    guarded = writes[writes.index("if (-not $CheckMode) {"):]
    for call in ("New-TemplateFromSource -Source", "Set-TemplateAttributes -Entry", "Set-TemplateGrants -Entry",
                 "Add-CATemplate"):
        assert call in guarded and call not in writes[:writes.index("if (-not $CheckMode) {")], call


def test_rollback_script_touches_only_created_templates():
    text = script("templates.rollback")
    assert "StartsWith('template/')" in text and "Remove-Lync2faCreated -Id $id" in text
    assert "Remove-CATemplate -Name $name -Force" in text and "$entry.DeleteTree()" in text
    assert "Find-OidEntry -Oid $oid" in text


def test_created_marker_is_written_before_anything_is_committed():
    """A failure after the OID or template object is committed must leave a marker behind, so
    that rollback removes them and the next apply does not adopt them as pre-existing."""
    text = script("templates.smartcard")
    create = text[text.index("function New-TemplateFromSource"):text.index("function Test-Differs")]
    marker = create.index("Set-Lync2faRecord -Id $RecordId -Created $true -Previous ([ordered]@{ oid = $oid })")
    assert marker < create.index("New-TemplateOid -Oid $oid") < create.index(".CommitChanges()")
    assert create.index("Get-TemplateOid -RecordId $RecordId") < marker, "the OID is chosen first, then recorded"
    # New-TemplateOid commits the OID object: it runs only from New-TemplateFromSource, after the record.
    assert text.count("New-TemplateOid -Oid") == 1
    oid_commit = text[text.index("function New-TemplateOid"):text.index("function New-TemplateFromSource")]
    assert ".CommitChanges()" in oid_commit and "Find-OidEntry -Oid $Oid" in oid_commit
    # A retry reuses the OID an earlier attempt recorded rather than registering a second one.
    reuse = text[text.index("function Get-TemplateOid"):text.index("function New-TemplateOid")]
    assert reuse.index("return [string]$record.previous.oid") < reuse.index("Get-Random")
    assert "Set-Lync2faCreated" not in body(text)


def test_rollback_script_tolerates_a_marker_without_objects():
    text = script("templates.rollback")
    loop = text[text.index("foreach ($id in $ids)"):]
    assert "if ($null -ne $entry) {" in loop, "a template that was never made is not an error"
    assert "$oids += [string]$record.previous.oid" in loop, "the recorded OID is removed even without its template"
    removal = loop[loop.index("foreach ($oid in"):]
    assert removal.index("if ($null -ne $oidEntry) {") < removal.index("$oidEntry.DeleteTree()")


def test_audit_script_only_reads():
    text = script("templates.audit")
    assert "Get-CATemplate" in text
    for writer in ("CommitChanges", "Add-CATemplate", "Remove-CATemplate", "DeleteTree", ".Children.Add("):
        assert writer not in text, writer
    assert "Set-Lync2faCreated" not in body(text)


def test_ldap_filter_values_are_escaped():
    text = open(HELPERS).read()
    assert "(msPKI-Cert-Template-OID=' + (ConvertTo-LdapValue -Value $Oid) + '))" in text
