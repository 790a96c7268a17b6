"""Scheduled tasks as the user-context runner (Lync2fa.UserTask.ps1) meets them, the users signed in
on a PC, their profiles, and the jobs run through them (on-card enrollment as the user).

Windows' rules modelled:
* a task with ``LogonType Interactive`` runs only in the session of a signed-in user; SYSTEM always runs;
* ``powershell.exe -File <script>`` is subject to the execution policy, and a Group Policy policy
  (MachinePolicy/UserPolicy, e.g. AllSigned) overrides ``-ExecutionPolicy Bypass``: the unsigned
  script is refused, the task ends with result 1 and never writes its output. ``-EncodedCommand``
  is a command, not a script file, and is never blocked;
* the job itself (``run_job``): what it returns, or its error with the base exception's HResult.

State: kind ``logon_session`` per host ``{"users": [sam, ...]}`` (owners of an explorer.exe), kind
``user_profile`` per ``<host>/<sam>`` ``{"folders": [path relative to the profile, ...]}`` (the
folders lync2fa looks at: Lync's cached SIP profiles).
"""

from __future__ import annotations

import base64
import fnmatch
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ...catalog import Catalog, CmdletError
from ..directory import short_name
from ..estate import Estate
from ..state import EstateStore
from . import certificates, pscast, tpm
from .errors import WindowsError
from .hosts import effective_execution_policy, seeds
from .machine import Machine, named_fact, named_operation

SESSIONS, PROFILES = "logon_session", "user_profile"
# What Invoke-Lync2faScheduledJob gives powershell.exe (then the encoded runner): kept equal to
# core/ps/Lync2fa.UserTask.ps1 by a test.
RUNNER_ARGUMENTS = "-NoProfile -NonInteractive -WindowStyle Hidden -EncodedCommand"
UNTRANSLATABLE = (
    'Exception calling "Translate" with "1" argument(s): "Some or all identity references could not be translated."'
)
NOT_YET_RUN = 0x41303  # SCHED_S_TASK_HAS_NOT_RUN
LYNC_FOLDER = "AppData\\Local\\Microsoft\\Office\\{}\\Lync"  # where Lync keeps a user's SIP profiles (a Windows fact the lab models, as the client tier knows it)


@seeds
def seed_sessions(store: EstateStore, estate: Estate) -> None:
    """Every lab client: its user (client_user) signed in, with a cached Lync 2013 SIP profile."""
    for host in estate.in_group("clients"):
        user = host.vars.get("client_user")
        if user:
            sam = short_name(user)
            store.put(SESSIONS, host.name, {"users": [sam]})
            folder = f"{LYNC_FOLDER.format('15.0')}\\sip_{sam}@{estate.domain}"
            store.put(PROFILES, f"{host.name}/{sam}", {"folders": [folder]})


def signed_in(machine: Machine, sam: str) -> bool:
    users = (machine.store.get(SESSIONS, machine.name) or {}).get("users", [])
    return sam.lower() in {u.lower() for u in users}


def resolve_user(machine: Machine, user: str) -> tuple[str, dict]:
    sam = short_name(user)
    record = machine.store.get("ad_user", sam)
    if record is None:
        raise WindowsError(UNTRANSLATABLE, "NotSpecified", "IdentityNotMappedException")
    return sam, record


def _blocked_by_policy(machine: Machine, arguments: str) -> bool:
    words = arguments.split()
    lowered = [w.lower() for w in words]
    if "-file" not in lowered:
        return False
    process = words[lowered.index("-executionpolicy") + 1] if "-executionpolicy" in lowered else None
    return effective_execution_policy(machine, process) in ("Restricted", "AllSigned")


def run_job(
    machine: Machine,
    user_id: str,
    job: Callable[[], dict],
    timeout_s: int,
    arguments: str = RUNNER_ARGUMENTS,
    hints: dict | None = None,
    policy_note: str = "",
) -> dict:
    """Invoke-Lync2faScheduledJob: register and start the task, wait for its result file; when the
    task wrote none, the error ends with the note Python gave (the Group Policy execution policy)."""
    task = "lync2fa-<guid>"
    if user_id != "SYSTEM" and not signed_in(machine, short_name(user_id)):
        raise WindowsError(
            f"The scheduled task {task} (as {user_id}) wrote no result (state Ready, last result "
            f"0x{NOT_YET_RUN:08x}, within {timeout_s} s).{policy_note}"
        )
    if _blocked_by_policy(machine, arguments):
        raise WindowsError(
            f"The scheduled task {task} (as {user_id}) wrote no result (state Ready, last result "
            f"0x00000001, within {timeout_s} s).{policy_note}"
        )
    try:
        with machine.logon(delegated=True):  # the task runs in the user's own logon session
            result = job()
    except WindowsError as exc:
        hint = (hints or {}).get(str(exc.hresult))
        message = exc.message + (f"; {hint}" if hint else "")
        raise WindowsError(message, exc.category, exc.error_id, exc.hresult) from None
    return result


