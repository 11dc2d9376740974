"""Care's operations: brand accounts, cases opened and followed from ingestion, the agents'
actions on them, the SLA breach check, and the customer value projection.

Ingestion calls :func:`on_interaction_recorded` for every new interaction, in its own
transaction: a complaint, a question or (configurably) a negative mention of the brand opens a
case; a follow-up of the same author in the same thread joins the active case; the brand's own
reply in the thread is the case's first response; a share of the brand's content is announced.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import and_, delete, or_, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from engagement.care.events import (
    CaseAnswered,
    CaseAssigned,
    CaseBreached,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    ContentShared,
)
from engagement.care.models import (
    ACTIVE_STATUSES,
    PRIORITIES,
    STATUSES,
    TO_PUBLISH,
    BrandAccount,
    Case,
    CaseBreach,
    CaseInteraction,
    CaseReply,
    CustomerValue,
)
from engagement.care.priority import (
    Targets,
    case_kind,
    case_priority,
    due_times,
    sla_target,
)
from engagement.interactions.models import CHANNELS, Interaction
from engagement.settings import EngagementSettings

MAX_REPLY = 10_000
QueuePosition = tuple[int, datetime, uuid.UUID]


@dataclass(frozen=True)
class CarePolicy:
    """The settings care works by (from :class:`EngagementSettings`)."""

    from_negative_mentions: bool
    mention_max_sentiment: float
    sla_minutes: Targets
    sla_overrides: Mapping[str, Targets]
    history_after: timedelta | None = None  # older items are history: no live case

    @classmethod
    def from_settings(cls, settings: EngagementSettings) -> CarePolicy:
        """The policy the settings describe."""
        hours = settings.case_history_after_hours
        return cls(
            from_negative_mentions=settings.case_from_negative_mentions,
            mention_max_sentiment=settings.case_mention_max_sentiment,
            sla_minutes=settings.case_sla_minutes,
            sla_overrides=settings.case_sla_overrides,
            history_after=timedelta(hours=hours) if hours else None,
        )

    def is_history(self, interaction: Interaction, now: datetime) -> bool:
        """Whether the item is too old to concern live care (imported history)."""
        created = interaction.created_at
        if self.history_after is None or created is None:
            return False
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return created < now - self.history_after


@cache
def default_policy() -> CarePolicy:
    """The policy of this process's settings."""
    return CarePolicy.from_settings(EngagementSettings())


@dataclass(frozen=True)
class CaseView:
    """A case with its customer (the opening interaction's, which follows identity's links)."""

    case: Case
    customer_id: uuid.UUID | None


# --- brand accounts ----------------------------------------------------------------------


async def create_brand_account(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    channel: str,
    platform_user_id: str,
    handle: str | None,
) -> BrandAccount:
    """A new brand account; CONFLICT if the tenant already has it."""
    if channel not in CHANNELS:
        raise BadUserInput(
            f"input.channel: must be one of {', '.join(CHANNELS)}", field="input.channel"
        )
    user_id = platform_user_id.strip()
    if not user_id or len(user_id) > 200:
        raise BadUserInput(
            "input.platformUserId: 1 to 200 characters", field="input.platformUserId"
        )
    cleaned_handle = (handle or "").strip().lstrip("@") or None
    if cleaned_handle is not None and len(cleaned_handle) > 200:
        raise BadUserInput("input.handle: at most 200 characters", field="input.handle")
    inserted = await session.execute(
        insert(BrandAccount)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            channel=channel,
            platform_user_id=user_id,
            handle=cleaned_handle,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(constraint="brand_accounts_account")
        .returning(col(BrandAccount.id))
    )
    account_id = inserted.scalar_one_or_none()
    if account_id is None:
        raise Conflict(
            f"input.platformUserId: {channel} account {user_id!r} is already a brand account",
            field="input.platformUserId",
        )
    account = await session.get(BrandAccount, account_id)
    assert account is not None
    return account


async def remove_brand_account(
    *, session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID
) -> BrandAccount:
    """Forget a brand account (what it wrote stays the brand's); NOT_FOUND if unknown."""
    found = await session.exec(
        select(BrandAccount).where(
            BrandAccount.tenant_id == tenant_id, BrandAccount.id == account_id
        )
    )
    account = found.first()
    if account is None:
        raise NotFound("id: no such brand account", field="id")
    await session.execute(delete(BrandAccount).where(col(BrandAccount.id) == account_id))
    return account


