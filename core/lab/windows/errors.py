"""Windows' errors as the lab raises them: the message text Windows prints, and the error
record's category and id, so that a decision reading a failed fact sees what it would see on
Windows (e.g. category ObjectNotFound for a missing Lync collection)."""

from __future__ import annotations

OPERATIONS_ERROR = -2147016672  # 0x80072020, ERROR_DS_OPERATIONS_ERROR (LDAP without credentials)


class WindowsError(Exception):
    def __init__(self, message: str, category: str = "NotSpecified", error_id: str = "", hresult: int = -2146233087):
        super().__init__(message)
        self.message, self.category, self.error_id, self.hresult = message, category, error_id, hresult

    def as_error(self) -> dict:
        return {"message": self.message, "category": self.category, "error_id": self.error_id, "hresult": self.hresult}


def not_found(message: str, error_id: str = "") -> WindowsError:
    return WindowsError(message, "ObjectNotFound", error_id, -2146233087)


def double_hop(what: str) -> WindowsError:
    """What Windows answers when a session without network credentials leaves the host."""
    return WindowsError(
        "An operations error occurred.\r\n",
        "NotSpecified",
        f"System.Runtime.InteropServices.COMException ({what})",
        OPERATIONS_ERROR,
    )


def not_recognized(name: str) -> WindowsError:
    return WindowsError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again.",
        "ObjectNotFound",
        "CommandNotFoundException",
    )
