"""The client tier's lab twin: the client.* scripts' contract on the simulated clients.

Same parameters in, same before/after keys and failure messages out as the scripts. The card
keeps a real RSA key (never returned); the CA twin's key signs the user's certificate.
"""
from __future__ import annotations

import datetime as dt
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from lync2fa.lab.directory import short_name
from lync2fa.lab.twin import TwinContext, TwinFailure, outcome

from ..ca.builtin_templates import EKU
from . import client_state as cs
from . import issue
from .client_state import Registry

POLICY_NAMES = ("DisableNTCredentials", "SavePassword")
UNTRANSLATABLE = "Some or all identity references could not be translated."
KEEPS_DEFAULT_PIN = ("The card keeps the documented default PIN 12345678 (allowed by --allow-insecure DEFAULT_PIN); "
                     "have the user change it before use.")
WRONG_PIN = ("The card cannot be accessed because the wrong PIN was presented. 0x8010006b (-2146434965 "
             "SCARD_W_WRONG_CHV); client_pin does not match the PIN set on the card.")
CA_UNREACHABLE = ("CCertRequest::Submit: The RPC server is unavailable. 0x800706ba "
                  "(WIN32: 1722 RPC_S_SERVER_UNAVAILABLE)")
CA_CERT_UNREACHABLE = CA_UNREACHABLE.replace("::Submit:", "::GetCACertificate:")
UNSUPPORTED_TEMPLATE = ("The requested certificate template is not supported by this CA. 0x80094800 "
                        "(-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)")
TEMPLATE_DENIED = ("Denied by Policy Module 0x80094012, The permissions on the certificate template do not allow "
                   "the current user to enroll for this type of certificate.")
KEY_LENGTH = ("The public key does not meet the minimum size required by the specified certificate template. "
              "0x80094811 (-2146875375 CERTSRV_E_KEY_LENGTH)")
SIGNATURES = ("The request is missing one or more required signatures. 0x80094809 "
              "(-2146875383 CERTSRV_E_SIGNATURE_COUNT)")
RENEWAL_LOOP = ("The new certificate is already inside the renewal window: client_renew_days is not shorter than "
                "the template's validity period; lower it, or every run enrolls again.")
PENDING = "The certificate request is pending: Taken Under Submission (the template requires CA manager approval)."


def _user(ctx: TwinContext, user: str) -> tuple[str, dict]:
    sam = short_name(user)
    record = ctx.store.get("ad_user", sam)
    if record is None:
        raise TwinFailure(UNTRANSLATABLE)
    return sam, record


def _card_view(ctx: TwinContext, name: str) -> dict:
    iid, _ = cs.find_card(ctx, name)
    return {"name": name, "present": iid is not None, "instance_id": iid}


def _not_signed_in(p: dict, host: str) -> str:
    return (f"{p['user']} is not signed in on {host}: the certificate is enrolled in the user's own session "
            "(CertEnroll runs as the user). Run client.enrollment again while the user is signed in.")


# -- client.virtual_smartcard ------------------------------------------------------------------
def virtual_smartcard(ctx: TwinContext, p: dict) -> dict:
    problem = cs.tpm_problem(cs.tpm(ctx))
    if problem:
        raise TwinFailure(problem)
    name = p["card_name"]
    others = sorted(f"{iid} ({n})" for iid, n in cs.card_names(ctx).items() if n != name)
    if others:
        ctx.warn("Other virtual smart cards on this device are left alone: " + ", ".join(others))
    before = _card_view(ctx, name)
    if before["present"]:
        return outcome(before, before, warnings=ctx.warnings)
    if ctx.check_mode:
        return outcome(before, {"name": name, "present": True, "instance_id": None}, warnings=ctx.warnings)
    tpm = cs.tpm(ctx)
    iid = f"{cs.READER_PREFIX}{tpm.get('next_instance', 0):04d}"
    ctx.store.put(cs.TPM, ctx.host.name, {**tpm, "next_instance": tpm.get("next_instance", 0) + 1})
    pin = p.get("pin") or cs.DEFAULT_PIN
    if pin == cs.DEFAULT_PIN:
        ctx.warn(KEEPS_DEFAULT_PIN)
    by_instance = cs.cards(ctx)
    by_instance[iid] = {"friendly_name": name, "pin": cs.hash_secret(pin), "admin_key": p["admin_key"],
                        "puk": cs.hash_secret(p["puk"]) if p.get("puk") else None, "containers": {}}
    cs.save_cards(ctx, by_instance)
    Registry(ctx).set(cs.VSC_RECORD, name, "String", iid)
    ctx.mark_created(f"vsc/{name}")
    return outcome(before, _card_view(ctx, name), warnings=ctx.warnings)


