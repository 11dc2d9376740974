"""The customer across channels: profile, contact points, search, social profiles and links,
suggestions, and consent with its history, through the gateway."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import record_event
from crm_shared.settings import ServiceSettings
from engagement.interactions.events import AuthorSeen
from tests.e2e.conftest import make_tenant
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

PROFILE = """
fragment Profile on Customer {
  id name givenName familyName birthDate gender locale country preferences lifecycleStatus
  email contactPoints { kind value verified }
  socialProfiles { channel platformUserId handle }
  consents { purpose granted policyVersion source changedAt }
}
"""
REGISTER = (
    PROFILE
    + """
mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { ...Profile } }
"""
)
GET = PROFILE + "query($id: ID!) { customer(id: $id) { ...Profile } }"
UPDATE = (
    PROFILE
    + """
mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { ...Profile } }
"""
)
SEARCH = """
query($q: String) { customers(first: 10, search: $q) { edges { node { id name } } } }
"""
RECORD_PROFILE = """
mutation($input: RecordSocialProfileInput!) {
  recordSocialProfile(input: $input) { id channel handle followers customerId }
}
"""
LINK = """
mutation($input: LinkSocialProfileInput!) {
  linkSocialProfile(input: $input) { id customerId evidence confidence linkedBy }
}
"""
UNLINK = """
mutation($input: UnlinkSocialProfileInput!) {
  unlinkSocialProfile(input: $input) { id unlinkedAt unlinkReason }
}
"""
CONSENT = """
mutation($input: RecordConsentInput!) { recordConsent(input: $input) { purpose granted } }
"""
HISTORY = """
query($id: ID!) {
  customer(id: $id) { consentHistory(first: 10) { edges { node { purpose granted source } } } }
}
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


async def _outbox(stack: devstack.Stack, event_type: str, subject: str) -> int:
    conn = await asyncpg.connect(stack.database_url("identity"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE type = $1 AND envelope->>'subject' = $2",
            event_type,
            subject,
        )
    finally:
        await conn.close()
    return count


@pytest.fixture
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def test_a_profile_is_registered_read_updated_and_cleared(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    data = await _ok(
        stack,
        REGISTER,
        {
            "input": {
                "name": "Ada Lovelace",
                "givenName": "Ada",
                "familyName": "Lovelace",
                "birthDate": "1990-12-10",
                "locale": "en-GB",
                "country": "gb",
                "preferences": {"channel": "email"},
                "email": "  Ada@Example.COM ",
                "contactPoints": [{"kind": "PHONE", "value": "020 7946 0958", "verified": True}],
            }
        },
        admin,
    )
    customer = data["registerCustomer"]
    assert customer["country"] == "GB"
    assert customer["email"] == "ada@example.com"
    assert sorted((p["kind"], p["value"], p["verified"]) for p in customer["contactPoints"]) == [
        ("EMAIL", "ada@example.com", False),
        ("PHONE", "+442079460958", True),
    ]
    assert customer["lifecycleStatus"] == "ACTIVE"
    assert customer["preferences"] == {"channel": "email"}

    updated = await _ok(
        stack,
        UPDATE,
        {"input": {"id": customer["id"], "gender": "female", "locale": None}},
        admin,
    )
    assert updated["updateCustomer"]["gender"] == "female"
    assert updated["updateCustomer"]["locale"] is None
    assert updated["updateCustomer"]["givenName"] == "Ada"  # left out: unchanged
    read = await _ok(stack, GET, {"id": customer["id"]}, admin)
    assert read["customer"] == updated["updateCustomer"]
    assert await _outbox(stack, "identity.customer.updated.v1", customer["id"]) == 1


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"name": "X", "email": "not-an-email"}, "input.email"),
        ({"name": "X", "phone": "12"}, "input.phone"),
        ({"name": "X", "locale": "english please"}, "input.locale"),
        ({"name": "X", "country": "Germany"}, "input.country"),
        ({"name": "X", "birthDate": "2999-01-01"}, "input.birthDate"),
        ({"name": "   "}, "input.name"),
    ],
)
async def test_bad_profile_input_names_the_field_and_writes_nothing(
    stack: devstack.Stack, tenant: str, given: dict[str, Any], field: str
) -> None:
    admin = await staff_token(stack, tenant)
    error = await _error(stack, REGISTER, {"input": given}, admin)
    assert error["code"] == "BAD_USER_INPUT"
    assert error["field"] == field
    assert (await _ok(stack, SEARCH, {"q": None}, admin))["customers"]["edges"] == []


