"""The client tier's facts and decisions: what each task reads on the PC, and, in plain Python, the
diff, warnings, refusals and operations (run by core/ps: Lync2fa.SmartCard.ps1, Lync2fa.UserTask.ps1,
the registry primitives). Every setting, name and message of the tier is here, once.

What lync2fa keeps on the PC for rollback: the rollback records (``lync2fa.records``: ``client.vsc/
<card>``, ``client.cert/<SID>|<template>``, ``client.policy/<version>\\Lync\\<value>`` with the
previous value), plus the instance ID of each card it created (``VSC_KEY``, value = card name) and
the thumbprint of each certificate it enrolled (``ENROLLED_KEY``, value = ``<SID>|<template>``),
which the named operations write as soon as the card or certificate exists.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from typing import Any

from cryptography import x509

from lync2fa import execution_policy
from lync2fa import records as rec
from lync2fa.adcs import EKU, certificate_from_blob, read_certificate_blob, signed_by, user_store_key
from lync2fa.decision import Context, Decision, FactError, More
from lync2fa.hostops import (
    named,
    named_fact,
    registry_fact,
    registry_remove,
    registry_set,
    secret,
)

# The key storage provider of smart cards: where enrollment makes its keys, where the cards' key
# containers are listed.
SMART_CARD_KSP = "Microsoft Smart Card Key Storage Provider"
KEYS_TIMEOUT_S = 120  # the SYSTEM job listing the cards' key containers (client.verify has no task_timeout_s)

DEFAULT_PIN = "12345678"  # tpmvscmgr /pin default (and /puk default), printed in Microsoft's docs
POLICY = "HKLM:\\Software\\Policies\\Microsoft\\Office\\{}\\Lync"
POLICY_NAMES = ("DisableNTCredentials", "SavePassword")
WANTED = 0  # both policy values, REG_DWORD
VSC_KEY = "HKLM:\\SOFTWARE\\lync2fa\\VirtualSmartCards"
ENROLLED_KEY = "HKLM:\\SOFTWARE\\lync2fa\\Enrolled"
ENTERPRISE = "HKLM:\\SOFTWARE\\Microsoft\\EnterpriseCertificates"
TRUST_STORES = ("NTAuth", "Root")  # where a domain member keeps the enterprise CAs' certificates
MIN_SPEC = (1, 2)
MAX_KEYS = 30  # key containers a TPM virtual smart card holds
DESTROY_TIMEOUT_S = 300
SMART_CARD_LOGON = EKU["smart_card_logon"]
WRONG_PIN_HRESULT = -2146434965  # 0x8010006B SCARD_W_WRONG_CHV
READER_WAIT_S = 30  # how long a new card may take to appear under Smart card readers

# Where the user's things are (the user tasks of Lync2fa.UserTask.ps1 are given these paths).
USER_STORE = user_store_key()  # the user's My store, relative to the root of their registry hive
LYNC_FOLDER = "AppData\\Local\\Microsoft\\Office\\{}\\Lync"  # an Office version's, relative to the profile
SIP_PROFILES = "sip_*"  # the cached SIP profile folders in it (Get-ChildItem -Filter)

# The key CertEnroll makes on the card (IX509PrivateKey KeySpec, Length, ExportPolicy). A TPM
# virtual smart card holds RSA 2048-bit keys; the length is the template's minimum (key_length).
KEY_SPEC = 1  # XCN_AT_KEYEXCHANGE: the smart card logon key
EXPORT_NONE = 0  # XCN_NCRYPT_ALLOW_EXPORT_NONE: the key never leaves the card
VSC_KEY_BITS = 2048

NO_TPM = (
    "No compatible Trusted Platform Module (TPM) was found on this computer; check that the PC has a TPM "
    "and that it is enabled in the BIOS."
)
TPM_DISABLED = "The TPM is present but not enabled; enable it in the BIOS/UEFI firmware."
KEEPS_DEFAULT_PIN = (
    "The card keeps the documented default PIN 12345678 (allowed by --allow-insecure DEFAULT_PIN); "
    "have the user change it before use."
)
WRONG_PIN_HINT = "client_pin does not match the PIN set on the card."
# The user's job checks that the CA's certificate chains to a root this PC trusts before it makes a
# key (InstallResponse refusing an untrusted root would leave the key orphaned on the card). Revocation
# is not part of that check (X509RevocationMode): it asks whether the root has arrived yet, and the PC
# may not reach the CA's CRL before it has its first certificate.
CHAIN_REVOCATION_MODE = "NoCheck"
UNTRUSTED_ROOT_HRESULT = -2146762487  # 0x800B0109 CERT_E_UNTRUSTEDROOT, the job's failure when it is not trusted
# .NET composite format (PowerShell -f): {0} the CA certificate's subject, {1} the chain's status.
UNTRUSTED_CA = (
    "The certificate of {0} does not chain to a root trusted on this computer ({1}); no key was generated on the card."
)
RENEWAL_LOOP = (
    "The certificate's whole validity period is inside the renewal window: client_renew_days is not "
    "shorter than the template's validity period; lower it, or every run enrolls again."
)


# -- shared reading ----------------------------------------------------------------------------
def refusing(decide):
    """A fact Windows could not read (e.g. a user name that does not translate) refuses the step
    with Windows' own message."""

    @functools.wraps(decide)
    def wrapper(ctx: Context):
        try:
            return decide(ctx)
        except FactError as exc:
            return Decision.refuse(str(exc.error.get("message") or exc))

    return wrapper


