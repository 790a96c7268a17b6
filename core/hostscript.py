"""What a host runs: the primitive library (core/ps) in one long-lived PowerShell process, and
requests as data.

A request is ``{"kind": "facts", "facts": {name: query}}`` or ``{"kind": "apply", "groups":
[{"id", "needs", "operations"}]}``; it arrives as one line of JSON read with ConvertFrom-Json,
never as code. The host answers one JSON line: ``{"lync2fa": 1, "facts": {...}}`` or
``{"lync2fa": 1, "groups": [{"id", "skipped", "operations": [{"ok", "output"|"error"}]}]}``.
Secrets travel beside the request (its ``secrets`` member), referenced by name, never in script
text that Windows could log. The Ansible face ships the same library as a module_util.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from functools import cache
from importlib import resources

# Load order: the frame, the dispatch table, then one file per concern.
LIBRARY_FILES = (
    "Lync2fa.Frame.ps1",
    "Lync2fa.Dispatch.ps1",
    "Lync2fa.Cmdlet.ps1",
    "Lync2fa.Registry.ps1",
    "Lync2fa.Directory.ps1",
    "Lync2fa.Host.ps1",
    "Lync2fa.Accounts.ps1",
    "Lync2fa.SmartCard.ps1",
    "Lync2fa.UserTask.ps1",
    "Lync2fa.File.ps1",
    "Lync2fa.NativeMethods.cs",
)


class HostScriptError(ValueError):
    """A host's answer does not follow the contract, or a request line is not one lync2fa sends."""


