"""PowerShell's casts as the primitive library (core/ps) applies them to the values of a request,
with Windows PowerShell 5.1's own error text: ``[int]``/``[long]``, ``[string]``, ``[guid]``,
``[Convert]::FromBase64String`` and an integer cast to a [Flags] enum.

The numeric rules are the catalog's (``Catalog._integer``, shared with cmdlet binding); only the
wording differs: a cast says "Cannot convert value ...", binding "Cannot bind parameter 'X'. ...".
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from ...catalog import Catalog, CmdletError, _Binder, _ps_string, _ps_type_of
from .errors import WindowsError


class _Cast(_Binder):
    """The catalog's conversion errors worded as a cast in a script (``[int]$x``)."""

    def __init__(self) -> None:
        super().__init__("", "")

    def cannot_convert(self, name: str, value, to_type: str, reason: str) -> CmdletError:
        shown = value if isinstance(value, str) else _ps_string(value)
        error_id = "InvalidCastFromStringToInteger" if isinstance(value, str) else "InvalidCastIConvertible"
        return CmdletError(
            f'Cannot convert value "{shown}" to type "{to_type}". Error: "{reason}"', "InvalidArgument", error_id
        )

    def invalid_cast(self, name: str, value, to_type: str) -> CmdletError:
        return CmdletError(
            f'Cannot convert the "{_ps_string(value)}" value of type "{_ps_type_of(value)}" to type "{to_type}".',
            "InvalidArgument",
            "ConvertToFinalInvalidCastException",
        )


def _windows(exc: CmdletError) -> WindowsError:
    return WindowsError(exc.message, exc.category, exc.fq_error_id)


def to_int(value, short: str = "Int32") -> int:
    """``[int]$value`` (``short`` "Int64": ``[long]``); ``[int]$null`` is 0."""
    if value is None:
        return 0
    try:
        return Catalog._integer(_Cast(), "", short, f"System.{short}", value)
    except CmdletError as exc:
        raise _windows(exc) from None


def to_string(value) -> str:
    """``[string]$value`` of a JSON scalar ($null is the empty string)."""
    return "" if value is None else value if isinstance(value, str) else _ps_string(value)


def from_base64(value) -> bytes:
    """``[Convert]::FromBase64String([string]$value)`` (.NET ignores white space)."""
    text = re.sub(r"\s", "", to_string(value))
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        reason = (
            "Invalid length for a Base-64 char array or string."
            if re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text)
            else "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two "
            "padding characters, or an illegal character among the padding characters. "
        )
        raise WindowsError(
            f'Exception calling "FromBase64String" with "1" argument(s): "{reason}"',
            "NotSpecified",
            "FormatException",
        ) from None


def to_guid(value) -> str:
    """``[guid][string]$value`` as ``[string]`` gives it back (lower case, with dashes)."""
    text = to_string(value)
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise WindowsError(
            f'Cannot convert value "{text}" to type "System.Guid". Error: "Guid should contain 32 digits with 4 '
            'dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."',
            "InvalidArgument",
            "InvalidCastParseTargetInvocation",
        ) from None


def to_flags(number: int, type_name: str, members: dict[str, int]) -> int:
    """An integer cast to a [Flags] enum: PowerShell refuses bits no member defines
    (LanguagePrimitives' ThrowForUndefinedEnum), naming the members in declaration order."""
    defined = 0
    for bits in members.values():
        defined |= bits
    if number & 0xFFFFFFFFFFFFFFFF & ~defined:
        raise WindowsError(
            f'Cannot convert value "{number}" to type "{type_name}" due to enumeration values that are not valid. '
            "Specify one of the following enumeration values and try again. The possible enumeration values are "
            f'"{",".join(members)}".',
            "InvalidArgument",
            "UndefinedIntegerToEnum",
        )
    return number


# System.DirectoryServices.ActiveDirectoryRights, as Enum.GetNames lists it (by value).
ACTIVE_DIRECTORY_RIGHTS = {
    "CreateChild": 0x1,
    "DeleteChild": 0x2,
    "ListChildren": 0x4,
    "Self": 0x8,
    "ReadProperty": 0x10,
    "WriteProperty": 0x20,
    "DeleteTree": 0x40,
    "ListObject": 0x80,
    "ExtendedRight": 0x100,
    "Delete": 0x10000,
    "ReadControl": 0x20000,
    "GenericExecute": 0x20004,
    "GenericWrite": 0x20028,
    "GenericRead": 0x20094,
    "WriteDacl": 0x40000,
    "WriteOwner": 0x80000,
    "GenericAll": 0xF01FF,
    "Synchronize": 0x100000,
    "AccessSystemSecurity": 0x1000000,
}