def tpm_problem(tpm: dict) -> str | None:
    """Why the TPM cannot hold a virtual smart card (present, enabled, spec 1.2 or later)."""
    if not tpm.get("present"):
        return NO_TPM
    if not tpm.get("enabled"):
        return TPM_DISABLED
    try:
        version = tuple(int(x) for x in str(tpm.get("spec_version")).split("."))
    except ValueError:
        version = (0,)
    if version < MIN_SPEC:
        return f"The TPM specification version is {tpm.get('spec_version')}; virtual smart cards need 1.2 or later."
    return None


def _values(facts, name: str) -> dict:
    return (facts.value(name) or {}).get("values") or {}


def card_names(cards: list[dict], created: dict) -> dict[str, str]:
    """Instance ID -> card name: lync2fa's record of the cards it created first, else the reader's name."""
    recorded = {str(iid).upper(): name for name, iid in created.items()}
    return {c["instance_id"]: recorded.get(c["instance_id"].upper(), c["name"]) for c in cards}


def find_card(cards: list[dict], created: dict, name: str) -> dict | None:
    names = card_names(cards, created)
    for card in sorted(cards, key=lambda c: c["instance_id"]):
        if names[card["instance_id"]] == name:
            return card
    return None


def card_view(card: dict | None, name: str) -> dict:
    return {"name": name, "present": card is not None, "instance_id": card["instance_id"] if card else None}


def policy_view(value):
    """A policy value as reported: the DWORD's number, or 'Kind:value' for any other kind (never 0)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, list):
        return "MultiString:" + " ".join(str(v) for v in value)
    return f"String:{value}"


def _registry_kind(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "DWord"
    return "MultiString" if isinstance(value, list) else "String"


def store_entry(raw: dict) -> dict:
    """A certificate of the user's store as the fact gives it (thumbprint, registry Blob in base64)
    read: {thumbprint, der (bytes or None), container, provider}."""
    try:
        blob = base64.b64decode(raw.get("blob") or "")
    except (TypeError, ValueError):
        blob = b""
    return {"thumbprint": raw["thumbprint"], **read_certificate_blob(blob)}


def _certificate(entry: dict) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(entry["der"])
    except (KeyError, TypeError, ValueError):
        return None


def enrolled(
    session: dict, enrolled_values: dict, template: str, renew_days: int
) -> tuple[dict, x509.Certificate | None, dict | None]:
    """The certificate lync2fa enrolled for this user and template, as the user's store holds it:
    (state {status: missing|expired|renewal_due|valid, thumbprint, not_after}, certificate, store entry)."""
    thumb = enrolled_values.get(f"{session['sid']}|{template}")
    raw = next(
        (c for c in session.get("certificates") or [] if thumb and c["thumbprint"].upper() == str(thumb).upper()), None
    )
    entry = store_entry(raw) if raw else None
    cert = _certificate(entry) if entry else None
    missing = {"status": "missing", "thumbprint": None, "not_after": None}
    if entry is None or cert is None:  # without an entry there is no certificate
        return missing, None, None
    now = dt.datetime.now(dt.UTC)
    status = (
        "expired"
        if cert.not_valid_after_utc <= now
        else "renewal_due"
        if cert.not_valid_after_utc <= now + dt.timedelta(days=renew_days)
        else "valid"
    )
    state = {
        "status": status,
        "thumbprint": entry["thumbprint"].upper(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return state, cert, entry


def on_card(entry: dict | None, card: dict | None) -> bool | None:
    """The certificate's key is in a smart-card provider and in one of the configured card's key
    containers; None (unknown) when the card's containers could not be listed."""
    if not entry or "Smart Card" not in str(entry.get("provider") or "") or card is None:
        return False
    containers = card.get("containers")
    return None if containers is None else entry.get("container") in containers


