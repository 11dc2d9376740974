"""Referrals: attribution at registration, qualification by a purchase, both sides paid once,
fraud checks that hold, review, milestones, refunds and clawbacks; customer value counts the
revenue of referred customers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.errors import Conflict, NotFound
from crm_shared.events import Envelope
from crm_shared.privacy import ErasureRequested
from rewards.accounts import service as ledger
from rewards.privacy import service as privacy
from rewards.purchases.events import PurchaseReported
from rewards.purchases.handlers import erase_refund_reasons, record_reported_purchase
from rewards.referrals import service
from rewards.referrals.handlers import (
    ContactPointVerified,
    CustomerRegisteredWithReferral,
    attribute_registered_customer,
    forget_erased_fingerprints,
    remember_verified_contact,
)
from rewards.referrals.models import Milestone, ProgramSettings, Referral, ReferralStatus
from rewards.value import service as value
from tests.rewards.conftest import open_customer
from tests.rewards.offer_support import published_offer
from tests.rewards.test_purchases import purchase, record, refund

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def registered(
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    code: str | None = None,
    fingerprints: list[str] | None = None,
) -> tuple[CustomerRegisteredWithReferral, Envelope]:
    event = CustomerRegisteredWithReferral(
        customer_id=customer_id,
        registered_at=datetime.now(UTC),
        referral_code=code,
        verified_contact_fingerprints=fingerprints or [],
    )
    envelope = Envelope.wrap(
        event, source="/identity", tenant_id=tenant_id, subject=None, trace_headers={}
    )
    return event, envelope


async def register(
    db: Database,
    tenant_id: uuid.UUID,
    code: str | None = None,
    fingerprints: list[str] | None = None,
    times: int = 1,
) -> uuid.UUID:
    """A customer of ``tenant_id`` with an account, registered (``times`` deliveries)."""
    _, customer = await open_customer(db, tenant_id)
    event, envelope = registered(tenant_id, customer, code, fingerprints)
    for _ in range(times):
        async with db.session() as session, session.begin():
            await attribute_registered_customer(event, envelope=envelope, session=session)
    return customer


async def code_of(db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> str:
    async with db.session() as session, session.begin():
        return (
            await service.code_for(session=session, tenant_id=tenant_id, customer_id=customer_id)
        ).code


async def set_program(db: Database, tenant_id: uuid.UUID, **settings: Any) -> None:
    async with db.session() as session, session.begin():
        await service.update_program(
            session=session,
            tenant_id=tenant_id,
            settings=ProgramSettings(**settings),
            actor="staff:test",
        )


async def balance(db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> int:
    async with db.session() as session:
        found = await ledger.get_balances(
            session=session, tenant_id=tenant_id, customer_ids=[customer_id]
        )
    return found.get(customer_id, 0)


async def referral_of(db: Database, tenant_id: uuid.UUID, referred: uuid.UUID) -> Referral:
    async with db.session() as session:
        found = await session.execute(
            text("SELECT id FROM rewards.referrals WHERE tenant_id = :t AND referred_id = :r"),
            {"t": tenant_id, "r": referred},
        )
        referral_id = found.scalar_one()
        got = await session.get(Referral, referral_id)
    assert got is not None
    return got


async def events(db: Database, tenant_id: uuid.UUID, type_: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope FROM rewards.outbox WHERE type = :type "
                "AND envelope->>'tenantid' = :t ORDER BY created_at"
            ),
            {"type": type_, "t": str(tenant_id)},
        )
        return [row[0]["data"] for row in rows.all()]


async def new_tenant(db: Database, **program: Any) -> uuid.UUID:
    tenant = uuid.uuid4()
    await set_program(db, tenant, referrer_points=2_000, referred_points=500, **program)
    return tenant


def test_codes_are_unambiguous_and_typed_codes_are_normalized() -> None:
    codes = {service.new_code() for _ in range(200)}

    assert len(codes) == 200
    assert all(len(c) == 8 and not set(c) & set("01ILOU") for c in codes)
    assert service.normalize_code(" ab2c-d3ef ") == "AB2CD3EF"


async def test_a_customer_code_is_stable_and_the_link_carries_it(ledger_db: Database) -> None:
    tenant = uuid.uuid4()
    customer = await register(ledger_db, tenant)

    first, again = (
        await code_of(ledger_db, tenant, customer),
        await code_of(ledger_db, tenant, customer),
    )

    assert first == again
    link = service.link_for(first, ProgramSettings(), "https://brand.example/r/")
    assert link == f"https://brand.example/r/{first}"


async def test_attribution_qualification_pays_both_sides_once_even_when_delivered_twice(
    ledger_db: Database,
) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    referred = await register(ledger_db, tenant, code=code.lower(), times=2)
    body = purchase(referred, amount_cents=3_000)
    event = PurchaseReported.model_validate(body)
    envelope = Envelope.wrap(
        event, source="/partners/shop", tenant_id=tenant, subject=None, trace_headers={}
    )

    for _ in range(2):
        async with ledger_db.session() as session, session.begin():
            await record_reported_purchase(event, envelope=envelope, session=session, ttl_days=365)
    await record(ledger_db, tenant, body, "same-order-other-key")

    referral = await referral_of(ledger_db, tenant, referred)
    assert referral.status == ReferralStatus.REWARDED
    assert referral.referrer_id == referrer
    assert await balance(ledger_db, tenant, referrer) == 2_000
    assert await balance(ledger_db, tenant, referred) == 500
    assert len(await events(ledger_db, tenant, "rewards.referral.attributed.v1")) == 1
    assert len(await events(ledger_db, tenant, "rewards.referral.qualified.v1")) == 1
    [rewarded] = await events(ledger_db, tenant, "rewards.referral.rewarded.v1")
    assert (rewarded["referrer_points"], rewarded["referred_points"]) == (2_000, 500)
    assert len(await events(ledger_db, tenant, "rewards.purchase.recorded.v1")) == 1

    # A second purchase of the referred customer pays nothing more.
    await record(ledger_db, tenant, purchase(referred), "second")
    assert await balance(ledger_db, tenant, referrer) == 2_000


async def test_an_unknown_code_attributes_nothing(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db)
    referred = await register(ledger_db, tenant, code="NOSUCH22")

    async with ledger_db.session() as session:
        found = await session.execute(
            text("SELECT count(*) FROM rewards.referrals WHERE tenant_id = :t"), {"t": tenant}
        )
    assert found.scalar_one() == 0
    assert await code_of(ledger_db, tenant, referred)


async def test_only_the_configured_kind_and_amount_qualify(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db, qualifying_kind="subscription", min_amount_cents=1_000)
    referrer = await register(ledger_db, tenant)
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))

    await record(ledger_db, tenant, purchase(referred, amount_cents=5_000), "one-off")
    await record(
        ledger_db, tenant, purchase(referred, kind="subscription", amount_cents=999), "cheap"
    )
    assert (await referral_of(ledger_db, tenant, referred)).status == ReferralStatus.ATTRIBUTED

    await record(
        ledger_db, tenant, purchase(referred, kind="subscription", amount_cents=1_000), "sub"
    )
    assert (await referral_of(ledger_db, tenant, referred)).status == ReferralStatus.REWARDED
    assert await balance(ledger_db, tenant, referrer) == 2_000


async def test_self_referral_is_held_and_approval_pays(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant, fingerprints=["fp-ann"])
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))
    # Identity tells later that the new account verified the referrer's own e-mail.
    verified = ContactPointVerified(customer_id=referred, fingerprint="fp-ann")
    envelope = Envelope.wrap(
        verified, source="/identity", tenant_id=tenant, subject=None, trace_headers={}
    )
    async with ledger_db.session() as session, session.begin():
        await remember_verified_contact(verified, envelope=envelope, session=session)

    await record(ledger_db, tenant, purchase(referred), "p")
    held = await referral_of(ledger_db, tenant, referred)
    assert held.status == ReferralStatus.HELD
    assert held.hold_reasons == ["self_referral"]
    assert await balance(ledger_db, tenant, referrer) == 0
    [event] = await events(ledger_db, tenant, "rewards.referral.held.v1")
    assert event["reasons"] == ["self_referral"]

    async with ledger_db.session() as session, session.begin():
        listed = await service.held_referrals(session=session, tenant_id=tenant, limit=10)
        assert [r.id for r in listed] == [held.id]
        await service.approve(
            session=session, tenant_id=tenant, referral_id=held.id, actor="staff:reviewer"
        )
    async with ledger_db.session() as session, session.begin():
        with pytest.raises(Conflict):
            await service.approve(
                session=session, tenant_id=tenant, referral_id=held.id, actor="staff:reviewer"
            )

    approved = await referral_of(ledger_db, tenant, referred)
    assert approved.status == ReferralStatus.REWARDED
    assert approved.reviewed_by == "staff:reviewer"
    assert await balance(ledger_db, tenant, referrer) == 2_000
    assert await balance(ledger_db, tenant, referred) == 500


async def test_a_shared_contact_point_is_held_and_rejection_pays_nothing(
    ledger_db: Database,
) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    await register(ledger_db, tenant, code=code, fingerprints=["fp-farm"])
    second = await register(ledger_db, tenant, code=code, fingerprints=["fp-farm"])

    await record(ledger_db, tenant, purchase(second), "p")
    held = await referral_of(ledger_db, tenant, second)
    assert held.hold_reasons == ["shared_contact_point"]

    async with ledger_db.session() as session, session.begin():
        _, taken = await service.reject(
            session=session,
            tenant_id=tenant,
            referral_id=held.id,
            actor="staff:reviewer",
            reason="one person, two accounts",
        )

    assert taken == 0
    assert (await referral_of(ledger_db, tenant, second)).status == ReferralStatus.REJECTED
    assert await balance(ledger_db, tenant, referrer) == 0
    assert await balance(ledger_db, tenant, second) == 0
    [rejected] = await events(ledger_db, tenant, "rewards.referral.rejected.v1")
    assert rejected["clawed_back_points"] == 0


async def test_more_attributions_than_the_velocity_limit_are_held(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db, velocity_limit=2, velocity_window_hours=1)
    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    referred = [await register(ledger_db, tenant, code=code) for _ in range(3)]

    for n, customer in enumerate(referred):
        await record(ledger_db, tenant, purchase(customer), f"p-{n}")

    statuses = [(await referral_of(ledger_db, tenant, c)).status for c in referred]
    assert statuses == [ReferralStatus.REWARDED, ReferralStatus.REWARDED, ReferralStatus.HELD]
    assert (await referral_of(ledger_db, tenant, referred[2])).hold_reasons == ["velocity"]
    assert await balance(ledger_db, tenant, referrer) == 4_000


async def test_a_refund_of_the_qualifying_purchase_reverses_both_rewards(
    ledger_db: Database,
) -> None:
    tenant = await new_tenant(ledger_db, min_amount_cents=2_000)
    referrer = await register(ledger_db, tenant)
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))
    body = purchase(referred, amount_cents=3_000)
    await record(ledger_db, tenant, body, "p")
    order = {"order_id": body["order_id"], "occurred_at": WHEN.isoformat()}

    # Still worth the minimum after a small refund: the referral stands.
    await refund(ledger_db, tenant, {**order, "amount_cents": 1_000}, "r-1")
    assert (await referral_of(ledger_db, tenant, referred)).status == ReferralStatus.REWARDED
    await refund(ledger_db, tenant, {**order, "amount_cents": 1}, "r-2")

    unqualified = await referral_of(ledger_db, tenant, referred)
    assert unqualified.status == ReferralStatus.UNQUALIFIED
    assert await balance(ledger_db, tenant, referrer) == 0
    assert await balance(ledger_db, tenant, referred) == 0
    [event] = await events(ledger_db, tenant, "rewards.referral.unqualified.v1")
    assert event["reversed_points"] == 2_500
    async with ledger_db.session() as session:
        assert await ledger.check_ledger(session, tenant) == []


async def test_fraud_confirmed_after_payment_claws_back_even_spent_points(
    ledger_db: Database,
) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant)
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))
    await record(ledger_db, tenant, purchase(referred), "p")
    async with ledger_db.session() as session, session.begin():
        await ledger.spend(
            session,
            tenant_id=tenant,
            customer_id=referred,
            points=200,
            reason="coffee",
            idempotency_key="request:spend",
            actor="customer:x",
        )
    paid = await referral_of(ledger_db, tenant, referred)

    async with ledger_db.session() as session, session.begin():
        _, taken = await service.reject(
            session=session,
            tenant_id=tenant,
            referral_id=paid.id,
            actor="staff:reviewer",
            reason="confirmed fraud",
        )

    # The referrer's points are reversed; of the referred's 500, 200 were spent.
    assert taken == 2_000 + 300
    assert await balance(ledger_db, tenant, referrer) == 0
    assert await balance(ledger_db, tenant, referred) == 0
    async with ledger_db.session() as session:
        assert await ledger.check_ledger(session, tenant) == []


async def test_three_rewarded_referrals_grant_the_milestone_coupon_once(
    ledger_db: Database,
) -> None:
    tenant = uuid.uuid4()
    offer = (await published_offer(ledger_db, tenant)).id
    await set_program(
        ledger_db,
        tenant,
        referrer_points=2_000,
        referred_points=500,
        milestones=[Milestone(id="three-friends", referrals=3, offer_id=offer)],
    )
    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    for n in range(4):
        customer = await register(ledger_db, tenant, code=code)
        await record(ledger_db, tenant, purchase(customer), f"p-{n}")

    [granted] = await events(ledger_db, tenant, "rewards.coupon.granted.v1")
    assert granted["customer_id"] == str(referrer)
    assert granted["offer_id"] == str(offer)
    assert granted["source"] == "referral-milestone:three-friends"
    rewarded = await events(ledger_db, tenant, "rewards.referral.rewarded.v1")
    assert len(rewarded) == 4


async def test_value_is_own_plus_referral_revenue(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    await record(ledger_db, tenant, purchase(referrer, amount_cents=1_000), "own")
    first = await register(ledger_db, tenant, code=code)
    second = await register(ledger_db, tenant, code=code)
    await record(ledger_db, tenant, purchase(first, amount_cents=2_000), "a")
    big = purchase(second, amount_cents=5_000)
    await record(ledger_db, tenant, big, "b")
    await refund(
        ledger_db,
        tenant,
        {"order_id": big["order_id"], "amount_cents": 500, "occurred_at": WHEN.isoformat()},
        "r",
    )

    async with ledger_db.session() as session:
        found = await value.get_values(
            session=session, tenant_id=tenant, customer_ids=[referrer, first]
        )
    mine = found[referrer]
    assert (mine.own_revenue_cents, mine.referral_revenue_cents) == (1_000, 6_500)
    assert mine.value_cents == 7_500 and mine.currency == "EUR"
    assert found[first].own_revenue_cents == 2_000
    changes = await events(ledger_db, tenant, "rewards.customer_value.changed.v1")
    assert [c for c in changes if c["customer_id"] == str(referrer)][-1] == {
        "customer_id": str(referrer),
        "value_cents": 7_500,
        "own_revenue_cents": 1_000,
        "referral_revenue_cents": 6_500,
        "currency": "EUR",
    }


async def test_erasure_drops_the_customers_fingerprints(ledger_db: Database) -> None:
    tenant = await new_tenant(ledger_db)
    erased = await register(ledger_db, tenant, fingerprints=["fp-1", "fp-2"])
    kept = await register(ledger_db, tenant, fingerprints=["fp-1"])
    request = ErasureRequested(
        request_id=uuid.uuid4(), customer_id=erased, customer_ids=[], profiles=[]
    )
    envelope = Envelope.wrap(
        request, source="/identity", tenant_id=tenant, subject=None, trace_headers={}
    )

    async with ledger_db.session() as session, session.begin():
        await forget_erased_fingerprints(request, envelope=envelope, session=session)

    async with ledger_db.session() as session:
        rows = await session.execute(
            text("SELECT customer_id FROM rewards.contact_fingerprints WHERE tenant_id = :t"),
            {"t": tenant},
        )
        assert [row[0] for row in rows.all()] == [kept]


async def test_the_privacy_export_has_purchases_and_referrals_and_erasure_blanks_refund_reasons(
    ledger_db: Database,
) -> None:
    tenant = await new_tenant(ledger_db)
    referrer = await register(ledger_db, tenant)
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))
    body = purchase(referred, amount_cents=3_000)
    await record(ledger_db, tenant, body, "p")
    await refund(
        ledger_db,
        tenant,
        {
            "order_id": body["order_id"],
            "amount_cents": 10,
            "occurred_at": WHEN.isoformat(),
            "reason": "Ann Smith called",
        },
        "r",
    )

    async with ledger_db.session() as session:
        exported = await privacy.export_customer(session, tenant_id=tenant, customer_id=referred)
    assert exported["purchases"][0]["order_id"] == body["order_id"]
    assert exported["purchases"][0]["refunds"][0]["reason"] == "Ann Smith called"
    assert exported["referrals"][0]["role"] == "referred"
    assert exported["code"]

    request = ErasureRequested(
        request_id=uuid.uuid4(), customer_id=referred, customer_ids=[], profiles=[]
    )
    envelope = Envelope.wrap(
        request, source="/identity", tenant_id=tenant, subject=None, trace_headers={}
    )
    async with ledger_db.session() as session, session.begin():
        await erase_refund_reasons(request, envelope=envelope, session=session)
    async with ledger_db.session() as session:
        exported = await privacy.export_customer(session, tenant_id=tenant, customer_id=referred)
    assert exported["purchases"][0]["refunds"] == [
        {"amount_cents": 10, "occurred_at": WHEN.isoformat(), "reason": None}
    ]


async def test_a_program_names_only_the_tenants_own_offers(ledger_db: Database) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    theirs = (await published_offer(ledger_db, other)).id
    for settings, field in (
        ({"referrer_offer_id": theirs}, "input.referrerOfferId"),
        ({"referred_offer_id": uuid.uuid4()}, "input.referredOfferId"),
        (
            {"milestones": [Milestone(id="three", referrals=3, offer_id=theirs)]},
            "input.milestones.0.offerId",
        ),
    ):
        with pytest.raises(NotFound) as refused:
            await set_program(ledger_db, tenant, **settings)
        assert refused.value.field == field
    async with ledger_db.session() as session:
        assert (await service.get_program(session, tenant)).milestones == []