async def list_brand_accounts(*, session: AsyncSession, tenant_id: uuid.UUID) -> list[BrandAccount]:
    """The tenant's brand accounts, by channel then handle."""
    rows = await session.exec(
        select(BrandAccount)
        .where(BrandAccount.tenant_id == tenant_id)
        .order_by(col(BrandAccount.channel), col(BrandAccount.created_at), col(BrandAccount.id))
    )
    return list(rows)


async def brand_account_keys(
    *, session: AsyncSession, tenant_id: uuid.UUID
) -> frozenset[tuple[str, str]]:
    """``(channel, platform user id)`` of each of the tenant's brand accounts."""
    rows = await session.execute(
        select(col(BrandAccount.channel), col(BrandAccount.platform_user_id)).where(
            col(BrandAccount.tenant_id) == tenant_id
        )
    )
    return frozenset((r.channel, r.platform_user_id) for r in rows)


# --- what ingestion tells care -------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A new interaction as care needs it: the author's followers, whether it names the brand."""

    interaction: Interaction
    followers: int | None
    brand_mentioned: bool


CaseKey = tuple[str, str, str]


async def on_interactions_recorded(
    *, session: AsyncSession, recorded: Sequence[Recorded], policy: CarePolicy
) -> None:
    """:func:`on_interaction_recorded` for a batch, in order.

    One query first finds which of the batch's authors have an active case in their thread;
    only their items look the case up (and lock it) one by one. A case opened by an earlier
    item of the batch is seen by the later ones.
    """
    now = utcnow()
    recorded = [r for r in recorded if not policy.is_history(r.interaction, now)]
    if not recorded:
        return
    keys = {
        key
        for r in recorded
        if not r.interaction.by_brand and (key := _case_key(r.interaction)) is not None
    }
    active: set[CaseKey] = set()
    if keys:
        rows = await session.execute(
            select(
                col(Case.channel), col(Case.thread_key), col(Case.author_platform_user_id)
            ).where(
                col(Case.tenant_id) == recorded[0].interaction.tenant_id,
                col(Case.status).in_(ACTIVE_STATUSES),
                tuple_(
                    col(Case.channel), col(Case.thread_key), col(Case.author_platform_user_id)
                ).in_(list(keys)),
            )
        )
        active = {(r.channel, r.thread_key, r.author_platform_user_id) for r in rows}
    for r in recorded:
        await on_interaction_recorded(
            session=session,
            interaction=r.interaction,
            followers=r.followers,
            brand_mentioned=r.brand_mentioned,
            policy=policy,
            active=active,
        )


async def on_interaction_recorded(
    *,
    session: AsyncSession,
    interaction: Interaction,
    followers: int | None,
    brand_mentioned: bool,
    policy: CarePolicy,
    active: set[CaseKey] | None = None,
) -> None:
    """Open, follow or answer cases for a new interaction (in ingestion's transaction).

    ``active``, when given, holds the keys of every active case that may concern the
    interaction (see :func:`on_interactions_recorded`); it grows by the case opened here.
    """
    if policy.is_history(interaction, utcnow()):
        return  # imported history: the past opens no case, and breaches no target now
    if interaction.by_brand:
        await _brand_spoke(session, interaction)
        return
    if interaction.kind == "share":
        await _maybe_shared(session, interaction)
        return
    kind = case_kind(
        kind=interaction.kind,
        sentiment=interaction.sentiment_score,
        brand_mentioned=brand_mentioned,
        from_negative_mentions=policy.from_negative_mentions,
        mention_max_sentiment=policy.mention_max_sentiment,
    )
    key = _case_key(interaction)
    if active is None or key in active:
        case = await _active_case_of_author(session, interaction)
        if case is not None:
            await _follow_up(session, case, interaction)
            return
    if kind is not None:
        await _open_case(session, interaction, kind, followers, policy)
        if active is not None and key is not None:
            active.add(key)


def _case_key(interaction: Interaction) -> CaseKey | None:
    """What makes a case the author's active case: channel, thread and author."""
    if interaction.author_platform_user_id is None:
        return None
    return (interaction.channel, _thread_key(interaction), interaction.author_platform_user_id)


def _thread_key(interaction: Interaction) -> str:
    return interaction.thread_id or interaction.platform_id


