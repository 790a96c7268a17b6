"""The TPM (TrustedPlatformModule module, Win32_Tpm) and its virtual smart cards.

A card is a ``ROOT\\SMARTCARDREADER\\000n`` device whose PnP name is the ``/name`` given to
``tpmvscmgr create``; it holds a PIN (kept as salted PBKDF2, never the value), a PUK or none, the
admin key kind, and key containers with real RSA 2048 keys, at most ``MAX_CONTAINERS``. Its PC/SC
reader name is not its PnP name: the smart card service names a reader after the device's friendly
name plus an index that keeps reader names unique ("Microsoft Virtual Smart Card 0", "Lync2FA 0",
a second "Lync2FA" card "Lync2FA 1"); lync2fa goes from one to the other only through
Lync2faNativeMethods.Reader, which :func:`pcsc_reader` models.
tpmvscmgr has no list verb; a TPM holds at most ``MAX_CARDS`` cards. State: kind ``vsc`` per host,
``{"cards": {instance id: card}}``; the TPM itself is the host property ``tpm``.
The smart card service refuses a WinRM network logon (Lync2fa.SmartCard.ps1's header): readers, key
containers and PINs are reached only from a scheduled task (SYSTEM or the user's session), and the
lab refuses them from the session as Lync2faNativeMethods reports it (:func:`card_service`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..estate import Estate
from ..state import EstateStore
from .errors import WindowsError
from .hosts import seeds
from .machine import HOST_PROPS, Machine, named_fact, named_operation, native, simulates

CARDS = "vsc"
READER_PREFIX = "ROOT\\SMARTCARDREADER\\"
DEFAULT_PIN = "12345678"  # tpmvscmgr /pin default, /puk default
MAX_CARDS = 10  # virtual smart cards per TPM
MAX_CONTAINERS = 30  # key containers per TPM virtual smart card
# Windows' fact, modelled apart from the client tier's VSC_KEY_BITS (the lab models Windows, the tier knows it).
VSC_KEY_BITS = 2048  # the one RSA key size a TPM virtual smart card makes
WRONG_PIN = -2146434965  # 0x8010006B SCARD_W_WRONG_CHV
CARD_FULL = -2146435032  # 0x80100028 SCARD_E_WRITE_TOO_MANY
BAD_FLAGS = -2146893815  # 0x80090009 NTE_BAD_FLAGS
NO_SERVICE = 0x8010001D  # SCARD_E_NO_SERVICE: "The Smart Card Resource Manager is not running."
INVALID_OPERATION = -2146233079  # 0x80131509 COR_E_INVALIDOPERATION
INDEX = re.compile(r"[0-9]+")  # what the smart card service appends to a reader's friendly name


@seeds
def seed_tpm(store: EstateStore, estate: Estate) -> None:
    """Every lab client: a TPM 2.0, present, enabled and ready."""
    for host in estate.in_group("clients"):
        props = store.get(HOST_PROPS, host.name) or {}
        store.put(
            HOST_PROPS,
            host.name,
            {**props, "tpm": {"present": True, "ready": True, "enabled": True, "spec_version": "2.0, 0, 1.38"}},
        )


def tpm_of(machine: Machine) -> dict:
    return machine.props.get("tpm") or {"present": False, "ready": False}


@simulates("Get-Tpm")
def get_tpm(machine: Machine, p: dict) -> dict:
    tpm = tpm_of(machine)
    return {
        "TpmPresent": bool(tpm.get("present")),
        "TpmReady": bool(tpm.get("ready")),
        "TpmEnabled": bool(tpm.get("present")),
        "TpmActivated": bool(tpm.get("present")),
        "TpmOwned": bool(tpm.get("ready")),
    }


@named_fact("tpm")
def tpm_fact(machine: Machine) -> dict:
    """Win32_Tpm as Read-Lync2faTpm reports it (no instance: not present)."""
    tpm = tpm_of(machine)
    if not tpm.get("present"):
        return {"present": False, "enabled": False, "spec_version": None}
    spec = str(tpm.get("spec_version") or "2.0").split(",")[0].strip()
    return {"present": True, "enabled": bool(tpm.get("enabled", tpm.get("ready", True))), "spec_version": spec}


# -- cards --------------------------------------------------------------------------------
def hash_secret(secret: str) -> dict:
    salt = secrets.token_bytes(16)
    return {"salt": salt.hex(), "pbkdf2_sha256": hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, 10_000).hex()}


def secret_matches(record: dict | None, secret: str) -> bool:
    if not record:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(record["salt"]), 10_000)
    return hmac.compare_digest(digest.hex(), record["pbkdf2_sha256"])


def cards(machine: Machine) -> dict[str, dict]:
    return (machine.store.get(CARDS, machine.name) or {}).get("cards", {})


def save_cards(machine: Machine, by_instance: dict[str, dict]) -> None:
    if by_instance:
        machine.store.put(CARDS, machine.name, {"cards": by_instance})
    else:
        machine.store.delete(CARDS, machine.name)


def reader_name(card: dict) -> str:
    """The card's PC/SC reader name (a card kept before the lab recorded it: index 0)."""
    return card.get("reader") or f"{card['name']} 0"