# -- client.lync_settings ----------------------------------------------------------------------
def _save_previous(reg: Registry, version: str, name: str) -> None:
    """Keep what was there before lync2fa's first change, for client.rollback."""
    entry = f"{version}\\Lync\\{name}"
    if entry in reg.values(cs.POLICY_BACKUP) or entry in reg.values(cs.POLICY_CREATED):
        return
    previous = reg.values(cs.POLICY.format(version)).get(name)
    if previous is None:
        reg.set(cs.POLICY_CREATED, entry, "DWord", 1)
    else:
        reg.set(cs.POLICY_BACKUP, entry, previous["type"], previous["value"])


def _sip_profiles(ctx: TwinContext, p: dict) -> tuple[str, list[str]]:
    sam, _ = _user(ctx, p["user"])
    profile = ctx.store.get(cs.PROFILES, f"{ctx.host.name}/{sam}") or {"sip_profiles": {}}
    return sam, sorted(f"{v}\\{folder}" for v in p["office_versions"] for folder in profile["sip_profiles"].get(v, []))


def lync_settings(ctx: TwinContext, p: dict) -> dict:
    reg = Registry(ctx)
    before, after = {"policies": {}}, {"policies": {}}
    for version in p["office_versions"]:
        path = cs.POLICY.format(version)
        current = {n: cs.policy_view(reg.values(path).get(n)) for n in POLICY_NAMES}
        before["policies"][version] = current
        after["policies"][version] = {n: 0 for n in POLICY_NAMES}
        for name in POLICY_NAMES:
            if current[name] != 0 and not ctx.check_mode:
                _save_previous(reg, version, name)
                reg.set(path, name, "DWord", 0)
    if p["clear_sip_profiles"]:
        sam, folders = _sip_profiles(ctx, p)
        before["sip_profiles"], after["sip_profiles"] = folders, []
        if folders and not ctx.check_mode:
            key = f"{ctx.host.name}/{sam}"
            profile = ctx.store.get(cs.PROFILES, key)
            kept = {v: f for v, f in profile["sip_profiles"].items() if v not in p["office_versions"]}
            if kept:
                ctx.store.put(cs.PROFILES, key, {**profile, "sip_profiles": kept})
            else:
                ctx.store.delete(cs.PROFILES, key)
    return outcome(before, after, warnings=ctx.warnings)


# -- the user's certificate ------------------------------------------------------------------
def _stored_certificate(ctx: TwinContext, sid: str, template: str) -> tuple[str | None, dict | None]:
    thumb = (Registry(ctx).values(cs.ENROLLED).get(f"{sid}|{template}") or {}).get("value")
    store = ctx.store.get(cs.USER_STORE, cs.user_store_key(ctx, sid)) or {"My": {}}
    return thumb, store["My"].get(thumb) if thumb else None


def _validity(cert: x509.Certificate, renew_days: int) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    if cert.not_valid_after_utc <= now:
        return "expired"
    return "renewal_due" if cert.not_valid_after_utc <= now + dt.timedelta(days=renew_days) else "valid"


