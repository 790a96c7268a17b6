"""The lab's AD CS, Server Manager and IIS components, as Windows behaves (no WinRM server): the
primitives run directly on a ``Machine`` of a freshly created estate."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography import x509

from lync2fa import adcs
from lync2fa import hostops as h
from lync2fa.lab import control
from lync2fa.lab.windows import Machine, iis, primitives
from lync2fa.lab.windows import adcs as lab_adcs
from lync2fa.lab.windows.errors import WindowsError

INSTALL_CA = {
    "CAType": "EnterpriseRootCA",
    "CACommonName": "Test Root CA",
    "KeyLength": 2048,
    "HashAlgorithmName": "sha256",
    "CryptoProviderName": "RSA#Microsoft Software Key Storage Provider",
    "ValidityPeriod": "Years",
    "ValidityPeriodUnits": 10,
    "Force": True,
}


@pytest.fixture(scope="module")
def estate_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("estate") / "lab"
    control.create(directory, clients=1)
    return directory


@pytest.fixture
def lab(estate_dir, tmp_path):
    import shutil

    copy = tmp_path / "lab"
    shutil.copytree(estate_dir, copy)
    store = control.open_store(copy)
    from lync2fa.lab.estate import Estate

    estate = Estate.load(copy)
    yield store, estate
    store.close()


def machine(lab, delegated=True) -> Machine:
    store, estate = lab
    return Machine(store, estate, estate.host("ca01"), delegated=delegated)


def apply(m: Machine, operation: dict):
    with m.store.transaction():
        return primitives.apply_operation(m, operation)


def fact(m: Machine, query: dict):
    return primitives.read_fact(m, query)


def install_ca(m: Machine) -> None:
    apply(
        m,
        h.cmdlet(
            "Install-WindowsFeature", {"Name": adcs.FEATURE_CA, "IncludeManagementTools": True}, module="ServerManager"
        ),
    )
    apply(m, h.cmdlet("Install-AdcsCertificationAuthority", INSTALL_CA, module="ADCSDeployment"))


def test_feature_install_brings_the_modules(lab):
    m = machine(lab)
    assert fact(m, h.cmdlet_fact("Get-WindowsFeature", {"Name": adcs.FEATURE_CA}, ("Name", "Installed"))) == [
        {"Name": "ADCS-Cert-Authority", "Installed": False}
    ]
    with pytest.raises(WindowsError, match="is not recognized"):
        m.invoke("Get-CATemplate", {})  # ADCSAdministration is not on the host yet
    assert apply(m, h.cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_CA}))["objects"] == 1
    assert {"ADCSDeployment", "ADCSAdministration"} <= set(m.props["modules"])
    with pytest.raises(WindowsError, match="ArgumentNotValid: The role, role service, or feature name is not valid"):
        m.invoke("Install-WindowsFeature", {"Name": "ADCS-Cert-Authorty"})


def test_enterprise_ca_is_written_where_windows_keeps_it(lab):
    m = machine(lab)
    install_ca(m)
    config = fact(m, h.registry_fact(adcs.CERTSVC_CONFIGURATION, ["Active"]))
    assert config["values"] == {"Active": "Test Root CA"}
    values = fact(m, h.registry_fact(f"{adcs.CERTSVC_CONFIGURATION}\\Test Root CA"))["values"]
    assert values["CAType"] == 0 and len(values["CACertHash"]) == 1
    thumb = values["CACertHash"][-1].replace(" ", "").upper()
    blob = fact(m, h.registry_fact(adcs.machine_store_key("MY", thumb), ["Blob"]))["values"]["Blob"]
    cert = x509.load_der_x509_certificate(adcs.certificate_from_blob(base64.b64decode(blob)))
    assert cert.subject == cert.issuer and cert.public_key().key_size == 2048
    service = fact(
        m,
        h.ad_object_fact(adcs.enrollment_service_dn("Test Root CA"), ["dNSHostName", adcs.ISSUED_TEMPLATES_ATTRIBUTE]),
    )
    assert service["exists"] and service["attributes"]["dNSHostName"] == ["ca01.corp.lync2fa.test"]
    ca = lab_adcs.ca_of(m.store, "ca01")
    assert ca["common_name"] == "Test Root CA" and ca["thumbprint"] == thumb and ca["key_pem"]
    assert ca["published"] == sorted(service["attributes"][adcs.ISSUED_TEMPLATES_ATTRIBUTE])
    with pytest.raises(WindowsError, match="already installed"):
        m.invoke("Install-AdcsCertificationAuthority", INSTALL_CA)


def test_issue7_defect2_enterprise_ca_install_needs_network_credentials(lab):
    """Issue 7 defect 2: the Enterprise CA writes the configuration partition (the double hop)."""
    m = machine(lab, delegated=False)
    apply(m, h.cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_CA}))
    with pytest.raises(WindowsError, match="An operations error occurred"):
        m.invoke("Install-AdcsCertificationAuthority", INSTALL_CA)
    assert lab_adcs.ca_of(m.store, "ca01") is None


def test_install_without_force_prompts_and_a_misspelt_parameter_fails_as_windows(lab):
    m = machine(lab)
    apply(m, h.cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_CA}))
    with pytest.raises(WindowsError, match="NonInteractive mode"):
        m.invoke("Install-AdcsCertificationAuthority", {**INSTALL_CA, "Force": False})
    with pytest.raises(WindowsError, match="A parameter cannot be found that matches parameter name 'CACommonNmae"):
        m.invoke("Install-AdcsCertificationAuthority", {**INSTALL_CA, "CACommonNmae": "x"})


def _fresh_template(m: Machine, name: str) -> None:
    with m.store.transaction():
        m.directory.create(
            adcs.TEMPLATES_CONTAINER, name, adcs.TEMPLATE_CLASS, {"whenCreated": [lab_adcs.generalized_time()]}
        )


def test_issue7_defect5_add_ca_template_does_not_see_a_template_written_moments_ago(lab):
    """Issue 7 defect 5: replication / the CA's template cache; the retry policy gets through."""
    m = machine(lab)
    install_ca(m)
    m.store.put(lab_adcs.LAB_OPTION, lab_adcs.REPLICATION_DELAY_OPTION, 0.3)
    _fresh_template(m, "Fresh")
    with pytest.raises(WindowsError, match="was not found in Active Directory") as caught:
        m.invoke("Add-CATemplate", {"Name": "Fresh", "Force": True})
    assert caught.value.category == "ObjectNotFound"
    _fresh_template(m, "Fresher")
    started = time.monotonic()
    done = apply(
        m,
        h.cmdlet(
            "Add-CATemplate",
            {"Name": "Fresher", "Force": True},
            module="ADCSAdministration",
            retry=h.retry_policy(5, 0.1, "AddCATemplateCommand"),
        ),
    )
    assert done["attempts"] >= 2 and time.monotonic() - started >= 0.2
    assert "Fresher" in lab_adcs.ca_of(m.store, "ca01")["published"]
    assert {"Name": "Fresher"} in fact(m, h.cmdlet_fact("Get-CATemplate", {}, ("Name",)))