async def _active_case_of_author(session: AsyncSession, interaction: Interaction) -> Case | None:
    if interaction.author_platform_user_id is None:
        return None
    found = await session.exec(
        select(Case)
        .where(
            Case.tenant_id == interaction.tenant_id,
            Case.channel == interaction.channel,
            Case.thread_key == _thread_key(interaction),
            Case.author_platform_user_id == interaction.author_platform_user_id,
            col(Case.status).in_(ACTIVE_STATUSES),
        )
        .with_for_update()
    )
    return found.first()


async def _attach(session: AsyncSession, case: Case, interaction_id: uuid.UUID) -> None:
    await session.execute(
        insert(CaseInteraction)
        .values(case_id=case.id, interaction_id=interaction_id, tenant_id=case.tenant_id)
        .on_conflict_do_nothing()
    )


async def _follow_up(session: AsyncSession, case: Case, interaction: Interaction) -> None:
    """The customer wrote again in the thread: it joins the case, which awaits the brand again."""
    await _attach(session, case, interaction.id)
    if case.status == "answered":
        case.status = "assigned" if case.assignee_id else "open"
    case.updated_at = utcnow()
    session.add(case)
    await session.flush()


async def _customer_value(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID | None
) -> int | None:
    if customer_id is None:
        return None
    value = await session.get(CustomerValue, (tenant_id, customer_id))
    return value.value_cents if value is not None else None


