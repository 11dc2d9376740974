"""partner_sharing decides what reaches partners, against the real database: an event about a
customer goes only while that customer's consent stands granted (withdrawal stops it), an
event that mentions nobody goes, and anything naming a person identity cannot vouch for
(another tenant's customer, an unlinked social profile, a bare social handle) stays."""

from __future__ import annotations

import uuid
from typing import Any

from crm_shared.auth import ROLE_PERMISSIONS, Principal
from crm_shared.db import Database
from crm_shared.events import Envelope
from identity.consent.models import ConsentInput, Purpose
from identity.consent.service import record_consent
from identity.customers.merge import merge_customers
from identity.partners.sharing import NOT_A_CUSTOMER, NOT_GRANTED, UNKNOWN_CUSTOMER, withheld
from identity.privacy.service import request_erasure
from identity.profiles.models import Channel, Evidence
from identity.profiles.service import LinkRequest, ProfileData, link_profile, upsert_profile
from tests.support.factories import make_customer, make_tenant


def _admin(tenant_id: uuid.UUID) -> Principal:
    return Principal(
        tenant_id=tenant_id,
        kind="staff",
        subject=str(uuid.uuid4()),
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS["admin"]),
        role="admin",
    )


def _event(
    tenant_id: uuid.UUID, event_type: str, data: dict[str, Any], subject: object = None
) -> Envelope:
    return Envelope(
        source="test",
        type=event_type,
        tenantid=tenant_id,
        subject=None if subject is None else str(subject),
        data=data,
    )


async def _consent(
    db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID, granted: bool
) -> None:
    async with db.session() as session, session.begin():
        await record_consent(
            session=session,
            principal=_admin(tenant_id),
            customer_id=customer_id,
            data=ConsentInput(
                purpose=Purpose.PARTNER_SHARING, granted=granted, source="web", policy_version="v1"
            ),
        )


async def _decide(db: Database, *envelopes: Envelope) -> list[str | None]:
    async with db.session() as session:
        return await withheld(session, list(envelopes))


async def test_a_customers_events_go_only_while_partner_sharing_stands_granted(
    identity_db: Database,
) -> None:
    tenant_id = await make_tenant(identity_db)
    ann = (await make_customer(identity_db, tenant_id, "Ann")).id
    updated = _event(
        tenant_id,
        "identity.customer.updated.v1",
        {"customer_id": str(ann), "changed": ["name"]},
        subject=ann,
    )
    assert await _decide(identity_db, updated) == [NOT_GRANTED]  # never asked
    await _consent(identity_db, tenant_id, ann, granted=True)
    assert await _decide(identity_db, updated) == [None]
    await _consent(identity_db, tenant_id, ann, granted=False)
    assert await _decide(identity_db, updated) == [NOT_GRANTED]  # withdrawn


async def test_tenant_level_facts_go_and_every_mention_of_a_customer_counts(
    identity_db: Database,
) -> None:
    tenant_id = await make_tenant(identity_db)
    ann = (await make_customer(identity_db, tenant_id, "Ann")).id
    bob = (await make_customer(identity_db, tenant_id, "Bob")).id
    await _consent(identity_db, tenant_id, ann, granted=True)
    offer = _event(
        tenant_id,
        "rewards.offer.published.v1",
        {"offer_id": str(uuid.uuid4()), "name": "Ten off", "segments": [], "stock": None},
        subject=uuid.uuid4(),
    )
    trend = _event(
        tenant_id,
        "engagement.trend.spiked.v1",
        {"dimension": "topic", "topic": "shoes", "tracker_id": None, "volume": 40},
    )
    referral = _event(
        tenant_id,
        "rewards.referral.attributed.v1",
        {"referral_id": str(uuid.uuid4()), "referrer_id": str(ann), "referred_id": str(bob)},
    )
    # A staff action names the customer only in record_id, or deep inside its details.
    on_bob = _event(
        tenant_id,
        "identity.staff_action.recorded.v1",
        {"actor": "staff:x", "action": "customer.updated", "record_id": str(bob), "details": {}},
    )
    nested = _event(
        tenant_id,
        "rewards.staff_action.recorded.v1",
        {
            "actor": "staff:x",
            "action": "points.adjusted",
            "record_id": str(uuid.uuid4()),
            "details": {"targets": [{"who": str(bob)}]},
        },
    )
    on_ann = _event(
        tenant_id,
        "identity.staff_action.recorded.v1",
        {"actor": "staff:x", "action": "customer.updated", "record_id": str(ann), "details": {}},
    )
    assert await _decide(identity_db, offer, trend, referral, on_bob, nested, on_ann) == [
        None,
        None,
        NOT_GRANTED,  # Bob, the referred one, has not granted
        NOT_GRANTED,
        NOT_GRANTED,
        None,
    ]


