"""Trends, segments and influence through the gateway: the new Customer fields and queries,
permissions, tenant isolation and coded errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_shared import devstack
from identity.consent.events import ConsentChanged
from tests.e2e.conftest import REGISTER, make_tenant
from tests.engagement.conftest import new_id, post
from tests.engagement.test_understanding_and_events import (
    CREATE_TRACKER,
    link_author,
    publish_from_identity,
)
from tests.support.auth import staff_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

TREND = """
query Trend($trackerId: ID, $topic: String, $granularity: TrendGranularity!,
            $from: DateTime!, $to: DateTime!) {
  trend(trackerId: $trackerId, topic: $topic, granularity: $granularity, from: $from, to: $to) {
    trackerId topic granularity points { at volume }
  }
}
"""

TRENDING = "query { trendingTopics(hours: 6, first: 5) { topic volume baseline growth } }"

STANDING = """
query Standing($id: ID!) {
  customer(id: $id) {
    id
    segment { name since }
    influence {
      unavailable reach engagementReceived amplification pageRank score
      influencer advocate detractor computedAt
    }
  }
}
"""

ADVOCATES = """
query {
  advocates(first: 10) { edges { node { customerId influence { score advocate } } } }
  detractors(first: 10) { edges { node { customerId } } }
  segmentCounts { segment customers }
  influenceComputation { computedAt profiles edges }
}
"""

RECOMPUTE = "mutation { recomputeInfluence { computedAt profiles edges } }"

SETTINGS = """
mutation Settings($input: UpdateSegmentSettingsInput!) {
  updateSegmentSettings(input: $input) {
    windowDays creatorMinOriginals occasionalMinContributions
  }
}
"""


def error(result: dict[str, Any]) -> tuple[str, str | None]:
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


def hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


async def test_trends_of_a_tracker_and_topics_are_the_tenants_own(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    created = await devstack.graphql(
        stack, CREATE_TRACKER, {"input": {"kind": "keyword", "term": "zorblax"}}, token=marketer
    )
    tracker_id = created["data"]["createTracker"]["id"]
    now = datetime.now(UTC)
    topic = f"#t{new_id()}"
    items = [
        {
            "channel": "other",
            "platformId": f"{new_id()}-{i}",
            "kind": "comment",
            "createdAt": (now - timedelta(minutes=1)).isoformat(),
            "text": f"zorblax is here {topic}",
        }
        for i in range(3)
    ]
    body = [
        {
            "channel": i["channel"],
            "platform_id": i["platformId"],
            "kind": i["kind"],
            "created_at": i["createdAt"],
            "text": i["text"],
        }
        for i in items
    ]
    response = await post(stack, "/ingest/normalized", token=writer, json_body=body)
    assert response.status_code == 200, response.text
    await post(stack, "/ingest/normalized", token=writer, json_body=body)  # the same again

    analyst = await staff_token(stack, tenant, "analyst")
    window = {
        "granularity": "HOUR",
        "from": (now - timedelta(hours=2)).isoformat(),
        "to": now.isoformat(),
    }
    series = await devstack.graphql(
        stack, TREND, {"trackerId": tracker_id, **window}, token=analyst
    )
    assert "errors" not in series, series
    points = series["data"]["trend"]["points"]
    assert len(points) == 3
    assert points[-1] == {"at": hour(now).isoformat(), "volume": 3}
    assert sum(p["volume"] for p in points) == 3
    by_topic = await devstack.graphql(
        stack, TREND, {"topic": topic.upper(), **window, "granularity": "DAY"}, token=analyst
    )
    assert by_topic["data"]["trend"]["topic"] == topic
    assert by_topic["data"]["trend"]["points"][-1]["volume"] == 3

    trending = await devstack.graphql(stack, TRENDING, token=analyst)
    assert {"topic": topic, "volume": 3, "baseline": 0.0, "growth": 4.0} in trending["data"][
        "trendingTopics"
    ]

    unknown = await devstack.graphql(
        stack, TREND, {"trackerId": str(uuid.uuid4()), **window}, token=analyst
    )
    assert error(unknown) == ("NOT_FOUND", "trackerId")
    reversed_ = await devstack.graphql(
        stack,
        TREND,
        {"trackerId": tracker_id, **window, "from": window["to"], "to": window["from"]},
        token=analyst,
    )
    assert error(reversed_) == ("BAD_USER_INPUT", "from")
    both = await devstack.graphql(
        stack, TREND, {"trackerId": tracker_id, "topic": topic, **window}, token=analyst
    )
    assert error(both) == ("BAD_USER_INPUT", "trackerId")
    agent = await staff_token(stack, tenant, "agent")
    assert error(await devstack.graphql(stack, TRENDING, token=agent))[0] == "FORBIDDEN"

    other = await staff_token(stack, make_tenant(stack), "analyst")
    theirs = await devstack.graphql(stack, TREND, {"trackerId": tracker_id, **window}, token=other)
    assert error(theirs) == ("NOT_FOUND", "trackerId")
    their_topic = await devstack.graphql(stack, TREND, {"topic": topic, **window}, token=other)
    assert sum(p["volume"] for p in their_topic["data"]["trend"]["points"]) == 0
    assert (await devstack.graphql(stack, TRENDING, token=other))["data"]["trendingTopics"] == []


async def register(stack: devstack.Stack, admin: str, name: str) -> str:
    registered = await devstack.graphql(
        stack, REGISTER, {"input": {"name": name, "email": None}}, token=admin
    )
    customer_id: str = registered["data"]["registerCustomer"]["id"]
    return customer_id


async def test_a_customers_segment_and_influence_through_the_gateway(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    admin = await staff_token(stack, tenant)
    star, fan = await register(stack, admin, "Star"), await register(stack, admin, "Fan")
    star_user, fan_user = f"star-{new_id()}", f"fan-{new_id()}"
    await link_author(stack, tenant, star, star_user)
    await link_author(stack, tenant, fan, fan_user)
    await publish_from_identity(
        stack,
        tenant,
        ConsentChanged(  # as identity publishes it: the catalogue's whole event
            customer_id=uuid.UUID(star),
            purpose="profiling",
            granted=True,
            policy_version="2026-01",
            source="test",
            changed_at=datetime.now(UTC),
        ),
    )

    async def standing(customer_id: str) -> dict[str, Any]:
        result = await devstack.graphql(stack, STANDING, {"id": customer_id}, token=admin)
        assert "errors" not in result, result
        found: dict[str, Any] = result["data"]["customer"]
        return found

    # Linked without saying anything: an observer; consent projected: not computed yet.
    watching = await eventually(
        lambda: standing(star),
        lambda c: c["segment"] is not None and c["influence"]["unavailable"] == "NOT_COMPUTED",
    )
    assert watching["segment"]["name"] == "observer"

    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    star_post = f"sp-{new_id()}"
    body = [
        {
            "channel": "other",
            "platform_id": f"{star_post}{suffix}",
            "kind": "post",
            "created_at": at,
            "text": "I love this brand, it is wonderful and great!",
            "author": {"platform_user_id": star_user, "followers": 5000},
        }
        for suffix in ("", "-2", "-3")
    ] + [
        {
            "channel": "other",
            "platform_id": f"fr-{new_id()}",
            "kind": "reply",
            "parent_id": star_post,
            "created_at": at,
            "text": "Totally agree, love it",
            "author": {"platform_user_id": fan_user, "followers": 3},
        }
    ]
    response = await post(stack, "/ingest/normalized", token=writer, json_body=body)
    assert response.json()["accepted"] == 4, response.text
    marketer = await staff_token(stack, tenant, "marketer")
    recomputed = await devstack.graphql(stack, RECOMPUTE, token=marketer)
    assert "errors" not in recomputed, recomputed
    assert recomputed["data"]["recomputeInfluence"]["profiles"] == 2

    mine = await standing(star)
    assert mine["segment"]["name"] == "creator"
    influence = mine["influence"]
    assert influence["unavailable"] is None
    assert (influence["reach"], influence["engagementReceived"]) == (5000, 1)
    assert influence["advocate"] is True and influence["detractor"] is False
    assert influence["computedAt"] == recomputed["data"]["recomputeInfluence"]["computedAt"]
    theirs = await standing(fan)
    assert theirs["segment"]["name"] == "occasional"
    assert theirs["influence"]["unavailable"] == "PROFILING_NOT_ALLOWED"
    assert theirs["influence"]["score"] is None

    analyst = await staff_token(stack, tenant, "analyst")
    listed = await devstack.graphql(stack, ADVOCATES, token=analyst)
    assert "errors" not in listed, listed
    data = listed["data"]
    assert [e["node"]["customerId"] for e in data["advocates"]["edges"]] == [star]
    assert data["detractors"]["edges"] == []
    counts = {c["segment"]: c["customers"] for c in data["segmentCounts"]}
    assert counts == {"creator": 1, "occasional": 1, "observer": 0, "inactive": 0}
    assert data["influenceComputation"]["profiles"] == 2

    other = await staff_token(stack, make_tenant(stack), "admin")
    elsewhere = (await devstack.graphql(stack, ADVOCATES, token=other))["data"]
    assert elsewhere["advocates"]["edges"] == []
    assert all(c["customers"] == 0 for c in elsewhere["segmentCounts"])
    assert elsewhere["influenceComputation"] is None


async def test_segment_settings_are_checked_and_need_listening_manage(
    stack: devstack.Stack, tenant: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    bad = await devstack.graphql(stack, SETTINGS, {"input": {"windowDays": 0}}, token=marketer)
    assert error(bad) == ("BAD_USER_INPUT", "input.windowDays")
    changed = await devstack.graphql(
        stack, SETTINGS, {"input": {"creatorMinOriginals": 7}}, token=marketer
    )
    assert changed["data"]["updateSegmentSettings"] == {
        "windowDays": 30,
        "creatorMinOriginals": 7,
        "occasionalMinContributions": 1,
    }
    analyst = await staff_token(stack, tenant, "analyst")
    read = await devstack.graphql(
        stack, "query { segmentSettings { creatorMinOriginals } }", token=analyst
    )
    assert read["data"]["segmentSettings"] == {"creatorMinOriginals": 7}
    refused = await devstack.graphql(
        stack, SETTINGS, {"input": {"creatorMinOriginals": 2}}, token=analyst
    )
    assert error(refused)[0] == "FORBIDDEN"
    assert error(await devstack.graphql(stack, RECOMPUTE, token=analyst))[0] == "FORBIDDEN"
    other = await staff_token(stack, make_tenant(stack), "analyst")
    theirs = await devstack.graphql(
        stack, "query { segmentSettings { creatorMinOriginals } }", token=other
    )
    assert theirs["data"]["segmentSettings"] == {"creatorMinOriginals": 3}


async def test_a_customer_token_sees_only_its_own_standing(
    stack: devstack.Stack, tenant: str
) -> None:
    from tests.support.auth import customer_token

    admin = await staff_token(stack, tenant)
    mine, theirs = await register(stack, admin, "Me"), await register(stack, admin, "Them")
    token = await customer_token(stack, tenant, mine)
    query = """
    query($id: ID!) {
      _entities(representations: [{__typename: "Customer", id: $id}]) {
        ... on Customer { segment { name } influence { unavailable } }
      }
    }
    """
    own = await devstack.graphql(stack, query, {"id": mine}, token=token, service="engagement")
    assert "errors" not in own, own
    assert own["data"]["_entities"][0]["influence"] == {"unavailable": "PROFILING_NOT_ALLOWED"}
    other = await devstack.graphql(stack, query, {"id": theirs}, token=token, service="engagement")
    assert error(other)[0] == "FORBIDDEN"
    listed = await devstack.graphql(stack, ADVOCATES, token=token)
    assert error(listed)[0] == "FORBIDDEN"