async def _open_case(
    session: AsyncSession,
    interaction: Interaction,
    kind: str,
    followers: int | None,
    policy: CarePolicy,
) -> None:
    tenant_id = interaction.tenant_id
    value = await _customer_value(session, tenant_id, interaction.customer_id)
    priority = case_priority(
        kind=kind,
        sentiment=interaction.sentiment_score,
        followers=followers,
        customer_value_cents=value,
    )
    target = sla_target(
        priority.level,
        defaults=policy.sla_minutes,
        overrides=policy.sla_overrides,
        tenant_id=str(tenant_id),
    )
    # The customer has been waiting since they spoke, not since we heard.
    opened_at = interaction.created_at
    first_due, resolution_due = due_times(opened_at, target)
    case_id = uuid.uuid4()
    inserted = await session.execute(
        insert(Case)
        .values(
            id=case_id,
            tenant_id=tenant_id,
            interaction_id=interaction.id,
            channel=interaction.channel,
            thread_key=_thread_key(interaction),
            author_platform_user_id=interaction.author_platform_user_id,
            kind=kind,
            status="open",
            priority=priority.level,
            priority_rank=priority.rank,
            priority_score=priority.score,
            sentiment_score=interaction.sentiment_score,
            author_followers=followers,
            customer_value_cents=value,
            opened_at=opened_at,
            first_response_due_at=first_due,
            resolution_due_at=resolution_due,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(col(Case.id))
    )
    if inserted.scalar_one_or_none() is None:
        # A concurrent item of the same author and thread opened it first: join that one.
        active = await _active_case_of_author(session, interaction)
        if active is not None:
            await _follow_up(session, active, interaction)
        return
    await session.execute(
        insert(CaseInteraction).values(
            case_id=case_id, interaction_id=interaction.id, tenant_id=tenant_id
        )
    )
    await record_event(
        session,
        CaseOpened(
            case_id=case_id,
            customer_id=interaction.customer_id,
            interaction_id=interaction.id,
            channel=interaction.channel,
            kind=kind,
            priority=priority.level,
            opened_at=opened_at,
            first_response_due_at=first_due,
            resolution_due_at=resolution_due,
        ),
        tenant_id=tenant_id,
        subject=str(interaction.customer_id or case_id),
    )


async def _brand_spoke(session: AsyncSession, interaction: Interaction) -> None:
    """The brand wrote in a thread: the cases it answers have their (first) response."""
    thread = interaction.thread_id or interaction.parent_id
    if thread is None:
        return
    active = (
        select(Case)
        .where(
            Case.tenant_id == interaction.tenant_id,
            Case.channel == interaction.channel,
            Case.thread_key == thread,
            col(Case.status).in_(ACTIVE_STATUSES),
            col(Case.opened_at) <= interaction.created_at,
        )
        .order_by(col(Case.opened_at), col(Case.id))
        .with_for_update()
    )
    cases: list[Case] = []
    if interaction.parent_id is not None:
        # A reply to one customer's item answers that customer's case only.
        replied = await session.exec(
            active.join(CaseInteraction, col(CaseInteraction.case_id) == col(Case.id))
            .join(Interaction, col(Interaction.id) == col(CaseInteraction.interaction_id))
            .where(Interaction.platform_id == interaction.parent_id)
        )
        cases = list(replied)
    if not cases:
        cases = list(await session.exec(active))
    for case in cases:
        await _answer(session, case, interaction.id, interaction.created_at)


async def _answer(
    session: AsyncSession, case: Case, interaction_id: uuid.UUID, at: datetime
) -> None:
    await _attach(session, case, interaction_id)
    first = case.first_response_at is None
    if first:
        case.first_response_at = at
    case.status = "answered"
    case.updated_at = utcnow()
    session.add(case)
    await session.flush()
    if not first:
        return
    customer_id = await _customer_of(session, case)
    await record_event(
        session,
        CaseAnswered(
            case_id=case.id,
            customer_id=customer_id,
            interaction_id=interaction_id,
            answered_at=at,
            first_response_seconds=max(0.0, (at - case.opened_at).total_seconds()),
        ),
        tenant_id=case.tenant_id,
        subject=str(customer_id or case.id),
    )
    if at > case.first_response_due_at:
        await _breach(session, case, customer_id, "first_response", case.first_response_due_at, at)


async def _maybe_shared(session: AsyncSession, interaction: Interaction) -> None:
    """A share of something the brand posted is announced (rewards may reward it)."""
    if interaction.parent_id is None:
        return
    shared = await session.exec(
        select(Interaction.id).where(
            Interaction.tenant_id == interaction.tenant_id,
            Interaction.channel == interaction.channel,
            Interaction.platform_id == interaction.parent_id,
            col(Interaction.by_brand).is_(True),
        )
    )
    if shared.first() is None:
        return
    await record_event(
        session,
        ContentShared(
            interaction_id=interaction.id,
            customer_id=interaction.customer_id,
            channel=interaction.channel,
        ),
        tenant_id=interaction.tenant_id,
        subject=str(interaction.customer_id or interaction.id),
    )


async def _customer_of(session: AsyncSession, case: Case) -> uuid.UUID | None:
    found = await session.exec(
        select(Interaction.customer_id).where(Interaction.id == case.interaction_id)
    )
    return found.first()


async def _breach(
    session: AsyncSession,
    case: Case,
    customer_id: uuid.UUID | None,
    target: str,
    due_at: datetime,
    at: datetime,
) -> bool:
    """Record that ``case`` missed ``target`` (once per case and target); True if new."""
    inserted = await session.execute(
        insert(CaseBreach)
        .values(
            case_id=case.id, target=target, tenant_id=case.tenant_id, due_at=due_at, breached_at=at
        )
        .on_conflict_do_nothing()
        .returning(col(CaseBreach.case_id))
    )
    if inserted.scalar_one_or_none() is None:
        return False
    await record_event(
        session,
        CaseBreached(
            case_id=case.id,
            customer_id=customer_id,
            target=target,
            priority=case.priority,
            due_at=due_at,
            breached_at=at,
        ),
        tenant_id=case.tenant_id,
        subject=str(customer_id or case.id),
    )
    return True


# --- reading cases -------------------------------------------------------------------------


async def get_case(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    case_id: uuid.UUID,
    for_update: bool = False,
) -> CaseView | None:
    """The tenant's case ``case_id`` with its customer, or None."""
    query = (
        select(Case, col(Interaction.customer_id))
        .join(Interaction, col(Interaction.id) == col(Case.interaction_id))
        .where(Case.tenant_id == tenant_id, Case.id == case_id)
    )
    if for_update:
        query = query.with_for_update(of=Case)
    row = (await session.execute(query)).first()
    return CaseView(row[0], row[1]) if row is not None else None


async def case_queue(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: QueuePosition | None,
    statuses: Sequence[str],
    priorities: Sequence[str] | None = None,
    assignee_id: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> list[CaseView]:
    """Cases in queue order: most urgent first, then oldest (then id, so pages are stable)."""
    query = (
        select(Case, col(Interaction.customer_id))
        .join(Interaction, col(Interaction.id) == col(Case.interaction_id))
        .where(Case.tenant_id == tenant_id, col(Case.status).in_(statuses))
    )
    if priorities:
        query = query.where(col(Case.priority).in_(priorities))
    if assignee_id is not None:
        query = query.where(Case.assignee_id == assignee_id)
    if customer_id is not None:
        query = query.where(Interaction.customer_id == customer_id)
    if after is not None:
        rank, at, id_ = after
        query = query.where(
            or_(
                col(Case.priority_rank) > rank,
                and_(col(Case.priority_rank) == rank, col(Case.opened_at) > at),
                and_(
                    col(Case.priority_rank) == rank,
                    col(Case.opened_at) == at,
                    col(Case.id) > id_,
                ),
            )
        )
    query = query.order_by(col(Case.priority_rank), col(Case.opened_at), col(Case.id)).limit(limit)
    return [CaseView(r[0], r[1]) for r in await session.execute(query)]


async def customer_cases(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[CaseView]:
    """The customer's cases, newest first."""
    query = (
        select(Case, col(Interaction.customer_id))
        .join(Interaction, col(Interaction.id) == col(Case.interaction_id))
        .where(Case.tenant_id == tenant_id, Interaction.customer_id == customer_id)
    )
    if before is not None:
        at, id_ = before
        query = query.where(
            or_(col(Case.opened_at) < at, and_(col(Case.opened_at) == at, col(Case.id) < id_))
        )
    query = query.order_by(col(Case.opened_at).desc(), col(Case.id).desc()).limit(limit)
    return [CaseView(r[0], r[1]) for r in await session.execute(query)]


async def case_interactions(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    case_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Interaction]:
    """A case's interactions in reading order (oldest first)."""
    query = (
        select(Interaction)
        .join(CaseInteraction, col(CaseInteraction.interaction_id) == col(Interaction.id))
        .where(CaseInteraction.tenant_id == tenant_id, CaseInteraction.case_id == case_id)
    )
    if after is not None:
        at, id_ = after
        query = query.where(
            or_(
                col(Interaction.created_at) > at,
                and_(col(Interaction.created_at) == at, col(Interaction.id) > id_),
            )
        )
    query = query.order_by(col(Interaction.created_at), col(Interaction.id)).limit(limit)
    return list(await session.exec(query))


async def breaches_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CaseBreach]]:
    """The SLA breaches of each case."""
    rows = await session.exec(
        select(CaseBreach)
        .where(CaseBreach.tenant_id == tenant_id, col(CaseBreach.case_id).in_(case_ids))
        .order_by(col(CaseBreach.breached_at))
    )
    found: dict[uuid.UUID, list[CaseBreach]] = {}
    for row in rows:
        found.setdefault(row.case_id, []).append(row)
    return found


async def interactions_by_id(
    *, session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Interaction]:
    """Interactions by id (the tenant's only)."""
    rows = await session.exec(
        select(Interaction).where(Interaction.tenant_id == tenant_id, col(Interaction.id).in_(ids))
    )
    return {row.id: row for row in rows}


def check_statuses(values: Sequence[str] | None) -> list[str]:
    """The statuses to list (the active ones by default); BAD_USER_INPUT on an unknown one."""
    if values is None:
        return list(ACTIVE_STATUSES)
    for value in values:
        if value not in STATUSES:
            raise BadUserInput(f"status: must be among {', '.join(STATUSES)}", field="status")
    return list(values)


def check_priorities(values: Sequence[str] | None) -> list[str] | None:
    """The priority levels to list; BAD_USER_INPUT on an unknown one."""
    for value in values or ():
        if value not in PRIORITIES:
            raise BadUserInput(f"priority: must be among {', '.join(PRIORITIES)}", field="priority")
    return list(values) if values else None


# --- agents' actions -----------------------------------------------------------------------


async def _load_for_change(
    session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID
) -> CaseView:
    view = await get_case(session=session, tenant_id=tenant_id, case_id=case_id, for_update=True)
    if view is None:
        raise NotFound("caseId: no such case", field="caseId")
    return view


async def assign_case(
    *, session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, assignee_id: str
) -> CaseView:
    """Give the case to an agent; an active case only (CONFLICT otherwise)."""
    view = await _load_for_change(session, tenant_id, case_id)
    case = view.case
    if case.status not in ACTIVE_STATUSES:
        raise Conflict(f"caseId: the case is {case.status}; reopen it first", field="caseId")
    if case.assignee_id == assignee_id:
        return view
    now = utcnow()
    case.assignee_id = assignee_id
    case.assigned_at = now
    if case.status == "open":
        case.status = "assigned"
    case.updated_at = now
    session.add(case)
    await session.flush()
    await record_event(
        session,
        CaseAssigned(
            case_id=case.id, customer_id=view.customer_id, assignee_id=assignee_id, assigned_at=now
        ),
        tenant_id=tenant_id,
        subject=str(view.customer_id or case.id),
    )
    return view


def check_reply_text(value: str) -> str:
    """The reply's text, trimmed; BAD_USER_INPUT when empty or too long."""
    cleaned = value.strip()
    if not cleaned or len(cleaned) > MAX_REPLY:
        raise BadUserInput(f"text: say something, in 1 to {MAX_REPLY} characters", field="text")
    return cleaned


async def reply_to_case(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    case_id: uuid.UUID,
    text: str,
    replied_by: str,
    min_confidence: float,
) -> tuple[CaseView, Interaction]:
    """Record the brand's public reply in the case's thread, to be published; it answers the case.

    The reply is an interaction by the tenant's brand account on the case's channel (CONFLICT
    if there is none), a reply to the customer's latest item in the case.
    """
    from engagement.ingestion.normalized import AuthorRef, NormalizedItem
    from engagement.ingestion.service import ingest  # ingestion calls care: import here

    body = check_reply_text(text)
    view = await _load_for_change(session, tenant_id, case_id)
    case = view.case
    if case.status == "closed":
        raise Conflict("caseId: the case is closed; reopen it first", field="caseId")
    account = (
        await session.exec(
            select(BrandAccount)
            .where(BrandAccount.tenant_id == tenant_id, BrandAccount.channel == case.channel)
            .order_by(col(BrandAccount.created_at), col(BrandAccount.id))
        )
    ).first()
    if account is None:
        raise Conflict(
            f"caseId: the brand has no {case.channel} account to reply from; "
            "add one with createBrandAccount",
            field="caseId",
        )
    latest = (
        await session.exec(
            select(Interaction)
            .join(CaseInteraction, col(CaseInteraction.interaction_id) == col(Interaction.id))
            .where(
                CaseInteraction.case_id == case.id,
                col(Interaction.by_brand).is_(False),
            )
            .order_by(col(Interaction.created_at).desc(), col(Interaction.id).desc())
        )
    ).first()
    now = utcnow()
    reply_id = uuid.uuid4()
    item = NormalizedItem(
        channel=case.channel,
        platform_id=f"crm-reply-{reply_id}",
        kind="reply",
        thread_id=case.thread_key,
        parent_id=latest.platform_id if latest is not None else None,
        author=AuthorRef(platform_user_id=account.platform_user_id, handle=account.handle),
        text=body,
        created_at=now,
        raw={"source": "replyToCase", "case_id": str(case.id), "publish_status": TO_PUBLISH},
    )
    _, stored = await ingest(
        session=session, tenant_id=tenant_id, items=[item], min_confidence=min_confidence
    )
    interaction = stored[0].interaction
    session.add(
        CaseReply(
            interaction_id=interaction.id,
            tenant_id=tenant_id,
            case_id=case.id,
            replied_by=replied_by,
            publish_status=TO_PUBLISH,
            created_at=now,
        )
    )
    # Ingestion answered the case if the reply reached it through the thread; make sure.
    await session.refresh(case)
    if case.status in ACTIVE_STATUSES and case.status != "answered":
        await _answer(session, case, interaction.id, now)
    else:  # answered already, or a word after resolution: it joins the case, no more
        await _attach(session, case, interaction.id)
    await session.flush()
    return view, interaction


async def resolve_case(
    *, session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID
) -> CaseView:
    """Mark an active case resolved (CONFLICT otherwise)."""
    view = await _load_for_change(session, tenant_id, case_id)
    case = view.case
    if case.status not in ACTIVE_STATUSES:
        raise Conflict(f"caseId: the case is already {case.status}", field="caseId")
    now = utcnow()
    case.status = "resolved"
    case.resolved_at = now
    case.updated_at = now
    session.add(case)
    await session.flush()
    await record_event(
        session,
        CaseResolved(
            case_id=case.id,
            customer_id=view.customer_id,
            resolved_at=now,
            resolution_seconds=max(0.0, (now - case.opened_at).total_seconds()),
        ),
        tenant_id=tenant_id,
        subject=str(view.customer_id or case.id),
    )
    if now > case.resolution_due_at:
        await _breach(session, case, view.customer_id, "resolution", case.resolution_due_at, now)
    return view


async def close_case(
    *, session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID
) -> CaseView:
    """Close a case: nothing more to do (CONFLICT if already closed)."""
    view = await _load_for_change(session, tenant_id, case_id)
    case = view.case
    if case.status == "closed":
        raise Conflict("caseId: the case is already closed", field="caseId")
    now = utcnow()
    case.status = "closed"
    case.closed_at = now
    case.updated_at = now
    session.add(case)
    await session.flush()
    await record_event(
        session,
        CaseClosed(case_id=case.id, customer_id=view.customer_id, closed_at=now),
        tenant_id=tenant_id,
        subject=str(view.customer_id or case.id),
    )
    return view


async def reopen_case(
    *, session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, policy: CarePolicy
) -> CaseView:
    """Open a resolved or closed case again, with a new resolution target from now."""
    view = await _load_for_change(session, tenant_id, case_id)
    case = view.case
    if case.status in ACTIVE_STATUSES:
        raise Conflict(f"caseId: the case is still {case.status}", field="caseId")
    # Another active case of the same customer and thread would clash with this one.
    clash = await session.exec(
        select(Case.id).where(
            Case.tenant_id == tenant_id,
            Case.channel == case.channel,
            Case.thread_key == case.thread_key,
            Case.author_platform_user_id == case.author_platform_user_id,
            col(Case.status).in_(ACTIVE_STATUSES),
            Case.id != case.id,
        )
    )
    if case.author_platform_user_id is not None and clash.first() is not None:
        raise Conflict(
            "caseId: the customer has another active case in this thread", field="caseId"
        )
    now = utcnow()
    target = sla_target(
        case.priority,
        defaults=policy.sla_minutes,
        overrides=policy.sla_overrides,
        tenant_id=str(tenant_id),
    )
    case.status = "assigned" if case.assignee_id else "open"
    case.resolved_at = None
    case.closed_at = None
    case.resolution_due_at = now + target.resolution
    case.updated_at = now
    session.add(case)
    await session.flush()
    await record_event(
        session,
        CaseReopened(case_id=case.id, customer_id=view.customer_id, reopened_at=now),
        tenant_id=tenant_id,
        subject=str(view.customer_id or case.id),
    )
    return view


# --- the SLA breach check ------------------------------------------------------------------


async def check_breaches(db: Database, *, now: datetime | None = None, batch: int = 500) -> int:
    """Record every target an active case has let pass unmet at ``now``; breaches recorded.

    Safe on several replicas at once: a breach row is unique per case and target, and only the
    transaction that inserted it publishes its event.
    """
    now = now or utcnow()
    total = 0
    for target, due, done in (
        ("first_response", "first_response_due_at", "first_response_at"),
        ("resolution", "resolution_due_at", "resolved_at"),
    ):
        while True:
            async with db.session() as session, session.begin():
                due_cases = await session.exec(
                    select(Case)
                    .where(
                        col(getattr(Case, done)).is_(None),
                        col(Case.status).in_(ACTIVE_STATUSES),
                        col(getattr(Case, due)) <= now,
                        ~select(CaseBreach.case_id)
                        .where(CaseBreach.case_id == Case.id, CaseBreach.target == target)
                        .exists(),
                    )
                    .order_by(col(getattr(Case, due)))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
                cases = list(due_cases)
                for case in cases:
                    customer_id = await _customer_of(session, case)
                    if await _breach(session, case, customer_id, target, getattr(case, due), now):
                        total += 1
            if len(cases) < batch:
                break
    return total


# --- customer value (rewards' figure) ------------------------------------------------------


async def project_customer_value(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    value_cents: int,
    changed_at: datetime,
) -> None:
    """Keep the customer's latest value; an older, late event changes nothing."""
    schema = session.info["schema"]
    await session.execute(
        text(
            f"INSERT INTO {schema}.customer_values AS v (tenant_id, customer_id, value_cents, "
            "changed_at) VALUES (:t, :c, :v, :at) ON CONFLICT (tenant_id, customer_id) DO UPDATE "
            "SET value_cents = EXCLUDED.value_cents, changed_at = EXCLUDED.changed_at "
            "WHERE v.changed_at <= EXCLUDED.changed_at"
        ),
        {"t": tenant_id, "c": customer_id, "v": value_cents, "at": changed_at},
    )
