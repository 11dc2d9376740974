"""Customer lists as a console uses them, through the gateway: search that ignores accents and
case and finds parts of e-mails, handles and national phone numbers; sorting (also by the
value, balance and last interaction other services report); filters; totalCount; paging both
ways; the default page size; erased customers left out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import Event, record_event
from crm_shared.settings import ServiceSettings
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.waiting import eventually

REGISTER = """
mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id name } }
"""
LIST = """
query($first: Int, $last: Int, $after: String, $before: String, $q: String,
      $order: CustomerOrder, $filter: CustomerFilter) {
  customers(first: $first, last: $last, after: $after, before: $before, search: $q,
            orderBy: $order, filter: $filter) {
    totalCount
    edges { cursor node { id name tags } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
RECORD_PROFILE = """
mutation($input: RecordSocialProfileInput!) { recordSocialProfile(input: $input) { id } }
"""
LINK = """
mutation($input: LinkSocialProfileInput!) { linkSocialProfile(input: $input) { id } }
"""
CONSENT = """
mutation($input: RecordConsentInput!) { recordConsent(input: $input) { purpose granted } }
"""
TAG = "mutation($input: CustomerTagsInput!) { tagCustomer(input: $input) { id tags } }"
UNTAG = "mutation($input: CustomerTagsInput!) { untagCustomer(input: $input) { id tags } }"
ADJUST = "mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance } }"
PURCHASE = """
mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) { replayed } }
"""


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


async def _error(
    stack: devstack.Stack, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert result.get("errors"), result
    error: dict[str, Any] = result["errors"][0]["extensions"]
    return error


async def _register(stack: devstack.Stack, token: str, **person: Any) -> str:
    data = await _ok(stack, REGISTER, {"input": person}, token)
    return str(data["registerCustomer"]["id"])


async def _names(stack: devstack.Stack, token: str, **variables: Any) -> list[str]:
    data = await _ok(stack, LIST, {"first": 50, **variables}, token)
    return [e["node"]["name"] for e in data["customers"]["edges"]]


@pytest.fixture
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def test_search_ignores_accents_and_case_and_finds_parts_and_national_numbers(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    joao = await _register(
        stack, admin, name="João Gonçalves", email="joao.goncalves@correio.example"
    )
    await _register(stack, admin, name="Zoë Müller", phone="+44 20 7946 0958")
    await _register(stack, admin, name="Maria Souza", phone="+55 11 98765 4321")
    profile = await _ok(
        stack,
        RECORD_PROFILE,
        {"input": {"channel": "INSTAGRAM", "platformUserId": "178414", "handle": "Joao_Surfs"}},
        admin,
    )
    await _ok(
        stack,
        LINK,
        {
            "input": {
                "profileId": profile["recordSocialProfile"]["id"],
                "customerId": joao,
                "evidence": "CUSTOMER_CONFIRMED",
            }
        },
        admin,
    )

    assert await _names(stack, admin, q="joao") == ["João Gonçalves"]
    assert await _names(stack, admin, q="GONCALVES") == ["João Gonçalves"]
    assert await _names(stack, admin, q="zoe muller") == ["Zoë Müller"]
    assert await _names(stack, admin, q="correio.exam") == ["João Gonçalves"]  # part of e-mail
    assert await _names(stack, admin, q="@surfs") == ["João Gonçalves"]  # part of a handle
    assert await _names(stack, admin, q="020 7946 0958") == ["Zoë Müller"]  # UK national
    assert await _names(stack, admin, q="(11) 98765-4321") == ["Maria Souza"]  # BR national
    assert await _names(stack, admin, q="+5511987654321") == ["Maria Souza"]
    assert await _names(stack, admin, q="100%_") == []  # LIKE wildcards are literal


async def test_sorting_paging_both_ways_and_total_count(stack: devstack.Stack, tenant: str) -> None:
    admin = await staff_token(stack, tenant)
    names = ["Émile", "bruno", "Ana", "Dário", "Carla"]
    for name in names:
        await _register(stack, admin, name=name)
    by_name = {"field": "NAME", "direction": "ASC"}
    assert await _names(stack, admin, order=by_name) == ["Ana", "bruno", "Carla", "Dário", "Émile"]
    assert await _names(stack, admin, order={"field": "NAME", "direction": "DESC"}) == [
        "Émile",
        "Dário",
        "Carla",
        "bruno",
        "Ana",
    ]
    assert await _names(stack, admin) == names  # by default: oldest first

    first = (await _ok(stack, LIST, {"first": 2, "order": by_name}, admin))["customers"]
    assert first["totalCount"] == 5
    assert [e["node"]["name"] for e in first["edges"]] == ["Ana", "bruno"]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    second = (
        await _ok(
            stack,
            LIST,
            {"first": 2, "after": first["pageInfo"]["endCursor"], "order": by_name},
            admin,
        )
    )["customers"]
    assert [e["node"]["name"] for e in second["edges"]] == ["Carla", "Dário"]
    assert second["pageInfo"]["hasPreviousPage"]

    # Backward: the last two, then the two before them, each page still in list order.
    last = (await _ok(stack, LIST, {"last": 2, "order": by_name}, admin))["customers"]
    assert [e["node"]["name"] for e in last["edges"]] == ["Dário", "Émile"]
    assert last["pageInfo"]["hasPreviousPage"] and not last["pageInfo"]["hasNextPage"]
    before = (
        await _ok(
            stack,
            LIST,
            {"last": 2, "before": last["pageInfo"]["startCursor"], "order": by_name},
            admin,
        )
    )["customers"]
    assert [e["node"]["name"] for e in before["edges"]] == ["bruno", "Carla"]
    assert before["pageInfo"]["hasPreviousPage"] and before["pageInfo"]["hasNextPage"]
    start = (
        await _ok(
            stack,
            LIST,
            {"last": 2, "before": before["pageInfo"]["startCursor"], "order": by_name},
            admin,
        )
    )["customers"]
    assert [e["node"]["name"] for e in start["edges"]] == ["Ana"]
    assert not start["pageInfo"]["hasPreviousPage"]

    # A cursor of another order is refused, naming the argument.
    error = await _error(stack, LIST, {"first": 2, "after": first["pageInfo"]["endCursor"]}, admin)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "after")
    error = await _error(stack, LIST, {"last": 0}, admin)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "last")


async def test_a_list_without_first_uses_the_schema_default(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    for index in range(21):
        await _register(stack, admin, name=f"Person {index:02}")
    data = await _ok(stack, "query { customers { totalCount edges { node { id } } } }", {}, admin)
    assert len(data["customers"]["edges"]) == 20
    assert data["customers"]["totalCount"] == 21


async def test_filters_by_tag_consent_and_channel(stack: devstack.Stack, tenant: str) -> None:
    admin = await staff_token(stack, tenant)
    ann = await _register(stack, admin, name="Ann")
    bob = await _register(stack, admin, name="Bob")
    await _register(stack, admin, name="Cy")
    tagged = await _ok(
        stack, TAG, {"input": {"customerId": ann, "tags": [" VIP ", "press"]}}, admin
    )
    assert tagged["tagCustomer"]["tags"] == ["press", "vip"]
    await _ok(stack, TAG, {"input": {"customerId": bob, "tags": ["vip"]}}, admin)
    assert await _names(stack, admin, filter={"tags": ["VIP"]}) == ["Ann", "Bob"]
    await _ok(stack, UNTAG, {"input": {"customerId": bob, "tags": ["vip"]}}, admin)
    assert await _names(stack, admin, filter={"tags": ["vip"]}) == ["Ann"]
    error = await _error(stack, TAG, {"input": {"customerId": ann, "tags": ["x" * 61]}}, admin)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "input.tags")

    for customer, granted in ((ann, True), (bob, True), (bob, False)):
        await _ok(
            stack,
            CONSENT,
            {
                "input": {
                    "customerId": customer,
                    "purpose": "MARKETING",
                    "granted": granted,
                    "source": "console",
                    "policyVersion": "2026-01",
                }
            },
            admin,
        )
    marketing = {"purpose": "MARKETING"}
    assert await _names(stack, admin, filter={"consent": marketing}) == ["Ann"]
    without = {"consent": {**marketing, "granted": False}}
    assert await _names(stack, admin, filter=without) == ["Bob", "Cy"]

    profile = await _ok(
        stack,
        RECORD_PROFILE,
        {"input": {"channel": "TIKTOK", "platformUserId": "6790", "handle": "cy_dances"}},
        admin,
    )
    await _ok(
        stack,
        LINK,
        {
            "input": {
                "profileId": profile["recordSocialProfile"]["id"],
                "customerId": bob,
                "evidence": "STAFF_DECISION",
            }
        },
        admin,
    )
    assert await _names(stack, admin, filter={"channels": ["TIKTOK", "X"]}) == ["Bob"]
    data = await _ok(
        stack, LIST, {"first": 10, "filter": {"channels": ["TIKTOK"], "tags": ["vip"]}}, admin
    )
    assert data["customers"]["totalCount"] == 0


class _SegmentChanged(Event):
    type = "engagement.segment.changed.v1"

    customer_id: uuid.UUID
    previous: str | None
    segment: str


class _InteractionRecorded(Event):
    type = "engagement.interaction.recorded.v1"

    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str
    kind: str
    platform_id: str
    thread_id: str | None = None
    platform_user_id: str | None = None
    handle: str | None = None
    sentiment: float | None = None
    sentiment_label: str = "neutral"
    language: str = "en"
    occurred_at: datetime
    tracker_ids: list[uuid.UUID] = []
    brand_mentioned: bool = False


async def _from_engagement(stack: devstack.Stack, tenant: str, events: list[Event]) -> None:
    """Publish ``events`` as engagement does: through its outbox (its relay sends them)."""
    engagement = Database(
        ServiceSettings(
            service_name="engagement",
            db_schema="engagement",
            database_url=stack.database_url("engagement"),
        )
    )
    try:
        async with engagement.session() as session, session.begin():
            for event in events:
                subject = str(getattr(event, "customer_id", None))
                await record_event(session, event, tenant_id=uuid.UUID(tenant), subject=subject)
    finally:
        await engagement.dispose()


async def test_value_balance_segment_and_last_interaction_from_other_services(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    ann = await _register(stack, admin, name="Ann")
    bob = await _register(stack, admin, name="Bob")
    await _register(stack, admin, name="Cy")
    for customer, points in ((ann, 50), (bob, 300)):
        await _ok(
            stack,
            ADJUST,
            {
                "input": {
                    "customerId": customer,
                    "points": points,
                    "reason": "goodwill",
                    "idempotencyKey": f"adjust-{customer}",
                }
            },
            admin,
        )
    await _ok(
        stack,
        PURCHASE,
        {
            "input": {
                "orderId": "o-1",
                "customerId": ann,
                "amountCents": 7000,
                "currency": "EUR",
                "occurredAt": "2026-11-01T10:00:00Z",
                "idempotencyKey": "o-1",
            }
        },
        admin,
    )
    await _from_engagement(
        stack,
        tenant,
        [
            _SegmentChanged(customer_id=uuid.UUID(bob), previous=None, segment="creators"),
            _InteractionRecorded(
                interaction_id=uuid.uuid4(),
                customer_id=uuid.UUID(ann),
                channel="x",
                kind="post",
                platform_id="1",
                occurred_at=datetime(2026, 11, 2, tzinfo=UTC),
            ),
            _InteractionRecorded(
                interaction_id=uuid.uuid4(),
                customer_id=uuid.UUID(bob),
                channel="x",
                kind="post",
                platform_id="2",
                occurred_at=datetime(2026, 11, 3, tzinfo=UTC),
            ),
        ],
    )

    async def ordered(field: str) -> list[str]:
        return await _names(stack, admin, order={"field": field, "direction": "DESC"})

    await eventually(lambda: ordered("BALANCE"), lambda names: names == ["Bob", "Ann", "Cy"])
    await eventually(lambda: ordered("VALUE"), lambda names: names[0] == "Ann")
    await eventually(
        lambda: ordered("LAST_INTERACTION"), lambda names: names == ["Bob", "Ann", "Cy"]
    )
    await eventually(
        lambda: _names(stack, admin, filter={"segments": ["creators"]}),
        lambda names: names == ["Bob"],
    )
    # Paging by a projected figure: the cursor carries it.
    page = (
        await _ok(
            stack, LIST, {"first": 1, "order": {"field": "VALUE", "direction": "DESC"}}, admin
        )
    )["customers"]
    rest = await _names(
        stack,
        admin,
        after=page["pageInfo"]["endCursor"],
        order={"field": "VALUE", "direction": "DESC"},
    )
    assert [e["node"]["name"] for e in page["edges"]] == ["Ann"]
    assert sorted(rest) == ["Bob", "Cy"]


async def test_an_erased_customer_is_not_listed_or_found(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    gone = await _register(stack, admin, name="Gone Person", email="gone@example.com")
    await _register(stack, admin, name="Kept Person")
    erase = "mutation($input: RequestErasureInput!) { requestErasure(input: $input) { id } }"
    await _ok(stack, erase, {"input": {"customerId": gone}}, admin)
    # The record stays as an empty shell named "(erased)": no list shows it.
    assert await _names(stack, admin) == ["Kept Person"]
    assert await _names(stack, admin, q="erased") == []


CONSENTS = """
query($id: ID!) { customer(id: $id) { consents { purpose granted source policyVersion } } }
"""
RECORD_INTERACTION = """
mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { outcome } }
"""


async def test_registration_records_the_consents_given_with_it(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    given = [
        {"purpose": "PARTNER_SHARING", "granted": True, "source": "signup", "policyVersion": "v3"},
        {"purpose": "MARKETING", "granted": False, "source": "signup", "policyVersion": "v3"},
    ]
    ann = await _register(stack, admin, name="Ann", consents=given)
    consents = (await _ok(stack, CONSENTS, {"id": ann}, admin))["customer"]["consents"]
    assert {c["purpose"]: c["granted"] for c in consents} == {
        "MARKETING": False,
        "PROFILING": False,
        "PARTNER_SHARING": True,
        "CONTENT_REUSE": False,
    }
    assert [c["source"] for c in consents if c["purpose"] == "PARTNER_SHARING"] == ["signup"]

    twice = [given[0], {**given[0], "granted": False}]
    error = await _error(stack, REGISTER, {"input": {"name": "Bo", "consents": twice}}, admin)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "input.consents")
    blank = [{**given[0], "source": " "}]
    error = await _error(stack, REGISTER, {"input": {"name": "Bo", "consents": blank}}, admin)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "input.consents.0.source")
    assert await _names(stack, admin) == ["Ann"]  # nothing half-written


@pytest.mark.parametrize("channel", ["tiktok", "web", "email"])
async def test_interactions_take_every_channel_profiles_do(
    stack: devstack.Stack, tenant: str, channel: str
) -> None:
    admin = await staff_token(stack, tenant)
    recorded = await _ok(
        stack,
        RECORD_INTERACTION,
        {
            "input": {
                "channel": channel,
                "platformId": f"{channel}-1",
                "kind": "comment",
                "createdAt": "2026-11-02T10:00:00Z",
                "text": "Love it",
                "author": {"platformUserId": f"{channel}-author", "handle": "fan"},
            }
        },
        admin,
    )
    assert recorded["recordInteraction"]["outcome"]


MERGE = "mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { id } }"
UNMERGE = "mutation($input: UnmergeCustomersInput!) { unmergeCustomers(input: $input) { id } }"


async def test_tags_follow_a_merge_and_come_back_on_unmerge(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    survivor = await _register(stack, admin, name="Ann")
    merged = await _register(stack, admin, name="Ann B")
    await _ok(stack, TAG, {"input": {"customerId": survivor, "tags": ["press"]}}, admin)
    await _ok(stack, TAG, {"input": {"customerId": merged, "tags": ["vip", "press"]}}, admin)
    merge = await _ok(
        stack,
        MERGE,
        {"input": {"survivorId": survivor, "mergedId": merged, "reason": "same person"}},
        admin,
    )
    assert await _names(stack, admin, filter={"tags": ["vip"]}) == ["Ann"]
    await _ok(
        stack,
        UNMERGE,
        {"input": {"mergeId": merge["mergeCustomers"]["id"], "reason": "two people"}},
        admin,
    )
    data = await _ok(stack, LIST, {"first": 10}, admin)
    tags = {e["node"]["name"]: e["node"]["tags"] for e in data["customers"]["edges"]}
    assert tags == {"Ann": ["press"], "Ann B": ["press", "vip"]}
