"""Privacy in the graph: one export of everything, and erasure with its progress."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, check_first, connection, decode_cursor, encode_cursor
from crm_shared.privacy import PrivacyExportReference
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from identity.privacy import service
from identity.privacy.models import ErasureRequest


@strawberry.federation.type(keys=["customerId"], name="PrivacyExport")
class PrivacyExportType(PrivacyExportReference):
    """Everything the services hold about one customer; each service fills its own field."""

    customer_id: strawberry.ID

    @strawberry.field(
        description="Identity's records: profile, contact points, social "
        "profiles and links, consent history.",
        extensions=[needs(Permission.PRIVACY_MANAGE)],
    )
    async def identity(self, info: CrmInfo) -> JSON | None:
        principal = info.context.principal
        async with info.context.session() as session:
            found = await service.export_customer(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=parse_id(self.customer_id, field="customerId"),
            )
        return None if found is None else JSON(found)


@strawberry.type(name="ErasureConfirmation")
class ErasureConfirmationType:
    service: str
    confirmed_at: datetime | None


@strawberry.type(name="ErasureRequest")
class ErasureRequestType:
    """An erasure and how far each service has got with it."""

    id: strawberry.ID
    customer_id: strawberry.ID
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    services: list[ErasureConfirmationType]


async def _with_progress(info: CrmInfo, rows: list[ErasureRequest]) -> list[ErasureRequestType]:
    async with info.context.session() as session:
        confirmed = await service.confirmations(session=session, request_ids=[r.id for r in rows])
    expected: list[str] = info.context.request.app.state.settings.erasure_services
    return [
        ErasureRequestType(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            completed_at=row.completed_at,
            services=[
                ErasureConfirmationType(
                    service=name,
                    confirmed_at=(
                        confirmed[row.id][name].confirmed_at
                        if name in confirmed.get(row.id, {})
                        else None
                    ),
                )
                for name in expected
            ],
        )
        for row in rows
    ]


@strawberry.input
class RequestErasureInput:
    customer_id: strawberry.ID


@strawberry.type
class Query:
    @strawberry.field(
        description="Everything every service holds about a customer (JSON).",
        extensions=[needs(Permission.PRIVACY_MANAGE)],
    )
    def privacy_export(self, info: CrmInfo, customer_id: strawberry.ID) -> PrivacyExportType:
        parse_id(customer_id, field="customerId")
        return PrivacyExportType(customer_id=customer_id)

    @strawberry.field(
        description="Erasure requests, newest first, with each service's progress.",
        extensions=[needs(Permission.PRIVACY_MANAGE)],
    )
    async def erasure_requests(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ErasureRequestType]:
        principal = info.context.principal
        limit = check_first(first)
        async with info.context.session() as session:
            rows = await service.list_requests(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                before=decode_cursor(after) if after else None,
            )
        nodes = {
            row.id: node for row, node in zip(rows, await _with_progress(info, rows), strict=True)
        }
        return connection(
            rows,
            limit,
            cursor=lambda r: encode_cursor(r.requested_at, r.id),
            node=lambda r: nodes[r.id],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Erase a customer everywhere: identity at once, the others by event.",
        extensions=[needs(Permission.PRIVACY_MANAGE)],
    )
    async def request_erasure(
        self, info: CrmInfo, input: RequestErasureInput
    ) -> ErasureRequestType:
        principal = info.context.principal
        customer_id = parse_id(input.customer_id, field="input.customerId")
        async with info.context.transaction() as session:
            request = await service.request_erasure(
                session=session, principal=principal, customer_id=customer_id
            )
        [node] = await _with_progress(info, [request])
        return node