# -- facts and operations (Lync2fa.UserTask.ps1) -----------------------------------------
def _children(folders: list[str], parent: str, pattern: str) -> list[str]:
    """Get-ChildItem -LiteralPath <parent> -Directory -Filter <pattern>: the names of the folders
    right under ``parent`` (paths relative to the profile, case-insensitive)."""
    prefix = parent.rstrip("\\").lower() + "\\"
    names = {f[len(prefix) :].split("\\")[0] for f in folders if f.lower().startswith(prefix)}
    return sorted(n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower()))


@named_fact("user_session")
def user_session(machine: Machine, user: str, store: str, lync_folders: dict, sip_filter: str) -> dict:
    sam, record = resolve_user(machine, user)
    folders = (machine.store.get(PROFILES, f"{machine.name}/{sam}") or {}).get("folders", [])
    found = [f"{v}\\{name}" for v, path in lync_folders.items() for name in _children(folders, path, sip_filter)]
    return {
        "sid": record["sid"],
        "signed_in": signed_in(machine, sam),
        "certificates": certificates.user_certificates(machine, record["sid"], store),
        "sip_profiles": found,
    }


def _keep(machine: Machine) -> None:
    """Windows keeps a key the card generated even when the enrollment fails afterwards: the lab
    commits the card's state at that point (each operation is otherwise all or nothing)."""
    db = machine.store._db  # the lab store's own connection, inside its per-operation transaction
    if machine.store._depth == 1:
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")


def install_response(
    machine: Machine, iid: str, container: str, cert: x509.Certificate, sid: str, provider: str
) -> str:
    """IX509Enrollment::InstallResponse(AllowNone): refused while the issuing chain does not end in
    a root trusted on this PC; the key container stays on the card (orphaned)."""
    if not certificates.trusted(machine, cert):
        _keep(machine)
        raise WindowsError(
            "A certificate chain processed, but terminated in a root certificate which is not trusted "
            "by the trust provider. 0x800b0109 (-2146762487 CERT_E_UNTRUSTEDROOT)",
            "NotSpecified",
            "COMException",
            certificates.UNTRUSTED_ROOT,
        )
    return certificates.add(machine, certificates.user_store_path(sid), cert, container, provider)


# System.Security.Cryptography.X509Certificates.X509RevocationMode, as Enum.GetNames lists it.
REVOCATION_MODES = ["NoCheck", "Online", "Offline"]


def cast_revocation_mode(value) -> str:
    """``[X509RevocationMode][string]$value``, with PowerShell's cast error. The lab's CAs publish no
    CRL a PC could fetch, so a chain built with revocation checking is not modelled."""
    try:
        mode = Catalog._enum(
            pscast._Cast(),
            "",
            "X509RevocationMode",
            "System.Security.Cryptography.X509Certificates.X509RevocationMode",
            pscast.to_string(value),
            REVOCATION_MODES,
        )
    except CmdletError as exc:
        raise WindowsError(exc.message, exc.category, exc.fq_error_id) from None
    if mode != "NoCheck":
        raise WindowsError(f"lab: X509Chain.Build with RevocationMode {mode} is not modelled (no CRL to fetch)")
    return mode