def cards_fact() -> dict:
    """The cards, as the WinRM session sees them (their devices, no key containers)."""
    return named_fact("virtual_smartcards")


def keys_fact(timeout_s: int) -> dict:
    """Every card with its key containers, listed in a SYSTEM job (the smart card service refuses the
    WinRM session's network logon: SCARD_E_NO_SERVICE). Read with the step's other facts, so that it
    costs no second round; when the job writes nothing the decision names the execution policy."""
    return named_fact("virtual_smartcard_keys", provider=SMART_CARD_KSP, timeout_s=timeout_s, policy_note="")


def card_with_keys(facts, name: str) -> dict | None:
    """The configured card (from the session's list) with its key containers from the job's list;
    containers None (unknown) when the job could not list them."""
    created = _values(facts, "created")
    card = find_card(facts.value("cards") or [], created, name)
    if card is None:
        return None
    keyed = find_card(facts.value("keys") or [], created, name) if facts.ok("keys") else None
    if keyed is None:
        return {**card, "containers": None}
    return {**card, "containers": keyed.get("containers"), "containers_error": keyed.get("containers_error")}


# -- client.virtual_smartcard ----------------------------------------------------------------------
def job_policy_facts() -> dict:
    """The Group Policy execution policy, named when a scheduled job writes no result."""
    return execution_policy.fact_queries(execution_policy.GROUP_POLICY)


def policy_note(facts) -> str:
    return execution_policy.group_policy_note(execution_policy.registry_from(facts))


def vsc_facts(p: dict) -> dict:
    return {
        "tpm": named_fact("tpm"),
        "cards": cards_fact(),
        "created": registry_fact(VSC_KEY),
        rec.FACT: rec.records_fact(),
        **job_policy_facts(),
    }


@refusing
def vsc_decide(ctx: Context) -> Decision:
    p, facts = ctx.params, ctx.facts
    problem = tpm_problem(facts.value("tpm") or {})
    if problem:
        return Decision.refuse(problem)
    cards, created = facts.value("cards") or [], _values(facts, "created")
    name = p["card_name"]
    names = card_names(cards, created)
    warnings = []
    others = sorted(f"{iid} ({n})" for iid, n in names.items() if n != name)
    if others:
        warnings.append("Other virtual smart cards on this device are left alone: " + ", ".join(others))
    card = find_card(cards, created, name)
    before = card_view(card, name)
    if card is not None:
        return Decision(before, before, warnings=warnings)
    present = {c["instance_id"].upper() for c in cards}
    ours = sorted((n, iid) for n, iid in created.items() if n != name and str(iid).upper() in present)
    if ours:
        old, iid = ours[0]
        return Decision.refuse(
            f"The virtual smart card {old!r} ({iid}) that lync2fa created is still on this computer and lync2fa "
            f"keeps one card per device, so client_card_name {name!r} is not created next to it. To rename the card, "
            f"run client.rollback first (it destroys {old!r} with its certificates), or set client_card_name back "
            f"to {old!r}.",
            before,
            warnings,
        )
    pin, puk = p.get("pin") or DEFAULT_PIN, p.get("puk")
    if pin == DEFAULT_PIN and not ctx.check_mode:
        warnings.append(KEEPS_DEFAULT_PIN)
    create = ["create", "/name", name, "/pin", "default", "/adminkey", p["admin_key"], "/generate"]
    if puk:
        create += ["/puk", "default"]
    records = rec.parse(facts.get(rec.FACT))
    operations = rec.record(records, f"client.vsc/{name}", True) + [
        named(
            "vsc_create",
            create=create,
            default_pin=DEFAULT_PIN,
            pin=secret("pin") if pin != DEFAULT_PIN else None,
            puk=secret("puk") if puk else None,
            timeout_s=p["task_timeout_s"],
            reader_wait_s=READER_WAIT_S,
            policy_note=policy_note(facts),
            record_path=VSC_KEY,
            record_name=name,
        )
    ]
    return Decision(before, {"name": name, "present": True, "instance_id": None}, operations, warnings)