def test_the_ca_template_cache_sees_a_new_template_after_it_reloads(lab):
    """A template created after the CA loaded its template cache (here without whenCreated, as an
    ADSI create by the templates tier) is found once the cache is older than the delay."""
    m = machine(lab)
    m.store.put(lab_adcs.LAB_OPTION, lab_adcs.REPLICATION_DELAY_OPTION, 0.3)
    install_ca(m)
    with m.store.transaction():
        m.directory.create(adcs.TEMPLATES_CONTAINER, "Cached Later", adcs.TEMPLATE_CLASS, {})
    with pytest.raises(WindowsError, match="was not found"):
        m.invoke("Add-CATemplate", {"Name": "Cached Later", "Force": True})
    time.sleep(0.35)
    apply(m, h.cmdlet("Add-CATemplate", {"Name": "Cached Later", "Force": True}))
    assert "Cached Later" in lab_adcs.ca_of(m.store, "ca01")["published"]


def test_retry_gives_up_and_other_errors_are_not_retried(lab):
    m = machine(lab)
    install_ca(m)
    with pytest.raises(WindowsError, match="not found"):
        apply(
            m,
            h.cmdlet(
                "Add-CATemplate",
                {"Name": "NoSuchTemplate", "Force": True},
                retry=h.retry_policy(2, 0.01, "AddCATemplateCommand"),
            ),
        )
    started = time.monotonic()
    with pytest.raises(WindowsError, match="A parameter cannot be found"):
        apply(
            m,
            h.cmdlet(
                "Add-CATemplate", {"Nmae": "x", "Force": True}, retry=h.retry_policy(5, 1.0, "AddCATemplateCommand")
            ),
        )
    assert time.monotonic() - started < 0.5


