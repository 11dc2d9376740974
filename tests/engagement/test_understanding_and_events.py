"""Trackers, recordInteraction, the events engagement publishes, and identity's links."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import Event, record_event
from identity.settings import IdentitySettings
from tests.e2e.conftest import REGISTER
from tests.engagement.conftest import outbox, payload, post
from tests.support.auth import staff_token
from tests.support.waiting import eventually

CREATE_TRACKER = """
mutation Track($input: CreateTrackerInput!) {
  createTracker(input: $input) { id kind term }
}
"""

RECORD = """
mutation Record($input: RecordInteractionInput!) {
  recordInteraction(input: $input) {
    outcome
    interaction { id platformId language sentimentLabel trackerIds customerId }
  }
}
"""

CUSTOMER_INTERACTIONS = """
query Customer($id: ID!, $first: Int!, $after: String) {
  customer(id: $id) {
    interactionCount
    interactions(first: $first, after: $after) {
      edges { node { platformId channel customerId } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


# The first test also starts the whole stack, slow on a shared machine.
pytestmark = pytest.mark.timeout(300)


def record_input(platform_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "other",
        "platformId": platform_id,
        "kind": "comment",
        "createdAt": "2024-05-04T10:00:00+00:00",
        "text": text,
        **extra,
    }


async def test_trackers_match_words_and_hashtags_case_insensitively(
    stack: devstack.Stack, tenant: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    ids = {}
    for kind, term in (("keyword", "Acme"), ("hashtag", "AcmeAudio"), ("phrase", "great  sound")):
        created = await devstack.graphql(
            stack, CREATE_TRACKER, {"input": {"kind": kind, "term": term}}, token=marketer
        )
        assert "errors" not in created, created
        ids[kind] = created["data"]["createTracker"]["id"]
    assert created["data"]["createTracker"]["term"] == "great sound"
    duplicate = await devstack.graphql(
        stack, CREATE_TRACKER, {"input": {"kind": "keyword", "term": "ACME"}}, token=marketer
    )
    extensions = duplicate["errors"][0]["extensions"]
    assert (extensions["code"], extensions["field"]) == ("CONFLICT", "term")

    listed = await devstack.graphql(
        stack, "{ trackers { kind term } }", token=await staff_token(stack, tenant, "analyst")
    )
    assert listed["data"]["trackers"] == [
        {"kind": "keyword", "term": "Acme"},
        {"kind": "hashtag", "term": "#AcmeAudio"},
        {"kind": "phrase", "term": "great sound"},
    ]

    agent = await staff_token(stack, tenant, "agent")

    async def matched(platform_id: str, text: str) -> set[str]:
        result = await devstack.graphql(
            stack, RECORD, {"input": record_input(platform_id, text)}, token=agent
        )
        assert "errors" not in result, result
        return set(result["data"]["recordInteraction"]["interaction"]["trackerIds"])

    assert await matched("t-1", "acme has GREAT sound #acmeaudio") == set(ids.values())
    # Whole words only: "acmeaudio" is not "acme", and a hashtag needs its "#".
    assert await matched("t-2", "acmeaudio and AcmeAudio without the hash") == set()
    assert await matched("t-3", "#AcmeAudioPro is another tag") == set()
    assert await matched("t-4", "Acme, again.") == {ids["keyword"]}

    events = await outbox_for(stack, tenant)
    recorded = {e["platform_id"]: e for e in events}
    assert set(recorded["t-1"]["tracker_ids"]) == set(ids.values())
    assert recorded["t-1"]["brand_mentioned"] is True


async def outbox_for(stack: devstack.Stack, tenant: str) -> list[dict[str, Any]]:
    from tests.conftest import settings_for

    db = Database(settings_for(stack, "engagement"))
    try:
        return await outbox(db, tenant, "engagement.interaction.recorded.v1")
    finally:
        await db.dispose()


async def test_record_interaction_understands_and_reports_bad_input(
    stack: devstack.Stack, tenant: str
) -> None:
    agent = await staff_token(stack, tenant, "agent")
    english = await devstack.graphql(
        stack,
        RECORD,
        {"input": record_input("r-1", "Thank you so much, this is wonderful service!")},
        token=agent,
    )
    assert english["data"]["recordInteraction"]["outcome"] == "accepted"
    node = english["data"]["recordInteraction"]["interaction"]
    assert (node["language"], node["sentimentLabel"]) == ("en", "positive")

    french = await devstack.graphql(
        stack,
        RECORD,
        {"input": record_input("r-2", "Merci beaucoup, votre service est vraiment formidable")},
        token=agent,
    )
    node = french["data"]["recordInteraction"]["interaction"]
    assert (node["language"], node["sentimentLabel"]) == ("fr", "positive")

    hindi = await devstack.graphql(
        stack,
        RECORD,
        {"input": record_input("r-hi", "यह उत्पाद बहुत अच्छा है")},
        token=agent,
    )
    node = hindi["data"]["recordInteraction"]["interaction"]
    # No analyser ships for Hindi: detected, never guessed.
    assert (node["language"], node["sentimentLabel"]) == ("hi", "unanalyzed")

    again = await devstack.graphql(
        stack,
        RECORD,
        {"input": record_input("r-1", "Thank you so much, this is wonderful service!")},
        token=agent,
    )
    assert again["data"]["recordInteraction"]["outcome"] == "duplicate"

    bad = await devstack.graphql(
        stack, RECORD, {"input": record_input("r-3", "hi", kind="tweet")}, token=agent
    )
    extensions = bad["errors"][0]["extensions"]
    assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", "input.kind")
    analyst = await devstack.graphql(
        stack,
        RECORD,
        {"input": record_input("r-4", "hi")},
        token=await staff_token(stack, tenant, "analyst"),
    )
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_author_is_announced_once_and_each_new_interaction_once(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    body = payload("x_search_recent.json")
    # The second post by the same author as the first.
    body["data"][1]["author_id"] = body["data"][0]["author_id"]
    await post(stack, "/ingest/x", token=writer, json_body=body)
    await post(stack, "/ingest/x", token=writer, json_body=body)

    seen = await outbox(engagement_db, tenant, "engagement.author.seen.v1")
    assert len(seen) == 1
    assert {k: seen[0][k] for k in ("channel", "platform_user_id", "handle", "display_name")} == {
        "channel": "x",
        "platform_user_id": "2244994945",
        "handle": "ada",
        "display_name": "Ada Lovelace",
    }
    assert (seen[0]["followers"], seen[0]["verified"]) == (1200, False)
    recorded = await outbox(engagement_db, tenant, "engagement.interaction.recorded.v1")
    assert sorted(e["platform_id"] for e in recorded) == [
        "1790000000000000001",
        "1790000000000000002",
    ]
    first = next(e for e in recorded if e["platform_id"] == "1790000000000000001")
    assert first["customer_id"] is None
    assert (first["channel"], first["kind"], first["platform_user_id"]) == (
        "x",
        "post",
        "2244994945",
    )
    assert (first["language"], first["sentiment_label"]) == ("en", "positive")


class SocialProfileLinked(Event):
    """Identity's event as docs/events.md documents it (identity does not publish it yet)."""

    type = "identity.social_profile.linked.v1"

    link_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str
    evidence: str
    confidence: float


class SocialProfileUnlinked(Event):
    type = "identity.social_profile.unlinked.v1"

    link_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str


async def publish_from_identity(stack: devstack.Stack, tenant: str, event: Event) -> None:
    """Record ``event`` in identity's outbox, as identity would; its relay publishes it."""
    db = Database(IdentitySettings(database_url=stack.database_url("identity")))
    try:
        async with db.session() as session, session.begin():
            await record_event(session, event, tenant_id=uuid.UUID(tenant), subject=None)
    finally:
        await db.dispose()


async def link_author(
    stack: devstack.Stack,
    tenant: str,
    customer_id: str,
    user: str,
    *,
    evidence: str = "oauth",
    confidence: float = 1.0,
) -> None:
    """Identity links the ``other`` channel's author ``user`` to the customer (by event)."""
    await publish_from_identity(
        stack,
        tenant,
        SocialProfileLinked(
            link_id=uuid.uuid4(),
            profile_id=uuid.uuid4(),
            customer_id=uuid.UUID(customer_id),
            channel="other",
            platform_user_id=user,
            evidence=evidence,
            confidence=confidence,
        ),
    )


async def test_a_linked_profile_attaches_its_history_to_the_customer(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    admin = await staff_token(stack, tenant)
    registered = await devstack.graphql(
        stack, REGISTER, {"input": {"name": "Ada", "email": None}}, token=admin
    )
    customer_id = registered["data"]["registerCustomer"]["id"]
    await post(stack, "/ingest/x", token=writer, json_body=payload("x_search_recent.json"))

    async def history() -> dict[str, Any]:
        result = await devstack.graphql(
            stack, CUSTOMER_INTERACTIONS, {"id": customer_id, "first": 1}, token=admin
        )
        assert "errors" not in result, result
        found: dict[str, Any] = result["data"]["customer"]
        return found

    assert (await history())["interactionCount"] == 0
    link = {
        "link_id": uuid.uuid4(),
        "profile_id": uuid.uuid4(),
        "customer_id": uuid.UUID(customer_id),
        "channel": "x",
        "platform_user_id": "2244994945",
    }
    await publish_from_identity(
        stack, tenant, SocialProfileLinked(**link, evidence="oauth", confidence=1.0)
    )
    linked = await eventually(history, lambda c: c["interactionCount"] == 1)
    page = linked["interactions"]
    assert page["edges"] == [
        {"node": {"platformId": "1790000000000000001", "channel": "x", "customerId": customer_id}}
    ]
    assert page["pageInfo"]["hasNextPage"] is False

    # New posts by the linked author belong to the customer from the start, newest first.
    newer = payload("x_search_recent.json")
    newer["data"] = [
        {
            **newer["data"][0],
            "id": "1790000000000000077",
            "edit_history_tweet_ids": ["1790000000000000077"],
            "created_at": "2024-06-01T00:00:00.000Z",
        }
    ]
    await post(stack, "/ingest/x", token=writer, json_body=newer)
    first_page = await history()
    assert first_page["interactionCount"] == 2
    assert first_page["interactions"]["edges"][0]["node"]["platformId"] == "1790000000000000077"
    assert first_page["interactions"]["pageInfo"]["hasNextPage"] is True
    second = await devstack.graphql(
        stack,
        CUSTOMER_INTERACTIONS,
        {
            "id": customer_id,
            "first": 1,
            "after": first_page["interactions"]["pageInfo"]["endCursor"],
        },
        token=admin,
    )
    assert [
        e["node"]["platformId"] for e in second["data"]["customer"]["interactions"]["edges"]
    ] == ["1790000000000000001"]

    await publish_from_identity(stack, tenant, SocialProfileUnlinked(**link))
    await eventually(history, lambda c: c["interactionCount"] == 0)


ENTITIES_INTERACTIONS = """
query($ids: [_Any!]!, $first: Int!, $after: String) {
  _entities(representations: $ids) {
    ... on Customer {
      interactions(first: $first, after: $after) {
        edges { node { platformId customerId } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""


async def test_a_page_of_customers_gets_each_ones_own_interactions_newest_first(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    """The gateway asks for a page of customers' interactions in one ``_entities`` call,
    which engagement answers with one query: each customer still gets their own, in order."""
    admin = await staff_token(stack, tenant)
    ids = [
        (
            await devstack.graphql(
                stack, REGISTER, {"input": {"name": name, "email": None}}, token=admin
            )
        )["data"]["registerCustomer"]["id"]
        for name in ("Ann", "Bob", "Cy")
    ]
    run = uuid.uuid4().hex[:6]
    # Bob writes an hour later in the day than Ann, so that no two items share a time.
    for customer_id, author, count, hour in ((ids[0], "ann", 3, 10), (ids[1], "bob", 2, 11)):
        await link_author(stack, tenant, customer_id, f"{author}-{run}")
        items = [
            {
                "channel": "other",
                "platform_id": f"{author}-{run}-{n}",
                "kind": "comment",
                "author": {"platform_user_id": f"{author}-{run}"},
                "text": f"note {n}",
                "created_at": f"2024-05-0{n + 1}T{hour}:00:00+00:00",
            }
            for n in range(count)
        ]
        await post(stack, "/ingest/normalized", token=writer, json_body=items)

    representations = [{"__typename": "Customer", "id": i} for i in ids]

    async def pages(first: int, after: str | None = None) -> list[dict[str, Any]]:
        result = await devstack.graphql(
            stack,
            ENTITIES_INTERACTIONS,
            {"ids": representations, "first": first, "after": after},
            token=admin,
            service="engagement",
        )
        assert "errors" not in result, result
        return [e["interactions"] for e in result["data"]["_entities"]]

    def platform_ids(page: dict[str, Any]) -> list[str]:
        return [e["node"]["platformId"] for e in page["edges"]]

    # Linked before or after the items arrived: wait until both histories are attached.
    first = await eventually(lambda: pages(2), lambda p: [len(x["edges"]) for x in p] == [2, 2, 0])
    assert [platform_ids(p) for p in first] == [
        [f"ann-{run}-2", f"ann-{run}-1"],
        [f"bob-{run}-1", f"bob-{run}-0"],
        [],
    ]
    assert [p["pageInfo"]["hasNextPage"] for p in first] == [True, False, False]
    assert {e["node"]["customerId"] for e in first[0]["edges"]} == {ids[0]}
    # The same cursor for all three (the argument is the selection's): each customer's
    # interactions older than Ann's second newest.
    after = await pages(2, first[0]["pageInfo"]["endCursor"])
    assert [platform_ids(p) for p in after] == [[f"ann-{run}-0"], [f"bob-{run}-0"], []]


async def test_a_customer_token_sees_only_its_own_interactions(
    stack: devstack.Stack, tenant: str
) -> None:
    from tests.support.auth import customer_token

    admin = await staff_token(stack, tenant)
    mine, theirs = [
        (
            await devstack.graphql(
                stack, REGISTER, {"input": {"name": name, "email": None}}, token=admin
            )
        )["data"]["registerCustomer"]["id"]
        for name in ("Me", "Them")
    ]
    token = await customer_token(stack, tenant, mine)
    query = """
    query($id: ID!) {
      _entities(representations: [{__typename: "Customer", id: $id}]) {
        ... on Customer { interactions { edges { node { id } } } }
      }
    }
    """
    own = await devstack.graphql(stack, query, {"id": mine}, token=token, service="engagement")
    assert "errors" not in own, own
    other = await devstack.graphql(stack, query, {"id": theirs}, token=token, service="engagement")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
