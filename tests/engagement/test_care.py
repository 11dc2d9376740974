"""Social customer care end to end: cases from ingestion, replies, SLA breaches, access."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from engagement.care.service import check_breaches
from rewards.settings import RewardsSettings
from tests.e2e.conftest import REGISTER, make_tenant
from tests.engagement.conftest import new_id, outbox, post
from tests.engagement.test_understanding_and_events import link_author
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

CASE_FIELDS = """
id kind status priority priorityScore channel threadId customerId assigneeId
openedAt firstResponseAt firstResponseDueAt resolvedAt resolutionDueAt
firstResponseSeconds resolutionSeconds breaches { target }
interactions(first: 5) { edges { node { platformId byBrand kind text } } }
"""
QUEUE = f"""
query Queue($first: Int!, $after: String, $status: [String!], $customerId: ID) {{
  cases(first: $first, after: $after, status: $status, customerId: $customerId) {{
    edges {{ cursor node {{ {CASE_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
CASE = f"query Case($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}"
CUSTOMER_CASES = """
query Customer($id: ID!) {
  customer(id: $id) { cases(first: 10) { edges { node { id kind customerId } } } }
}
"""
CREATE_ACCOUNT = """
mutation Brand($input: CreateBrandAccountInput!) {
  createBrandAccount(input: $input) { id channel platformUserId handle }
}
"""
ASSIGN = """
mutation Assign($caseId: ID!, $assigneeId: ID) {
  assignCase(caseId: $caseId, assigneeId: $assigneeId) { id status assigneeId }
}
"""
REPLY = f"""
mutation Reply($caseId: ID!, $text: String!) {{
  replyToCase(caseId: $caseId, text: $text) {{ {CASE_FIELDS} }}
}}
"""
RESOLVE = "mutation R($caseId: ID!) { resolveCase(caseId: $caseId) { id status resolvedAt } }"
REOPEN = "mutation R($caseId: ID!) { reopenCase(caseId: $caseId) { id status resolvedAt } }"

BRAND_USER = "brand-acme"


def item(
    platform_id: str,
    text_: str | None,
    *,
    kind: str = "complaint",
    author: str = "cust-1",
    thread: str = "thread-1",
    parent: str | None = None,
    at: datetime | None = None,
    followers: int | None = 40,
) -> dict[str, Any]:
    """A normalized item on channel ``other``."""
    return {
        "channel": "other",
        "platform_id": platform_id,
        "kind": kind,
        "thread_id": thread,
        "parent_id": parent,
        "author": {"platform_user_id": author, "handle": author, "followers": followers},
        "text": text_,
        "created_at": (at or datetime.now(UTC)).isoformat(),
    }


def coded(result: dict[str, Any]) -> tuple[str, str | None]:
    """The first error's code and field."""
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


async def ingest(stack: devstack.Stack, token: str, *items: dict[str, Any]) -> dict[str, Any]:
    response = await post(stack, "/ingest/normalized", token=token, json_body=list(items))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def queue(stack: devstack.Stack, token: str, **variables: Any) -> list[dict[str, Any]]:
    result = await devstack.graphql(stack, QUEUE, {"first": 20, **variables}, token=token)
    assert "errors" not in result, result
    return [e["node"] for e in result["data"]["cases"]["edges"]]


async def brand_account(stack: devstack.Stack, tenant: str) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    created = await devstack.graphql(
        stack,
        CREATE_ACCOUNT,
        {"input": {"channel": "other", "platformUserId": BRAND_USER, "handle": "@acme"}},
        token=marketer,
    )
    assert "errors" not in created, created
    assert created["data"]["createBrandAccount"]["handle"] == "acme"


async def test_a_complaint_delivered_twice_opens_exactly_one_case(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    complaint = item(f"c-{new_id()}", "My order arrived broken and nobody answers. Terrible!")
    await ingest(stack, writer, complaint)
    again = await ingest(stack, writer, complaint)
    assert again["duplicates"] == 1
    # A follow-up of the same customer in the thread joins the case; another author opens one.
    await ingest(
        stack,
        writer,
        item(f"f-{new_id()}", "Still waiting for a refund.", kind="reply"),
        item(f"q-{new_id()}", "Do you ship to Canada?", kind="question", author="cust-2"),
        item(f"p-{new_id()}", "Lovely weather today", kind="post", author="cust-3"),
    )
    cases = await queue(stack, writer)
    assert sorted(c["kind"] for c in cases) == ["complaint", "question"]
    case = next(c for c in cases if c["kind"] == "complaint")
    assert case["status"] == "open"
    assert [n["node"]["kind"] for n in case["interactions"]["edges"]] == ["complaint", "reply"]
    # The angry complaint comes before the calm question in the queue.
    assert cases[0]["kind"] == "complaint"
    assert cases[0]["priorityScore"] > cases[1]["priorityScore"]
    opened = await outbox(engagement_db, tenant, "engagement.case.opened.v1")
    assert len([e for e in opened if e["case_id"] == case["id"]]) == 1
    assert {"case_id", "interaction_id", "priority", "opened_at"} <= set(opened[0])
    assert not any("text" in e for e in opened)


async def test_a_brand_reply_through_ingestion_is_the_first_response(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    await brand_account(stack, tenant)
    opened_at = datetime.now(UTC) - timedelta(minutes=30)
    complaint_id = f"c-{new_id()}"
    await ingest(stack, writer, item(complaint_id, "The app keeps crashing, awful.", at=opened_at))
    reply_at = opened_at + timedelta(minutes=12)
    await ingest(
        stack,
        writer,
        item(
            f"b-{new_id()}",
            "Sorry about that! We are on it.",
            kind="reply",
            author=BRAND_USER,
            parent=complaint_id,
            at=reply_at,
        ),
    )
    [case] = await queue(stack, writer)
    assert case["status"] == "answered"
    assert datetime.fromisoformat(case["firstResponseAt"]) == reply_at
    assert case["firstResponseSeconds"] == pytest.approx(720)
    by_brand = [n["node"]["byBrand"] for n in case["interactions"]["edges"]]
    assert by_brand == [False, True]
    answered = await outbox(engagement_db, tenant, "engagement.case.answered.v1")
    assert [e["case_id"] for e in answered] == [case["id"]]
    assert answered[0]["first_response_seconds"] == pytest.approx(720)


async def test_reply_to_case_records_the_brands_reply_to_publish(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    await brand_account(stack, tenant)
    question_id = f"q-{new_id()}"
    await ingest(stack, writer, item(question_id, "How do I reset my password?", kind="question"))
    [case] = await queue(stack, writer)
    assigned = await devstack.graphql(stack, ASSIGN, {"caseId": case["id"]}, token=writer)
    assert assigned["data"]["assignCase"]["status"] == "assigned"
    replied = await devstack.graphql(
        stack,
        REPLY,
        {"caseId": case["id"], "text": "  Use the link on the login page.  "},
        token=writer,
    )
    assert "errors" not in replied, replied
    answered = replied["data"]["replyToCase"]
    assert answered["status"] == "answered"
    assert answered["firstResponseAt"] is not None
    reply = answered["interactions"]["edges"][-1]["node"]
    assert (reply["byBrand"], reply["kind"], reply["text"]) == (
        True,
        "reply",
        "Use the link on the login page.",
    )
    async with engagement_db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT r.publish_status, i.parent_id, i.author_platform_user_id "
                    "FROM engagement.case_replies r JOIN engagement.interactions i "
                    "ON i.id = r.interaction_id WHERE r.case_id = :c"
                ),
                {"c": uuid.UUID(case["id"])},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("to_publish", question_id, BRAND_USER)]
    assert len(await outbox(engagement_db, tenant, "engagement.case.answered.v1")) == 1
    actions = await outbox(engagement_db, tenant, "engagement.staff_action.recorded.v1")
    assert {"case.assigned", "case.replied"} <= {a["action"] for a in actions}

    resolved = await devstack.graphql(stack, RESOLVE, {"caseId": case["id"]}, token=writer)
    assert resolved["data"]["resolveCase"]["status"] == "resolved"
    assert await queue(stack, writer) == []
    twice = await devstack.graphql(stack, RESOLVE, {"caseId": case["id"]}, token=writer)
    assert coded(twice) == ("CONFLICT", "caseId")
    reopened = await devstack.graphql(stack, REOPEN, {"caseId": case["id"]}, token=writer)
    assert reopened["data"]["reopenCase"] == {
        "id": case["id"],
        "status": "assigned",
        "resolvedAt": None,
    }
    for event in ("resolved", "reopened"):
        assert len(await outbox(engagement_db, tenant, f"engagement.case.{event}.v1")) == 1


async def test_an_overdue_case_is_breached_once_and_announced_once(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    # Spoken three days ago, unanswered: past every default first-response and resolution target.
    long_ago = datetime.now(UTC) - timedelta(days=3)
    await ingest(stack, writer, item(f"c-{new_id()}", "Still broken. Useless.", at=long_ago))
    [case] = await queue(stack, writer)
    await check_breaches(engagement_db)
    await check_breaches(engagement_db)
    breached = await outbox(engagement_db, tenant, "engagement.case.breached.v1")
    assert sorted(e["target"] for e in breached if e["case_id"] == case["id"]) == [
        "first_response",
        "resolution",
    ]
    result = await devstack.graphql(stack, CASE, {"id": case["id"]}, token=writer)
    assert sorted(b["target"] for b in result["data"]["case"]["breaches"]) == [
        "first_response",
        "resolution",
    ]


async def test_imported_history_opens_no_case_and_breaches_nothing(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    # Last year's complaints, imported today: stored, but no live case, so nothing overdue.
    last_year = datetime.now(UTC) - timedelta(days=365)
    report = await ingest(
        stack,
        writer,
        item(f"c-{new_id()}", "Still broken. Useless.", at=last_year),
        item(f"c-{new_id()}", "Worst support ever.", author="cust-2", at=last_year),
    )
    assert report["accepted"] == 2
    await check_breaches(engagement_db)
    assert await queue(stack, writer) == []
    assert await outbox(engagement_db, tenant, "engagement.case.opened.v1") == []
    assert await outbox(engagement_db, tenant, "engagement.case.breached.v1") == []
    # Today's complaint of the same author in the same thread opens a live case as ever.
    await ingest(stack, writer, item(f"c-{new_id()}", "Still broken today. Awful."))
    assert len(await queue(stack, writer)) == 1


async def test_another_tenant_can_neither_see_nor_assign_a_case(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    await ingest(stack, writer, item(f"c-{new_id()}", "Worst support ever."))
    [case] = await queue(stack, writer)
    stranger = await staff_token(stack, make_tenant(stack), "admin")
    assert await queue(stack, stranger) == []
    seen = await devstack.graphql(stack, CASE, {"id": case["id"]}, token=stranger)
    assert seen["data"]["case"] is None
    assigned = await devstack.graphql(stack, ASSIGN, {"caseId": case["id"]}, token=stranger)
    assert coded(assigned) == ("NOT_FOUND", "caseId")
    assert await outbox(engagement_db, tenant, "engagement.case.assigned.v1") == []
    [still] = await queue(stack, writer)
    assert (still["status"], still["assigneeId"]) == ("open", None)


async def test_a_customer_token_sees_only_its_own_cases(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    admin = await staff_token(stack, tenant)
    customers = []
    for name in ("Ann", "Bob"):
        registered = await devstack.graphql(
            stack, REGISTER, {"input": {"name": name, "email": None}}, token=admin
        )
        customers.append(registered["data"]["registerCustomer"]["id"])
    ann, bob = customers
    ann_user, bob_user = f"ann-{new_id()}", f"bob-{new_id()}"
    await ingest(
        stack,
        writer,
        item(f"a-{new_id()}", "My parcel is lost!", author=ann_user, thread="t-a"),
        item(
            f"b-{new_id()}", "Where is my refund?", kind="question", author=bob_user, thread="t-b"
        ),
    )
    for customer, user in ((ann, ann_user), (bob, bob_user)):
        await link_author(stack, tenant, customer, user, evidence="staff_decision", confidence=0.8)

    await eventually(
        lambda: queue(stack, writer),
        lambda cases: {c["customerId"] for c in cases} == {ann, bob},
        timeout=30,
    )
    token = await customer_token(stack, tenant, ann)
    mine = await queue(stack, token)
    assert [(c["customerId"], c["kind"]) for c in mine] == [(ann, "complaint")]
    others = await devstack.graphql(stack, QUEUE, {"first": 5, "customerId": bob}, token=token)
    assert others["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bobs_case = next(c for c in await queue(stack, writer) if c["customerId"] == bob)
    peek = await devstack.graphql(stack, CASE, {"id": bobs_case["id"]}, token=token)
    assert peek["data"]["case"] is None
    own = await devstack.graphql(stack, CUSTOMER_CASES, {"id": ann}, token=token)
    assert [e["node"]["customerId"] for e in own["data"]["customer"]["cases"]["edges"]] == [ann]
    foreign = await devstack.graphql(stack, CUSTOMER_CASES, {"id": bob}, token=token)
    assert foreign["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    cannot = await devstack.graphql(stack, ASSIGN, {"caseId": mine[0]["id"]}, token=token)
    assert cannot["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_bad_case_input_names_the_field_and_writes_nothing(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    await brand_account(stack, tenant)
    await ingest(stack, writer, item(f"c-{new_id()}", "Broken again!"))
    [case] = await queue(stack, writer)

    async def written() -> tuple[int, int, int]:
        async with engagement_db.session() as session:
            counts = await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM engagement.interactions WHERE tenant_id = :t),"
                    " (SELECT count(*) FROM engagement.case_replies WHERE tenant_id = :t),"
                    " (SELECT count(*) FROM engagement.outbox WHERE envelope->>'tenantid' = :s)"
                ),
                {"t": uuid.UUID(tenant), "s": tenant},
            )
            a, b, c = counts.one()
            return int(a), int(b), int(c)

    before = await written()
    cases = [
        (REPLY, {"caseId": str(uuid.uuid4()), "text": "hello"}, "NOT_FOUND", "caseId"),
        (REPLY, {"caseId": case["id"], "text": "   "}, "BAD_USER_INPUT", "text"),
        (REPLY, {"caseId": "not-an-id", "text": "hello"}, "BAD_USER_INPUT", "caseId"),
        (ASSIGN, {"caseId": str(uuid.uuid4())}, "NOT_FOUND", "caseId"),
        (ASSIGN, {"caseId": case["id"], "assigneeId": "nobody"}, "BAD_USER_INPUT", "assigneeId"),
        (RESOLVE, {"caseId": str(uuid.uuid4())}, "NOT_FOUND", "caseId"),
        (QUEUE, {"first": 5, "status": ["pending"]}, "BAD_USER_INPUT", "status"),
        (QUEUE, {"first": 5, "after": "bogus"}, "BAD_USER_INPUT", "after"),
        (
            CREATE_ACCOUNT,
            {"input": {"channel": "myspace", "platformUserId": "x"}},
            "BAD_USER_INPUT",
            "input.channel",
        ),
        (
            CREATE_ACCOUNT,
            {"input": {"channel": "other", "platformUserId": BRAND_USER}},
            "CONFLICT",
            "input.platformUserId",
        ),
    ]
    admin = await staff_token(stack, tenant)
    for operation, variables, code, field in cases:
        result = await devstack.graphql(stack, operation, variables, token=admin)
        assert coded(result) == (code, field), (
            variables,
            result,
        )
    assert await written() == before


async def test_customer_value_from_rewards_raises_a_cases_priority(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    from crm_shared.events import Event, record_event

    class CustomerValueChanged(Event):
        type = "rewards.customer_value.changed.v1"

        customer_id: uuid.UUID
        value_cents: int
        own_revenue_cents: int
        referral_revenue_cents: int

    admin = await staff_token(stack, tenant)
    scores = []
    for name, value in (("Low", 0), ("High", 5_000_000)):
        registered = await devstack.graphql(
            stack, REGISTER, {"input": {"name": name, "email": None}}, token=admin
        )
        customer = registered["data"]["registerCustomer"]["id"]
        user = f"{name}-{new_id()}"
        await link_author(stack, tenant, customer, user, evidence="staff_decision", confidence=0.8)
        rewards = Database(RewardsSettings(database_url=stack.database_url("rewards")))
        try:
            async with rewards.session() as session, session.begin():
                await record_event(
                    session,
                    CustomerValueChanged(
                        customer_id=uuid.UUID(customer),
                        value_cents=value,
                        own_revenue_cents=value,
                        referral_revenue_cents=0,
                    ),
                    tenant_id=uuid.UUID(tenant),
                    subject=customer,
                )
        finally:
            await rewards.dispose()
        await eventually(
            partial(_projected, engagement_db, user, uuid.UUID(customer)),
            lambda n: n == 2,
            timeout=30,
        )
        await ingest(
            stack,
            writer,
            item(
                f"q-{new_id()}", "Is it in stock?", kind="question", author=user, thread=f"t-{name}"
            ),
        )
        [case] = [c for c in await queue(stack, writer) if c["customerId"] == customer]
        scores.append(case["priorityScore"])
    assert scores[1] == pytest.approx(scores[0] + 15.0)


async def _projected(db: Database, user: str, customer: uuid.UUID) -> int:
    """1 for the profile link engagement knows, 1 for the customer value it keeps."""
    async with db.session() as session:
        found = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM engagement.profile_links WHERE platform_user_id = :u)"
                " + (SELECT count(*) FROM engagement.customer_values WHERE customer_id = :c)"
            ),
            {"u": user, "c": customer},
        )
        return int(found.scalar_one())


async def test_sharing_the_brands_content_is_announced_and_opens_no_case(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    await brand_account(stack, tenant)
    brand_post, other_post = f"bp-{new_id()}", f"op-{new_id()}"
    await ingest(
        stack,
        writer,
        item(brand_post, "Our new headphones are here!", kind="post", author=BRAND_USER),
        item(other_post, "Look at my cat", kind="post", author="cust-9"),
    )
    share_id = f"s-{new_id()}"
    await ingest(
        stack,
        writer,
        item(share_id, None, kind="share", parent=brand_post, thread=brand_post),
        item(f"s-{new_id()}", None, kind="share", parent=other_post, thread=other_post),
    )
    shared = await outbox(engagement_db, tenant, "engagement.content.shared.v1")
    assert len(shared) == 1
    assert (shared[0]["channel"], shared[0]["customer_id"]) == ("other", None)
    assert await queue(stack, writer) == []
