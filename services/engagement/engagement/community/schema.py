"""The community in the graph: polls, ideas, contests and content reuse requests.

Reading needs ``community:read``; staff run the community with ``community:manage``; customers
take part with ``community:participate`` on their own customer token (a vote, an idea or an
entry is always the token's customer: no one votes for someone else).
"""

from __future__ import annotations

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import (
    Connection,
)
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.community.contests import schema as contests
from engagement.community.ideas import schema as ideas
from engagement.community.ideas.schema import IdeaOrder, IdeaType, idea_page
from engagement.community.polls import schema as polls
from engagement.community.reuse import schema as reuse

# --- the customer ----------------------------------------------------------------------------


@strawberry.type
class CustomerCommunity:
    """The community's fields of ``Customer`` (the engagement ``Customer`` type includes them)."""

    id: strawberry.ID

    @strawberry.field(
        description="The ideas the customer submitted, newest first.",
        extensions=[needs(Permission.COMMUNITY_READ, customer="self.id")],
    )
    async def ideas(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[IdeaType]:
        customer_id = parse_id(self.id, field="id")
        principal = info.context.principal
        return await idea_page(
            info,
            principal.tenant_id,
            first=first,
            after=after,
            order=IdeaOrder.RECENT,
            customer_id=customer_id,
        )


@strawberry.type
class Query(polls.Query, ideas.Query, contests.Query, reuse.Query):
    pass


@strawberry.type
class Mutation(polls.Mutation, ideas.Mutation, contests.Mutation, reuse.Mutation):
    pass