def _enrolled(ctx: TwinContext, sid: str, template: str, renew_days: int) -> dict:
    thumb, entry = _stored_certificate(ctx, sid, template)
    if entry is None:
        return {"status": "missing", "thumbprint": None, "not_after": None}
    cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    return {"status": _validity(cert, renew_days), "thumbprint": thumb,
            "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _find_ca(ctx: TwinContext, ca_config: str) -> tuple[str, dict]:
    fqdn, _, name = ca_config.partition("\\")
    for host in ctx.estate.in_group("ca"):
        ca = ctx.store.get("ca", host.name) if host.fqdn.lower() == fqdn.lower() else None
        if ca and ca.get("common_name") == name:
            return host.name, ca
    raise TwinFailure(CA_UNREACHABLE)


def _may_enroll(template: dict, sam: str, user: dict) -> bool:
    principals = {sam.lower(), "authenticated users", "everyone", *(g.lower() for g in user.get("groups", []))}
    return any("Enroll" in ace["rights"] and short_name(ace["principal"]).lower() in principals
               for ace in template.get("acl", []))


def _enroll(ctx: TwinContext, p: dict, sam: str, user: dict, iid: str, card: dict) -> str:
    """The enrollment script's path: the PIN opens the card, the request goes to the CA, the
    CA's checks, the issued certificate installed on the card and in the user's store.
    Returns the thumbprint."""
    if not cs.secret_matches(card["pin"], p.get("pin") or cs.DEFAULT_PIN):
        raise TwinFailure(WRONG_PIN)
    ca_host, ca = _find_ca(ctx, p["ca_config"])
    template = ctx.store.get("template", p["template"])
    if template is None or p["template"] not in ca.get("published", []):
        raise TwinFailure(UNSUPPORTED_TEMPLATE)
    if template.get("providers") and p["provider"] not in template["providers"]:
        raise TwinFailure(f"Certificate template {p['template']} does not allow the key provider {p['provider']} "
                          f"(it allows {', '.join(template['providers'])}); set client_provider to one of them.")
    if int(template.get("min_key_size") or 2048) > 2048:
        raise TwinFailure(KEY_LENGTH)
    if not _may_enroll(template, sam, user):
        raise TwinFailure(TEMPLATE_DENIED)
    if int(template.get("authorized_signatures") or 0) > 0:
        raise TwinFailure(SIGNATURES)
    if template.get("manager_approval"):
        raise TwinFailure(PENDING)
    key = issue.new_card_key()
    cert = issue.issue(ca, template, issue.request(key, p["template"]), sam, user, ctx.estate.domain)
    thumb = issue.thumbprint(cert)
    container = str(uuid.uuid4())
    by_instance = cs.cards(ctx)
    by_instance[iid]["containers"][container] = {"key_pem": issue.key_pem(key)}
    cs.save_cards(ctx, by_instance)
    store_key = cs.user_store_key(ctx, user["sid"])
    store = ctx.store.get(cs.USER_STORE, store_key) or {"My": {}}
    store["My"][thumb] = {"cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
                          "provider": p["provider"], "container": container, "reader": iid}
    ctx.store.put(cs.USER_STORE, store_key, store)
    Registry(ctx).set(cs.ENROLLED, f"{user['sid']}|{p['template']}", "String", thumb)
    ctx.mark_created(f"cert/{thumb}")
    ctx.store.put("ca_issued", f"{ca_host}/{cert.serial_number:x}",
                  {"requester": f"{ctx.estate.netbios}\\{sam}", "template": p["template"], "thumbprint": thumb,
                   "client": ctx.host.name})
    return thumb


# -- client.enrollment -------------------------------------------------------------------------
def enrollment(ctx: TwinContext, p: dict) -> dict:
    sam, user = _user(ctx, p["user"])
    view = {"user": p["user"], "template": p["template"], "card": p["card_name"]}
    before = {**view, **_enrolled(ctx, user["sid"], p["template"], p["renew_days"])}
    if before["status"] == "valid":
        return outcome(before, before, warnings=ctx.warnings)
    desired = {**view, "status": "valid", "thumbprint": None, "not_after": None}
    iid, card = cs.find_card(ctx, p["card_name"])
    problem = None
    if card is None:
        if ctx.check_mode:
            ctx.warn(f"No virtual smart card named {p['card_name']} yet (check mode): assuming "
                     "client.virtual_smartcard creates it.")
            return outcome(before, desired, warnings=ctx.warnings)
        problem = (f"No virtual smart card named {p['card_name']} on this computer; run client.virtual_smartcard "
                   "first.")
    elif not cs.signed_in(ctx, p["user"]):
        problem = _not_signed_in(p, ctx.host.name.upper())   # $env:COMPUTERNAME
    if ctx.check_mode:
        if problem:
            ctx.warn(f"{problem} (check mode)")
        return outcome(before, desired, warnings=ctx.warnings)
    if problem:
        raise TwinFailure(problem)
    _enroll(ctx, p, sam, user, iid, card)
    after = {**view, **_enrolled(ctx, user["sid"], p["template"], p["renew_days"])}
    if after["status"] != "valid":
        ctx.warn(RENEWAL_LOOP)
    return outcome(before, after, warnings=ctx.warnings)


# -- client.verify -----------------------------------------------------------------------------
def _chains_to(cert: x509.Certificate, ca: dict | None) -> bool:
    """The script's test: the issuer in the built chain is the CA's own certificate (read from
    the CA), i.e. that certificate's key signed this one - a CA of the same name does not do."""
    if ca is None:
        return False
    ca_cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    if cert.issuer != ca_cert.subject:
        return False
    try:
        ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                    cert.signature_hash_algorithm)
    except Exception:
        return False
    now = dt.datetime.now(dt.timezone.utc)
    return ca_cert.not_valid_before_utc <= now <= ca_cert.not_valid_after_utc


