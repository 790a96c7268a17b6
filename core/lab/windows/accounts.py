"""Account name -> SID lookups (NTAccount.Translate, the ``account_sids`` named fact of
core/ps/Lync2fa.Accounts.ps1). LSA resolves names over the computer's secure channel, so the
lookup needs no delegated credentials."""

from __future__ import annotations

from .directory import translate
from .errors import WindowsError
from .machine import Machine, named_fact


@named_fact("account_sids")
def account_sids(machine: Machine, names: list[str] | None = None) -> dict:
    sids: dict[str, str | None] = {}
    for name in names or []:
        try:
            sids[name] = translate(machine.store, name)[0]
        except WindowsError:
            sids[name] = None
    return sids