def test_get_ca_template_needs_network_credentials(lab):
    install_ca(machine(lab))
    with pytest.raises(WindowsError, match="An operations error occurred"):
        machine(lab, delegated=False).invoke("Get-CATemplate", {})


def test_issue7_defect6_web_enrollment_and_iis_403_4(lab):
    """Issue 7 defect 6: SSL required over http is 403.4; without an https binding /certsrv is
    not reachable over https at all."""
    m = machine(lab)
    install_ca(m)
    apply(m, h.cmdlet("Install-WindowsFeature", {"Name": adcs.FEATURE_WEB_ENROLLMENT}))
    assert iis.certsrv_status(m, "http") == 404
    apply(m, h.cmdlet("Install-AdcsWebEnrollment", {"Force": True}, module="ADCSDeployment"))
    assert fact(m, h.cmdlet_fact("Get-WebApplication", {"Site": "Default Web Site", "Name": "CertSrv"}, ("path",))) == [
        {"path": "/CertSrv"}
    ]
    assert iis.certsrv_status(m, "http") == 200
    set_ssl = {"PSPath": "IIS:\\", "Location": "Default Web Site/CertSrv", "Filter": iis.ACCESS, "Name": "sslFlags"}
    apply(m, h.cmdlet("Set-WebConfigurationProperty", {**set_ssl, "Value": "Ssl"}))
    read = h.cmdlet_fact(
        "Get-WebConfiguration",
        {"PSPath": "IIS:\\", "Location": "Default Web Site/CertSrv", "Filter": iis.ACCESS},
        ("sslFlags",),
    )
    assert fact(m, read) == [{"sslFlags": "Ssl"}]
    assert (iis.certsrv_status(m, "http"), iis.certsrv_status(m, "https")) == ("403.4", 200)
    with pytest.raises(WindowsError, match="Enum must be one of"):
        m.invoke("Set-WebConfigurationProperty", {**set_ssl, "Value": "Required"})
    m.store.put(iis.BINDINGS, "ca01", [b for b in iis.bindings(m) if b["protocol"] != "https"])
    assert iis.certsrv_status(m, "https") == "unreachable"
    assert (
        fact(m, h.cmdlet_fact("Get-WebBinding", {"Name": "Default Web Site", "Protocol": "https"}, ("protocol",))) == []
    )
    with pytest.raises(WindowsError, match="already configured"):
        m.invoke("Install-AdcsWebEnrollment", {"Force": True})


def test_issue_certificate_signs_with_the_ca_key(lab):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    m = machine(lab)
    install_ca(m)
    ca = lab_adcs.ca_of(m.store, "ca01")
    template = m.directory.get(adcs.template_dn("SmartcardLogon")) or {
        "name": "SmartcardLogon",
        "ekus": ["client_auth", "smart_card_logon"],
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    cert = lab_adcs.issue_certificate(
        ca,
        template,
        csr,
        "user01",
        {"upn": "user01@corp.lync2fa.test", "sid": "S-1-5-21-1000-2001"},
        "corp.lync2fa.test",
    )
    ca_cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    ca_cert.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
    )
    ekus = {e.dotted_string for e in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
    assert adcs.EKU["smart_card_logon"] in ekus
    lab_adcs.record_issued(m.store, "ca01", cert, "CORP\\user01", "SmartcardLogon", "cl0001")
    assert m.store.get(lab_adcs.ISSUED, f"ca01/{cert.serial_number:x}")["template"] == "SmartcardLogon"
