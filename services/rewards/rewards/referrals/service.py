"""Referrals: codes, attribution at registration, qualification by a purchase, fraud checks,
paying both sides through the ledger, staff review, milestones, and undoing on refund or fraud.

Every payment is a ledger entry keyed ``referral:<referral id>:<side>:<purchase id>`` and
every take-back ``referral:<referral id>:<side>:reversal:<entry id>``, so however often an
event is delivered or a step retried, each side is paid (and taken back) at most once.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from rewards.accounts import service as ledger
from rewards.accounts.models import Account, Posting
from rewards.offers import service as offers
from rewards.offers.events import CouponGranted
from rewards.purchases.models import Purchase
from rewards.referrals.events import (
    ReferralAttributed,
    ReferralHeld,
    ReferralQualified,
    ReferralRejected,
    ReferralRewarded,
    ReferralUnqualified,
)
from rewards.referrals.models import (
    ContactFingerprint,
    HoldReason,
    MilestoneGrant,
    ProgramSettings,
    QualifyingKind,
    Referral,
    ReferralCode,
    ReferralProgram,
    ReferralStatus,
)
from rewards.value import service as value
from rewards.value.merges import current_customer

log = logging.getLogger(__name__)

# Crockford's base 32 without the letters people misread (0/O, 1/I/L) or that spell words (U).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
ACTOR = "system:referral"
GRANT_NAMESPACE = uuid.UUID("6f1c2a4e-9d1b-4c55-8a37-0f0e3c1d2b7a")
OPEN = (ReferralStatus.ATTRIBUTED.value, ReferralStatus.UNQUALIFIED.value)


# Codes and links ---------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """A code as stored: upper case, without the spaces and dashes people type into it."""
    return "".join(ch for ch in code.upper() if ch not in " -_\t")


def new_code() -> str:
    """A random code of ``CODE_LENGTH`` unambiguous characters (30^8: about 6.6e11)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def code_for(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> ReferralCode:
    """The customer's code, made on first use; the same code ever after."""
    for _ in range(10):
        existing = (
            await session.exec(
                select(ReferralCode).where(
                    ReferralCode.tenant_id == tenant_id, ReferralCode.customer_id == customer_id
                )
            )
        ).one_or_none()
        if existing is not None:
            return existing
        # Another code of the tenant may be the same (rare): the insert does nothing; try again.
        await session.execute(
            insert(ReferralCode)
            .values(
                tenant_id=tenant_id, customer_id=customer_id, code=new_code(), created_at=utcnow()
            )
            .on_conflict_do_nothing()
        )
    raise RuntimeError("could not find a free referral code in 10 tries")


async def get_codes(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The codes of the customers among ``customer_ids`` that have one."""
    rows = await session.execute(
        select(ReferralCode.customer_id, ReferralCode.code).where(
            ReferralCode.tenant_id == tenant_id, col(ReferralCode.customer_id).in_(customer_ids)
        )
    )
    return dict(rows.all())


def link_for(code: str, program: ProgramSettings, default_base: str) -> str:
    """The referral link: the program's (or the service's) base with the code appended."""
    return f"{program.link_base or default_base}{code}"


# The program -------------------------------------------------------------------------------


async def get_program(session: AsyncSession, tenant_id: uuid.UUID) -> ProgramSettings:
    """The tenant's referral program (the defaults until staff set one)."""
    found = await session.execute(
        select(ReferralProgram.settings).where(ReferralProgram.tenant_id == tenant_id)
    )
    stored = found.scalar_one_or_none()
    return ProgramSettings() if stored is None else ProgramSettings.model_validate(stored)


async def update_program(
    *, session: AsyncSession, tenant_id: uuid.UUID, settings: ProgramSettings, actor: str
) -> ProgramSettings:
    """Replace the tenant's program (every offer it names is the tenant's own)."""
    await offers.require_offers(
        session=session,
        tenant_id=tenant_id,
        offer_ids={
            "input.referrerOfferId": settings.referrer_offer_id,
            "input.referredOfferId": settings.referred_offer_id,
            **{
                f"input.milestones.{index}.offerId": milestone.offer_id
                for index, milestone in enumerate(settings.milestones)
            },
        },
    )
    data = settings.model_dump(mode="json")
    now = utcnow()
    await session.execute(
        insert(ReferralProgram)
        .values(tenant_id=tenant_id, settings=data, updated_by=actor, updated_at=now)
        .on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"settings": data, "updated_by": actor, "updated_at": now},
        )
    )
    return settings


