"""Links on real PostgreSQL: an unlinked author's interactions wait, and the profile's link
pays them once as the customer; old ones, erased ones and other tenants' stay unpaid."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.events import Envelope
from crm_shared.privacy import ConsentChanged, ErasureRequested, ProfileRef
from rewards.rules import service
from rewards.rules.conditions import Cap, Conditions, Period
from rewards.rules.handlers import InteractionRecorded, SocialProfileLinked
from tests.rewards.test_rules import HANDLERS, balance, make_rule, payouts_of, review_rule, send
from tests.support.delivery import deliver, envelope_of, now


def authored(platform_user_id: str, **changes: Any) -> InteractionRecorded:
    """A review by an author no customer is linked to."""
    data: dict[str, Any] = {
        "interaction_id": uuid.uuid4(),
        "customer_id": None,
        "channel": "x",
        "kind": "review",
        "platform_user_id": platform_user_id,
        "sentiment": 0.8,
        "sentiment_label": "positive",
        "occurred_at": now(),
        **changes,
    }
    return InteractionRecorded(**data)


def linked(customer: uuid.UUID, platform_user_id: str) -> SocialProfileLinked:
    return SocialProfileLinked(customer_id=customer, channel="x", platform_user_id=platform_user_id)


async def pending_count(db: Database, tenant: uuid.UUID) -> int:
    async with db.session() as session:
        found = await session.execute(
            text("SELECT count(*) FROM rewards.pending_triggers WHERE tenant_id = :t"),
            {"t": tenant},
        )
    return int(found.scalar_one())


async def test_a_link_pays_the_profiles_earlier_review_once_as_the_customer(
    ledger_db: Database,
) -> None:
    tenant, customer, author = uuid.uuid4(), uuid.uuid4(), f"u{uuid.uuid4().hex}"
    rule = await make_rule(ledger_db, tenant, review_rule())
    review = await send(ledger_db, tenant, authored(author))

    assert await payouts_of(ledger_db, rule) == []
    assert await pending_count(ledger_db, tenant) == 1

    link = await send(ledger_db, tenant, linked(customer, author))

    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await balance(ledger_db, tenant, customer) == 50
    assert await pending_count(ledger_db, tenant) == 0
    async with ledger_db.session() as session:
        paid = await service.payouts(session, tenant_id=tenant, rule_id=rule.id, limit=10)
    assert [(p.event_id, p.customer_id) for p in paid] == [(review.id, customer)]

    # The same link again, another link of the profile, the review again: nothing more.
    await deliver(ledger_db, HANDLERS, link)
    await send(ledger_db, tenant, linked(customer, author))
    await deliver(ledger_db, HANDLERS, review)
    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await balance(ledger_db, tenant, customer) == 50


async def test_a_link_pays_within_the_rules_caps(ledger_db: Database) -> None:
    tenant, customer, author = uuid.uuid4(), uuid.uuid4(), f"u{uuid.uuid4().hex}"
    rule = await make_rule(ledger_db, tenant, review_rule(caps=[Cap(period=Period.EVER, count=1)]))
    await send(ledger_db, tenant, authored(author))
    await send(ledger_db, tenant, authored(author))

    await send(ledger_db, tenant, linked(customer, author))

    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await pending_count(ledger_db, tenant) == 0


async def test_a_link_reads_the_customers_consent_as_rules_do(ledger_db: Database) -> None:
    tenant, consenting, silent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, second = f"u{uuid.uuid4().hex}", f"u{uuid.uuid4().hex}"
    rule = await make_rule(
        ledger_db,
        tenant,
        review_rule(
            conditions=Conditions(interaction_kinds=["review"], consent_purposes=["marketing"])
        ),
    )
    await send(
        ledger_db,
        tenant,
        ConsentChanged(customer_id=consenting, purpose="marketing", granted=True, changed_at=now()),
    )
    await send(ledger_db, tenant, authored(first))
    await send(ledger_db, tenant, authored(second))

    await send(ledger_db, tenant, linked(consenting, first))
    await send(ledger_db, tenant, linked(silent, second))

    assert await balance(ledger_db, tenant, consenting) == 50
    assert await balance(ledger_db, tenant, silent) == 0
    assert await payouts_of(ledger_db, rule) == [(1, 50)]


async def test_a_pending_review_past_the_age_limit_is_not_paid(ledger_db: Database) -> None:
    # The default age limit: 90 days.
    tenant, customer, author = uuid.uuid4(), uuid.uuid4(), f"u{uuid.uuid4().hex}"
    rule = await make_rule(ledger_db, tenant, review_rule())
    await send(ledger_db, tenant, authored(author, occurred_at=now() - timedelta(days=91)))
    await send(ledger_db, tenant, authored(author, occurred_at=now() - timedelta(days=89)))

    await send(ledger_db, tenant, linked(customer, author))

    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await pending_count(ledger_db, tenant) == 0


async def test_pruning_deletes_pending_triggers_past_the_age_limit(ledger_db: Database) -> None:
    tenant, author = uuid.uuid4(), f"u{uuid.uuid4().hex}"
    await send(ledger_db, tenant, authored(author, occurred_at=now() - timedelta(days=91)))
    await send(ledger_db, tenant, authored(author))

    await service.prune_pending(ledger_db, max_age_days=90)

    assert await pending_count(ledger_db, tenant) == 1


async def test_an_erasure_removes_the_pending_triggers_of_the_erased_profiles(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    erased, kept = f"u{uuid.uuid4().hex}", f"u{uuid.uuid4().hex}"
    rule = await make_rule(ledger_db, tenant, review_rule())
    await send(ledger_db, tenant, authored(erased))
    await send(ledger_db, tenant, authored(kept))

    await send(
        ledger_db,
        tenant,
        ErasureRequested(
            request_id=uuid.uuid4(),
            customer_id=customer,
            customer_ids=[customer],
            profiles=[ProfileRef(channel="x", platform_user_id=erased)],
        ),
    )
    await send(ledger_db, tenant, linked(customer, erased))

    assert await pending_count(ledger_db, tenant) == 1
    assert await payouts_of(ledger_db, rule) == []


async def test_another_tenants_link_does_not_pay_this_tenants_pending_triggers(
    ledger_db: Database,
) -> None:
    tenant, other, customer, author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "same-handle"
    rule = await make_rule(ledger_db, tenant, review_rule())
    await make_rule(ledger_db, other, review_rule())
    await send(ledger_db, tenant, authored(author))

    other_link: Envelope = envelope_of(linked(customer, author), tenant_id=other)
    await deliver(ledger_db, HANDLERS, other_link)

    assert await payouts_of(ledger_db, rule) == []
    assert await pending_count(ledger_db, tenant) == 1
    assert await balance(ledger_db, other, customer) == 0