def _new_reader_name(by_instance: dict[str, dict], name: str) -> str:
    """The smart card service's name for a new reader: its friendly name and the lowest free index."""
    taken = {reader_name(card).lower() for card in by_instance.values()}
    return next(f"{name} {n}" for n in range(len(by_instance) + 1) if f"{name} {n}".lower() not in taken)


def card_service(machine: Machine, call: str | None = None) -> None:
    """SCardEstablishContext from a WinRM network logon: the smart card service does not serve it
    (SCARD_E_NO_SERVICE). Lync2faNativeMethods.Check throws it as an InvalidOperationException
    (Reader, Containers and Change all begin so); a CertEnroll ``call`` as its COMException. A
    scheduled task's logon is served."""
    if not machine.network_logon:
        return
    if call is None:
        raise WindowsError(
            f"SCardEstablishContext failed: 0x{NO_SERVICE:08x}",
            "NotSpecified",
            "InvalidOperationException",
            INVALID_OPERATION,
        )
    raise WindowsError(
        f"{call}: The Smart Card Resource Manager is not running. 0x{NO_SERVICE:08x} "
        f"({NO_SERVICE - 2**32} SCARD_E_NO_SERVICE)",
        "NotSpecified",
        "COMException",
        NO_SERVICE - 2**32,
    )


def pcsc_reader(machine: Machine, name: str) -> str:
    """Lync2faNativeMethods.Reader(name) (core/ps/Lync2fa.NativeMethods.cs): of SCardListReaders'
    names, the one equal to ``name``, else the single one that is ``name``, a space and an index;
    else the InvalidOperationException it throws."""
    card_service(machine)
    readers = [reader_name(card) for _, card in sorted(cards(machine).items())]
    for reader in readers:
        if reader.lower() == name.lower():
            return reader
    indexed = [r for r in readers if r.lower().startswith(name.lower() + " ") and INDEX.fullmatch(r[len(name) + 1 :])]
    if len(indexed) != 1:
        raise WindowsError(
            f"Expected one smart card reader named after '{name}', found {len(indexed)}.",
            "NotSpecified",
            "InvalidOperationException",
            INVALID_OPERATION,
        )
    return indexed[0]


def card_by_name(machine: Machine, name: str) -> tuple[str, dict]:
    """The card a PnP name leads to as lync2fa goes there: Lync2faNativeMethods.Reader's PC/SC
    reader, then the card in it (raises Reader's exception when no single reader matches)."""
    reader = pcsc_reader(machine, name)
    for iid, card in sorted(cards(machine).items()):
        if reader_name(card) == reader:
            return iid, card
    raise no_smartcard()


def _containers(machine: Machine, card: dict) -> list[str] | None:
    """Get-Lync2faVirtualSmartCards: the containers in the reader Reader(PnP name) finds; none
    (null) when Reader throws (no single such reader; the smart card service refuses the logon)."""
    try:
        _, found = card_by_name(machine, card["name"])
    except WindowsError:
        return None
    return sorted(found.get("containers", {}))


def virtual_smartcards(machine: Machine, provider: str | None = None) -> list[dict]:
    """Get-Lync2faVirtualSmartCards: the cards, and with a key storage provider, the key containers
    on each (NCryptEnumKeys), which only a scheduled task's logon can list."""
    return [
        {
            "instance_id": iid,
            "name": card["name"],
            "containers": _containers(machine, card) if provider else None,
            "containers_error": None,
        }
        for iid, card in sorted(cards(machine).items())
    ]


@named_fact("virtual_smartcards")
def virtual_smartcards_fact(machine: Machine) -> list[dict]:
    """The cards as the session sees them (PnP devices; no key containers: see ``card_keys``)."""
    return virtual_smartcards(machine)


