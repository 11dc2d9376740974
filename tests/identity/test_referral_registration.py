"""Registration carries the referral code, and identity tells rewards about verified contact
points by keyed fingerprints only (never the address)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.errors import BadUserInput
from identity.customers import service
from identity.customers.models import (
    ContactKind,
    ContactPointInput,
    CustomerCreate,
    contact_fingerprint,
)
from tests.support.factories import make_tenant

SECRET = "s" * 40


async def events(db: Database, type_: str, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope FROM identity.outbox WHERE type = :type "
                "AND envelope->>'subject' = :c ORDER BY created_at"
            ),
            {"type": type_, "c": str(customer_id)},
        )
        return [row[0]["data"] for row in rows.all()]


def test_fingerprints_match_the_same_mailbox_and_differ_per_tenant_and_secret() -> None:
    tenant = uuid.uuid4()

    def fp(value: str, t: uuid.UUID = tenant, secret: str = SECRET) -> str:
        return contact_fingerprint(secret, t, "email", value)

    assert fp("ann@gmail.com") == fp("a.nn+shop@googlemail.com")
    assert fp("ann+1@example.com") == fp("ann@example.com")
    assert fp("a.nn@example.com") != fp("ann@example.com")
    assert fp("ann@gmail.com") != fp("ann@gmail.com", t=uuid.uuid4())
    assert fp("ann@gmail.com") != fp("ann@gmail.com", secret="t" * 40)
    assert fp("ann@gmail.com").startswith("v1:") and "ann" not in fp("ann@gmail.com")


async def test_registration_carries_the_code_and_fingerprints_of_verified_points_only(
    identity_db: Database,
) -> None:
    tenant = await make_tenant(identity_db)
    data = CustomerCreate(
        name="Ann",
        contact_points=[
            ContactPointInput(kind=ContactKind.EMAIL, value="Ann@Example.com", verified=True),
            ContactPointInput(kind=ContactKind.PHONE, value="+44 20 7946 0958"),
        ],
    )
    async with identity_db.session() as session, session.begin():
        customer = await service.register_customer(
            session=session,
            tenant_id=tenant,
            data=data,
            referral_code=" ab2c-d3ef ",
            fingerprint_secret=SECRET,
        )

    [event] = await events(identity_db, "identity.customer.registered.v1", customer.id)
    assert event["referral_code"] == "ab2c-d3ef"
    assert event["verified_contact_fingerprints"] == [
        contact_fingerprint(SECRET, tenant, "email", "ann@example.com")
    ]
    assert "example" not in str(event)


async def test_a_registration_without_a_code_still_reads_as_before(identity_db: Database) -> None:
    tenant = await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        customer = await service.register_customer(
            session=session, tenant_id=tenant, data=CustomerCreate(name="Bo")
        )

    [event] = await events(identity_db, "identity.customer.registered.v1", customer.id)
    assert event["referral_code"] is None
    assert event["verified_contact_fingerprints"] == []
    assert {"customer_id", "registered_at"} <= set(event)


async def test_a_too_long_referral_code_is_refused_naming_the_field(
    identity_db: Database,
) -> None:
    tenant = await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        with pytest.raises(BadUserInput) as refused:
            await service.register_customer(
                session=session,
                tenant_id=tenant,
                data=CustomerCreate(name="Cy"),
                referral_code="x" * 41,
            )
    assert refused.value.field == "input.referralCode"


async def test_verifying_a_contact_point_announces_its_fingerprint_once(
    identity_db: Database,
) -> None:
    tenant = await make_tenant(identity_db)
    data = CustomerCreate(
        name="Di", contact_points=[ContactPointInput(kind=ContactKind.EMAIL, value="di@x.org")]
    )
    async with identity_db.session() as session, session.begin():
        customer = await service.register_customer(session=session, tenant_id=tenant, data=data)
    async with identity_db.session() as session:
        found = await session.execute(
            text("SELECT id FROM identity.contact_points WHERE customer_id = :c"),
            {"c": customer.id},
        )
        point_id = found.scalar_one()
    for _ in range(2):
        async with identity_db.session() as session, session.begin():
            await service.verify_contact_point(
                session=session,
                tenant_id=tenant,
                contact_point_id=point_id,
                fingerprint_secret=SECRET,
            )

    [event] = await events(identity_db, "identity.contact_point.verified.v1", customer.id)
    assert event == {
        "customer_id": str(customer.id),
        "contact_point_id": str(point_id),
        "kind": "email",
        "fingerprint": contact_fingerprint(SECRET, tenant, "email", "di@x.org"),
    }
