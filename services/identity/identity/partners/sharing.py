"""Whether an event may reach partners: consent purpose ``partner_sharing``.

Every event a partner gets (its broker queue, its webhooks) passes this check when it is sent
(so a withdrawal stops what is still waiting, and a replay is checked again). An event may
reach partners when every person it mentions is a customer whose ``partner_sharing`` stands
granted; an event that mentions nobody (a tenant created, an offer published or ended, a trend
spiked) may always go. What counts as a mention:

- any id in the event (``subject``, or a value at any depth of ``data``, staff actions'
  ``record_id`` and ``details`` included) that is a customer of the tenant: the customer
  must have granted; a merged record answers with the consent of the record it was merged
  into (its consent records moved there); an erased customer has none;
- any id that is a social profile of the tenant: its linked customer must have granted, and
  a profile linked to nobody is a person who cannot have granted;
- a customer field (:data:`CUSTOMER_FIELDS`) naming an id that is no customer of the tenant:
  nobody can vouch for that person's consent;
- a social identity (:data:`PERSON_FIELDS`, e.g. an interaction's ``handle``) in an event
  that names no customer: the author is not a customer, so cannot have granted.

The check reads identity's own tables (identity owns consent), so it is as current as the
last committed ``recordConsent``. Events already handed to the broker or to a partner's
endpoint cannot be called back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from identity.consent.models import Purpose

# Fields that name a customer (by id) in the producers' event models (docs/events.md).
CUSTOMER_FIELDS = frozenset(
    {
        "customer_id",
        "customer_ids",
        "survivor_id",
        "merged_id",
        "restored_id",
        "referrer_id",
        "referred_id",
        "author_id",
    }
)
# Fields that identify a person on a social platform (at any depth: an erasure's
# ``profiles`` are ``[{channel, platform_user_id}]``).
PERSON_FIELDS = frozenset({"platform_user_id", "handle", "display_name"})

_meter = metrics.get_meter("identity.partners")
shared_events = _meter.create_counter(
    "crm.partner.events.shared",
    description="Events handed to partners (broker: republished; webhook: an attempt made).",
)
withheld_events = _meter.create_counter(
    "crm.partner.events.withheld",
    description="Events partners asked for but did not get: partner_sharing (by channel).",
)

NOT_GRANTED = "withheld: a customer it is about has not granted partner_sharing"
UNKNOWN_CUSTOMER = "withheld: it names a customer identity does not know"
NOT_A_CUSTOMER = "withheld: it is about a person who is not a customer (no partner_sharing)"


@dataclass(frozen=True)
class Mentions:
    """What an event says about people, before looking anything up."""

    ids: frozenset[uuid.UUID]
    # Ids given in customer fields: each must be a customer of the tenant.
    customers: frozenset[uuid.UUID]
    # A customer field holds something that is not an id.
    malformed: bool
    # A social identity (handle, platform user id...) is present.
    person: bool


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, str) and len(value) == 36:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) at any depth; list items keep the key of their list."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.items())
        elif isinstance(item, list):
            stack.extend((key, v) for v in item)
        else:
            yield key, item


def mentions(envelope: Envelope) -> Mentions:
    """The ids, customer fields and social identities of an event."""
    ids: set[uuid.UUID] = set()
    customers: set[uuid.UUID] = set()
    malformed = person = False
    subject = _as_uuid(envelope.subject)
    if subject is not None:
        ids.add(subject)
    for key, value in _walk(envelope.data):
        if value is None:
            continue
        found = _as_uuid(value)
        if found is not None:
            ids.add(found)
        if key in CUSTOMER_FIELDS:
            if found is None:
                malformed = True
            else:
                customers.add(found)
        elif key in PERSON_FIELDS and value != "":
            person = True
    return Mentions(frozenset(ids), frozenset(customers), malformed, person)


_CUSTOMERS = text(
    """
    SELECT c.id, COALESCE(c.merged_into_id, c.id) AS answers_for, c.erased_at IS NOT NULL AS erased
    FROM identity.customers c
    WHERE c.tenant_id = :tenant AND c.id = ANY(:ids)
    """
)
_PROFILES = text(
    """
    SELECT p.id, p.customer_id FROM identity.social_profiles p
    WHERE p.tenant_id = :tenant AND p.id = ANY(:ids)
    """
)
# The latest record of the purpose per customer (records are append-only).
_GRANTED = text(
    """
    SELECT DISTINCT ON (r.customer_id) r.customer_id, r.granted
    FROM identity.consent_records r
    WHERE r.tenant_id = :tenant AND r.customer_id = ANY(:ids) AND r.purpose = :purpose
    ORDER BY r.customer_id, r.recorded_at DESC, r.id DESC
    """
)


async def _decide(
    session: AsyncSession, tenant_id: uuid.UUID, found: Sequence[Mentions]
) -> list[str | None]:
    ids = sorted({i for m in found for i in m.ids})
    customers: dict[uuid.UUID, tuple[uuid.UUID, bool]] = {}
    profiles: dict[uuid.UUID, uuid.UUID | None] = {}
    if ids:
        params = {"tenant": tenant_id, "ids": ids}
        for row in await session.execute(_CUSTOMERS, params):
            customers[row.id] = (row.answers_for, row.erased)
        for row in await session.execute(_PROFILES, params):
            profiles[row.id] = row.customer_id
    # Who must have granted: each mentioned customer (or its survivor), each profile's customer.
    answering = {answers for answers, _ in customers.values()} | {
        c for c in profiles.values() if c is not None
    }
    granted: set[uuid.UUID] = set()
    if answering:
        rows = await session.execute(
            _GRANTED,
            {
                "tenant": tenant_id,
                "ids": sorted(answering),
                "purpose": Purpose.PARTNER_SHARING.value,
            },
        )
        granted = {row.customer_id for row in rows if row.granted}
    erased = {answers for answers, gone in customers.values() if gone}

    decisions: list[str | None] = []
    for mention in found:
        if mention.malformed or not mention.customers <= customers.keys():
            decisions.append(UNKNOWN_CUSTOMER)
            continue
        must: set[uuid.UUID] = set()
        unlinked_profile = False
        for i in mention.ids:
            if i in customers:
                must.add(customers[i][0])
            elif i in profiles:
                linked = profiles[i]
                if linked is None:
                    unlinked_profile = True
                else:
                    must.add(linked)
        if any(c not in granted or c in erased for c in must):
            decisions.append(NOT_GRANTED)
        elif unlinked_profile or (mention.person and not must):
            decisions.append(NOT_A_CUSTOMER)
        else:
            decisions.append(None)
    return decisions


async def withheld(session: AsyncSession, envelopes: Sequence[Envelope]) -> list[str | None]:
    """For each event, why it may not reach partners, or None when it may (in order)."""
    by_tenant: dict[uuid.UUID, list[int]] = {}
    for index, envelope in enumerate(envelopes):
        by_tenant.setdefault(envelope.tenantid, []).append(index)
    decisions: list[str | None] = [None] * len(envelopes)
    for tenant_id, indexes in by_tenant.items():
        found = [mentions(envelopes[i]) for i in indexes]
        for index, decision in zip(indexes, await _decide(session, tenant_id, found), strict=True):
            decisions[index] = decision
    return decisions


async def withheld_one(session: AsyncSession, envelope: Envelope) -> str | None:
    """Why one event may not reach partners, or None when it may."""
    (decision,) = await withheld(session, [envelope])
    return decision
