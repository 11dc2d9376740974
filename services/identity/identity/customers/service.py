"""Operations on customers and their contact points."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, literal, tuple_, union
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound, Unauthenticated
from crm_shared.events import record_event
from identity.activity.models import CustomerActivity
from identity.consent.models import ConsentInput, ConsentRecord
from identity.customers.events import ContactPointVerified, CustomerRegistered, CustomerUpdated
from identity.customers.models import (
    ContactKind,
    ContactPoint,
    ContactPointInput,
    Customer,
    CustomerCreate,
    CustomerTag,
    ProfileFields,
    contact_fingerprint,
    normalize_contact,
    normalize_tag,
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
    consents: Sequence[ConsentInput] = (),
    recorded_by: str = "",
) -> Customer:
    """Store a new customer with their contact points and the consents they gave (one
    purpose once; ``recorded_by`` names the caller); announce it. ``fields`` names each
    contact point's value as the caller gave it (for errors), by default its list position.
    ``referral_code`` travels on the event for rewards to attribute (identity keeps none)."""
    purposes = [c.purpose for c in consents]
    if len(set(purposes)) != len(purposes):
        raise BadUserInput("input.consents: one entry per purpose", field="input.consents")
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
    if consents:
        # Imported here: consent's service builds on this module (customer_for_update).
        from identity.consent.service import record_initial_consents

        await record_initial_consents(
            session=session,
            tenant_id=tenant_id,
            customer_id=customer.id,
            consents=consents,
            recorded_by=recorded_by,
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


def _tags(tags: Sequence[str], field: str) -> list[str]:
    if not 1 <= len(tags) <= 20:
        raise BadUserInput(f"{field}: 1 to 20 tags", field=field)
    try:
        return sorted({normalize_tag(tag) for tag in tags})
    except ValueError as error:
        raise BadUserInput(f"{field}: {error}", field=field) from None


async def tag_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, tags: Sequence[str]
) -> Customer:
    """Put ``tags`` on the customer (those it has already stay as they are)."""
    wanted = _tags(tags, "input.tags")
    customer = await customer_for_update(session, tenant_id, customer_id, "input.customerId")
    have = await tags_of(session=session, tenant_id=tenant_id, customer_ids=[customer_id])
    added = [tag for tag in wanted if tag not in have.get(customer_id, [])]
    for tag in added:
        session.add(CustomerTag(tenant_id=tenant_id, customer_id=customer_id, tag=tag))
    if added:
        await _announce_update(session, customer, ["tags"])
    return customer


async def untag_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, tags: Sequence[str]
) -> Customer:
    """Take ``tags`` off the customer (those it does not have are ignored)."""
    unwanted = _tags(tags, "input.tags")
    customer = await customer_for_update(session, tenant_id, customer_id, "input.customerId")
    removed = await session.execute(
        delete(CustomerTag).where(
            col(CustomerTag.tenant_id) == tenant_id,
            col(CustomerTag.customer_id) == customer_id,
            col(CustomerTag.tag).in_(unwanted),
        )
    )
    if getattr(removed, "rowcount", 0):
        await _announce_update(session, customer, ["tags"])
    return customer


async def tags_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each customer's tags, alphabetically."""
    rows = await session.exec(
        select(CustomerTag)
        .where(
            col(CustomerTag.tenant_id) == tenant_id, col(CustomerTag.customer_id).in_(customer_ids)
        )
        .order_by(col(CustomerTag.tag))
    )
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in rows:
        found[row.customer_id].append(row.tag)
    return found


class CustomerSortField(StrEnum):
    """What a customer list is ordered by (value, balance and last interaction come from the
    activity projection: customers nobody told identity about count as 0 / never)."""

    NAME = "name"
    CREATED = "created"
    VALUE = "value"
    BALANCE = "balance"
    LAST_INTERACTION = "last_interaction"


@dataclass(frozen=True)
class CustomerFilters:
    """Which customers a list keeps: all of the given conditions hold; a list condition
    holds when any of its values does."""

    search: str | None = None
    segments: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # (purpose, granted): the customer's current consent for the purpose is ``granted``
    # (never asked counts as not granted).
    consent: tuple[str, bool] | None = None


# Where a row sits in a sorted list: its sort key and its id.
Position = tuple[Any, uuid.UUID]

