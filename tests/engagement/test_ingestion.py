"""Each platform endpoint takes the platform's own documented payload and reports on it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crm_shared import devstack
from tests.engagement.conftest import (
    META_VERIFY_TOKEN,
    meta_signature,
    payload,
    post,
    raw_payload,
)
from tests.support.auth import staff_token

THREAD = """
query Thread($channel: String!, $threadId: String!, $first: Int!, $after: String) {
  thread(channel: $channel, threadId: $threadId, first: $first, after: $after) {
    edges { node { platformId kind text language sentimentLabel sentimentScore editedAt
                   parentId author { platformUserId handle displayName } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


# The first test also starts the whole stack, slow on a shared machine.
pytestmark = pytest.mark.timeout(300)


async def thread(
    stack: devstack.Stack, tenant: str, channel: str, thread_id: str, first: int = 50
) -> list[dict[str, Any]]:
    result = await devstack.graphql(
        stack,
        THREAD,
        {"channel": channel, "threadId": thread_id, "first": first},
        token=await staff_token(stack, tenant, "analyst"),
    )
    assert "errors" not in result, result
    return [edge["node"] for edge in result["data"]["thread"]["edges"]]


def report(accepted: int = 0, duplicates: int = 0, updated: int = 0, ignored: int = 0) -> Any:
    return {
        "accepted": accepted,
        "duplicates": duplicates,
        "updated": updated,
        "ignored": ignored,
        "rejected": [],
    }


async def test_an_x_search_response_is_stored_as_a_conversation(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    response = await post(
        stack, "/ingest/x", token=writer, json_body=payload("x_search_recent.json")
    )
    assert response.status_code == 200, response.text
    assert response.json() == report(accepted=2)

    nodes = await thread(stack, tenant, "x", "1790000000000000001")
    assert [(n["platformId"], n["kind"], n["parentId"]) for n in nodes] == [
        ("1790000000000000001", "post", None),
        ("1790000000000000002", "reply", "1790000000000000001"),
    ]
    assert nodes[0]["author"] == {
        "platformUserId": "2244994945",
        "handle": "ada",
        "displayName": "Ada Lovelace",
    }
    assert (nodes[0]["language"], nodes[0]["sentimentLabel"]) == ("en", "positive")
    assert nodes[0]["sentimentScore"] > 0.05
    assert (nodes[1]["language"], nodes[1]["sentimentLabel"]) == ("en", "negative")


async def test_filtered_stream_ndjson_lines_are_each_taken(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    response = await post(
        stack,
        "/ingest/x",
        token=writer,
        content=raw_payload("x_filtered_stream.ndjson"),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == report(accepted=2)
    nodes = await thread(stack, tenant, "x", "1790000000000000101")
    assert nodes[0]["author"]["handle"] == "grace"


async def test_the_same_item_twice_is_one_interaction(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    body = payload("x_search_recent.json")
    first = await post(stack, "/ingest/x", token=writer, json_body=body)
    again = await post(stack, "/ingest/x", token=writer, json_body=body)
    assert first.json() == report(accepted=2)
    assert again.json() == report(duplicates=2)
    assert len(await thread(stack, tenant, "x", "1790000000000000001")) == 2


async def test_an_edited_post_updates_the_interaction(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    body = payload("x_search_recent.json")
    await post(stack, "/ingest/x", token=writer, json_body=body)
    # X gives an edit a new id and lists the original first in its edit history.
    edited = copy.deepcopy(body)
    original = edited["data"][0]
    edited["data"] = [
        {
            **original,
            "id": "1790000000000000009",
            "text": "Je suis déçu, le son est vraiment mauvais après une semaine",
            "created_at": "2024-05-01T10:20:00.000Z",
            "edit_history_tweet_ids": ["1790000000000000001", "1790000000000000009"],
        }
    ]
    response = await post(stack, "/ingest/x", token=writer, json_body=edited)
    assert response.json() == report(updated=1)

    nodes = await thread(stack, tenant, "x", "1790000000000000001")
    assert len(nodes) == 2
    assert nodes[0]["platformId"] == "1790000000000000001"
    assert nodes[0]["text"].startswith("Je suis déçu")
    assert nodes[0]["editedAt"].startswith("2024-05-01T10:20:00")
    # Re-understood: now French, by the French lexicon.
    assert (nodes[0]["language"], nodes[0]["sentimentLabel"]) == ("fr", "negative")


async def test_a_batch_with_one_bad_item_stores_the_others(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    body = payload("x_search_recent.json")
    del body["data"][1]["text"]
    response = await post(stack, "/ingest/x", token=writer, json_body=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "updated": 0,
        "ignored": 0,
        "rejected": [
            {
                "index": 1,
                "id": "1790000000000000002",
                "field": "data[1].text",
                "message": "is required (a string)",
            }
        ],
    }
    nodes = await thread(stack, tenant, "x", "1790000000000000001")
    assert [n["platformId"] for n in nodes] == ["1790000000000000001"]


async def test_a_body_of_the_wrong_shape_is_refused_whole(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    wrong = await post(
        stack, "/ingest/youtube", token=writer, json_body=payload("reddit_listing.json")
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "BAD_USER_INPUT"
    assert wrong.json()["error"]["field"] == "kind"

    not_json = await post(stack, "/ingest/reddit", token=writer, content=b"{not json")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["field"] == "body"


async def test_ingestion_needs_interactions_write(stack: devstack.Stack, tenant: str) -> None:
    body = payload("normalized.json")
    anonymous = await post(stack, "/ingest/normalized", token=None, json_body=body)
    assert anonymous.status_code == 401
    analyst = await post(
        stack,
        "/ingest/normalized",
        token=await staff_token(stack, tenant, "analyst"),
        json_body=body,
    )
    assert analyst.status_code == 403


async def test_facebook_page_feed_comment_is_stored_and_french_is_understood(
    stack: devstack.Stack, tenant: str
) -> None:
    body = raw_payload("facebook_page_feed.json")
    response = await post(
        stack,
        f"/ingest/meta/{tenant}",
        token=None,
        content=body,
        headers={"content-type": "application/json", "x-hub-signature-256": meta_signature(body)},
    )
    assert response.status_code == 200, response.text
    # The comment is taken; the like (a reaction) says nothing and is ignored.
    assert response.json() == report(accepted=1, ignored=1)
    [comment] = await thread(stack, tenant, "facebook", "108123456789012_987654321098765")
    assert comment["kind"] == "comment"
    assert comment["author"]["displayName"] == "Marie Curie"
    assert (comment["language"], comment["sentimentLabel"], comment["sentimentScore"]) == (
        "fr",
        "positive",
        0.5,
    )


async def test_a_meta_delivery_with_a_bad_signature_is_refused(
    stack: devstack.Stack, tenant: str
) -> None:
    body = raw_payload("instagram_comments.json")
    forged = await post(
        stack,
        f"/ingest/meta/{tenant}",
        token=None,
        content=body,
        headers={"x-hub-signature-256": meta_signature(body, "someone-else's-secret")},
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "UNAUTHENTICATED"
    unsigned = await post(stack, f"/ingest/meta/{tenant}", token=None, content=body)
    assert unsigned.status_code == 401
    assert await thread(stack, tenant, "instagram", "17895695668004550") == []


async def test_instagram_comments_and_mentions(stack: devstack.Stack, tenant: str) -> None:
    body = raw_payload("instagram_comments.json")
    response = await post(
        stack,
        f"/ingest/meta/{tenant}",
        token=None,
        content=body,
        headers={"x-hub-signature-256": meta_signature(body)},
    )
    assert response.json() == report(accepted=2)
    [comment] = await thread(stack, tenant, "instagram", "17895695668004550")
    assert comment["author"]["handle"] == "katherine.j"
    assert comment["sentimentLabel"] == "positive"
    [mention] = await thread(stack, tenant, "instagram", "17918195224117851")
    assert (mention["kind"], mention["platformId"]) == ("mention", "17894227972186120")


async def test_the_meta_subscription_handshake_echoes_the_challenge(
    stack: devstack.Stack, tenant: str
) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        ok = await client.get(
            stack.url("engagement", f"/ingest/meta/{tenant}"),
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": META_VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            },
        )
        wrong = await client.get(
            stack.url("engagement", f"/ingest/meta/{tenant}"),
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": "guess",
                "hub.challenge": "1158201444",
            },
        )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert wrong.status_code == 403


async def test_youtube_comment_threads_with_replies(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    response = await post(
        stack, "/ingest/youtube", token=writer, json_body=payload("youtube_comment_threads.json")
    )
    assert response.json() == report(accepted=2)
    top, reply = await thread(stack, tenant, "youtube", "dQw4w9WgXcQ")
    assert (top["kind"], top["author"]["handle"], top["sentimentLabel"]) == (
        "comment",
        "dorothyvaughan",
        "positive",
    )
    assert (reply["kind"], reply["parentId"]) == ("reply", "UgzDE2tasfmrYLyNkGt4AaABAg")
    assert reply["editedAt"].startswith("2024-05-01T13:30:00")


async def test_a_reddit_listing_of_a_post_and_a_comment(
    stack: devstack.Stack, tenant: str, writer: str
) -> None:
    response = await post(
        stack, "/ingest/reddit", token=writer, json_body=payload("reddit_listing.json")
    )
    assert response.json() == report(accepted=2)
    submission, comment = await thread(stack, tenant, "reddit", "t3_1cht8z2")
    assert submission["kind"] == "post"
    assert submission["text"].startswith("Anyone else had problems with Acme deliveries?\n\n")
    assert (comment["kind"], comment["author"]["handle"]) == ("comment", "katherine_johnson")


async def test_normalized_json_and_ndjson(stack: devstack.Stack, tenant: str, writer: str) -> None:
    response = await post(
        stack, "/ingest/normalized", token=writer, json_body=payload("normalized.json")
    )
    assert response.json() == report(accepted=1)

    lines = [
        '{"channel": "other", "platform_id": "n-1", "kind": "message", "thread_id": "t-9",'
        ' "text": "Where is my parcel?", "created_at": "2024-05-03T09:00:00Z"}',
        "this line is not json",
        '{"channel": "myspace", "platform_id": "n-2", "kind": "post", "thread_id": "t-9",'
        ' "created_at": "2024-05-03T09:01:00Z"}',
        '{"channel": "other", "platform_id": "n-3", "kind": "reply", "thread_id": "t-9",'
        ' "text": "It ships tomorrow.", "created_at": "2024-05-03T09:02:00Z"}',
    ]
    streamed = await post(
        stack,
        "/ingest/ndjson",
        token=writer,
        content="\n".join(lines).encode(),
        headers={"content-type": "application/x-ndjson"},
    )
    result = streamed.json()
    assert (result["accepted"], result["duplicates"]) == (2, 0)
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(1, "line"), (2, "channel")]
    assert [n["platformId"] for n in await thread(stack, tenant, "other", "t-9")] == ["n-1", "n-3"]
