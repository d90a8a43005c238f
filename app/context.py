"""The context of one unit of work, as plain values: who acts, and the session,
runtime and moment a change happens in. Every domain function takes it;
nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.runtime import Runtime
from sms.phones import mask_phone


@dataclass(frozen=True)
class Actor:
    """Who did it, and through which channel (sms, api, system)."""

    name: str
    channel: str
    phone: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(name="system", channel="system")

    @classmethod
    def sms(cls, phone: str) -> Actor:
        return cls(name=mask_phone(phone), channel="sms", phone=phone)


@dataclass
class Ctx:
    """One unit of work: the session, the runtime and the moment it happens
    (`inbound_id`: the stored message that caused it, if any)."""

    session: Session
    rt: Runtime
    now: datetime
    inbound_id: int | None = None

    @property
    def locale(self) -> str:
        return self.rt.settings.locale
