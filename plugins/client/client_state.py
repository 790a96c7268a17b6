"""A simulated Windows client as the lab stores it, in the shapes the scripts find on Windows:
the TPM (Win32_Tpm), virtual smart cards (ROOT\\SMARTCARDREADER\\000n devices holding real
keys), registry values, the users' certificate stores, signed-in users and their profiles."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from lync2fa.lab.directory import short_name
from lync2fa.lab.twin import TwinContext

TPM, CARDS, SESSIONS, PROFILES, USER_STORE, REGISTRY = (
    "client_tpm", "vsc", "client_session", "client_profile", "user_store", "registry")
DEFAULT_PIN = "12345678"   # tpmvscmgr /pin default (and /puk default)
POLICY = "HKLM\\Software\\Policies\\Microsoft\\Office\\{}\\Lync"
# What client.lync_settings changed, for client.rollback (value names "<version>\\Lync\\<Name>"):
POLICY_BACKUP = "HKLM\\SOFTWARE\\lync2fa\\PolicyBackup"      # the previous values, same kind
POLICY_CREATED = "HKLM\\SOFTWARE\\lync2fa\\PolicyCreated"    # values that did not exist before
VSC_RECORD = "HKLM\\SOFTWARE\\lync2fa\\VirtualSmartCards"
ENROLLED = "HKLM\\SOFTWARE\\lync2fa\\Enrolled"
READER_PREFIX = "ROOT\\SMARTCARDREADER\\"


class Registry:
    """One host's registry: values by key path, each {"type": RegistryValueKind name, "value"}."""

    def __init__(self, ctx: TwinContext):
        self.store, self.host = ctx.store, ctx.host.name

    def values(self, path: str) -> dict:
        return self.store.get(REGISTRY, f"{self.host}|{path}") or {}

    def set(self, path: str, name: str, kind: str, value) -> None:
        values = self.values(path)
        values[name] = {"type": kind, "value": value}
        self.store.put(REGISTRY, f"{self.host}|{path}", values)

    def delete(self, path: str, name: str) -> None:
        values = self.values(path)
        values.pop(name, None)
        if values:
            self.store.put(REGISTRY, f"{self.host}|{path}", values)
        else:
            self.store.delete(REGISTRY, f"{self.host}|{path}")


def policy_view(entry: dict | None):
    """A policy value as the scripts report it: the DWORD, or 'Kind:value' for another type."""
    if entry is None:
        return None
    return entry["value"] if entry["type"] == "DWord" else f"{entry['type']}:{entry['value']}"


def hash_secret(secret: str) -> dict:
    """How the lab card keeps a PIN/PUK: salted PBKDF2, never the value."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, 10_000)
    return {"salt": salt.hex(), "pbkdf2_sha256": digest.hex()}


def secret_matches(record: dict, secret: str) -> bool:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(record["salt"]), 10_000)
    return hmac.compare_digest(digest.hex(), record["pbkdf2_sha256"])


def tpm(ctx: TwinContext) -> dict:
    return ctx.store.get(TPM, ctx.host.name) or {"present": False, "enabled": False, "spec_version": None}


def tpm_problem(facts: dict) -> str | None:
    """Why the TPM cannot hold a virtual smart card (the scripts' Assert-Lync2faTpmReady)."""
    if not facts["present"]:
        return ("No compatible Trusted Platform Module (TPM) was found on this computer; check that the PC has "
                "a TPM and that it is enabled in the BIOS.")
    if not facts["enabled"]:
        return "The TPM is present but not enabled; enable it in the BIOS/UEFI firmware."
    if tuple(int(x) for x in str(facts["spec_version"]).split(".")) < (1, 2):
        return f"The TPM specification version is {facts['spec_version']}; virtual smart cards need 1.2 or later."
    return None


def cards(ctx: TwinContext) -> dict[str, dict]:
    """The host's virtual smart cards by device instance ID."""
    return (ctx.store.get(CARDS, ctx.host.name) or {}).get("cards", {})


def save_cards(ctx: TwinContext, by_instance: dict[str, dict]) -> None:
    if by_instance:
        ctx.store.put(CARDS, ctx.host.name, {"cards": by_instance})
    else:
        ctx.store.delete(CARDS, ctx.host.name)


def card_names(ctx: TwinContext) -> dict[str, str]:
    """Instance ID -> card name, as the scripts resolve it: lync2fa's record of the cards it
    created first, else the reader's PnP friendly name."""
    recorded = {v["value"]: name for name, v in Registry(ctx).values(VSC_RECORD).items()}
    return {iid: recorded.get(iid, card["friendly_name"]) for iid, card in cards(ctx).items()}


def find_card(ctx: TwinContext, name: str) -> tuple[str, dict] | tuple[None, None]:
    for iid, card_name in sorted(card_names(ctx).items()):
        if card_name == name:
            return iid, cards(ctx)[iid]
    return None, None


def user_store_key(ctx: TwinContext, sid: str) -> str:
    return f"{ctx.host.name}/{sid}"


def signed_in(ctx: TwinContext, user: str) -> bool:
    users = (ctx.store.get(SESSIONS, ctx.host.name) or {}).get("users", [])
    return short_name(user).lower() in {u.lower() for u in users}


def seed(store, estate) -> None:
    """Every lab client: a TPM 2.0, its user signed in with a cached Lync SIP profile."""
    for host in estate.in_group("clients"):
        store.put(TPM, host.name, {"present": True, "enabled": True, "spec_version": "2.0", "next_instance": 0})
        user = host.vars.get("client_user")
        if user:
            store.put(SESSIONS, host.name, {"users": [short_name(user)]})
            upn = f"{short_name(user)}@{estate.domain}"
            store.put(PROFILES, f"{host.name}/{short_name(user)}", {"sip_profiles": {"15.0": [f"sip_{upn}"]}})
