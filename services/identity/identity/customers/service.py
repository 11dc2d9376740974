"""Operations on customers and their contact points."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound, Unauthenticated
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from identity.customers.events import ContactPointVerified, CustomerRegistered, CustomerUpdated
from identity.customers.models import (
    ContactKind,
    ContactPoint,
    ContactPointInput,
    Customer,
    CustomerCreate,
    ProfileFields,
    contact_fingerprint,
    normalize_contact,
)
from identity.profiles.models import SocialProfile
from identity.settings import DEVELOPMENT_FINGERPRINT_SECRET
from identity.tenants.models import Tenant

MAX_REFERRAL_CODE_LENGTH = 40


def _normalized(point: ContactPointInput, country: str | None, field: str) -> str:
    try:
        return normalize_contact(point.kind, point.value, country=country)
    except ValueError as error:
        raise BadUserInput(f"{field}: {error}", field=field) from None


async def _check_free(
    session: AsyncSession, tenant_id: uuid.UUID, kind: str, value: str, field: str
) -> None:
    taken = await session.exec(
        select(ContactPoint.id).where(
            ContactPoint.tenant_id == tenant_id,
            ContactPoint.kind == kind,
            ContactPoint.value == value,
        )
    )
    if taken.first() is not None:
        raise Conflict(f"{field}: this {kind} belongs to another customer", field=field)


async def register_customer(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: CustomerCreate,
    fields: Sequence[str] = (),
    referral_code: str | None = None,
    fingerprint_secret: str = DEVELOPMENT_FINGERPRINT_SECRET,
) -> Customer:
    """Store a new customer with their contact points; announce it. ``fields`` names each
    contact point's value as the caller gave it (for errors), by default its list position.
    ``referral_code`` travels on the event for rewards to attribute (identity keeps none)."""
    if referral_code is not None:
        referral_code = referral_code.strip()
        if not 1 <= len(referral_code) <= MAX_REFERRAL_CODE_LENGTH:
            raise BadUserInput(
                f"input.referralCode: 1 to {MAX_REFERRAL_CODE_LENGTH} characters",
                field="input.referralCode",
            )
    if await session.get(Tenant, tenant_id) is None:
        raise Unauthenticated("unknown tenant")
    profile = data.model_dump(exclude={"contact_points"}, exclude_none=True)
    customer = Customer(tenant_id=tenant_id, **profile)
    session.add(customer)
    await session.flush()
    seen: set[tuple[str, str]] = set()
    fingerprints: list[str] = []
    for index, point in enumerate(data.contact_points):
        field = fields[index] if index < len(fields) else f"input.contactPoints.{index}.value"
        value = _normalized(point, data.country, field)
        if (point.kind.value, value) in seen:
            raise Conflict(f"{field}: given twice", field=field)
        seen.add((point.kind.value, value))
        await _check_free(session, tenant_id, point.kind.value, value, field)
        session.add(_contact_point(customer, point, value))
        if point.verified:
            fingerprints.append(
                contact_fingerprint(fingerprint_secret, tenant_id, point.kind.value, value)
            )
    await record_event(
        session,
        CustomerRegistered(
            customer_id=customer.id,
            registered_at=customer.created_at,
            referral_code=referral_code,
            verified_contact_fingerprints=sorted(set(fingerprints)),
        ),
        tenant_id=tenant_id,
        subject=str(customer.id),
    )
    await session.flush()
    return customer


def _contact_point(customer: Customer, point: ContactPointInput, value: str) -> ContactPoint:
    return ContactPoint(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        kind=point.kind.value,
        value=value,
        verified=point.verified,
        verified_at=utcnow() if point.verified else None,
    )


async def customer_for_update(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, field: str = "id"
) -> Customer:
    """The tenant's customer, locked for this transaction; NOT_FOUND otherwise."""
    found = await session.exec(
        select(Customer)
        .where(Customer.tenant_id == tenant_id, Customer.id == customer_id)
        .with_for_update()
    )
    customer = found.first()
    if customer is None:
        raise NotFound(f"{field}: no such customer", field=field)
    return customer


async def _announce_update(session: AsyncSession, customer: Customer, changed: list[str]) -> None:
    customer.updated_at = utcnow()
    session.add(customer)
    await record_event(
        session,
        CustomerUpdated(customer_id=customer.id, changed=sorted(changed)),
        tenant_id=customer.tenant_id,
        subject=str(customer.id),
    )
    await session.flush()


async def update_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, data: ProfileFields
) -> Customer:
    """Change the fields given in ``data`` (an explicit null clears an optional field)."""
    customer = await customer_for_update(session, tenant_id, customer_id)
    changed = []
    for name in data.model_fields_set:
        value = getattr(data, name)
        if name == "name" and value is None:
            continue
        if name == "preferences" and value is None:
            value = {}
        if getattr(customer, name) != value:
            setattr(customer, name, value)
            changed.append(name)
    if changed:
        await _announce_update(session, customer, changed)
    return customer


