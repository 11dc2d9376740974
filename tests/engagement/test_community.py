"""The community through the gateway: polls, ideas, contests and content reuse, with customer
tokens for customers and staff tokens for staff, on the real database and broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from engagement.community import service as community_service
from engagement.community.contests import service as contests
from engagement.community.ideas import service as ideas
from engagement.community.polls import service as polls
from engagement.interactions.models import Interaction
from tests.e2e.conftest import REGISTER, make_tenant
from tests.engagement.conftest import new_id, outbox
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

CREATE_POLL = """
mutation($input: CreatePollInput!) {
  createPoll(input: $input) { id question isOpen options { id label votes } }
}
"""
VOTE_POLL = """
mutation($input: VotePollInput!) {
  votePoll(input: $input) { id totalVotes myVote options { id votes } }
}
"""
CLOSE_POLL = "mutation($id: ID!) { closePoll(pollId: $id) { id isOpen closedAt } }"
POLL = """
query($id: ID!) {
  poll(id: $id) { id isOpen totalVotes myVote options { id label votes } }
}
"""
POLLS = "query { polls(first: 10) { edges { node { id } } } }"

SUBMIT_IDEA = """
mutation($input: SubmitIdeaInput!) { submitIdea(input: $input) { id status votes customerId } }
"""
VOTE_IDEA = "mutation($id: ID!) { voteIdea(ideaId: $id) { id votes votedByMe } }"
WITHDRAW_IDEA_VOTE = "mutation($id: ID!) { withdrawIdeaVote(ideaId: $id) { id votes votedByMe } }"
SET_IDEA_STATUS = """
mutation($input: SetIdeaStatusInput!) {
  setIdeaStatus(input: $input) { id status statusNote }
}
"""
IDEAS = """
query($first: Int!, $after: String, $status: String, $order: IdeaOrder!) {
  ideas(first: $first, after: $after, status: $status, orderBy: $order) {
    edges { node { id title votes status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CUSTOMER_IDEAS = """
query($id: ID!) { customer(id: $id) { ideas(first: 10) { edges { node { id title } } } } }
"""

CREATE_CONTEST = """
mutation($input: CreateContestInput!) {
  createContest(input: $input) { id chosenBy winnerCount }
}
"""
ENTER_CONTEST = """
mutation($input: EnterContestInput!) { enterContest(input: $input) { id customerId votes } }
"""
VOTE_ENTRY = "mutation($id: ID!) { voteContestEntry(entryId: $id) { id votes } }"
CHOOSE_WINNERS = """
mutation($id: ID!, $entries: [ID!]) {
  chooseContestWinners(contestId: $id, entryIds: $entries) { rank entryId customerId chosenBy }
}
"""
CONTEST = """
query($id: ID!) {
  contest(id: $id) {
    id winnersChosenAt
    entries(first: 10) { edges { node { id votes } } }
    winners { rank entryId }
  }
}
"""

REQUEST_REUSE = """
mutation($input: RequestContentReuseInput!) {
  requestContentReuse(input: $input) { id status customerId }
}
"""
ANSWER_REUSE = """
mutation($input: AnswerContentReuseInput!) {
  answerContentReuse(input: $input) { id status answeredVia answeredAt }
}
"""
REUSE_REQUESTS = """
query { contentReuseRequests(first: 10) { edges { node { id status answeredVia } } } }
"""
RECORD_CONSENT = """
mutation($input: RecordConsentInput!) { recordConsent(input: $input) { granted } }
"""
RECORD_INTERACTION = """
mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { outcome } }
"""


async def ok(stack: devstack.Stack, query: str, variables: Any, token: str) -> dict[str, Any]:
    """The data of an operation that must succeed."""
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    data: dict[str, Any] = result["data"]
    return data


async def error(stack: devstack.Stack, query: str, variables: Any, token: str) -> dict[str, Any]:
    """The extensions (code, field) and message of an operation that must fail."""
    result = await devstack.graphql(stack, query, variables, token=token)
    assert result.get("errors"), result
    first = result["errors"][0]
    return {"message": first["message"], **(first.get("extensions") or {})}


async def customer(stack: devstack.Stack, tenant: str, admin: str, name: str) -> tuple[str, str]:
    """A registered customer of the tenant and their own customer-scoped token."""
    registered = await ok(stack, REGISTER, {"input": {"name": name}}, admin)
    customer_id = registered["registerCustomer"]["id"]
    return customer_id, await customer_token(stack, tenant, customer_id)


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def a_poll(stack: devstack.Stack, admin: str, **extra: Any) -> dict[str, Any]:
    created = await ok(
        stack,
        CREATE_POLL,
        {
            "input": {
                "question": "Which flavour next?",
                "options": ["Mango", "Lime", "Cherry"],
                "closesAt": at(3600),
                **extra,
            }
        },
        admin,
    )
    poll: dict[str, Any] = created["createPoll"]
    return poll


@pytest.fixture
async def admin(stack: devstack.Stack, tenant: str) -> str:
    return await staff_token(stack, tenant, "admin")


async def test_twenty_concurrent_votes_of_one_customer_count_once(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    poll = await a_poll(stack, admin)
    me, mine = await customer(stack, tenant, admin, "Racer")
    option = poll["options"][1]["id"]
    vote = {"input": {"pollId": poll["id"], "optionId": option}}

    results = await asyncio.gather(
        *(devstack.graphql(stack, VOTE_POLL, vote, token=mine) for _ in range(20))
    )

    succeeded = [r for r in results if not r.get("errors")]
    refused = [r["errors"][0]["extensions"] for r in results if r.get("errors")]
    assert len(succeeded) == 1
    assert [(e["code"], e["field"]) for e in refused] == [("CONFLICT", "input.pollId")] * 19
    read = (await ok(stack, POLL, {"id": poll["id"]}, mine))["poll"]
    assert read["totalVotes"] == 1
    assert read["myVote"] == option
    assert [o["votes"] for o in read["options"]] == [0, 1, 0]
    voted = await outbox(engagement_db, tenant, "engagement.poll.voted.v1")
    assert voted == [{"poll_id": poll["id"], "customer_id": me, "option_id": option}]


async def test_votes_outside_the_poll_window_are_refused_and_only_customers_vote(
    stack: devstack.Stack, tenant: str, admin: str
) -> None:
    _, mine = await customer(stack, tenant, admin, "Voter")
    _, theirs = await customer(stack, tenant, admin, "Other voter")
    later = await a_poll(stack, admin, opensAt=at(600))
    early = await error(
        stack,
        VOTE_POLL,
        {"input": {"pollId": later["id"], "optionId": later["options"][0]["id"]}},
        mine,
    )
    assert (early["code"], early["field"]) == ("CONFLICT", "input.pollId")
    assert "opens at" in early["message"]

    poll = await a_poll(stack, admin)
    option = poll["options"][0]["id"]
    vote = {"input": {"pollId": poll["id"], "optionId": option}}
    staff_vote = await error(stack, VOTE_POLL, vote, admin)
    assert staff_vote["code"] == "FORBIDDEN"
    await ok(stack, VOTE_POLL, vote, mine)
    other_option = await error(
        stack,
        VOTE_POLL,
        {"input": {"pollId": poll["id"], "optionId": later["options"][0]["id"]}},
        theirs,
    )
    assert (other_option["code"], other_option["field"]) == ("BAD_USER_INPUT", "input.optionId")

    closed = (await ok(stack, CLOSE_POLL, {"id": poll["id"]}, admin))["closePoll"]
    assert closed["isOpen"] is False and closed["closedAt"]
    late = await error(stack, VOTE_POLL, vote, theirs)
    assert (late["code"], late["field"]) == ("CONFLICT", "input.pollId")
    assert "closed at" in late["message"]
    again = await error(stack, CLOSE_POLL, {"id": poll["id"]}, admin)
    assert again["code"] == "CONFLICT"

    analyst = await staff_token(stack, tenant, "analyst")
    results = (await ok(stack, POLL, {"id": poll["id"]}, analyst))["poll"]
    assert (results["totalVotes"], results["myVote"]) == (1, None)
    assert [o["votes"] for o in results["options"]] == [1, 0, 0]
    denied = await error(stack, CLOSE_POLL, {"id": later["id"]}, analyst)
    assert denied["code"] == "FORBIDDEN"


async def test_ideas_are_voted_once_withdrawn_and_moved_along_their_statuses(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    author, authors = await customer(stack, tenant, admin, "Author")
    voter, voters = await customer(stack, tenant, admin, "Voter")
    ideas = []
    for title in ("Dark mode", "Refill packs", "Gift cards"):
        submitted = await ok(
            stack, SUBMIT_IDEA, {"input": {"title": title, "body": f"{title}, please."}}, authors
        )
        ideas.append(submitted["submitIdea"])
    assert ideas[0]["status"] == "under_review" and ideas[0]["customerId"] == author
    first, second, _ = (i["id"] for i in ideas)

    own = await error(stack, VOTE_IDEA, {"id": first}, authors)
    assert (own["code"], own["field"]) == ("BAD_USER_INPUT", "ideaId")
    assert (await ok(stack, VOTE_IDEA, {"id": second}, voters))["voteIdea"] == {
        "id": second,
        "votes": 1,
        "votedByMe": True,
    }
    twice = await error(stack, VOTE_IDEA, {"id": second}, voters)
    assert twice["code"] == "CONFLICT"
    staff = await error(stack, VOTE_IDEA, {"id": first}, admin)
    assert staff["code"] == "FORBIDDEN"

    by_votes = await ok(stack, IDEAS, {"first": 2, "order": "VOTES"}, voters)
    page = by_votes["ideas"]
    assert [e["node"]["title"] for e in page["edges"]] == ["Refill packs", "Gift cards"]
    rest = await ok(
        stack,
        IDEAS,
        {"first": 2, "order": "VOTES", "after": page["pageInfo"]["endCursor"]},
        voters,
    )
    assert [e["node"]["title"] for e in rest["ideas"]["edges"]] == ["Dark mode"]
    assert rest["ideas"]["pageInfo"]["hasNextPage"] is False
    recent = await ok(stack, IDEAS, {"first": 10, "order": "RECENT"}, admin)
    assert [e["node"]["title"] for e in recent["ideas"]["edges"]] == [
        "Gift cards",
        "Refill packs",
        "Dark mode",
    ]

    withdrawn = await ok(stack, WITHDRAW_IDEA_VOTE, {"id": second}, voters)
    assert withdrawn["withdrawIdeaVote"] == {"id": second, "votes": 0, "votedByMe": False}
    nothing = await error(stack, WITHDRAW_IDEA_VOTE, {"id": second}, voters)
    assert nothing["code"] == "NOT_FOUND"
    await ok(stack, VOTE_IDEA, {"id": first}, voters)

    def status(idea: str, to: str, note: str | None = None) -> dict[str, Any]:
        return {"input": {"ideaId": idea, "status": to, "note": note}}

    skipped = await error(stack, SET_IDEA_STATUS, status(first, "shipped"), admin)
    assert (skipped["code"], skipped["field"]) == ("CONFLICT", "input.status")
    planned = await ok(stack, SET_IDEA_STATUS, status(first, "planned", "In Q3."), admin)
    assert planned["setIdeaStatus"] == {"id": first, "status": "planned", "statusNote": "In Q3."}
    await ok(stack, SET_IDEA_STATUS, status(first, "shipped"), admin)
    final = await error(stack, SET_IDEA_STATUS, status(first, "declined"), admin)
    assert final["code"] == "CONFLICT"
    newcomer = await customer_token_of(stack, tenant, admin)
    closed = await error(stack, VOTE_IDEA, {"id": first}, newcomer)
    assert closed["code"] == "CONFLICT"
    customer_cannot = await error(stack, SET_IDEA_STATUS, status(second, "planned"), authors)
    assert customer_cannot["code"] == "FORBIDDEN"

    shipped = await ok(stack, IDEAS, {"first": 10, "status": "shipped", "order": "RECENT"}, admin)
    assert [e["node"]["id"] for e in shipped["ideas"]["edges"]] == [first]
    mine = await ok(stack, CUSTOMER_IDEAS, {"id": author}, authors)
    assert [e["node"]["title"] for e in mine["customer"]["ideas"]["edges"]] == [
        "Gift cards",
        "Refill packs",
        "Dark mode",
    ]
    others = await error(stack, CUSTOMER_IDEAS, {"id": author}, voters)
    assert others["code"] == "FORBIDDEN"

    submitted_events = await outbox(engagement_db, tenant, "engagement.idea.submitted.v1")
    assert [e["customer_id"] for e in submitted_events] == [author] * 3
    voted_events = await outbox(engagement_db, tenant, "engagement.idea.voted.v1")
    assert [(e["idea_id"], e["customer_id"]) for e in voted_events] == [
        (second, voter),
        (first, voter),
    ]
    changed = await outbox(engagement_db, tenant, "engagement.idea.status_changed.v1")
    assert [(e["idea_id"], e["customer_id"], e["status"], e["voter_count"]) for e in changed] == [
        (first, author, "planned", 1),
        (first, author, "shipped", 1),
    ]
    audited = await outbox(engagement_db, tenant, "engagement.staff_action.recorded.v1")
    assert [a["action"] for a in audited if a["record_type"] == "idea"] == [
        "idea.status_changed",
        "idea.status_changed",
    ]


async def customer_token_of(stack: devstack.Stack, tenant: str, admin: str) -> str:
    """The token of a new customer of the tenant."""
    return (await customer(stack, tenant, admin, "Newcomer"))[1]


async def test_contest_winners_are_chosen_by_the_rule_and_announced_once(
    stack: devstack.Stack, engagement_db: Database
) -> None:
    tenant_id = uuid.UUID(make_tenant(stack))
    # In the future, so the running service's own job leaves this contest to the test.
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    windows = contests.ContestWindows(
        t0, t0 + timedelta(days=2), t0 + timedelta(days=1), t0 + timedelta(days=3)
    )
    async with engagement_db.session() as session, session.begin():
        contest = await contests.create_contest(
            session=session,
            tenant_id=tenant_id,
            title="Best photo",
            description=None,
            windows=windows,
            winner_count=2,
            chosen_by="rule",
            created_by="staff:test",
        )
    people = [uuid.uuid4() for _ in range(6)]
    entries = []
    for minutes, person in enumerate(people[:3]):
        async with engagement_db.session() as session, session.begin():
            entry = await contests.enter_contest(
                session=session,
                tenant_id=tenant_id,
                contest_id=contest.id,
                customer_id=person,
                text=f"entry {minutes}",
                interaction_id=None,
                now=t0 + timedelta(hours=1, minutes=minutes),
            )
        entries.append(entry)
    # Votes: the 2nd and 3rd entries tie on two; the 2nd came first, so it ranks higher.
    ballots = [(people[3], 1), (people[4], 1), (people[5], 2), (people[0], 2), (people[1], 0)]
    for voter, choice in ballots:
        async with engagement_db.session() as session, session.begin():
            await contests.vote_contest_entry(
                session=session,
                tenant_id=tenant_id,
                entry_id=entries[choice].id,
                customer_id=voter,
                now=t0 + timedelta(days=1, hours=1),
            )

    await contests.choose_due_winners(engagement_db, now=t0 + timedelta(days=2))
    async with engagement_db.session() as session:
        assert (
            await contests.contest_winners(
                session=session, tenant_id=tenant_id, contest_ids=[contest.id]
            )
            == {}
        )
    after = t0 + timedelta(days=3, seconds=1)
    # Two replicas' jobs and a staff call at once: the contest is chosen once.
    await asyncio.gather(
        contests.choose_due_winners(engagement_db, now=after),
        contests.choose_due_winners(engagement_db, now=after),
    )
    async with engagement_db.session() as session, session.begin():
        again = await contests.choose_winners(
            session=session,
            tenant_id=tenant_id,
            contest_id=contest.id,
            entry_ids=None,
            chosen_by="rule",
            now=after,
        )
    assert [(w.rank, w.entry_id, w.customer_id) for w in again] == [
        (1, entries[1].id, people[1]),
        (2, entries[2].id, people[2]),
    ]
    chosen = await outbox(engagement_db, str(tenant_id), "engagement.contest.winner_chosen.v1")
    assert chosen == [
        {
            "contest_id": str(contest.id),
            "entry_id": str(entries[1].id),
            "customer_id": str(people[1]),
            "rank": 1,
        },
        {
            "contest_id": str(contest.id),
            "entry_id": str(entries[2].id),
            "customer_id": str(people[2]),
            "rank": 2,
        },
    ]


async def test_a_contest_through_the_graph_entries_votes_and_staff_chosen_winners(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    a, a_token = await customer(stack, tenant, admin, "Entrant A")
    b, b_token = await customer(stack, tenant, admin, "Entrant B")
    _, c_token = await customer(stack, tenant, admin, "Voter C")
    closes = at(4)
    created = await ok(
        stack,
        CREATE_CONTEST,
        {
            "input": {
                "title": "Slogan contest",
                "entriesOpenAt": at(-60),
                "entriesCloseAt": closes,
                "votingOpensAt": at(-60),
                "votingClosesAt": closes,
                "winners": 1,
                "chosenBy": "staff",
            }
        },
        admin,
    )
    contest = created["createContest"]["id"]
    entry_a = (
        await ok(stack, ENTER_CONTEST, {"input": {"contestId": contest, "text": "Zest!"}}, a_token)
    )["enterContest"]
    entry_b = (
        await ok(stack, ENTER_CONTEST, {"input": {"contestId": contest, "text": "Fizz"}}, b_token)
    )["enterContest"]
    twice = await error(
        stack, ENTER_CONTEST, {"input": {"contestId": contest, "text": "More"}}, a_token
    )
    assert twice["code"] == "CONFLICT"
    foreign = await error(
        stack,
        ENTER_CONTEST,
        {"input": {"contestId": contest, "interactionId": str(uuid.uuid4())}},
        c_token,
    )
    assert (foreign["code"], foreign["field"]) == ("BAD_USER_INPUT", "input.interactionId")
    own = await error(stack, VOTE_ENTRY, {"id": entry_a["id"]}, a_token)
    assert (own["code"], own["field"]) == ("BAD_USER_INPUT", "entryId")
    await ok(stack, VOTE_ENTRY, {"id": entry_a["id"]}, b_token)
    assert (await ok(stack, VOTE_ENTRY, {"id": entry_b["id"]}, c_token))["voteContestEntry"][
        "votes"
    ] == 1
    one_vote = await error(stack, VOTE_ENTRY, {"id": entry_a["id"]}, c_token)
    assert one_vote["code"] == "CONFLICT"

    too_soon = await error(stack, CHOOSE_WINNERS, {"id": contest, "entries": None}, admin)
    assert (too_soon["code"], too_soon["field"]) == ("CONFLICT", "contestId")
    left = datetime.fromisoformat(closes) - datetime.now(UTC)
    await asyncio.sleep(max(0.0, left.total_seconds()) + 0.5)
    late_vote = await error(stack, VOTE_ENTRY, {"id": entry_b["id"]}, a_token)
    assert late_vote["code"] == "CONFLICT"

    picked = {"id": contest, "entries": [entry_b["id"]]}
    winners = (await ok(stack, CHOOSE_WINNERS, picked, admin))["chooseContestWinners"]
    assert [(w["rank"], w["entryId"], w["customerId"]) for w in winners] == [(1, entry_b["id"], b)]
    assert winners[0]["chosenBy"].startswith("staff:")
    assert (await ok(stack, CHOOSE_WINNERS, picked, admin))["chooseContestWinners"] == winners
    other = await error(stack, CHOOSE_WINNERS, {"id": contest, "entries": [entry_a["id"]]}, admin)
    assert other["code"] == "CONFLICT"
    read = (await ok(stack, CONTEST, {"id": contest}, c_token))["contest"]
    assert read["winners"] == [{"rank": 1, "entryId": entry_b["id"]}]
    assert [e["node"]["votes"] for e in read["entries"]["edges"]] == [1, 1]
    chosen = await outbox(engagement_db, tenant, "engagement.contest.winner_chosen.v1")
    assert [(e["entry_id"], e["customer_id"], e["rank"]) for e in chosen] == [(entry_b["id"], b, 1)]
    assert a != b


async def _interaction(
    db: Database, tenant: str, customer_id: str | None, author: str, **extra: Any
) -> Interaction:
    """A stored interaction by ``author`` (as ingestion would have stored it)."""
    row = Interaction(
        tenant_id=uuid.UUID(tenant),
        channel="other",
        platform_id=f"post-{new_id()}",
        kind="post",
        thread_id=f"thread-{new_id()}",
        author_platform_user_id=author,
        customer_id=uuid.UUID(customer_id) if customer_id else None,
        text="Look at my new mug!",
        **extra,
    )
    async with db.session() as session, session.begin():
        session.add(row)
    return row


async def test_content_reuse_is_granted_only_by_the_authors_answer_or_consent(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    fan, fans = await customer(stack, tenant, admin, "Fan")
    _, strangers = await customer(stack, tenant, admin, "Stranger")
    post = await _interaction(engagement_db, tenant, fan, "fan-1")

    asked = await ok(
        stack,
        REQUEST_REUSE,
        {"input": {"interactionId": str(post.id), "purpose": "Our spring campaign"}},
        admin,
    )
    request = asked["requestContentReuse"]
    assert (request["status"], request["customerId"]) == ("requested", fan)
    again = await error(
        stack,
        REQUEST_REUSE,
        {"input": {"interactionId": str(post.id), "purpose": "Again"}},
        admin,
    )
    assert again["code"] == "CONFLICT"

    grant = {"input": {"requestId": request["id"], "granted": True}}
    staff_grant = await error(stack, ANSWER_REUSE, grant, admin)
    assert (staff_grant["code"], staff_grant["field"]) == ("FORBIDDEN", "input.granted")
    assert "content_reuse consent" in staff_grant["message"]
    stranger = await error(stack, ANSWER_REUSE, grant, strangers)
    assert stranger["code"] == "NOT_FOUND"
    listed = await ok(stack, REUSE_REQUESTS, {}, admin)
    assert [e["node"]["status"] for e in listed["contentReuseRequests"]["edges"]] == ["requested"]
    assert (await ok(stack, REUSE_REQUESTS, {}, strangers))["contentReuseRequests"]["edges"] == []

    answered = (await ok(stack, ANSWER_REUSE, grant, fans))["answerContentReuse"]
    assert (answered["status"], answered["answeredVia"]) == ("granted", "customer")
    twice = await error(stack, ANSWER_REUSE, grant, fans)
    assert twice["code"] == "CONFLICT"

    # With the author's content_reuse consent, staff may record a permission given elsewhere.
    second = await _interaction(engagement_db, tenant, fan, "fan-1")
    asked_again = await ok(
        stack,
        REQUEST_REUSE,
        {"input": {"interactionId": str(second.id), "purpose": "Newsletter"}},
        admin,
    )
    await ok(
        stack,
        RECORD_CONSENT,
        {
            "input": {
                "customerId": fan,
                "purpose": "CONTENT_REUSE",
                "granted": True,
                "source": "preference_centre",
                "policyVersion": "2026-11",
            }
        },
        fans,
    )

    async def staff_answer() -> dict[str, Any]:
        return await devstack.graphql(
            stack,
            ANSWER_REUSE,
            {"input": {"requestId": asked_again["requestContentReuse"]["id"], "granted": True}},
            token=admin,
        )

    granted = await eventually(staff_answer, lambda r: "errors" not in r)
    assert granted["data"]["answerContentReuse"]["answeredVia"] == "staff"

    events = {
        kind: await outbox(engagement_db, tenant, f"engagement.content_reuse.{kind}.v1")
        for kind in ("requested", "granted", "denied")
    }
    assert [e["interaction_id"] for e in events["requested"]] == [str(post.id), str(second.id)]
    assert [(e["interaction_id"], e["via"]) for e in events["granted"]] == [
        (str(post.id), "customer"),
        (str(second.id), "staff"),
    ]
    assert events["denied"] == []


async def test_a_yes_or_no_reply_of_the_author_answers_the_reuse_request(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    writer = await staff_token(stack, tenant, "agent")
    post = await _interaction(engagement_db, tenant, None, "unlinked-fan")
    request = (
        await ok(
            stack,
            REQUEST_REUSE,
            {"input": {"interactionId": str(post.id), "purpose": "Homepage"}},
            admin,
        )
    )["requestContentReuse"]
    assert request["customerId"] is None

    def reply(author: str, said: str) -> dict[str, Any]:
        return {
            "input": {
                "channel": "other",
                "platformId": f"reply-{new_id()}",
                "kind": "reply",
                "threadId": post.thread_id,
                "parentId": post.platform_id,
                "createdAt": at(0),
                "text": said,
                "author": {"platformUserId": author},
            }
        }

    # Someone else's #yes answers nothing; the author's does.
    await ok(stack, RECORD_INTERACTION, reply("someone-else", "#yes from me"), writer)
    await ok(stack, RECORD_INTERACTION, reply("unlinked-fan", "Sure, #yes!"), writer)

    async def status() -> dict[str, Any]:
        listed = await ok(stack, REUSE_REQUESTS, {}, admin)
        node: dict[str, Any] = listed["contentReuseRequests"]["edges"][0]["node"]
        return node

    answered = await eventually(status, lambda n: n["status"] != "requested")
    assert answered == {"id": request["id"], "status": "granted", "answeredVia": "reply"}
    async with engagement_db.session() as session:
        row = await session.execute(
            text(
                "SELECT i.author_platform_user_id FROM engagement.content_reuse_requests r"
                " JOIN engagement.interactions i ON i.id = r.answer_interaction_id"
                " WHERE r.id = :id"
            ),
            {"id": request["id"]},
        )
        assert row.scalar_one() == "unlinked-fan"


async def test_another_tenant_sees_and_reaches_nothing_of_the_community(
    stack: devstack.Stack, tenant: str, admin: str
) -> None:
    poll = await a_poll(stack, admin)
    _, authors = await customer(stack, tenant, admin, "Author")
    idea = (await ok(stack, SUBMIT_IDEA, {"input": {"title": "T", "body": "B"}}, authors))[
        "submitIdea"
    ]
    other_tenant = make_tenant(stack)
    other_admin = await staff_token(stack, other_tenant, "admin")
    _, outsider = await customer(stack, other_tenant, other_admin, "Outsider")

    assert (await ok(stack, POLLS, {}, other_admin))["polls"]["edges"] == []
    assert (await ok(stack, POLL, {"id": poll["id"]}, other_admin))["poll"] is None
    ideas = await ok(stack, IDEAS, {"first": 10, "order": "VOTES"}, outsider)
    assert ideas["ideas"]["edges"] == []
    vote = await error(
        stack,
        VOTE_POLL,
        {"input": {"pollId": poll["id"], "optionId": poll["options"][0]["id"]}},
        outsider,
    )
    assert vote["code"] == "NOT_FOUND"
    assert (await error(stack, VOTE_IDEA, {"id": idea["id"]}, outsider))["code"] == "NOT_FOUND"
    closing = await error(stack, CLOSE_POLL, {"id": poll["id"]}, other_admin)
    assert closing["code"] == "NOT_FOUND"
    moved = await error(
        stack,
        SET_IDEA_STATUS,
        {"input": {"ideaId": idea["id"], "status": "planned"}},
        other_admin,
    )
    assert moved["code"] == "NOT_FOUND"
    assert (await ok(stack, POLL, {"id": poll["id"]}, admin))["poll"]["isOpen"] is True


async def test_bad_input_names_the_field_and_writes_nothing(
    stack: devstack.Stack, tenant: str, admin: str, engagement_db: Database
) -> None:
    _, mine = await customer(stack, tenant, admin, "Careless")

    def poll(**fields: Any) -> dict[str, Any]:
        return {"input": {"question": "Q?", "options": ["A", "B"], "closesAt": at(60), **fields}}

    def contest(**fields: Any) -> dict[str, Any]:
        return {
            "input": {
                "title": "C",
                "entriesOpenAt": at(0),
                "entriesCloseAt": at(60),
                "votingOpensAt": at(60),
                "votingClosesAt": at(120),
                **fields,
            }
        }

    cases = [
        (CREATE_POLL, poll(options=["Only one"]), admin, "input.options"),
        (CREATE_POLL, poll(options=["Same", "same"]), admin, "input.options"),
        (CREATE_POLL, poll(options=["A", " "]), admin, "input.options.1"),
        (CREATE_POLL, poll(question="  "), admin, "input.question"),
        (CREATE_POLL, poll(opensAt=at(120)), admin, "input.closesAt"),
        (CREATE_POLL, poll(closesAt=at(-60), opensAt=at(-120)), admin, "input.closesAt"),
        (CREATE_POLL, poll(closesAt="2026-12-31T10:00:00"), admin, "input.closesAt"),
        (SUBMIT_IDEA, {"input": {"title": "", "body": "B"}}, mine, "input.title"),
        (SUBMIT_IDEA, {"input": {"title": "T", "body": "x" * 5001}}, mine, "input.body"),
        (CREATE_CONTEST, contest(votingClosesAt=at(30)), admin, "input.votingClosesAt"),
        (CREATE_CONTEST, contest(winners=0), admin, "input.winners"),
        (CREATE_CONTEST, contest(chosenBy="lottery"), admin, "input.chosenBy"),
        (VOTE_IDEA, {"id": "not-an-id"}, mine, "ideaId"),
        (IDEAS, {"first": 10, "order": "RECENT", "status": "done"}, admin, "status"),
        (IDEAS, {"first": 10, "order": "VOTES", "after": "bogus"}, admin, "after"),
    ]
    for query, variables, token, field in cases:
        refused = await error(stack, query, variables, token)
        assert (refused["code"], refused.get("field")) == ("BAD_USER_INPUT", field), (
            variables,
            refused,
        )
    async with engagement_db.session() as session:
        counts = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM engagement.polls WHERE tenant_id = :t)"
                " + (SELECT count(*) FROM engagement.ideas WHERE tenant_id = :t)"
                " + (SELECT count(*) FROM engagement.contests WHERE tenant_id = :t)"
                " + (SELECT count(*) FROM engagement.outbox WHERE envelope->>'tenantid' = :ts)"
            ),
            {"t": uuid.UUID(tenant), "ts": tenant},
        )
        assert counts.scalar_one() == 0


async def test_erasure_takes_the_persons_community_records_and_keeps_vote_counts(
    stack: devstack.Stack, engagement_db: Database
) -> None:
    tenant_id = uuid.UUID(make_tenant(stack))
    gone, stays = uuid.uuid4(), uuid.uuid4()
    async with engagement_db.session() as session, session.begin():
        theirs = await ideas.submit_idea(
            session=session, tenant_id=tenant_id, customer_id=gone, title="Mine", body="B"
        )
        kept = await ideas.submit_idea(
            session=session, tenant_id=tenant_id, customer_id=stays, title="Kept", body="B"
        )
        await ideas.vote_idea(
            session=session, tenant_id=tenant_id, idea_id=kept.id, customer_id=gone
        )
        poll, options = await polls.create_poll(
            session=session,
            tenant_id=tenant_id,
            question="Q?",
            options=["A", "B"],
            opens_at=None,
            closes_at=datetime.now(UTC) + timedelta(hours=1),
            created_by="staff:test",
        )
        await polls.vote_poll(
            session=session,
            tenant_id=tenant_id,
            poll_id=poll.id,
            option_id=options[0].id,
            customer_id=gone,
        )
    async with engagement_db.session() as session:
        before = await community_service.export_community(
            session, tenant_id=tenant_id, customer_id=gone
        )
    assert [i["title"] for i in before["ideas"]] == ["Mine"]
    assert len(before["idea_votes"]) == len(before["poll_votes"]) == 1

    async with engagement_db.session() as session, session.begin():
        await community_service.erase_community(session, tenant_id=tenant_id, customer_ids=[gone])

    async with engagement_db.session() as session:
        after = await community_service.export_community(
            session, tenant_id=tenant_id, customer_id=gone
        )
        assert all(rows == [] for rows in after.values())
        assert await ideas.get_idea(session=session, tenant_id=tenant_id, idea_id=theirs.id) is None
        still = await ideas.get_idea(session=session, tenant_id=tenant_id, idea_id=kept.id)
        assert still is not None and still.vote_count == 1
        results = await polls.poll_results(session=session, tenant_id=tenant_id, poll_ids=[poll.id])
        assert [r.votes for r in results[poll.id]] == [1, 0]