# -- client.lync_settings ---------------------------------------------------------------------------
def settings_facts(p: dict) -> dict:
    out = {f"policy {v}": registry_fact(POLICY.format(v), list(POLICY_NAMES)) for v in p["office_versions"]}
    out[rec.FACT] = rec.records_fact()
    if p["clear_sip_profiles"]:
        out["user"] = user_session_fact(p["user"], p["office_versions"])
    return out


def user_session_fact(user: str, office_versions=()) -> dict:
    """The user's SID, sign-in, certificates and, per Office version, SIP profile folders."""
    lync_folders = {v: LYNC_FOLDER.format(v) for v in office_versions}
    return named_fact("user_session", user=user, store=USER_STORE, lync_folders=lync_folders, sip_filter=SIP_PROFILES)


def policy_id(version: str, name: str) -> str:
    return f"client.policy/{version}\\Lync\\{name}"


@refusing
def settings_decide(ctx: Context) -> Decision:
    p, facts = ctx.params, ctx.facts
    records = rec.parse(facts.get(rec.FACT))
    before: dict[str, Any] = {"policies": {}}
    after: dict[str, Any] = {"policies": {}}
    operations: list[dict] = []
    for version in p["office_versions"]:
        values = _values(facts, f"policy {version}")
        current = {n: values.get(n) for n in POLICY_NAMES}
        before["policies"][version] = {n: policy_view(v) for n, v in current.items()}
        after["policies"][version] = {n: WANTED for n in POLICY_NAMES}
        for name, value in current.items():
            if policy_view(value) != WANTED:
                previous = None if value is None else {"type": _registry_kind(value), "value": value}
                operations += rec.record(records, policy_id(version, name), value is None, previous)
                operations.append(registry_set(POLICY.format(version), name, WANTED, "DWord"))
    if p["clear_sip_profiles"]:
        session = facts.value("user")
        folders = sorted(session.get("sip_profiles") or [])
        before["sip_profiles"], after["sip_profiles"] = folders, []
        for entry in folders:
            version, _, folder = entry.partition("\\")
            operations.append(
                named(
                    "sip_profile_remove",
                    sid=session["sid"],
                    parent=LYNC_FOLDER.format(version),
                    folder=folder,
                    like=SIP_PROFILES,
                )
            )
    return Decision(before, after, operations)


# -- client.enrollment ------------------------------------------------------------------------------
def enrollment_facts(p: dict) -> dict:
    return {
        "user": user_session_fact(p["user"]),
        "cards": cards_fact(),
        "created": registry_fact(VSC_KEY),
        "enrolled": registry_fact(ENROLLED_KEY),
        "keys": keys_fact(p["task_timeout_s"]),
        rec.FACT: rec.records_fact(),
        **job_policy_facts(),
    }


def key_too_long(bits: int) -> str:
    return (
        f"The certificate template requires keys of at least {bits} bits (templates_min_key_size), but a TPM "
        f"virtual smart card holds RSA {VSC_KEY_BITS}-bit keys: the card cannot make such a key, and the CA "
        f"refuses a shorter one (CERTSRV_E_KEY_LENGTH). Set templates_min_key_size to {VSC_KEY_BITS}."
    )