async def test_a_contact_point_belongs_to_one_customer(stack: devstack.Stack, tenant: str) -> None:
    admin = await staff_token(stack, tenant)
    await _ok(stack, REGISTER, {"input": {"name": "First", "email": "same@example.com"}}, admin)
    error = await _error(
        stack, REGISTER, {"input": {"name": "Second", "email": "SAME@example.com"}}, admin
    )
    assert error["code"] == "CONFLICT"
    names = [e["node"]["name"] for e in (await _ok(stack, SEARCH, {}, admin))["customers"]["edges"]]
    assert names == ["First"]


async def test_search_by_name_contact_point_and_handle(stack: devstack.Stack, tenant: str) -> None:
    admin = await staff_token(stack, tenant)
    grace = (
        await _ok(
            stack,
            REGISTER,
            {
                "input": {
                    "name": "Grace Hopper",
                    "email": "grace@navy.example",
                    "phone": "+1 202 555 0143",
                }
            },
            admin,
        )
    )["registerCustomer"]
    await _ok(stack, REGISTER, {"input": {"name": "Alan Turing"}}, admin)
    profile = (
        await _ok(
            stack,
            RECORD_PROFILE,
            {"input": {"channel": "X", "platformUserId": "2244994945", "handle": "amazing_grace"}},
            admin,
        )
    )["recordSocialProfile"]
    await _ok(
        stack,
        LINK,
        {
            "input": {
                "profileId": profile["id"],
                "customerId": grace["id"],
                "evidence": "CUSTOMER_CONFIRMED",
            }
        },
        admin,
    )

    async def found(text: str) -> list[str]:
        data = await _ok(stack, SEARCH, {"q": text}, admin)
        return [e["node"]["name"] for e in data["customers"]["edges"]]

    assert await found("hopp") == ["Grace Hopper"]
    assert await found("GRACE@navy.example") == ["Grace Hopper"]
    assert await found("(202) 555-0143") == ["Grace Hopper"]  # a national format
    assert await found("+12025550143") == ["Grace Hopper"]
    assert await found("@Amazing_Grace") == ["Grace Hopper"]
    assert await found("100%") == []
    assert sorted(await found("")) == ["Alan Turing", "Grace Hopper"]


async def test_link_evidence_conflict_unlink_and_events(stack: devstack.Stack, tenant: str) -> None:
    admin = await staff_token(stack, tenant)
    ids = []
    for name in ("Owner", "Other"):
        data = await _ok(stack, REGISTER, {"input": {"name": name}}, admin)
        ids.append(data["registerCustomer"]["id"])
    owner, other = ids
    seen = {"channel": "INSTAGRAM", "platformUserId": "17841400008460056", "handle": "owner"}
    first = (await _ok(stack, RECORD_PROFILE, {"input": seen}, admin))["recordSocialProfile"]
    again = (await _ok(stack, RECORD_PROFILE, {"input": {**seen, "followers": 1200}}, admin))[
        "recordSocialProfile"
    ]
    assert again["id"] == first["id"] and again["followers"] == 1200

    no_proof = await _error(
        stack,
        LINK,
        {
            "input": {
                "profileId": first["id"],
                "customerId": owner,
                "evidence": "VERIFIED_CONTACT_POINT",
            }
        },
        admin,
    )
    assert no_proof["field"] == "input.evidence"
    link = (
        await _ok(
            stack,
            LINK,
            {
                "input": {
                    "profileId": first["id"],
                    "customerId": owner,
                    "evidence": "STAFF_DECISION",
                }
            },
            admin,
        )
    )["linkSocialProfile"]
    assert link["confidence"] == 0.8 and link["linkedBy"].startswith("staff:")
    elsewhere = await _error(
        stack,
        LINK,
        {"input": {"profileId": first["id"], "customerId": other, "evidence": "STAFF_DECISION"}},
        admin,
    )
    assert (elsewhere["code"], elsewhere["field"]) == ("CONFLICT", "input.profileId")
    read = await _ok(stack, GET, {"id": owner}, admin)
    assert [p["handle"] for p in read["customer"]["socialProfiles"]] == ["owner"]

    unlinked = await _ok(
        stack, UNLINK, {"input": {"profileId": first["id"], "reason": "wrong person"}}, admin
    )
    assert unlinked["unlinkSocialProfile"]["unlinkReason"] == "wrong person"
    assert (await _ok(stack, GET, {"id": owner}, admin))["customer"]["socialProfiles"] == []
    assert await _outbox(stack, "identity.social_profile.linked.v1", owner) == 1
    assert await _outbox(stack, "identity.social_profile.unlinked.v1", owner) == 1
    # Now free, it may be linked to the other customer.
    await _ok(
        stack,
        LINK,
        {"input": {"profileId": first["id"], "customerId": other, "evidence": "STAFF_DECISION"}},
        admin,
    )


