"""The AD CS directory vocabulary, once, for every tier and for the lab.

What belongs here: facts about how Active Directory Certificate Services lays out and secures its
objects that more than one place needs — the containers under ``CN=Public Key Services`` and the
DNs of templates and enrollment services, the extended-right GUIDs (Enroll, Autoenroll), the
``ActiveDirectoryRights`` bits ACEs carry, EKU OIDs, the CA's registry layout and CA types, the
built-in administrative principals and the principals that mean "everyone", and the name rule a
CA or template name must pass. Windows defines these; lync2fa only names them.

What does not: wanted settings of a task (they live with the task's decision), anything of the
lab (``lync2fa.lab`` imports from here, never the other way round).

DNs use the ``{configurationNamingContext}`` placeholder the primitive library resolves on the
host (``lync2fa.hostops.CONFIG_NC``).
"""
from __future__ import annotations

import re

from .hostops import CONFIG_NC

# -- containers and DNs -------------------------------------------------------------------
PUBLIC_KEY_SERVICES = f"CN=Public Key Services,CN=Services,{CONFIG_NC}"
TEMPLATES_CONTAINER = f"CN=Certificate Templates,{PUBLIC_KEY_SERVICES}"
ENROLLMENT_SERVICES = f"CN=Enrollment Services,{PUBLIC_KEY_SERVICES}"
CERTIFICATION_AUTHORITIES = f"CN=Certification Authorities,{PUBLIC_KEY_SERVICES}"
AIA_CONTAINER = f"CN=AIA,{PUBLIC_KEY_SERVICES}"
OID_CONTAINER = f"CN=OID,{PUBLIC_KEY_SERVICES}"
NTAUTH_DN = f"CN=NTAuthCertificates,{PUBLIC_KEY_SERVICES}"

TEMPLATE_CLASS = "pKICertificateTemplate"
ENROLLMENT_SERVICE_CLASS = "pKIEnrollmentService"
# On the enrollment service object: the templates the CA issues (Add-CATemplate writes it).
ISSUED_TEMPLATES_ATTRIBUTE = "certificateTemplates"


def template_dn(name: str) -> str:
    """The AD object of certificate template ``name`` (its cn, not its display name)."""
    return f"CN={name},{TEMPLATES_CONTAINER}"


def enrollment_service_dn(ca_name: str) -> str:
    """The pKIEnrollmentService object an Enterprise CA publishes under its common name."""
    return f"CN={ca_name},{ENROLLMENT_SERVICES}"


# -- rights (System.DirectoryServices.ActiveDirectoryRights) and extended rights -----------
CREATE_CHILD = 0x1
DELETE_CHILD = 0x2
LIST_CHILDREN = 0x4
SELF = 0x8
READ_PROPERTY = 0x10
WRITE_PROPERTY = 0x20
LIST_OBJECT = 0x80
EXTENDED_RIGHT = 0x100          # ADS_RIGHT_DS_CONTROL_ACCESS; object_type names the right
DELETE = 0x10000
READ_CONTROL = 0x20000
WRITE_DACL = 0x40000
WRITE_OWNER = 0x80000
GENERIC_READ = READ_CONTROL | LIST_CHILDREN | READ_PROPERTY | LIST_OBJECT            # 0x20094
GENERIC_WRITE = READ_CONTROL | SELF | WRITE_PROPERTY                                  # 0x20028
GENERIC_ALL = 0xF01FF

ENROLL = "0e10c968-78fb-11d2-90d4-00c04f79dc55"          # Certificate-Enrollment
AUTOENROLL = "a05b8cc2-17bc-4802-a710-e7c15ab866a2"      # Certificate-AutoEnrollment
ALL_EXTENDED_RIGHTS = "00000000-0000-0000-0000-000000000000"

# -- EKUs / application policies ----------------------------------------------------------
EKU = {
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "secure_email": "1.3.6.1.5.5.7.3.4",
    "efs": "1.3.6.1.4.1.311.10.3.4",
    "smart_card_logon": "1.3.6.1.4.1.311.20.2.2",
    "certificate_request_agent": "1.3.6.1.4.1.311.20.2.1",
    "any_purpose": "2.5.29.37.0",
}

# -- the CA's registry (what Install-AdcsCertificationAuthority writes) -------------------
CERTSVC_CONFIGURATION = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration"
# CertSvc\Configuration\<CA>\CAType (ENUM_CATYPES)
CA_TYPES = {0: "EnterpriseRootCA", 1: "EnterpriseSubordinateCA", 3: "StandaloneRootCA",
            4: "StandaloneSubordinateCA"}
CA_TYPE_CODES = {name: code for code, name in CA_TYPES.items()}

# -- Windows features (Server Manager) ----------------------------------------------------
FEATURE_CA = "ADCS-Cert-Authority"
FEATURE_WEB_ENROLLMENT = "ADCS-Web-Enrollment"

# -- principals ---------------------------------------------------------------------------
ADMIN_PRINCIPALS = ("Domain Admins", "Enterprise Admins", "Administrators", "SYSTEM",
                    "Enterprise Domain Controllers", "Domain Controllers", "Cert Publishers")
# Granting enrollment to these means every account (or computer) of the domain may enroll.
BROAD_PRINCIPALS = ("Domain Users", "Authenticated Users", "Everyone", "Domain Computers")


def is_broad(principal: str) -> bool:
    return principal.split("\\")[-1].lower() in {p.lower() for p in BROAD_PRINCIPALS}


# -- names --------------------------------------------------------------------------------
# A CA common name or a template cn lync2fa accepts (use fullmatch).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