@named_fact("virtual_smartcard_keys")
def card_keys(machine: Machine, provider: str, timeout_s: int = 300, policy_note: str = "") -> list[dict]:
    """Get-Lync2faCardKeys: the cards with their key containers, listed in a SYSTEM job."""
    from .scheduled_tasks import run_job

    def job() -> dict:
        return {"ok": True, "cards": virtual_smartcards(machine, provider)}

    return run_job(machine, "SYSTEM", job, timeout_s, policy_note=policy_note)["cards"]


def change_pin(machine: Machine, iid: str, current: str, new: str, puk: bool = False) -> None:
    """CardChangeAuthenticator(Ex) through the minidriver: the current PIN (or PUK) must match."""
    card_service(machine)
    by_instance = cards(machine)
    card = by_instance[iid]
    field = "puk" if puk else "pin"
    if not secret_matches(card.get(field), current):
        raise WindowsError(
            "The card cannot be accessed because the wrong PIN was presented.",
            "NotSpecified",
            "COMException",
            WRONG_PIN,
        )
    card[field] = hash_secret(new)
    save_cards(machine, by_instance)


def no_smartcard() -> WindowsError:
    """SCARD_E_NO_SMARTCARD: the card (or the reader asked for) is not there."""
    return WindowsError(
        "The smart card cannot be found. 0x8010002c (-2146435028 SCARD_E_NO_SMARTCARD)",
        "NotSpecified",
        "COMException",
        -2146435028,
    )


