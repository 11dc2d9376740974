"""Engagement's part of the privacy export."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.privacy import PrivacyExportReference
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.privacy import service


@strawberry.federation.type(keys=["customerId"], name="PrivacyExport")
class PrivacyExportType(PrivacyExportReference):
    customer_id: strawberry.ID

    @strawberry.field(
        description="Engagement's records: interactions, accounts, consent.",
        extensions=[needs(Permission.PRIVACY_MANAGE)],
    )
    async def engagement(self, info: CrmInfo) -> JSON:
        principal = info.context.principal
        async with info.context.session() as session:
            found = await service.export_customer(
                session,
                tenant_id=principal.tenant_id,
                customer_id=parse_id(self.customer_id, field="customerId"),
            )
        return JSON(found)