def _certificate_facts(ctx: TwinContext, p: dict, sid: str) -> dict:
    facts = {**_enrolled(ctx, sid, p["template"], p["renew_days"]),
             "on_card": False, "chains_to_ca": False, "smart_card_logon": False}
    _, entry = _stored_certificate(ctx, sid, p["template"])
    if entry is None:
        return facts
    cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    try:
        ekus = [o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        ekus = []
    try:
        ca = _find_ca(ctx, p["ca_config"])[1]
    except TwinFailure:
        ca = None
        ctx.warn(f"Cannot read the CA certificate from {p['ca_config']}: {CA_CERT_UNREACHABLE}")
    return {**facts, "on_card": "Smart Card" in entry["provider"], "chains_to_ca": _chains_to(cert, ca),
            "smart_card_logon": EKU["smart_card_logon"] in ekus}


def verify(ctx: TwinContext, p: dict) -> dict:
    _, user = _user(ctx, p["user"])
    tpm = cs.tpm(ctx)
    reg = Registry(ctx)
    facts = {
        "tpm": {k: tpm.get(k) for k in ("present", "enabled", "spec_version")},
        "card": _card_view(ctx, p["card_name"]),
        "certificate": _certificate_facts(ctx, p, user["sid"]),
        "lync": {v: {n: cs.policy_view(reg.values(cs.POLICY.format(v)).get(n)) for n in POLICY_NAMES}
                 for v in p["office_versions"]},
    }
    return outcome(facts, facts, warnings=ctx.warnings)


# -- client.rollback ---------------------------------------------------------------------------
def rollback(ctx: TwinContext, p: dict) -> dict:
    reg = Registry(ctx)
    enrolled = {entry: v["value"] for entry, v in reg.values(cs.ENROLLED).items()
                if ctx.was_created(f"cert/{v['value']}")}
    cards = {name: v["value"] for name, v in reg.values(cs.VSC_RECORD).items() if ctx.was_created(f"vsc/{name}")}
    backups, created = reg.values(cs.POLICY_BACKUP), reg.values(cs.POLICY_CREATED)
    before = {"certificates": sorted(enrolled.values()), "virtual_smartcards": sorted(cards),
              "policy_values": sorted({*backups, *created})}
    after = {"certificates": [], "virtual_smartcards": [], "policy_values": []}
    if ctx.check_mode:
        return outcome(before, after, warnings=ctx.warnings)
    for entry, thumb in enrolled.items():
        sid = entry.split("|", 1)[0]
        store = ctx.store.get(cs.USER_STORE, cs.user_store_key(ctx, sid)) or {"My": {}}
        store["My"].pop(thumb, None)
        ctx.store.put(cs.USER_STORE, cs.user_store_key(ctx, sid), store)
        reg.delete(cs.ENROLLED, entry)
        ctx.unmark_created(f"cert/{thumb}")
    by_instance = cs.cards(ctx)
    for name, iid in cards.items():
        by_instance.pop(iid, None)   # tpmvscmgr destroy /instance <id>: the card and its keys are gone
        reg.delete(cs.VSC_RECORD, name)
        ctx.unmark_created(f"vsc/{name}")
    cs.save_cards(ctx, by_instance)
    for entry in sorted({*backups, *created}):
        version_key, name = entry.rsplit("\\", 1)
        path = cs.POLICY.format(version_key.split("\\", 1)[0])
        if entry in backups:
            reg.set(path, name, backups[entry]["type"], backups[entry]["value"])
            reg.delete(cs.POLICY_BACKUP, entry)
        else:
            reg.delete(path, name)
            reg.delete(cs.POLICY_CREATED, entry)
    return outcome(before, after, warnings=ctx.warnings)
