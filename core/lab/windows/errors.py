"""Windows' errors as the lab raises them: the message text Windows prints, and the error
record's category and id, so that a decision reading a failed fact sees what it would see on
Windows (e.g. category ObjectNotFound for a missing Lync collection)."""

from __future__ import annotations

OPERATIONS_ERROR = -2147016672  # 0x80072020, ERROR_DS_OPERATIONS_ERROR (LDAP without credentials)
SQL_EXCEPTION = -2146232060  # 0x80131904, System.Data.SqlClient.SqlException's HResult
ACCESS_DENIED = -2147024891  # 0x80070005, E_ACCESSDENIED
# The second hop each resource fails with: the exception that surfaces, and its HResult.
DOUBLE_HOP = {
    "ad": ("System.Runtime.InteropServices.COMException", OPERATIONS_ERROR),
    "cms": ("System.Data.SqlClient.SqlException", SQL_EXCEPTION),
    "ca": ("System.Runtime.InteropServices.COMException", ACCESS_DENIED),
}


class WindowsError(Exception):
    def __init__(self, message: str, category: str = "NotSpecified", error_id: str = "", hresult: int = -2146233087):
        super().__init__(message)
        self.message, self.category, self.error_id, self.hresult = message, category, error_id, hresult

    def as_error(self) -> dict:
        return {"message": self.message, "category": self.category, "error_id": self.error_id, "hresult": self.hresult}


def not_found(message: str, error_id: str = "") -> WindowsError:
    return WindowsError(message, "ObjectNotFound", error_id, -2146233087)


def double_hop(reach: str, message: str) -> WindowsError:
    """What Windows answers when a session without network credentials reaches ``reach`` ("ad",
    "cms", "ca") beyond the host: ``message`` is its text (``lync2fa.lab.logon.network_error``)."""
    exception, hresult = DOUBLE_HOP[reach]
    return WindowsError(message, "NotSpecified", exception, hresult)


def not_recognized(name: str) -> WindowsError:
    return WindowsError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again.",
        "ObjectNotFound",
        "CommandNotFoundException",
    )
