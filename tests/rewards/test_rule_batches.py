"""A batch of interactions pays what the same events paid one at a time pay (rules.batch)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.events import Envelope
from crm_shared.events.consumer import BatchHandler, _claim_many
from rewards.accounts import service as ledger
from rewards.handlers import build_handlers
from rewards.rules.conditions import Cap, Period, Reward, RewardKind
from rewards.rules.handlers import InteractionRecorded
from rewards.settings import RewardsSettings
from tests.rewards.test_rules import HANDLERS, interaction, make_rule, review_rule
from tests.support.delivery import deliver, envelope_of, now

HANDLER = next(
    h
    for h in build_handlers(RewardsSettings())[InteractionRecorded.type]
    if isinstance(h, BatchHandler)
)


async def deliver_batch(db: Database, envelopes: list[Envelope]) -> None:
    """The envelopes in one transaction, as the batched consumer runs a batch handler."""
    async with db.session() as session, session.begin():
        await _claim_many(session, [(e, HANDLER.name) for e in envelopes])
        await HANDLER.func(
            [InteractionRecorded.model_validate(e.data) for e in envelopes],
            envelopes=envelopes,
            session=session,
        )


async def outcome(db: Database, tenant: uuid.UUID) -> dict[str, Any]:
    """Per customer: balance, points paid by each event, in order."""
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT customer_id, points FROM rewards.rule_payouts WHERE tenant_id = :t"
                " ORDER BY occurred_at, event_id"
            ),
            {"t": tenant},
        )
        paid: dict[int, list[int]] = {}
        customers: list[uuid.UUID] = []
        for customer, points in rows.all():
            if customer not in customers:
                customers.append(customer)
            paid.setdefault(customers.index(customer), []).append(int(points))
        balances = await ledger.get_balances(
            session=session, tenant_id=tenant, customer_ids=customers
        )
        credited = (
            await session.execute(
                text(
                    "SELECT count(*) FROM rewards.outbox WHERE type = 'rewards.points.credited.v1'"
                    " AND envelope->>'tenantid' = :t"
                ),
                {"t": str(tenant)},
            )
        ).scalar_one()
    return {
        "paid": paid,
        "balances": sorted(balances.values()),
        "credited_events": credited,
    }


async def test_a_batch_with_caps_and_a_budget_pays_as_the_events_one_by_one(
    ledger_db: Database,
) -> None:
    """Three customers, 12 reviews each in one batch: a cap of 5 a day per customer and a
    budget of 400 points across them run out at the same events as one at a time."""
    results = []
    for batched in (False, True):
        tenant = uuid.uuid4()
        await make_rule(
            ledger_db,
            tenant,
            review_rule(
                reward=Reward(kind=RewardKind.POINTS, points=30),
                caps=[Cap(period=Period.DAY, count=5)],
                budget_points=400,
            ),
        )
        await make_rule(ledger_db, tenant, review_rule(name="Any review", priority=-1, caps=[]))
        customers = [uuid.uuid4() for _ in range(3)]
        start = now() - timedelta(minutes=5)
        envelopes = [
            envelope_of(
                interaction(customers[i % 3], occurred_at=start + timedelta(seconds=i)),
                tenant_id=tenant,
            )
            for i in range(36)
        ]
        if batched:
            await deliver_batch(ledger_db, envelopes)
        else:
            for envelope in envelopes:
                await deliver(ledger_db, HANDLERS, envelope)
        results.append(await outcome(ledger_db, tenant))
        async with ledger_db.session() as session:
            assert await ledger.check_ledger(session, tenant) == []
    one_by_one, batch = results
    assert batch == one_by_one
    # 13 of the capped rule's 30-point payouts fit the budget of 400; every event pays 50 too.
    assert sum(p.count(30) for p in batch["paid"].values()) == 13
    assert batch["credited_events"] == 36 + 13


async def test_a_redelivered_batch_pays_nothing_more(ledger_db: Database) -> None:
    tenant = uuid.uuid4()
    await make_rule(ledger_db, tenant, review_rule())
    customer = uuid.uuid4()
    envelopes = [envelope_of(interaction(customer), tenant_id=tenant) for _ in range(5)]
    await deliver_batch(ledger_db, envelopes[:3])
    # The consumer claims the inbox first, so a redelivery reaches the handler only if its
    # claim was lost; run the handler itself again with old and new events together.
    async with ledger_db.session() as session, session.begin():
        await HANDLER.func(
            [InteractionRecorded.model_validate(e.data) for e in envelopes],
            envelopes=envelopes,
            session=session,
        )
    assert (await outcome(ledger_db, tenant))["balances"] == [250]


async def test_interactions_of_unlinked_authors_in_a_batch_are_kept_pending(
    ledger_db: Database,
) -> None:
    tenant = uuid.uuid4()
    await make_rule(ledger_db, tenant, review_rule())
    envelopes = [
        envelope_of(
            interaction(None, platform_user_id=f"author-{i % 2}"),  # type: ignore[arg-type]
            tenant_id=tenant,
        )
        for i in range(4)
    ]
    await deliver_batch(ledger_db, envelopes)
    await deliver_batch(ledger_db, envelopes)  # again: kept once
    async with ledger_db.session() as session:
        kept = (
            await session.execute(
                text(
                    "SELECT platform_user_id, count(*) FROM rewards.pending_triggers"
                    " WHERE tenant_id = :t GROUP BY 1 ORDER BY 1"
                ),
                {"t": tenant},
            )
        ).all()
    assert [tuple(row) for row in kept] == [("author-0", 2), ("author-1", 2)]