def unknown_keys(name: str, card: dict, facts) -> str:
    error = str((facts.error("keys") or {}).get("message") or card.get("containers_error") or "").strip()
    note = policy_note(facts)
    return (
        f"The key containers on the virtual smart card {name} ({card['instance_id']}) could not be listed"
        + (f" ({error})" if error else "")
        + ": whether it holds the certificate's key, and whether it has room for a new one "
        + f"({MAX_KEYS} keys at most), is unknown."
        + (f" {note}" if note else "")
    )


def not_signed_in(user: str, host: str) -> str:
    return (
        f"{user} is not signed in on {host.upper()}: the certificate is enrolled in the user's own session "
        "(CertEnroll runs as the user). Run client.enrollment again while the user is signed in."
    )


@refusing
def enrollment_decide(ctx: Context) -> Decision | More:
    p, facts = ctx.params, ctx.facts
    session = facts.value("user")
    card = card_with_keys(facts, p["card_name"])
    keys = None if card is None else card.get("containers")
    state, cert, entry = enrolled(session, _values(facts, "enrolled"), p["template"], p["renew_days"])
    warnings = []
    if card is not None and keys is None:
        warnings.append(unknown_keys(p["card_name"], card, facts))
    if state["status"] != "missing" and on_card(entry, card) is False:
        state = {"status": "missing", "thumbprint": None, "not_after": None}
    view = {"user": p["user"], "template": p["template"], "card": p["card_name"]}
    before = {**view, **state}
    if state["status"] == "valid":
        return Decision(before, before, warnings=warnings)
    desired = {**view, "status": "valid", "thumbprint": None, "not_after": None}
    if (
        state["status"] == "renewal_due"
        and cert is not None
        and (cert.not_valid_after_utc - cert.not_valid_before_utc) <= dt.timedelta(days=p["renew_days"])
    ):
        warnings.append(RENEWAL_LOOP)
    if p["key_length"] > VSC_KEY_BITS:  # a setting, not a state: refused in check mode too
        return Decision.refuse(key_too_long(p["key_length"]), before, warnings)
    problem = None
    if card is None and not ctx.assumes("client.virtual_smartcard"):
        problem = f"No virtual smart card named {p['card_name']} on this computer; run client.virtual_smartcard first."
    elif card is None and ctx.check_mode:
        warnings.append(
            f"No virtual smart card named {p['card_name']} yet (check mode): assuming "
            "client.virtual_smartcard creates it."
        )
    # A card whose creation is pending in this same request (client.virtual_smartcard): enroll on it
    # by name; whether the user is signed in is known now either way.
    if problem is None and not (card is None and ctx.check_mode):
        if not session.get("signed_in"):
            problem = not_signed_in(p["user"], ctx.host)
        elif card is not None and keys is not None and len(keys) >= MAX_KEYS:
            problem = (
                f"The virtual smart card {p['card_name']} ({card['instance_id']}) already holds {MAX_KEYS} "
                "keys, the most a TPM virtual smart card can hold (failed enrollments leave their keys "
                "behind): a new key cannot be made. Run client.rollback and client.virtual_smartcard to give "
                "the user a new card."
            )
    if problem and not ctx.check_mode:
        return Decision.refuse(problem, before, warnings)
    if problem:
        warnings.append(f"{problem} (check mode)")
    sid, records = session["sid"], rec.parse(facts.get(rec.FACT))
    entry_name = f"{sid}|{p['template']}"
    operations = rec.record(records, f"client.cert/{entry_name}", True) + [
        named(
            "user_enroll",
            user=p["user"],
            sid=sid,
            ca_config=p["ca_config"],
            template=p["template"],
            provider=p["provider"],
            key_spec=KEY_SPEC,
            key_length=p["key_length"],
            export_policy=EXPORT_NONE,
            pin=secret("pin") if p.get("pin") else DEFAULT_PIN,
            reader=card["name"] if card else p["card_name"],
            timeout_s=p["task_timeout_s"],
            hints={str(WRONG_PIN_HRESULT): WRONG_PIN_HINT},
            policy_note=policy_note(facts),
            revocation_mode=CHAIN_REVOCATION_MODE,
            untrusted_hresult=UNTRUSTED_ROOT_HRESULT,
            untrusted_message=UNTRUSTED_CA,
            record_path=ENROLLED_KEY,
            record_name=entry_name,
        )
    ]
    return Decision(before, desired, operations, warnings)


