"""Contact records (沟通记录): every call, SMS, visit or email with a customer, with the
agent who had it and what was said; the agent desktop shows the last few."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from apps.db import Database
from apps.models import ContactRecord, Customer, User

MAX_TEXT_CHARS: Final = 10_000
MAX_CALL_ID_CHARS: Final = 64
MAX_LAST: Final = 500


class ContactError(Exception):
    """A contact-record request that cannot be done; the message is shown as is."""


class ContactChannel(enum.StrEnum):
    phone = "phone"
    sms = "sms"
    visit = "visit"
    email = "email"
    other = "other"


@dataclass(frozen=True)
class ContactEntry:
    id: int
    customer_id: int
    at: datetime  # aware, UTC
    channel: ContactChannel
    text: str
    agent_id: int | None
    agent_username: str | None
    call_id: str | None  # our CDR call id (calls.call_id)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _channel(channel: str | ContactChannel) -> ContactChannel:
    try:
        return ContactChannel(channel)
    except ValueError:
        choices = ", ".join(c.value for c in ContactChannel)
        raise ContactError(f"unknown channel '{channel}' (choose from {choices})") from None


# The newest first, by the (customer_id, at) index. The id breaks ties between records
# of the same instant; SQLite keeps the rowid in every index, so it costs no sort there.
_LAST: Final = (
    select(
        ContactRecord.id,
        ContactRecord.customer_id,
        ContactRecord.at,
        ContactRecord.channel,
        ContactRecord.text,
        ContactRecord.agent_id,
        User.username,
        ContactRecord.call_id,
    )
    .outerjoin(User, User.id == ContactRecord.agent_id)
    .order_by(ContactRecord.at.desc(), ContactRecord.id.desc())
)


class ContactRecordService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        customer_id: int,
        channel: str | ContactChannel,
        text: str,
        agent_id: int | None = None,
        call_id: str | None = None,
        at: datetime | None = None,
    ) -> ContactEntry:
        """Record a contact; ``at`` defaults to now (an aware datetime when given)."""
        parsed = _channel(channel)
        if len(text) > MAX_TEXT_CHARS:
            raise ContactError(f"text is longer than {MAX_TEXT_CHARS} characters")
        if call_id is not None and len(call_id) > MAX_CALL_ID_CHARS:
            raise ContactError(f"call id is longer than {MAX_CALL_ID_CHARS} characters")
        if at is not None and at.tzinfo is None:
            raise ContactError("the time of a contact must carry its time zone")
        when = (at or self._clock()).astimezone(UTC)
        record = ContactRecord(
            customer_id=customer_id,
            channel=parsed.value,
            text=text,
            agent_id=agent_id,
            call_id=call_id,
            at=when,
        )
        async with self._db.session() as session:
            if await session.get(Customer, customer_id) is None:
                raise ContactError(f"no customer with id {customer_id}")
            agent = None if agent_id is None else await session.get(User, agent_id)
            if agent_id is not None and agent is None:
                raise ContactError(f"no user with id {agent_id}")
            session.add(record)
            try:
                await session.commit()
            except IntegrityError:
                # The customer or agent was deleted between the check and the insert.
                raise ContactError(
                    f"customer {customer_id} or user {agent_id} no longer exists"
                ) from None
            return ContactEntry(
                id=record.id,
                customer_id=customer_id,
                at=when,
                channel=parsed,
                text=text,
                agent_id=agent_id,
                agent_username=None if agent is None else agent.username,
                call_id=call_id,
            )

    async def last(self, customer_id: int, n: int = 10) -> list[ContactEntry]:
        """The customer's ``n`` newest contact records, newest first, in one query."""
        if not 1 <= n <= MAX_LAST:
            raise ContactError(f"n must be from 1 to {MAX_LAST}, not {n}")
        statement = _LAST.where(ContactRecord.customer_id == customer_id).limit(n)
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            ContactEntry(
                id=row.id,
                customer_id=row.customer_id,
                at=row.at,
                channel=ContactChannel(row.channel),
                text=row.text,
                agent_id=row.agent_id,
                agent_username=row.username,
                call_id=row.call_id,
            )
            for row in rows
        ]