SUGGESTIONS = """
{ linkSuggestions(first: 10) { edges { node { id profileId customerId reason status } } } }
"""


async def test_an_author_engagement_saw_becomes_a_profile_and_a_suggestion_staff_accept(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    customer = (
        await _ok(
            stack,
            REGISTER,
            {"input": {"name": "Mary Jackson", "email": "mjackson@example.com"}},
            admin,
        )
    )["registerCustomer"]
    engagement = Database(
        ServiceSettings(
            service_name="engagement",
            db_schema="engagement",
            database_url=stack.database_url("engagement"),
        )
    )
    try:
        async with engagement.session() as session, session.begin():
            await record_event(
                session,
                AuthorSeen(  # engagement's whole event, as engagement publishes it
                    channel="reddit",
                    platform_user_id="t2_4x1d2",
                    handle="mjackson",
                    display_name="Mary Jackson",
                    followers=None,
                    verified=False,
                    seen_at=datetime.now(UTC),
                ),
                tenant_id=uuid.UUID(tenant),
                subject=None,
            )
    finally:
        await engagement.dispose()

    async def suggestions() -> list[dict[str, Any]]:
        data = await _ok(stack, SUGGESTIONS, {}, admin)
        return [e["node"] for e in data["linkSuggestions"]["edges"]]

    [suggestion] = await eventually(suggestions, lambda s: len(s) == 1, timeout=20)
    assert suggestion["customerId"] == customer["id"]
    assert "name" in suggestion["reason"] and "e-mail" in suggestion["reason"]
    # Nothing is linked until staff decide.
    assert (await _ok(stack, GET, {"id": customer["id"]}, admin))["customer"][
        "socialProfiles"
    ] == []

    accept = "mutation($id: ID!) { acceptLinkSuggestion(id: $id) { status decidedBy } }"
    decided = await _ok(stack, accept, {"id": suggestion["id"]}, admin)
    assert decided["acceptLinkSuggestion"]["status"] == "accepted"
    profiles = (await _ok(stack, GET, {"id": customer["id"]}, admin))["customer"]["socialProfiles"]
    assert profiles == [{"channel": "REDDIT", "platformUserId": "t2_4x1d2", "handle": "mjackson"}]
    again = await _error(stack, accept, {"id": suggestion["id"]}, admin)
    assert again["code"] == "CONFLICT"


async def test_consent_history_events_on_change_and_customer_tokens(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    ids = []
    for name in ("Consenting", "Someone else"):
        ids.append(
            (await _ok(stack, REGISTER, {"input": {"name": name}}, admin))["registerCustomer"]["id"]
        )
    me, them = ids
    mine = await customer_token(stack, tenant, me)

    def grant(customer: str, granted: bool, source: str = "preference_centre") -> dict[str, Any]:
        return {
            "input": {
                "customerId": customer,
                "purpose": "MARKETING",
                "granted": granted,
                "source": source,
                "policyVersion": "2026-11",
            }
        }

    await _ok(stack, CONSENT, grant(me, True), mine)
    await _ok(stack, CONSENT, grant(me, True, "web_form"), mine)  # same state: no event
    await _ok(stack, CONSENT, grant(me, False), admin)
    forbidden = await _error(stack, CONSENT, grant(them, True), mine)
    assert forbidden["code"] == "FORBIDDEN"

    consents = (await _ok(stack, GET, {"id": me}, admin))["customer"]["consents"]
    by_purpose = {c["purpose"]: c for c in consents}
    assert set(by_purpose) == {"MARKETING", "PROFILING", "PARTNER_SHARING", "CONTENT_REUSE"}
    assert by_purpose["MARKETING"]["granted"] is False
    assert by_purpose["MARKETING"]["changedAt"] is not None
    assert by_purpose["PROFILING"] == {
        "purpose": "PROFILING",
        "granted": False,
        "policyVersion": None,
        "source": None,
        "changedAt": None,
    }
    history = (await _ok(stack, HISTORY, {"id": me}, mine))["customer"]["consentHistory"]
    assert [(e["node"]["granted"], e["node"]["source"]) for e in history["edges"]] == [
        (False, "preference_centre"),
        (True, "web_form"),
        (True, "preference_centre"),
    ]
    assert await _outbox(stack, "identity.consent.changed.v1", me) == 2
    bad = await _error(
        stack, CONSENT, {"input": {**grant(me, True)["input"], "source": " "}}, admin
    )
    assert bad["field"] == "input.source"