# -- client.verify ------------------------------------------------------------------------------------
def verify_facts(p: dict) -> dict:
    out = {
        "tpm": named_fact("tpm"),
        "cards": cards_fact(),
        "created": registry_fact(VSC_KEY),
        "user": user_session_fact(p["user"]),
        "enrolled": registry_fact(ENROLLED_KEY),
        "keys": keys_fact(KEYS_TIMEOUT_S),
        **job_policy_facts(),
    }
    out.update({f"policy {v}": registry_fact(POLICY.format(v), list(POLICY_NAMES)) for v in p["office_versions"]})
    out.update({f"store {s}": registry_fact(f"{ENTERPRISE}\\{s}\\Certificates") for s in TRUST_STORES})
    return out


def _store_blobs(facts) -> dict[str, dict]:
    """Per enterprise store, the fact names of its certificates' Blob values."""
    out = {}
    for store in TRUST_STORES:
        for thumb in (facts.value(f"store {store}") or {}).get("subkeys") or []:
            out[f"blob {store} {thumb}"] = registry_fact(f"{ENTERPRISE}\\{store}\\Certificates\\{thumb}", ["Blob"])
    return out


def trusted_ca_certificates(facts, ca_name: str) -> list[x509.Certificate]:
    out = []
    for name in _store_blobs(facts):
        value = (facts.get(name) or {}).get("values", {}).get("Blob")
        der = certificate_from_blob(base64.b64decode(value)) if value else None
        if der:
            cert = x509.load_der_x509_certificate(der)
            cns = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
            if ca_name.lower() in (str(c).lower() for c in cns):
                out.append(cert)
    return out