# Fraud evidence ----------------------------------------------------------------------------


async def record_fingerprints(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    fingerprints: Sequence[str],
) -> None:
    """Remember keyed hashes of the customer's verified contact points."""
    if not fingerprints:
        return
    await session.execute(
        insert(ContactFingerprint)
        .values(
            [
                {
                    "tenant_id": tenant_id,
                    "fingerprint": f,
                    "customer_id": customer_id,
                    "seen_at": utcnow(),
                }
                for f in sorted(set(fingerprints))
            ]
        )
        .on_conflict_do_nothing()
    )


async def forget_fingerprints(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Drop the fingerprints of erased customers."""
    await session.execute(
        delete(ContactFingerprint).where(
            col(ContactFingerprint.tenant_id) == tenant_id,
            col(ContactFingerprint.customer_id).in_(customer_ids),
        )
    )


async def _shares_fingerprint(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    with_referrer: uuid.UUID | None,
    excluding: Sequence[uuid.UUID] = (),
) -> bool:
    """Whether a verified contact point of ``customer_id`` was seen on ``with_referrer`` (or,
    with None, on any other customer but those in ``excluding``)."""
    mine, theirs = aliased(ContactFingerprint), aliased(ContactFingerprint)
    query = (
        select(col(mine.fingerprint))
        .join(
            theirs,
            and_(
                col(theirs.tenant_id) == col(mine.tenant_id),
                col(theirs.fingerprint) == col(mine.fingerprint),
            ),
        )
        .where(
            col(mine.tenant_id) == tenant_id,
            col(mine.customer_id) == customer_id,
            col(theirs.customer_id) != customer_id,
        )
        .limit(1)
    )
    if with_referrer is not None:
        query = query.where(col(theirs.customer_id) == with_referrer)
    elif excluding:
        query = query.where(col(theirs.customer_id).not_in(excluding))
    return (await session.execute(query)).first() is not None


async def hold_reasons(
    session: AsyncSession, referral: Referral, program: ProgramSettings
) -> list[HoldReason]:
    """The fraud checks this referral fails (empty: pay it)."""
    reasons = []
    tenant_id = referral.tenant_id
    if referral.referrer_id == referral.referred_id or await _shares_fingerprint(
        session, tenant_id, referral.referred_id, with_referrer=referral.referrer_id
    ):
        reasons.append(HoldReason.SELF_REFERRAL)
    if await _shares_fingerprint(
        session,
        tenant_id,
        referral.referred_id,
        with_referrer=None,
        excluding=[referral.referrer_id],
    ):
        reasons.append(HoldReason.SHARED_CONTACT_POINT)
    window_start = referral.attributed_at - timedelta(hours=program.velocity_window_hours)
    recent = await session.execute(
        select(func.count()).where(
            Referral.tenant_id == tenant_id,
            Referral.referrer_id == referral.referrer_id,
            col(Referral.attributed_at) > window_start,
            or_(
                col(Referral.attributed_at) < referral.attributed_at,
                and_(
                    col(Referral.attributed_at) == referral.attributed_at,
                    col(Referral.id) <= referral.id,
                ),
            ),
        )
    )
    if int(recent.scalar_one()) > program.velocity_limit:
        reasons.append(HoldReason.VELOCITY)
    return reasons


# Attribution -------------------------------------------------------------------------------


async def attribute(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    referred_id: uuid.UUID,
    code: str,
    at: datetime | None = None,
    ttl_days: int = ledger.DEFAULT_TTL_DAYS,
) -> Referral | None:
    """Record that ``referred_id`` registered with ``code`` (once); None for an unknown code.
    Under a sign-up program the referral qualifies at once (held or paid)."""
    normalized = normalize_code(code)
    referrer_id = (
        await session.execute(
            select(ReferralCode.customer_id).where(
                ReferralCode.tenant_id == tenant_id, ReferralCode.code == normalized
            )
        )
    ).scalar_one_or_none()
    if referrer_id is None:
        log.info("registration with unknown referral code in tenant %s: ignored", tenant_id)
        return None
    # The code of a customer merged into another refers for the survivor.
    referrer_id = await current_customer(session, tenant_id, referrer_id)
    inserted = await session.execute(
        insert(Referral)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            referrer_id=referrer_id,
            referred_id=referred_id,
            code=normalized,
            status=ReferralStatus.ATTRIBUTED.value,
            hold_reasons=[],
            attributed_at=at or utcnow(),
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(constraint="referrals_tenant_referred")
        .returning(col(Referral.id))
    )
    new_id = inserted.scalar_one_or_none()
    referral = await _referral_of(session, tenant_id, referred_id)
    if new_id is None:
        return referral
    await record_event(
        session,
        ReferralAttributed(
            referral_id=referral.id, referrer_id=referrer_id, referred_id=referred_id
        ),
        tenant_id=tenant_id,
        subject=str(referrer_id),
    )
    # The referred customer's purchases so far now count for the referrer.
    await value.refresh(session=session, tenant_id=tenant_id, customer_ids=[referrer_id])
    program = await get_program(session, tenant_id)
    if program.enabled and program.qualifying_kind is QualifyingKind.SIGNUP:
        locked = await _lock(session, tenant_id, referral.id)
        await _qualify(session, locked, program, ttl_days)
        return locked
    return referral


async def _referral_of(
    session: AsyncSession, tenant_id: uuid.UUID, referred_id: uuid.UUID
) -> Referral:
    return (
        await session.exec(
            select(Referral)
            .where(Referral.tenant_id == tenant_id, Referral.referred_id == referred_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()


async def _lock(session: AsyncSession, tenant_id: uuid.UUID, referral_id: uuid.UUID) -> Referral:
    found = (
        await session.exec(
            select(Referral)
            .where(Referral.tenant_id == tenant_id, Referral.id == referral_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if found is None:
        raise NotFound("input.referralId: no such referral", field="input.referralId")
    return found


# Qualification and payment -----------------------------------------------------------------


def qualifies(purchase: Purchase, program: ProgramSettings) -> bool:
    """Whether ``purchase`` (net of refunds) qualifies a referral under ``program``."""
    if program.qualifying_kind is QualifyingKind.SIGNUP:
        return False  # the sign-up qualified it (or it was not attributed under this program)
    if (
        program.qualifying_kind is not QualifyingKind.ANY
        and purchase.kind != program.qualifying_kind
    ):
        return False
    return purchase.net_cents >= max(program.min_amount_cents, 1)


async def purchase_recorded(
    *, session: AsyncSession, purchase: Purchase, ttl_days: int = ledger.DEFAULT_TTL_DAYS
) -> Referral | None:
    """Qualify the buyer's open referral with this purchase: pay both sides, or hold it."""
    referral = (
        await session.exec(
            select(Referral)
            .where(
                Referral.tenant_id == purchase.tenant_id,
                Referral.referred_id == purchase.customer_id,
                col(Referral.status).in_(OPEN),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if referral is None:
        return None
    program = await get_program(session, purchase.tenant_id)
    if not program.enabled or not qualifies(purchase, program):
        return referral
    referral.qualifying_purchase_id = purchase.id
    await _qualify(session, referral, program, ttl_days)
    return referral


async def _qualify(
    session: AsyncSession, referral: Referral, program: ProgramSettings, ttl_days: int
) -> None:
    """The referral qualified (by ``qualifying_purchase_id``, or by the sign-up when None):
    hold it if a fraud check fails, else pay both sides."""
    now = utcnow()
    referral.qualified_at = now
    reasons = await hold_reasons(session, referral, program)
    if reasons:
        referral.status, referral.hold_reasons = (
            ReferralStatus.HELD.value,
            [r.value for r in reasons],
        )
        referral.updated_at = now
        session.add(referral)
        await record_event(
            session,
            ReferralHeld(
                **_ids(referral),
                reasons=referral.hold_reasons,
                purchase_id=referral.qualifying_purchase_id,
            ),
            tenant_id=referral.tenant_id,
            subject=str(referral.referrer_id),
        )
        await session.flush()
        return
    await _pay(session, referral, program, ttl_days)


def _qualifier(referral: Referral) -> str:
    """What qualified the referral, in ledger keys and grant names: the purchase, or the
    sign-up."""
    purchase = referral.qualifying_purchase_id
    return str(purchase) if purchase is not None else "signup"


def _ids(referral: Referral) -> dict[str, uuid.UUID]:
    return {
        "referral_id": referral.id,
        "referrer_id": referral.referrer_id,
        "referred_id": referral.referred_id,
    }


async def _credit(
    session: AsyncSession,
    referral: Referral,
    side: str,
    customer_id: uuid.UUID,
    points: int,
    ttl_days: int,
) -> ledger.Movement | None:
    if points <= 0:
        return None
    await ledger.hold_account(
        session=session, tenant_id=referral.tenant_id, customer_id=customer_id
    )
    return await ledger.earn(
        session,
        tenant_id=referral.tenant_id,
        customer_id=customer_id,
        points=points,
        reason=f"referral ({side})",
        idempotency_key=f"referral:{referral.id}:{side}:{_qualifier(referral)}",
        actor=ACTOR,
        ttl_days=ttl_days,
    )


async def _pay(
    session: AsyncSession, referral: Referral, program: ProgramSettings, ttl_days: int
) -> None:
    """Pay both sides of a qualified referral, grant its coupons, check the milestones."""
    qualified = await record_event(
        session,
        ReferralQualified(**_ids(referral), purchase_id=referral.qualifying_purchase_id),
        tenant_id=referral.tenant_id,
        subject=str(referral.referrer_id),
    )
    referrer = await _credit(
        session, referral, "referrer", referral.referrer_id, program.referrer_points, ttl_days
    )
    referred = await _credit(
        session, referral, "referred", referral.referred_id, program.referred_points, ttl_days
    )
    for side, customer_id, offer_id in (
        ("referrer", referral.referrer_id, program.referrer_offer_id),
        ("referred", referral.referred_id, program.referred_offer_id),
    ):
        if offer_id is not None:
            grant = f"{referral.tenant_id}/referral/{referral.id}/{side}/{_qualifier(referral)}"
            await record_event(
                session,
                CouponGranted(
                    grant_id=uuid.uuid5(GRANT_NAMESPACE, grant),
                    customer_id=customer_id,
                    offer_id=offer_id,
                    source=f"referral:{referral.id}",
                    source_event_id=qualified.id,
                ),
                tenant_id=referral.tenant_id,
                subject=str(customer_id),
            )
    now = utcnow()
    referral.status, referral.rewarded_at, referral.updated_at = (
        ReferralStatus.REWARDED.value,
        now,
        now,
    )
    referral.referrer_entry_id = referrer.entry.id if referrer else None
    referral.referred_entry_id = referred.entry.id if referred else None
    session.add(referral)
    await session.flush()
    rewarded = await record_event(
        session,
        ReferralRewarded(
            **_ids(referral),
            referrer_points=referrer.points if referrer else 0,
            referred_points=referred.points if referred else 0,
            referrer_entry_id=referral.referrer_entry_id,
            referred_entry_id=referral.referred_entry_id,
        ),
        tenant_id=referral.tenant_id,
        subject=str(referral.referrer_id),
    )
    await _grant_milestones(session, referral, program, rewarded.id)


async def _grant_milestones(
    session: AsyncSession, referral: Referral, program: ProgramSettings, event_id: uuid.UUID
) -> None:
    if not program.milestones:
        return
    rewarded = int(
        (
            await session.execute(
                select(func.count()).where(
                    Referral.tenant_id == referral.tenant_id,
                    Referral.referrer_id == referral.referrer_id,
                    Referral.status == ReferralStatus.REWARDED.value,
                )
            )
        ).scalar_one()
    )
    for milestone in program.milestones:
        if milestone.referrals > rewarded:
            continue
        grant_id = uuid.uuid5(
            GRANT_NAMESPACE,
            f"{referral.tenant_id}/{referral.referrer_id}/referral-milestone/{milestone.id}",
        )
        inserted = await session.execute(
            insert(MilestoneGrant)
            .values(
                tenant_id=referral.tenant_id,
                referrer_id=referral.referrer_id,
                milestone_id=milestone.id,
                grant_id=grant_id,
                offer_id=milestone.offer_id,
                granted_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(col(MilestoneGrant.grant_id))
        )
        if inserted.first() is None:
            continue
        await record_event(
            session,
            CouponGranted(
                grant_id=grant_id,
                customer_id=referral.referrer_id,
                offer_id=milestone.offer_id,
                source=f"referral-milestone:{milestone.id}",
                source_event_id=event_id,
            ),
            tenant_id=referral.tenant_id,
            subject=str(referral.referrer_id),
        )


# Taking back -------------------------------------------------------------------------------


async def _take_back(session: AsyncSession, referral: Referral, why: str) -> int:
    """Reverse what the referral paid; points already spent are taken from the balance instead
    (never below zero). Returns the points taken back."""
    taken = 0
    for side, customer_id, entry_id in (
        ("referrer", referral.referrer_id, referral.referrer_entry_id),
        ("referred", referral.referred_id, referral.referred_entry_id),
    ):
        if entry_id is None:
            continue
        try:
            movement = await ledger.reverse(
                session,
                tenant_id=referral.tenant_id,
                entry_id=entry_id,
                reason=why,
                idempotency_key=f"referral:{referral.id}:{side}:reversal:{entry_id}",
                actor=ACTOR,
            )
            taken += -movement.points
        except BadUserInput:
            # Some of the points were spent or expired: take back what the balance holds.
            taken += await _debit_what_is_left(session, referral, side, customer_id, entry_id, why)
    referral.referrer_entry_id = referral.referred_entry_id = None
    return taken


async def _debit_what_is_left(
    session: AsyncSession,
    referral: Referral,
    side: str,
    customer_id: uuid.UUID,
    entry_id: uuid.UUID,
    why: str,
) -> int:
    paid = (
        await session.execute(
            select(func.sum(Posting.amount))
            .join(Account, col(Account.id) == col(Posting.account_id))
            .where(Posting.entry_id == entry_id, Account.customer_id == customer_id)
        )
    ).scalar_one()
    balances = await ledger.get_balances(
        session=session, tenant_id=referral.tenant_id, customer_ids=[customer_id]
    )
    points = min(int(paid or 0), balances.get(customer_id, 0))
    if points <= 0:
        return 0
    movement = await ledger.adjust(
        session,
        tenant_id=referral.tenant_id,
        customer_id=customer_id,
        points=-points,
        reason=why,
        idempotency_key=f"referral:{referral.id}:{side}:clawback:{entry_id}",
        actor=ACTOR,
    )
    return -movement.points


async def purchase_refunded(*, session: AsyncSession, purchase: Purchase) -> list[Referral]:
    """Un-qualify the referrals this purchase qualified if it no longer would; reverse them."""
    rows = (
        await session.exec(
            select(Referral)
            .where(
                Referral.tenant_id == purchase.tenant_id,
                Referral.qualifying_purchase_id == purchase.id,
                col(Referral.status).in_(
                    (ReferralStatus.HELD.value, ReferralStatus.REWARDED.value)
                ),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    if not rows:
        return []
    program = await get_program(session, purchase.tenant_id)
    if qualifies(purchase, program):
        return []
    for referral in rows:
        reversed_points = await _take_back(
            session, referral, f"referral {referral.id}: qualifying purchase refunded"
        )
        referral.status = ReferralStatus.UNQUALIFIED.value
        referral.qualifying_purchase_id = None
        referral.hold_reasons = []
        referral.updated_at = utcnow()
        session.add(referral)
        await record_event(
            session,
            ReferralUnqualified(
                **_ids(referral), purchase_id=purchase.id, reversed_points=reversed_points
            ),
            tenant_id=referral.tenant_id,
            subject=str(referral.referrer_id),
        )
    await session.flush()
    return list(rows)


# Review ------------------------------------------------------------------------------------


async def approve(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    referral_id: uuid.UUID,
    actor: str,
    note: str | None = None,
    ttl_days: int = ledger.DEFAULT_TTL_DAYS,
) -> Referral:
    """Pay a held referral after review."""
    referral = await _lock(session, tenant_id, referral_id)
    if referral.status != ReferralStatus.HELD.value:
        raise Conflict(
            f"input.referralId: the referral is {referral.status}, not held",
            field="input.referralId",
        )
    referral.reviewed_by, referral.reviewed_at, referral.review_note = actor, utcnow(), note
    await _pay(session, referral, await get_program(session, tenant_id), ttl_days)
    return referral


async def reject(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    referral_id: uuid.UUID,
    actor: str,
    reason: str,
) -> tuple[Referral, int]:
    """Reject a referral as fraud: unpaid if held, clawed back if paid. (referral, points taken)"""
    referral = await _lock(session, tenant_id, referral_id)
    if referral.status == ReferralStatus.REJECTED.value:
        raise Conflict(
            "input.referralId: the referral is already rejected", field="input.referralId"
        )
    taken = await _take_back(session, referral, f"referral {referral.id} rejected: {reason}")
    now = utcnow()
    referral.status, referral.updated_at = ReferralStatus.REJECTED.value, now
    referral.reviewed_by, referral.reviewed_at, referral.review_note = actor, now, reason
    session.add(referral)
    await session.flush()
    await record_event(
        session,
        ReferralRejected(**_ids(referral), clawed_back_points=taken),
        tenant_id=tenant_id,
        subject=str(referral.referrer_id),
    )
    await value.refresh(session=session, tenant_id=tenant_id, customer_ids=[referral.referrer_id])
    return referral, taken


# Reading -----------------------------------------------------------------------------------


async def referrals_of(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    referrer_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Referral]:
    """The referrer's referrals, newest first."""
    query = select(Referral).where(
        Referral.tenant_id == tenant_id, Referral.referrer_id == referrer_id
    )
    page = keyset_page(
        query, col(Referral.attributed_at), col(Referral.id), after, limit=limit, newest_first=True
    )
    return list((await session.exec(page)).all())


async def held_referrals(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Referral]:
    """Referrals waiting for review, oldest first."""
    query = select(Referral).where(
        Referral.tenant_id == tenant_id, Referral.status == ReferralStatus.HELD.value
    )
    page = keyset_page(query, col(Referral.attributed_at), col(Referral.id), after, limit=limit)
    return list((await session.exec(page)).all())


async def export_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any]:
    """The customer's code and referrals (made and received), as plain JSON (privacy export)."""
    code = (
        await session.exec(
            select(ReferralCode.code).where(
                ReferralCode.tenant_id == tenant_id, ReferralCode.customer_id == customer_id
            )
        )
    ).one_or_none()
    rows = (
        await session.exec(
            select(Referral)
            .where(
                Referral.tenant_id == tenant_id,
                or_(
                    col(Referral.referrer_id) == customer_id,
                    col(Referral.referred_id) == customer_id,
                ),
            )
            .order_by(col(Referral.attributed_at), col(Referral.id))
        )
    ).all()
    return {
        "code": code,
        "referrals": [
            {
                "role": "referrer" if r.referrer_id == customer_id else "referred",
                "status": r.status,
                "hold_reasons": r.hold_reasons,
                "attributed_at": r.attributed_at.isoformat(),
            }
            for r in rows
        ],
    }