def new_key_container(
    machine: Machine, iid: str, pin: str, bits: int = VSC_KEY_BITS, key_spec: int = 1, export_policy: int = 0
) -> tuple[str, rsa.RSAPrivateKey]:
    """CX509PrivateKey.Create on the card: a key size the card supports, the PIN opens it, the card
    must have room (30 keys). The key spec and export policy asked for are kept with the container."""
    card_service(machine, "CertEnroll::CX509PrivateKey::Create")
    by_instance = cards(machine)
    card = by_instance.get(iid)
    if card is None:
        raise no_smartcard()
    if bits != VSC_KEY_BITS:
        # The smart card provider takes the key length in the upper 16 bits of CryptGenKey's flags
        # and refuses a length the card cannot make as invalid flags.
        raise WindowsError(
            "CertEnroll::CX509PrivateKey::Create: Invalid flags specified. 0x80090009 (-2146893815 NTE_BAD_FLAGS)",
            "NotSpecified",
            "COMException",
            BAD_FLAGS,
        )
    if not secret_matches(card.get("pin"), pin):
        raise WindowsError(
            "The card cannot be accessed because the wrong PIN was presented. 0x8010006b "
            "(-2146434965 SCARD_W_WRONG_CHV)",
            "NotSpecified",
            "COMException",
            WRONG_PIN,
        )
    if len(card.get("containers", {})) >= MAX_CONTAINERS:
        raise WindowsError(
            "An attempt was made to write more data than would fit in the target object. 0x80100028 "
            f"(-2146435032 SCARD_E_WRITE_TOO_MANY): the card holds {MAX_CONTAINERS} keys",
            "NotSpecified",
            "COMException",
            CARD_FULL,
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    container = "{" + str(uuid.uuid4()).upper() + "}"
    card.setdefault("containers", {})[container] = {
        "key_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "key_spec": key_spec,
        "export_policy": export_policy,
    }
    save_cards(machine, by_instance)
    return container, key


# -- tpmvscmgr.exe ------------------------------------------------------------------------
def _option(args: list[str], name: str) -> str | None:
    lowered = [a.lower() for a in args]
    return args[lowered.index(name) + 1] if name in lowered and lowered.index(name) + 1 < len(args) else None


@native("tpmvscmgr.exe")
def tpmvscmgr(machine: Machine, args: list[str]) -> tuple[int, str]:
    verb = args[0].lower()
    if verb == "create":
        tpm = tpm_of(machine)
        if not tpm.get("present") or not tpm.get("ready"):
            return 1, (
                "Creating TPM Smart Card...\r\nTPM Smart Card creation failed: the TPM is not present or not "
                "ready (0x80284001 TBS_E_INTERNAL_ERROR)."
            )
        by_instance = cards(machine)
        if len(by_instance) >= MAX_CARDS:
            return 1, f"Creating TPM Smart Card...\r\nThis TPM already holds {MAX_CARDS} virtual smart cards."
        if (_option(args, "/pin") or "default").lower() != "default":
            return 1, "lab: only /pin default can be used without a console (prompt reads from it)"
        number = next(n for n in range(10000) if f"{READER_PREFIX}{n:04d}" not in by_instance)
        iid = f"{READER_PREFIX}{number:04d}"
        puk = _option(args, "/puk")
        by_instance[iid] = {
            "name": _option(args, "/name"),
            "reader": _new_reader_name(by_instance, _option(args, "/name") or ""),
            "pin": hash_secret(DEFAULT_PIN),
            "puk": hash_secret(DEFAULT_PIN) if puk else None,
            "admin_key": (_option(args, "/adminkey") or "").lower(),
            "containers": {},
        }
        save_cards(machine, by_instance)
        return 0, (
            "Creating TPM Smart Card...\r\nInitializing the Virtual Smart Card component...\r\n"
            "Creating the Virtual Smart Card component...\r\nInitializing the Virtual Smart Card Simulator..."
            "\r\nCreating the Virtual Smart Card Simulator...\r\nTPM Smart Card created.\r\n"
            f"Smart Card Reader Device Instance ID = {iid}\r\n"
        )
    if verb == "destroy":
        iid = _option(args, "/instance") or ""
        by_instance = cards(machine)
        if iid.upper() not in {k.upper() for k in by_instance}:
            return 1, f"Destroying TPM Smart Card...\r\nThe virtual smart card {iid} was not found."
        save_cards(machine, {k: v for k, v in by_instance.items() if k.upper() != iid.upper()})
        return 0, "Destroying TPM Smart Card...\r\nTPM Smart Card destroyed.\r\n"
    return 1, f"lab: tpmvscmgr {verb} is not simulated"


def _destroy(machine: Machine, iid: str) -> tuple[int, str]:
    """Remove-Lync2faCardNow: the one way a card is destroyed."""
    return machine.run_native("tpmvscmgr.exe", ["destroy", "/instance", iid])


# -- named operations (Lync2fa.SmartCard.ps1) --------------------------------------------
INSTANCE = re.compile(r"ROOT\\SMARTCARDREADER\\[0-9]{4}")


@named_operation("vsc_create")
def vsc_create(
    machine: Machine,
    create: list,
    default_pin: str,
    pin=None,
    puk=None,
    timeout_s: int = 300,
    reader_wait_s: int = 30,
    policy_note: str = "",
    record_path: str = "",
    record_name: str = "",
) -> dict:
    from .scheduled_tasks import run_job

    def job() -> dict:
        code, text = machine.run_native("tpmvscmgr.exe", [str(a) for a in create])
        found = INSTANCE.search(text)
        if code != 0:
            raise WindowsError(f"tpmvscmgr.exe create failed (exit code {code}): {text.strip()}")
        if not found:
            raise WindowsError(f"tpmvscmgr.exe create did not report the instance ID of the new card: {text.strip()}")
        iid = found.group(0)
        try:
            # Resolve-Lync2faCardReader, then Change: the new device's PnP name through Reader
            reader_card = card_by_name(machine, cards(machine)[iid]["name"])[0] if pin or puk else iid
            if pin:
                change_pin(machine, reader_card, default_pin, pin)
            if puk:
                change_pin(machine, reader_card, default_pin, puk, puk=True)
        except WindowsError as exc:
            code, text = _destroy(machine, iid)
            if code == 0:
                raise WindowsError(f"{exc.message} The new card {iid} was destroyed again.") from None
            raise WindowsError(
                f"{exc.message} The new card {iid} could NOT be destroyed again (exit code {code}: "
                f"{text.strip()}): run tpmvscmgr.exe destroy /instance {iid} on this computer."
            ) from None
        return {"ok": True, "instance_id": iid}

    result = run_job(machine, "SYSTEM", job, timeout_s, policy_note=policy_note)
    machine.registry.set(record_path, record_name, result["instance_id"], "String")
    return {"instance_id": result["instance_id"]}


@named_operation("vsc_destroy")
def vsc_destroy(machine: Machine, instance_id: str, timeout_s: int = 300, policy_note: str = "") -> dict:
    from .scheduled_tasks import run_job

    def job() -> dict:
        code, text = _destroy(machine, instance_id)
        if code != 0:
            raise WindowsError(f"tpmvscmgr.exe destroy failed (exit code {code}): {text.strip()}")
        return {"ok": True, "instance_id": instance_id}

    return {"instance_id": run_job(machine, "SYSTEM", job, timeout_s, policy_note=policy_note)["instance_id"]}