@refusing
def verify_decide(ctx: Context) -> Decision | More:
    """Reference section 12 (TPM, VSC exists, Cert on card, Client registry): fail naming every
    item that is not in place. The CA certificate comes from the PC's own enterprise stores."""
    p, facts = ctx.params, ctx.facts
    wanted = {k: q for k, q in _store_blobs(facts).items() if k not in facts.raw}
    if wanted:
        return More(wanted)
    warnings, problems = [], []
    tpm = facts.value("tpm") or {}
    card = card_with_keys(facts, p["card_name"])
    if card is not None and card.get("containers") is None:
        warnings.append(unknown_keys(p["card_name"], card, facts))
    session = facts.value("user")
    state, cert, entry = enrolled(session, _values(facts, "enrolled"), p["template"], p["renew_days"])
    certificate = {**state, "on_card": False, "chains_to_ca": False, "smart_card_logon": False}
    ca_name = p["ca_config"].partition("\\")[2]
    if cert is not None:
        try:
            ekus = [o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
        except x509.ExtensionNotFound:
            ekus = []
        authorities = trusted_ca_certificates(facts, ca_name)
        if not authorities:
            warnings.append(
                f"The certificate of the CA {p['ca_config']} is not among this computer's enterprise CA "
                f"certificates ({', '.join(TRUST_STORES)} under {ENTERPRISE}); it arrives with Group Policy "
                "(gpupdate, certutil -pulse)."
            )
        certificate.update(
            on_card=on_card(entry, card),
            smart_card_logon=SMART_CARD_LOGON in ekus,
            chains_to_ca=any(signed_by(cert, ca) for ca in authorities),
        )
    view = {
        "tpm": {k: tpm.get(k) for k in ("present", "enabled", "spec_version")},
        "card": card_view(card, p["card_name"]),
        "certificate": certificate,
        "lync": {
            v: {n: policy_view(_values(facts, f"policy {v}").get(n)) for n in POLICY_NAMES}
            for v in p["office_versions"]
        },
    }
    problem = tpm_problem(tpm)
    if problem:
        problems.append("TPM: " + problem)
    if card is None:
        problems.append(f"virtual smart card {p['card_name']!r} not found under Smart card readers")
    what = f"{p['template']} certificate of {p['user']}"
    if certificate["status"] == "missing":
        problems.append(f"no {what} on the card")
    else:
        if certificate["status"] == "expired":
            problems.append(f"the {what} expired on {certificate['not_after']}")
        elif certificate["status"] == "renewal_due":
            warnings.append(f"the {what} expires on {certificate['not_after']}: run client.enrollment to renew it")
        if certificate["on_card"] is False:
            problems.append(f"the key of the {what} is not on the smart card {p['card_name']!r}")
        elif certificate["on_card"] is None:  # verify proves; an unconfirmed key is not proof
            problems.append(
                f"whether the key of the {what} is on the smart card {p['card_name']!r} could not be confirmed"
            )
        if not certificate["chains_to_ca"]:
            problems.append(f"the {what} does not chain to the CA {p['ca_config']}")
        if not certificate["smart_card_logon"]:
            problems.append(f"the {what} lacks the Smart Card Logon EKU")
    for version, values in sorted(view["lync"].items()):
        for name, value in sorted(values.items()):
            if value != WANTED:
                problems.append(
                    f"HKLM\\Software\\Policies\\Microsoft\\Office\\{version}\\Lync {name} is "
                    f"{'not set' if value is None else value}, expected {WANTED}"
                )
    msg = "client not ready for two-factor sign-in: " + "; ".join(problems) if problems else ""
    return Decision(view, view, warnings=warnings, msg=msg, failed=bool(problems))


# -- client.rollback ----------------------------------------------------------------------------------
def rollback_facts(p: dict) -> dict:
    return {
        "cards": cards_fact(),
        "created": registry_fact(VSC_KEY),
        "enrolled": registry_fact(ENROLLED_KEY),
        rec.FACT: rec.records_fact(),
        **job_policy_facts(),
    }


@refusing
def rollback_decide(ctx: Context) -> Decision:
    """Undo only what lync2fa recorded: its certificates (out of the user's store), its cards
    (destroyed as they were created, in a SYSTEM job), the policy values (previous value back, or removed)."""
    facts = ctx.facts
    records = rec.parse(facts.get(rec.FACT))
    cards = facts.value("cards") or []
    present = {c["instance_id"].upper() for c in cards}
    created, enrolled_values = _values(facts, "created"), _values(facts, "enrolled")
    operations, certificates, names, policies = [], [], [], []
    for entry, thumb in sorted(enrolled_values.items()):
        rid = f"client.cert/{entry}"
        if rid in records:
            certificates.append(str(thumb))
            operations += [
                named("user_certificate_remove", sid=entry.split("|", 1)[0], store=USER_STORE, thumbprint=str(thumb)),
                registry_remove(ENROLLED_KEY, entry),
                rec.forget(rid),
            ]
    for rid in rec.with_prefix(records, "client.cert/"):
        if rid.split("/", 1)[1] not in enrolled_values:
            operations.append(rec.forget(rid))  # an enrollment that never finished
    for rid in rec.with_prefix(records, "client.vsc/"):
        name = rid.split("/", 1)[1]
        iid = created.get(name)
        if iid is None:  # interrupted before the instance ID was written: the one card of that name, if any
            same = [
                c["instance_id"]
                for c in cards
                if c["name"] == name and c["instance_id"].upper() not in {str(v).upper() for v in created.values()}
            ]
            iid = same[0] if len(same) == 1 else None
        names.append(name)
        if iid is not None and str(iid).upper() in present:
            operations.append(
                named("vsc_destroy", instance_id=str(iid), timeout_s=DESTROY_TIMEOUT_S, policy_note=policy_note(facts))
            )
        if name in created:
            operations.append(registry_remove(VSC_KEY, name))
        operations.append(rec.forget(rid))
    for rid, record in rec.with_prefix(records, "client.policy/").items():
        entry = rid.split("/", 1)[1]
        version, _, name = entry.partition("\\Lync\\")
        policies.append(entry)
        previous = record.get("previous")
        if isinstance(previous, dict) and "value" in previous:
            operations.append(
                registry_set(POLICY.format(version), name, previous["value"], previous.get("type", "DWord"))
            )
        else:
            operations.append(registry_remove(POLICY.format(version), name))
        operations.append(rec.forget(rid))
    before = {
        "certificates": sorted(certificates),
        "virtual_smartcards": sorted(names),
        "policy_values": sorted(policies),
    }
    return Decision(before, {"certificates": [], "virtual_smartcards": [], "policy_values": []}, operations)