def enroll_on_card(
    machine: Machine,
    sam: str,
    record: dict,
    ca_config: str,
    template: str,
    provider: str,
    pin: str,
    reader: str | None,
    check_trust: bool = True,
    key: tuple[int, int, int] = (tpm.VSC_KEY_BITS, 1, 0),
    trust: tuple[str, int, str] = ("", 0, ""),
) -> str:
    """The user's job (Invoke-Lync2faEnrollJob): the CA certificate over DCOM, its trust, a new key
    on the card (``key``: length, spec, export policy), the request, InstallResponse. Returns the new
    certificate's thumbprint. ``trust``: the decision's revocation mode, and the HResult and message
    (composite format: subject, chain status) the job fails with when the chain ends in no trusted
    root; ``check_trust`` False skips that check (a test reaching InstallResponse)."""
    ca_host, ca = certificates.find_ca(machine, ca_config, "CCertRequest::GetCACertificate")
    ca_cert = x509.load_pem_x509_certificate(ca["cert_pem"].encode())
    if check_trust:
        cast_revocation_mode(trust[0])
        if not certificates.trusted(machine, ca_cert):
            message = trust[2].format(ca_cert.subject.rfc4514_string(), "UntrustedRoot")  # PowerShell's -f
            raise WindowsError(message, "NotSpecified", "COMException", trust[1])
    cards = tpm.cards(machine)
    iid, _ = tpm.card_by_name(machine, reader) if reader else (next(iter(sorted(cards)), None), None)
    if iid is None:  # no card, or no reader of that name: what CX509PrivateKey.Create would report
        raise tpm.no_smartcard()
    container, private_key = tpm.new_key_container(machine, iid, pin, *key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(private_key, hashes.SHA256())
    try:
        cert = certificates.submit(machine, ca_host, ca, template, csr, sam, record)
    except WindowsError:
        _keep(machine)
        raise
    return install_response(machine, iid, container, cert, record["sid"], provider)


@named_operation("user_enroll")
def user_enroll(
    machine: Machine,
    user: str,
    sid: str,
    ca_config: str,
    template: str,
    provider: str,
    key_spec: int,
    key_length: int,
    export_policy: int,
    pin: str,
    reader: str | None = None,
    timeout_s: int = 300,
    hints: dict | None = None,
    policy_note: str = "",
    revocation_mode: str = "",
    untrusted_hresult: int = 0,
    untrusted_message: str = "",
    record_path: str = "",
    record_name: str = "",
) -> dict:
    """The user's key is made as IX509PrivateKey is set (``key_length``, ``key_spec``,
    ``export_policy``): the card refuses a size it cannot make. The trust check before it is the
    decision's (revocation mode, failure HResult and message); a missing one reads as $null does."""
    code, text = machine.run_native("certutil.exe", ["-pulse"])
    if code != 0:
        raise WindowsError(f"certutil.exe -pulse failed (exit code {code}): {text.strip()}")
    trust = (pscast.to_string(revocation_mode), untrusted_hresult, pscast.to_string(untrusted_message))
    sam, record = resolve_user(machine, user)

    def job() -> dict:
        return {
            "ok": True,
            "thumbprint": enroll_on_card(
                machine,
                sam,
                record,
                ca_config,
                template,
                provider,
                pin,
                reader,
                key=(key_length, key_spec, export_policy),
                trust=trust,
            ),
        }

    result = run_job(machine, user, job, timeout_s, hints=hints, policy_note=policy_note)
    machine.registry.set(record_path, record_name, result["thumbprint"], "String")
    return {"thumbprint": result["thumbprint"]}


def _below(path: str) -> str:
    """Assert-Lync2faRelativePath: relative, no empty, '.' or '..' step, no wildcard."""
    steps = path.split("\\")
    if not path or path.startswith("\\") or any(c in path for c in "/:*?") or {"", ".", ".."} & set(steps):
        raise WindowsError(f"lync2fa: not a path below the user's profile or hive: {path}")
    return path


@named_operation("user_certificate_remove")
def user_certificate_remove(machine: Machine, sid: str, store: str, thumbprint: str) -> None:
    if len(thumbprint) != 40 or any(c not in "0123456789abcdefABCDEF" for c in thumbprint):
        raise WindowsError(f"lync2fa: not a thumbprint: {thumbprint}")
    key = _below(store + "\\" + thumbprint.upper())
    machine.registry.remove_key(f"Registry::HKEY_USERS\\{sid}\\{key}")


@named_operation("sip_profile_remove")
def sip_profile_remove(machine: Machine, sid: str, parent: str, folder: str, like: str) -> None:
    """Remove-Item -Recurse of one folder of the user's profile: a direct child of ``parent`` whose
    name matches ``like`` (PowerShell's -like), as the library checks before removing."""
    if (
        not like
        or any(c in folder for c in "\\/:*?")
        or folder in (".", "..")
        or not fnmatch.fnmatchcase(folder.lower(), like.lower())
    ):
        raise WindowsError(f"lync2fa: not a folder matching {like}: {folder}")
    gone = (_below(parent) + "\\" + folder).lower()
    for key, profile in machine.store.items_prefix(PROFILES, f"{machine.name}/").items():
        record = machine.store.get("ad_user", key.split("/", 1)[1])
        if record and record["sid"] == sid:
            kept = [f for f in profile["folders"] if f.lower() != gone and not f.lower().startswith(gone + "\\")]
            if kept:
                machine.store.put(PROFILES, key, {**profile, "folders": kept})
            else:
                machine.store.delete(PROFILES, key)


def certificate_der(entry: dict) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(entry["der"]))
