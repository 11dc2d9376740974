"""Offers and coupons through their service functions, on real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import col, select

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.privacy import ErasureRequested
from crm_shared.validation import validated
from rewards.offers import handlers, service
from rewards.offers.events import CouponGranted
from rewards.offers.models import (
    Coupon,
    CouponGrant,
    CouponStatus,
    GrantStatus,
    OfferCreate,
    OfferStatus,
)
from rewards.privacy import service as privacy
from rewards.tiers.events import TierChanged
from tests.rewards.offer_support import (
    claim,
    envelope,
    place_in_audience,
    published_offer,
    set_marketing,
)


async def _consenting(db: Database, tenant: uuid.UUID, n: int = 1) -> list[uuid.UUID]:
    customers = [uuid.uuid4() for _ in range(n)]
    await set_marketing(db, tenant, customers)
    return customers


async def _redeem(db: Database, tenant: uuid.UUID, code: str, order: str = "o-1") -> Coupon:
    async with db.session() as session, session.begin():
        return await service.redeem_coupon(
            session=session, tenant_id=tenant, code=code, order_id=order, actor="client:shop"
        )


async def _grant(db: Database, tenant: uuid.UUID, grant: service.Grant) -> None:
    event = CouponGranted(
        grant_id=grant.grant_id,
        customer_id=grant.customer_id,
        offer_id=grant.offer_id,
        source=grant.source,
        # The grant's event: a stable id per grant (redeliveries carry the same one).
        source_event_id=uuid.uuid5(uuid.NAMESPACE_OID, str(grant.grant_id)),
    )
    async with db.session() as session, session.begin():
        await handlers.issue_granted_coupon(
            event,
            envelope=envelope(event.type, tenant, event.model_dump(mode="json")),
            session=session,
        )


async def test_redeeming_the_same_coupon_twice_fails_once(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    [customer] = await _consenting(rewards_db, tenant)
    offer = await published_offer(rewards_db, tenant)
    coupon = await claim(rewards_db, tenant, offer.id, customer)

    redeemed = await _redeem(rewards_db, tenant, coupon.code.lower(), order="o-1")
    with pytest.raises(Conflict) as again:
        await _redeem(rewards_db, tenant, coupon.code, order="o-2")

    assert redeemed.order_id == "o-1" and redeemed.redeemed_at is not None
    assert again.value.field == "input.code"
    assert "already redeemed" in again.value.message


async def test_a_customer_without_marketing_consent_is_neither_offered_nor_issued_anything(
    rewards_db: Database,
) -> None:
    tenant = uuid.uuid4()
    never_asked, withdrew = uuid.uuid4(), uuid.uuid4()
    await set_marketing(rewards_db, tenant, [withdrew])
    await set_marketing(rewards_db, tenant, [withdrew], granted=False)
    offer = await published_offer(rewards_db, tenant)

    for customer in (never_asked, withdrew):
        async with rewards_db.session() as session:
            eligible = await service.eligible_offers(
                session=session, tenant_id=tenant, customer_id=customer, limit=10
            )
        assert eligible == []
        with pytest.raises(BadUserInput) as claimed:
            await claim(rewards_db, tenant, offer.id, customer)
        assert claimed.value.field == "customerId"
        with pytest.raises(BadUserInput):
            async with rewards_db.session() as session, session.begin():
                await service.issue_coupons(
                    session=session, tenant_id=tenant, offer_id=offer.id, customer_id=customer
                )
        await _grant(
            rewards_db,
            tenant,
            service.Grant(uuid.uuid4(), customer, offer.id, "rule:test", None),
        )

    async with rewards_db.session() as session:
        coupons = await session.execute(
            select(func.count()).select_from(Coupon).where(col(Coupon.tenant_id) == tenant)
        )
        assert coupons.scalar_one() == 0
        grants = await service.list_grants(
            session=session, tenant_id=tenant, status=GrantStatus.FAILED, limit=10
        )
        assert {g.reason for g in grants} == {
            "customerId: the customer does not consent to marketing"
        }
        refreshed = await service.get_offer(session=session, tenant_id=tenant, offer_id=offer.id)
        assert refreshed.issued == 0


async def test_an_offer_aimed_at_a_segment_is_claimable_only_by_its_members(
    rewards_db: Database,
) -> None:
    tenant = uuid.uuid4()
    member, outsider, stranger = await _consenting(rewards_db, tenant, 3)
    await place_in_audience(rewards_db, tenant, member, segment="creator")
    await place_in_audience(rewards_db, tenant, outsider, segment="observer")
    offer = await published_offer(rewards_db, tenant, audience={"segments": ["creator"]})

    async def eligible(customer: uuid.UUID) -> list[uuid.UUID]:
        async with rewards_db.session() as session:
            found = await service.eligible_offers(
                session=session, tenant_id=tenant, customer_id=customer, limit=10
            )
        return [o.id for o in found]

    assert await eligible(member) == [offer.id]
    assert await eligible(outsider) == []
    coupon = await claim(rewards_db, tenant, offer.id, member)
    for customer in (outsider, stranger):
        with pytest.raises(BadUserInput) as refused:
            await claim(rewards_db, tenant, offer.id, customer)
        assert "audience" in refused.value.message

    assert coupon.customer_id == member
    # The member holds their one coupon (the offer's limit): nothing more to claim.
    assert await eligible(member) == []


async def test_an_offer_aimed_at_a_tier_is_claimable_only_in_that_tier(
    rewards_db: Database,
) -> None:
    tenant = uuid.uuid4()
    gold, silver = await _consenting(rewards_db, tenant, 2)
    tier_event = TierChanged(customer_id=gold, previous=None, tier="Gold", tier_id=uuid.uuid4())
    async with rewards_db.session() as session, session.begin():
        await handlers.project_tier(
            tier_event,
            envelope=envelope(tier_event.type, tenant, tier_event.model_dump(mode="json")),
            session=session,
        )
    await place_in_audience(rewards_db, tenant, silver, tier="silver")
    offer = await published_offer(rewards_db, tenant, audience={"tiers": ["gold"]})

    async with rewards_db.session() as session:
        eligible = await service.eligible_offers(
            session=session, tenant_id=tenant, customer_id=gold, limit=10
        )
        assert [o.id for o in eligible] == [offer.id]
        assert (
            await service.eligible_offers(
                session=session, tenant_id=tenant, customer_id=silver, limit=10
            )
            == []
        )
    await claim(rewards_db, tenant, offer.id, gold)
    with pytest.raises(BadUserInput):
        await claim(rewards_db, tenant, offer.id, silver)


async def test_a_late_older_segment_event_does_not_undo_a_newer_one(rewards_db: Database) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    await place_in_audience(rewards_db, tenant, customer, segment="loyal", at=now)
    await place_in_audience(rewards_db, tenant, customer, segment="lapsed", at=now - timedelta(1))
    async with rewards_db.session() as session:
        member = await service.audience_member(session, tenant, customer)
    assert member is not None and member.segment == "loyal"


async def test_a_grant_delivered_twice_issues_one_coupon(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    [customer] = await _consenting(rewards_db, tenant)
    offer = await published_offer(rewards_db, tenant, per_customer_limit=5)
    grant = service.Grant(uuid.uuid4(), customer, offer.id, "referrals:milestone", "evt-1")

    await _grant(rewards_db, tenant, grant)
    await _grant(rewards_db, tenant, grant)

    async with rewards_db.session() as session:
        coupons = (await session.exec(select(Coupon).where(Coupon.tenant_id == tenant))).all()
        record = await session.get(CouponGrant, (tenant, grant.grant_id))
    assert len(coupons) == 1
    assert coupons[0].grant_id == grant.grant_id and coupons[0].source == "grant"
    assert record is not None and record.status == "issued" and record.coupon_id == coupons[0].id


async def test_a_grant_out_of_stock_is_recorded_as_failed_and_not_retried(
    rewards_db: Database,
) -> None:
    tenant = uuid.uuid4()
    first, second = await _consenting(rewards_db, tenant, 2)
    offer = await published_offer(rewards_db, tenant, stock=1)
    await _grant(rewards_db, tenant, service.Grant(uuid.uuid4(), first, offer.id, "rule:r", None))

    late = service.Grant(uuid.uuid4(), second, offer.id, "rule:r", None)
    await _grant(rewards_db, tenant, late)  # no exception: the consumer will not retry it

    async with rewards_db.session() as session:
        record = await session.get(CouponGrant, (tenant, late.grant_id))
        outbox = await session.execute(
            text(
                "SELECT count(*) FROM rewards.outbox WHERE envelope->>'type' = "
                "'rewards.coupon.grant_failed.v1' AND envelope->>'tenantid' = :t"
            ),
            {"t": str(tenant)},
        )
    assert record is not None and record.status == "failed"
    assert record.reason == "offerId: the offer is out of stock"
    assert outbox.scalar_one() == 1


async def test_an_expired_coupon_or_one_of_an_ended_offer_is_refused(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    first, second = await _consenting(rewards_db, tenant, 2)
    offer = await published_offer(rewards_db, tenant, ends_at=utcnow() + timedelta(hours=1))
    short = await claim(rewards_db, tenant, offer.id, first)
    async with rewards_db.session() as session, session.begin():
        with pytest.raises(BadUserInput) as expired:
            await service.redeem_coupon(
                session=session,
                tenant_id=tenant,
                code=short.code,
                order_id="o-1",
                actor="client:shop",
                now=utcnow() + timedelta(hours=2),
            )
    assert expired.value.field == "input.code"

    other = await claim(rewards_db, tenant, offer.id, second)
    async with rewards_db.session() as session, session.begin():
        ended = await service.end_offer(session=session, tenant_id=tenant, offer_id=offer.id)
    assert ended.status == OfferStatus.ENDED
    with pytest.raises(BadUserInput):
        await _redeem(rewards_db, tenant, other.code)
    with pytest.raises(BadUserInput) as closed:
        await claim(rewards_db, tenant, offer.id, second)
    assert closed.value.field == "offerId"
    async with rewards_db.session() as session:
        [held] = await service.coupons_of(
            session=session, tenant_id=tenant, customer_id=second, status=None, limit=5
        )
    assert held.status(utcnow()) is CouponStatus.EXPIRED


async def test_another_tenant_cannot_redeem_or_see_a_coupon(rewards_db: Database) -> None:
    tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    [customer] = await _consenting(rewards_db, tenant)
    offer = await published_offer(rewards_db, tenant)
    coupon = await claim(rewards_db, tenant, offer.id, customer)

    with pytest.raises(NotFound) as refused:
        await _redeem(rewards_db, other_tenant, coupon.code)
    async with rewards_db.session() as session:
        seen = await service.coupons_of(
            session=session, tenant_id=other_tenant, customer_id=customer, status=None, limit=5
        )
        with pytest.raises(NotFound):
            await service.get_offer(session=session, tenant_id=other_tenant, offer_id=offer.id)
    assert refused.value.field == "input.code"
    assert seen == []
    assert (await _redeem(rewards_db, tenant, coupon.code)).redeemed_at is not None


async def test_anonymous_codes_come_out_of_the_offers_stock(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    offer = await published_offer(rewards_db, tenant, stock=25)
    async with rewards_db.session() as session, session.begin():
        bulk = await service.issue_coupons(
            session=session, tenant_id=tenant, offer_id=offer.id, customer_id=None, count=20
        )
    with pytest.raises(Conflict) as short:
        async with rewards_db.session() as session, session.begin():
            await service.issue_coupons(
                session=session, tenant_id=tenant, offer_id=offer.id, customer_id=None, count=6
            )

    assert len({c.code for c in bulk}) == 20
    assert all(c.customer_id is None and c.source == "bulk" for c in bulk)
    assert short.value.message == "offerId: the offer is out of stock"
    async with rewards_db.session() as session:
        current = await service.get_offer(session=session, tenant_id=tenant, offer_id=offer.id)
    assert current.issued == 20


async def test_an_offer_is_published_once_and_announced(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    offer = await published_offer(rewards_db, tenant, publish=False)
    async with rewards_db.session() as session, session.begin():
        await service.publish_offer(session=session, tenant_id=tenant, offer_id=offer.id)
    with pytest.raises(Conflict):
        async with rewards_db.session() as session, session.begin():
            await service.publish_offer(session=session, tenant_id=tenant, offer_id=offer.id)
    async with rewards_db.session() as session:
        published = await session.execute(
            text(
                "SELECT count(*) FROM rewards.outbox WHERE envelope->>'type' = "
                "'rewards.offer.published.v1' AND envelope->>'subject' = :s"
            ),
            {"s": str(offer.id)},
        )
    assert published.scalar_one() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"percent_off": 101}, "input.percentOff"),
        ({"percent_off": None}, "input.percentOff"),
        ({"kind": "amount", "percent_off": None, "amount_off": "5"}, "input.currency"),
        ({"free_item": "mug"}, "input.freeItem"),
        (
            {"starts_at": "2026-12-02T10:00:00Z", "ends_at": "2026-12-01T10:00:00Z"},
            "input.endsAt",
        ),
        ({"flash": True, "ends_at": "2026-12-01T10:00:00Z"}, "input.flash"),
        (
            {
                "flash": True,
                "stock": 10,
                "starts_at": "2026-12-01T00:00:00Z",
                "ends_at": "2026-12-09T00:00:00Z",
            },
            "input.flash",
        ),
        ({"audience": {"segments": [str(n) for n in range(60)]}}, "input.audience.segments"),
        # A segment engagement never announces would reach nobody.
        ({"audience": {"segments": ["creator", "vip"]}}, "input.audience.segments"),
    ],
)
def test_bad_offer_input_names_the_field(fields: dict[str, object], field: str) -> None:
    data = {"name": "x", "kind": "percentage", "percent_off": 10, **fields}
    with pytest.raises(BadUserInput) as refused:
        validated(OfferCreate, data)
    assert refused.value.field == field


async def test_the_privacy_export_lists_coupons_and_erasure_forgets_the_audience(
    rewards_db: Database,
) -> None:
    tenant = uuid.uuid4()
    [customer] = await _consenting(rewards_db, tenant)
    await place_in_audience(rewards_db, tenant, customer, segment="loyal")
    offer = await published_offer(rewards_db, tenant)
    coupon = await claim(rewards_db, tenant, offer.id, customer)
    async with rewards_db.session() as session:
        exported = await privacy.export_customer(session, tenant_id=tenant, customer_id=customer)
    erasure = ErasureRequested(
        request_id=uuid.uuid4(), customer_id=customer, customer_ids=[customer], profiles=[]
    )
    async with rewards_db.session() as session, session.begin():
        await handlers.forget_erased_audience(
            erasure,
            envelope=envelope(erasure.type, tenant, erasure.model_dump(mode="json")),
            session=session,
        )
        member = await service.audience_member(session, tenant, customer)

    assert [c["code"] for c in exported["coupons"]] == [coupon.code]
    assert exported["audience"]["segment"] == "loyal"
    assert member is None


async def test_eligible_offers_of_many_customers_are_read_at_once(rewards_db: Database) -> None:
    tenant = uuid.uuid4()
    loyal, plain = await _consenting(rewards_db, tenant, 2)
    silent = uuid.uuid4()
    await place_in_audience(rewards_db, tenant, loyal, segment="creator")
    everyone = await published_offer(rewards_db, tenant, name="All")
    aimed = await published_offer(
        rewards_db, tenant, name="Loyal", audience={"segments": ["creator"]}
    )
    await published_offer(rewards_db, tenant, name="Draft", publish=False)

    async with rewards_db.session() as session:
        found = await service.eligible_offers_of(
            session=session, tenant_id=tenant, customer_ids=[loyal, plain, silent], limit=10
        )

    assert {o.id for o in found[loyal]} == {everyone.id, aimed.id}
    assert [o.id for o in found[plain]] == [everyone.id]
    assert silent not in found