@cache
def library() -> str:
    """The primitive library's text, as shipped (package data under lync2fa/ps)."""
    folder = resources.files("lync2fa") / "ps"
    return "\n".join(_library_part(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in LIBRARY_FILES)


def _library_part(name: str, text: str) -> str:
    """A .ps1 file as is; C# (``Lync2fa.X.cs``) as data: a single-quoted here-string in
    ``$Lync2faXSource`` that the primitives compile with the .NET C# compiler (never spliced into code)."""
    if not name.endswith(".cs"):
        return text
    assert "\n'@" not in text and not text.startswith("'@"), f"{name} would end its here-string"
    variable = "$" + name[:-3].replace(".", "") + "Source"
    return f"{variable} = @'\n{text.rstrip()}\n'@"


def request_json(request: dict) -> str:
    """A request as one line of ASCII JSON (the Ansible face passes it as a module option)."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    assert "\n" not in text and "\r" not in text
    return text


def facts_request(queries: dict[str, dict]) -> dict:
    return {"kind": "facts", "facts": queries}


def apply_request(groups: list[dict]) -> dict:
    """``groups``: ``[{"id": step, "needs": [ids], "operations": [...]}]``; a group whose ``needs``
    failed is skipped, the first failing operation ends its own group."""
    return {"kind": "apply", "groups": groups}


# -- Windows PowerShell 5.1 or nothing ------------------------------------------------------------
# What the library needs (Windows Management Framework 5.1 on Windows Server 2008 R2 to 2012 R2).
# The session loop and the Ansible module check it before anything else, so an older host answers
# every request with this failure and runs nothing of it; preflight reports it as its own check.
MINIMUM_POWERSHELL = (5, 1)
POWERSHELL_REQUIRED = "lync2fa needs Windows PowerShell 5.1 (WMF 5.1)"
# PowerShell: true below the minimum ([Version] compares as Windows does: 5.0.10586 < 5.1 <= 5.1.14409.1005).
PS_TOO_OLD = f"($PSVersionTable.PSVersion -lt [Version]'{MINIMUM_POWERSHELL[0]}.{MINIMUM_POWERSHELL[1]}')"
# PowerShell: the failure's text, the host's version appended (a System.Version: digits and dots).
PS_TOO_OLD_MESSAGE = f"('{POWERSHELL_REQUIRED}; this host runs ' + $PSVersionTable.PSVersion)"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"5.1.17763.1"`` -> (5, 1, 17763, 1), as [Version] orders them."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def powershell_too_old(version: str) -> str | None:
    """The failure a host with this Windows PowerShell version answers, or None from 5.1 on."""
    if version_tuple(version) >= MINIMUM_POWERSHELL:
        return None
    return f"{POWERSHELL_REQUIRED}; this host runs {version}"


# -- the long-lived session: one PowerShell process per host, one JSON line per request ---------
# The loop below is the process's whole command line (-EncodedCommand, well under WinRS' 8191
# characters). Each request arrives as one line of JSON on stdin: the first also carries the
# library (gzip, base64), dot-sourced once, so that functions and imported modules stay loaded for the
# host's later requests; secrets travel in the same data, never in script text. Each answer is
# one line of JSON on stdout. Below Windows PowerShell 5.1 every request is answered with the
# failure (written without ConvertTo-Json, which PowerShell 2.0 lacks), nothing read or run.
SESSION_LOOP = "\n".join(
    [
        "Set-StrictMode -Version 2.0",
        "$ErrorActionPreference = 'Stop'",
        "$ProgressPreference = 'SilentlyContinue'",
        f"$lync2faTooOld = {PS_TOO_OLD}",
        "$lync2faUtf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false",
        "[Console]::OutputEncoding = $lync2faUtf8",
        "$lync2faIn = New-Object -TypeName System.IO.StreamReader -ArgumentList ([Console]::OpenStandardInput()), "
        "$lync2faUtf8",
        "$lync2faModules = @{}",
        "while ($true) {",
        "    $lync2faLine = $lync2faIn.ReadLine()",
        "    if ($null -eq $lync2faLine) { break }",
        "    if ($lync2faTooOld) {",
        '        [Console]::Out.WriteLine(\'{"lync2fa":1,"failed":true,"error":{"message":"\' + '
        f"{PS_TOO_OLD_MESSAGE} + '\"}}}}')",
        "        [Console]::Out.Flush()",
        "        continue",
        "    }",
        "    try {",
        "        $lync2faFrame = $lync2faLine | ConvertFrom-Json",
        "        if ($null -ne $lync2faFrame.library) {",
        "            $lync2faZip = New-Object -TypeName System.IO.MemoryStream -ArgumentList "
        "(,[Convert]::FromBase64String($lync2faFrame.library))",
        "            $lync2faGz = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $lync2faZip, "
        "([System.IO.Compression.CompressionMode]::Decompress)",
        "            $lync2faText = (New-Object -TypeName System.IO.StreamReader -ArgumentList $lync2faGz, $lync2faUtf8)"
        ".ReadToEnd()",
        "            . ([ScriptBlock]::Create($lync2faText))",
        "        }",
        "        $lync2faAnswer = Invoke-Lync2faRequest -Request (ConvertTo-Lync2faHashtable -Value $lync2faFrame.request) "
        "-Secrets (ConvertTo-Lync2faHashtable -Value $lync2faFrame.secrets) -Imported $lync2faModules",
        "    }",
        "    catch {",
        "        $lync2faAnswer = @{ lync2fa = 1; failed = $true; error = @{ message = "
        "[string]$_.Exception.GetBaseException().Message } }",
        "    }",
        "    [Console]::Out.WriteLine((ConvertTo-Json -InputObject $lync2faAnswer -Depth 14 -Compress))",
        "    [Console]::Out.Flush()",
        "}",
    ]
)


@cache
def _compressed_library() -> str:
    """The library gzip-compressed and base64-encoded: one Send instead of two (pywinrm's
    envelope holds ~100 kB of stdin; the library with its comment-based help is larger)."""
    return base64.b64encode(gzip.compress(library().encode(), mtime=0)).decode("ascii")


def session_frame(request: dict, secrets: dict | None, with_library: bool) -> bytes:
    """One request on the session's stdin: a line of JSON (the library rides on the first)."""
    frame = {"library": _compressed_library() if with_library else None, "request": request, "secrets": secrets or {}}
    return (json.dumps(frame, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def parse_frame(line: str, library_loaded: bool) -> tuple[dict, dict, bool]:
    """(request, secrets, library now loaded) from one session line: what the lab does with it.
    The library must be the shipped one, and must come before the first request."""
    frame = json.loads(line)
    if frame.get("library") is not None:
        text = gzip.decompress(base64.b64decode(frame["library"])).decode("utf-8")
        if hashlib.sha256(text.encode()).hexdigest() != hashlib.sha256(library().encode()).hexdigest():
            raise HostScriptError("the session's library differs from the one lync2fa ships")
        library_loaded = True
    if not library_loaded:
        raise HostScriptError(
            "The term 'Invoke-Lync2faRequest' is not recognized as the name of a cmdlet, "
            "function, script file, or operable program."
        )
    return frame["request"], frame.get("secrets") or {}, library_loaded


def parse_response(stdout: str) -> dict:
    """The last JSON line the script printed."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if data.get("lync2fa") == 1:
                return data
    raise HostScriptError("the host printed no lync2fa response")