async def test_people_identity_cannot_vouch_for_are_held_back(identity_db: Database) -> None:
    tenant_id, other_tenant = await make_tenant(identity_db), await make_tenant(identity_db)
    ann = (await make_customer(identity_db, tenant_id, "Ann")).id
    await _consent(identity_db, tenant_id, ann, granted=True)
    stranger = (await make_customer(identity_db, other_tenant, "Sam")).id
    await _consent(identity_db, other_tenant, stranger, granted=True)

    def interaction(customer: uuid.UUID | None, handle: str | None) -> Envelope:
        return _event(
            tenant_id,
            "engagement.interaction.recorded.v1",
            {
                "interaction_id": str(uuid.uuid4()),
                "customer_id": str(customer) if customer else None,
                "channel": "x",
                "platform_user_id": "12345" if handle else None,
                "handle": handle,
            },
        )

    async with identity_db.session() as session, session.begin():
        unlinked = await upsert_profile(
            session=session,
            tenant_id=tenant_id,
            data=ProfileData(channel=Channel.X, platform_user_id=uuid.uuid4().hex, handle="zed"),
        )
        linked = await upsert_profile(
            session=session,
            tenant_id=tenant_id,
            data=ProfileData(channel=Channel.X, platform_user_id=uuid.uuid4().hex, handle="ann"),
        )
        await link_profile(
            session=session,
            principal=_admin(tenant_id),
            profile_id=linked.id,
            customer_id=ann,
            request=LinkRequest(evidence=Evidence.STAFF_DECISION),
        )

    def profile_action(profile_id: uuid.UUID) -> Envelope:
        return _event(
            tenant_id,
            "identity.staff_action.recorded.v1",
            {"action": "social_profile.recorded", "record_id": str(profile_id), "details": {}},
        )

    decisions = await _decide(
        identity_db,
        interaction(ann, "ann"),  # Ann's own account: her consent decides
        interaction(None, "zed"),  # an author who is no customer
        interaction(None, None),  # nobody identifiable
        _event(  # another tenant's customer, however consenting there, is not ours
            tenant_id, "partner.purchase.reported.v1", {"customer_id": str(stranger)}
        ),
        _event(tenant_id, "partner.purchase.reported.v1", {"customer_id": "not-an-id"}),
        _event(
            tenant_id,
            "engagement.author.seen.v1",
            {"channel": "x", "platform_user_id": "9", "display_name": "Zed"},
        ),
        profile_action(unlinked.id),
        profile_action(linked.id),
    )
    assert decisions == [
        None,
        NOT_A_CUSTOMER,
        None,
        UNKNOWN_CUSTOMER,
        UNKNOWN_CUSTOMER,
        NOT_A_CUSTOMER,
        NOT_A_CUSTOMER,
        None,
    ]


async def test_a_merged_record_answers_with_its_survivors_consent_and_erasure_withholds(
    identity_db: Database,
) -> None:
    tenant_id = await make_tenant(identity_db)
    survivor = (await make_customer(identity_db, tenant_id, "Ann")).id
    merged = (await make_customer(identity_db, tenant_id, "Ann B")).id
    await _consent(identity_db, tenant_id, survivor, granted=True)
    async with identity_db.session() as session, session.begin():
        await merge_customers(
            session=session,
            principal=_admin(tenant_id),
            survivor_id=survivor,
            merged_id=merged,
            reason="duplicate",
        )
    merge = _event(
        tenant_id,
        "identity.customer.merged.v1",
        {"merge_id": str(uuid.uuid4()), "survivor_id": str(survivor), "merged_id": str(merged)},
        subject=survivor,
    )
    late = _event(  # another service's event still naming the merged record
        tenant_id,
        "rewards.points.credited.v1",
        {"customer_id": str(merged), "points": 5},
        subject=merged,
    )
    assert await _decide(identity_db, merge, late) == [None, None]
    async with identity_db.session() as session, session.begin():
        await request_erasure(session=session, principal=_admin(tenant_id), customer_id=survivor)
    assert await _decide(identity_db, merge, late) == [NOT_GRANTED, NOT_GRANTED]


async def test_one_batch_of_several_tenants_is_answered_in_order(identity_db: Database) -> None:
    first, second = await make_tenant(identity_db), await make_tenant(identity_db)
    ann = (await make_customer(identity_db, first, "Ann")).id
    bob = (await make_customer(identity_db, second, "Bob")).id
    await _consent(identity_db, second, bob, granted=True)
    events = [
        _event(first, "identity.customer.updated.v1", {"customer_id": str(ann)}),
        _event(second, "identity.customer.updated.v1", {"customer_id": str(bob)}),
        _event(first, "identity.customer.updated.v1", {"customer_id": str(bob)}),
    ]
    assert await _decide(identity_db, *events) == [NOT_GRANTED, None, UNKNOWN_CUSTOMER]
