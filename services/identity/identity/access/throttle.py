"""Login throttling: wrong passwords slow the guesser down, per account and per address.

Failures are counted in the database (every identity process sees the same counts) under two
keys: the account (tenant and e-mail, whether or not it exists, so a probe learns nothing) and
the client's address. ``max_failures`` failures within ``window`` lock the key for
``lock_seconds``, doubled with every further failure up to ``lock_max_seconds``; while a key is
locked every login through it is refused before the password is looked at, the right one too.
A successful login clears its account's count (not its address's: one good account must not
launder an address's guesses at others).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.app import PeriodicJob
from crm_shared.audit import staff_action_event
from crm_shared.db import Database, utcnow
from crm_shared.events import record_event


@dataclass(frozen=True)
class ThrottleSettings:
    """How many failures lock a key, within what window, for how long."""

    max_failures: int = 5
    address_max_failures: int = 50
    window_seconds: float = 900.0
    lock_seconds: float = 60.0
    lock_max_seconds: float = 900.0


def account_key(tenant: str, email: str) -> str:
    return f"account:{tenant.strip().lower()}:{email.strip().lower()}"


def address_key(address: str) -> str:
    return f"address:{address}"


async def locked_for(session: AsyncSession, keys: list[str]) -> float:
    """Seconds until every one of ``keys`` is unlocked again (0: none is locked)."""
    until = (
        await session.execute(
            text(
                "SELECT max(locked_until) FROM identity.login_throttle "
                "WHERE key = ANY(CAST(:keys AS text[])) AND locked_until > now()"
            ),
            {"keys": keys},
        )
    ).scalar()
    if until is None:
        return 0.0
    return max(1.0, float((until - utcnow()).total_seconds()))


_FAIL = text(
    """
    INSERT INTO identity.login_throttle AS t (key, failures, first_failed_at, locked_until)
    VALUES (:key, 1, now(), CASE WHEN :threshold <= 1 THEN now() + make_interval(secs => :lock)
                                 END)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.first_failed_at < now() - make_interval(secs => :window)
                        THEN 1 ELSE t.failures + 1 END,
        first_failed_at = CASE WHEN t.first_failed_at < now() - make_interval(secs => :window)
                               THEN now() ELSE t.first_failed_at END,
        locked_until = CASE
            WHEN t.first_failed_at >= now() - make_interval(secs => :window)
                 AND t.failures + 1 >= :threshold
            THEN now() + make_interval(secs => least(
                :lock * power(2, t.failures + 1 - :threshold), :lock_max))
            ELSE t.locked_until END
    RETURNING failures, locked_until
    """
)


_SUBJECT = text(
    """
    SELECT t.id AS tenant_id, u.id AS user_id FROM identity.tenants t
    LEFT JOIN identity.staff_users u ON u.tenant_id = t.id AND u.email = :email
    WHERE t.slug = :tenant OR CAST(t.id AS text) = :tenant
    LIMIT 1
    """
)


async def record_failure(
    session: AsyncSession,
    *,
    settings: ThrottleSettings,
    tenant: str,
    email: str,
    address: str,
) -> None:
    """Count a failed login under its account and its address. A failure that locks an
    existing staff user's account or an address is written to the tenant's audit log (the
    user's id, never the e-mail typed)."""
    subject = (
        await session.execute(_SUBJECT, {"tenant": tenant.strip(), "email": email.strip().lower()})
    ).first()
    for kind, key, threshold in (
        ("staff_user", account_key(tenant, email), settings.max_failures),
        ("address", address_key(address), settings.address_max_failures),
    ):
        failures, locked_until = (
            await session.execute(
                _FAIL,
                {
                    "key": key,
                    "threshold": threshold,
                    "window": settings.window_seconds,
                    "lock": settings.lock_seconds,
                    "lock_max": settings.lock_max_seconds,
                },
            )
        ).one()
        if failures != threshold or subject is None:
            continue
        record_id = subject.user_id if kind == "staff_user" else address
        if record_id is None:
            continue
        event = staff_action_event("identity")(
            action_id=uuid.uuid4(),
            actor=f"anonymous@{address}",
            action="login.locked",
            record_type=kind,
            record_id=str(record_id),
            details={"failures": failures, "locked_until": locked_until.isoformat()},
        )
        await record_event(session, event, tenant_id=subject.tenant_id, subject=str(record_id))


async def clear_account(session: AsyncSession, account: str) -> None:
    """A successful login: the account's count starts again."""
    await session.execute(
        text("DELETE FROM identity.login_throttle WHERE key = :key"), {"key": account}
    )


async def forget_expired(db: Database, *, settings: ThrottleSettings) -> int:
    """Drop counts that neither lock nor count any more (a guesser's random names would
    otherwise pile up); safe on several replicas at once."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            text(
                "DELETE FROM identity.login_throttle "
                "WHERE first_failed_at < now() - CAST(:age AS interval) "
                "AND (locked_until IS NULL OR locked_until < now())"
            ),
            {"age": timedelta(seconds=settings.window_seconds)},
        )
    return int(getattr(result, "rowcount", 0) or 0)


def throttle_jobs(settings: ThrottleSettings) -> list[PeriodicJob]:
    """The clean-up of old counts, every window, for ``create_service_app(jobs=...)``."""
    return [
        PeriodicJob(
            "login-throttle-cleanup",
            settings.window_seconds,
            partial(forget_expired, settings=settings),
        )
    ]
