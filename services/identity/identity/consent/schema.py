"""Consent in the graph: the current state per purpose, the history, and recording it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, validated
from identity.consent import service
from identity.consent.models import ConsentInput, ConsentRecord, Purpose

strawberry.enum(Purpose, name="ConsentPurpose")  # makes the model enum a GraphQL enum


@strawberry.type(name="ConsentRecord")
class ConsentRecordType:
    """One grant or withdrawal, as it was recorded."""

    id: strawberry.ID
    purpose: Purpose
    granted: bool
    source: str
    policy_version: str
    recorded_by: str
    recorded_at: datetime

    @classmethod
    def from_model(cls, record: ConsentRecord) -> ConsentRecordType:
        return cls(
            id=strawberry.ID(str(record.id)),
            purpose=Purpose(record.purpose),
            granted=record.granted,
            source=record.source,
            policy_version=record.policy_version,
            recorded_by=record.recorded_by,
            recorded_at=record.recorded_at,
        )


@strawberry.type(name="Consent")
class ConsentType:
    """Where a purpose stands: never asked means not granted (``changedAt`` null)."""

    purpose: Purpose
    granted: bool
    policy_version: str | None
    source: str | None
    changed_at: datetime | None


@strawberry.input
class RecordConsentInput:
    customer_id: strawberry.ID
    purpose: Purpose
    granted: bool
    source: str
    policy_version: str


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record a grant or withdrawal; emits identity.consent.changed.v1 on change.",
        extensions=[needs(Permission.CONSENT_WRITE, customer="input.customer_id")],
    )
    async def record_consent(self, info: CrmInfo, input: RecordConsentInput) -> ConsentRecordType:
        customer_id = parse_id(input.customer_id, field="input.customerId")
        principal = info.context.principal
        data = validated(
            ConsentInput,
            {
                "purpose": input.purpose,
                "granted": input.granted,
                "source": input.source,
                "policy_version": input.policy_version,
            },
        )
        async with info.context.transaction() as session:
            record = await service.record_consent(
                session=session, principal=principal, customer_id=customer_id, data=data
            )
        return ConsentRecordType.from_model(record)