# Customers with no interaction sort as if their last one were at the epoch.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(tenant_id: uuid.UUID, text: str) -> Any:
    """Accent- and case-insensitive part of the name; part of an e-mail address, phone number
    (international or national format) or social handle: the ids of the customers matching,
    one index-backed (trigram) select per kind, united."""
    text = text.strip()
    lowered = text.lower()
    matches: list[Any] = [
        select(Customer.id).where(
            Customer.tenant_id == tenant_id,
            func.identity.search_text(Customer.name).like(func.identity.search_text(_like(text))),
        ),
        select(ContactPoint.customer_id).where(
            ContactPoint.tenant_id == tenant_id, col(ContactPoint.value).like(_like(lowered))
        ),
        select(col(SocialProfile.customer_id)).where(
            SocialProfile.tenant_id == tenant_id,
            func.lower(col(SocialProfile.handle)).like(_like(lowered.lstrip("@"))),
        ),
    ]
    digits = re.sub(r"\D", "", text).lstrip("0")
    if len(digits) >= 6 and not re.search(r"[A-Za-z@]", text):
        # A national format ("020 7946 0958", "(11) 98765-4321") is the E.164 number's tail
        # once its trunk prefix 0 is dropped.
        matches.append(
            select(ContactPoint.customer_id).where(
                ContactPoint.tenant_id == tenant_id,
                col(ContactPoint.kind) == ContactKind.PHONE.value,
                col(ContactPoint.value).like(f"%{digits}"),
            )
        )
    return col(Customer.id).in_(union(*matches))


def _filtered(tenant_id: uuid.UUID, filters: CustomerFilters) -> Any:
    """The tenant's listable customers (not merged away, not erased) that pass ``filters``,
    with their activity row (outer-joined) for sorting."""
    query = (
        select(Customer)
        .outerjoin(
            CustomerActivity,
            and_(
                col(CustomerActivity.tenant_id) == col(Customer.tenant_id),
                col(CustomerActivity.customer_id) == col(Customer.id),
            ),
        )
        .where(
            Customer.tenant_id == tenant_id,
            col(Customer.merged_into_id).is_(None),
            col(Customer.erased_at).is_(None),
        )
    )
    if filters.search and filters.search.strip():
        query = query.where(_search(tenant_id, filters.search))
    if filters.segments:
        query = query.where(col(CustomerActivity.segment).in_(filters.segments))
    if filters.tiers:
        query = query.where(col(CustomerActivity.tier).in_(filters.tiers))
    if filters.channels:
        query = query.where(
            exists().where(
                col(SocialProfile.customer_id) == col(Customer.id),
                col(SocialProfile.tenant_id) == tenant_id,
                col(SocialProfile.channel).in_(filters.channels),
            )
        )
    if filters.tags:
        query = query.where(
            exists().where(
                col(CustomerTag.customer_id) == col(Customer.id),
                col(CustomerTag.tag).in_(filters.tags),
            )
        )
    if filters.consent is not None:
        purpose, granted = filters.consent
        current = (
            select(ConsentRecord.granted)
            .where(
                col(ConsentRecord.tenant_id) == tenant_id,
                col(ConsentRecord.customer_id) == col(Customer.id),
                col(ConsentRecord.purpose) == purpose,
            )
            .order_by(col(ConsentRecord.recorded_at).desc(), col(ConsentRecord.id).desc())
            .limit(1)
            .scalar_subquery()
        )
        query = query.where(func.coalesce(current, false()) == granted)
    return query


def sort_key(sort: CustomerSortField) -> Any:
    """The SQL expression a list is ordered by (before the id)."""
    match sort:
        case CustomerSortField.NAME:
            return func.identity.search_text(Customer.name)
        case CustomerSortField.CREATED:
            return col(Customer.created_at)
        case CustomerSortField.VALUE:
            return func.coalesce(col(CustomerActivity.value_cents), 0)
        case CustomerSortField.BALANCE:
            return func.coalesce(col(CustomerActivity.balance), 0)
        case CustomerSortField.LAST_INTERACTION:
            return func.coalesce(col(CustomerActivity.last_interaction_at), _NEVER)


async def list_customers(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    filters: CustomerFilters = CustomerFilters(),
    sort: CustomerSortField = CustomerSortField.CREATED,
    descending: bool = False,
    after: Position | None = None,
    before: Position | None = None,
    backward: bool = False,
) -> list[tuple[Customer, Any]]:
    """A page of the tenant's listable customers with each one's sort key, in list order.

    Forward (``after``), the page starts after that position; ``backward`` (``before``), it is
    the ``limit`` rows just before that position (or the list's end), still in list order.
    """
    key = sort_key(sort)
    query = _filtered(tenant_id, filters).add_columns(key.label("sort_key"))
    ascending = descending == backward  # walking backward reverses the list's order
    for position, upward in ((after, True), (before, False)):
        if position is not None:
            mark = tuple_(key, col(Customer.id))
            bound = tuple_(literal(position[0]), literal(position[1]))
            query = query.where(mark > bound if upward != descending else mark < bound)
    if ascending:
        query = query.order_by(key, col(Customer.id))
    else:
        query = query.order_by(key.desc(), col(Customer.id).desc())
    rows = [(row[0], row[1]) for row in await session.execute(query.limit(limit))]
    return rows[::-1] if backward else rows


async def count_customers(
    *, session: AsyncSession, tenant_id: uuid.UUID, filters: CustomerFilters = CustomerFilters()
) -> int:
    """How many of the tenant's listable customers pass ``filters``."""
    query = _filtered(tenant_id, filters).with_only_columns(func.count()).order_by(None)
    return int((await session.execute(query)).scalar_one())