async def add_contact_point(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    point: ContactPointInput,
    fingerprint_secret: str = DEVELOPMENT_FINGERPRINT_SECRET,
) -> ContactPoint:
    """Give the customer another e-mail address or phone number."""
    customer = await customer_for_update(session, tenant_id, customer_id, "input.customerId")
    value = _normalized(point, customer.country, "input.value")
    await _check_free(session, tenant_id, point.kind.value, value, "input.value")
    contact = _contact_point(customer, point, value)
    session.add(contact)
    await _announce_update(session, customer, ["contactPoints"])
    if contact.verified:
        await _announce_verified(session, contact, fingerprint_secret)
    return contact


async def _announce_verified(session: AsyncSession, contact: ContactPoint, secret: str) -> None:
    await record_event(
        session,
        ContactPointVerified(
            customer_id=contact.customer_id,
            contact_point_id=contact.id,
            kind=contact.kind,
            fingerprint=contact_fingerprint(secret, contact.tenant_id, contact.kind, contact.value),
        ),
        tenant_id=contact.tenant_id,
        subject=str(contact.customer_id),
    )


async def _contact(
    session: AsyncSession, tenant_id: uuid.UUID, contact_point_id: uuid.UUID
) -> ContactPoint:
    contact = await session.get(ContactPoint, contact_point_id, with_for_update=True)
    if contact is None or contact.tenant_id != tenant_id:
        raise NotFound("id: no such contact point", field="id")
    return contact


async def verify_contact_point(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contact_point_id: uuid.UUID,
    fingerprint_secret: str = DEVELOPMENT_FINGERPRINT_SECRET,
) -> ContactPoint:
    """Mark a contact point verified (e.g. after the customer confirmed a code)."""
    contact = await _contact(session, tenant_id, contact_point_id)
    if not contact.verified:
        contact.verified, contact.verified_at = True, utcnow()
        session.add(contact)
        customer = await customer_for_update(session, tenant_id, contact.customer_id)
        await _announce_update(session, customer, ["contactPoints"])
        await _announce_verified(session, contact, fingerprint_secret)
    return contact


async def remove_contact_point(
    *, session: AsyncSession, tenant_id: uuid.UUID, contact_point_id: uuid.UUID
) -> Customer:
    """Remove a contact point; the customer it belonged to is returned."""
    contact = await _contact(session, tenant_id, contact_point_id)
    customer = await customer_for_update(session, tenant_id, contact.customer_id)
    await session.delete(contact)
    await _announce_update(session, customer, ["contactPoints"])
    return customer


async def get_customers(
    *, session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Customer]:
    """The tenant's customers among ``ids``, by id (others' ids are simply absent)."""
    rows = await session.exec(
        select(Customer).where(Customer.tenant_id == tenant_id, col(Customer.id).in_(ids))
    )
    return {c.id: c for c in rows}


async def contact_points_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContactPoint]]:
    """Each customer's contact points, e-mail first, oldest first."""
    rows = await session.exec(
        select(ContactPoint)
        .where(ContactPoint.tenant_id == tenant_id, col(ContactPoint.customer_id).in_(customer_ids))
        .order_by(col(ContactPoint.kind), col(ContactPoint.created_at), col(ContactPoint.id))
    )
    found: dict[uuid.UUID, list[ContactPoint]] = defaultdict(list)
    for row in rows:
        found[row.customer_id].append(row)
    return found


def _search_terms(text: str) -> tuple[str, list[str], str]:
    """The name pattern, the contact values and the handle a search text may mean."""
    text = text.strip()
    contacts = [text.lower()]
    try:
        contacts.append(normalize_contact(ContactKind.PHONE, text))
    except ValueError:
        pass
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%", contacts, text.lstrip("@").lower()


async def list_customers(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    search: str | None = None,
) -> list[Customer]:
    """A page of the tenant's customers, oldest first, optionally only those matching
    ``search`` by name (part of it), contact point (whole) or social handle (whole)."""
    query = select(Customer).where(
        Customer.tenant_id == tenant_id, col(Customer.merged_into_id).is_(None)
    )
    if search:
        pattern, contacts, handle = _search_terms(search)
        query = query.where(
            or_(
                func.lower(Customer.name).like(pattern),
                exists().where(
                    col(ContactPoint.customer_id) == col(Customer.id),
                    col(ContactPoint.value).in_(contacts),
                ),
                exists().where(
                    col(SocialProfile.customer_id) == col(Customer.id),
                    func.lower(col(SocialProfile.handle)) == handle,
                ),
            )
        )
    query = keyset_page(query, col(Customer.created_at), col(Customer.id), after, limit=limit)
    return list(await session.exec(query))
