"""The platform adapters against real recorded API responses (tests/engagement/payloads/recorded,
sources in its SOURCES.md) and the documented shapes of other eras: pure parsing, no I/O."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engagement.ingestion.normalized import NormalizedItem, Parsed, Rejection
from engagement.ingestion.platforms import (
    parse_meta,
    parse_reddit,
    parse_x,
    parse_youtube,
    x_time_of_id,
)

RECORDED = Path(__file__).parent / "payloads" / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def items(parsed: list[Parsed]) -> list[NormalizedItem]:
    """The stored items; fails on any rejection (a real response must be taken whole)."""
    rejected = [p for _, p in parsed if isinstance(p, Rejection)]
    assert rejected == []
    return [p for _, p in parsed if isinstance(p, NormalizedItem)]


# --- X --------------------------------------------------------------------------------------


def test_x_posts_requested_with_default_fields_are_stored_with_the_time_of_their_id() -> None:
    posts = items(parse_x(recorded("x_search_recent_default_fields_2022.json")))
    assert len(posts) == 10
    for post in posts:
        # tweepy's test posted "<time> tweepy" every two minutes: the id's time is that time.
        said = datetime.fromisoformat(post.text.split(" tweepy")[0]).replace(tzinfo=UTC)  # type: ignore[union-attr]
        assert abs((post.created_at - said).total_seconds()) < 2
        assert post.author is None
        assert post.kind == "post"


def test_x_single_post_lookup_without_author_is_kept() -> None:
    [post] = items(parse_x(recorded("x_get_tweet_default_fields_2022.json")))
    assert post.platform_id == "1293593516040269825"
    assert post.created_at.date().isoformat() == "2020-08-12"
    assert post.text is not None and "#TwitterAPI" in post.text
    assert post.metrics is not None
    assert post.metrics.permalink == "https://x.com/i/web/status/1293593516040269825"


def test_x_ids_older_than_snowflakes_have_no_time_in_them() -> None:
    assert x_time_of_id("20") is None
    body = {"data": [{"id": "20", "text": "just setting up my twttr"}]}
    [(_, rejection)] = parse_x(body)
    assert isinstance(rejection, Rejection)
    assert rejection.field == "data[0].created_at"


def test_x_includes_give_authors_metrics_retweets_media_and_places() -> None:
    body = copy.deepcopy(recorded("x_search_recent_default_fields_2022.json"))
    first, second = body["data"][0], body["data"][1]
    first.update(
        author_id="2244994945",
        public_metrics={"retweet_count": 3, "reply_count": 2, "like_count": 9, "quote_count": 1},
        attachments={"media_keys": ["3_1"]},
        geo={"place_id": "01a9a39529b27f36"},
    )
    second.update(referenced_tweets=[{"type": "retweeted", "id": first["id"]}])
    body["includes"] = {
        "users": [
            {
                "id": "2244994945",
                "username": "XDevelopers",
                "name": "Developers",
                "public_metrics": {"followers_count": 570000},
            }
        ],
        "media": [{"media_key": "3_1", "type": "photo"}],
        "places": [{"id": "01a9a39529b27f36", "full_name": "Manhattan, NY"}],
        "tweets": [{"id": first["id"], "text": first["text"], "author_id": "2244994945"}],
    }
    posts = items(parse_x(body))
    assert posts[0].author is not None
    assert (posts[0].author.handle, posts[0].author.followers) == ("XDevelopers", 570000)
    assert posts[0].metrics is not None
    assert (posts[0].metrics.likes, posts[0].metrics.shares, posts[0].metrics.replies) == (9, 4, 2)
    assert posts[0].raw is not None
    assert posts[0].raw["place"]["full_name"] == "Manhattan, NY"
    assert posts[0].raw["media"] == [{"media_key": "3_1", "type": "photo"}]
    assert (posts[1].kind, posts[1].parent_id) == ("share", first["id"])
    assert posts[1].raw is not None and posts[1].raw["referenced"][0]["id"] == first["id"]


def test_an_x_search_with_no_results_stores_nothing_and_refuses_nothing() -> None:
    assert parse_x({"meta": {"result_count": 0}}) == []


# --- Reddit ---------------------------------------------------------------------------------


def test_reddit_of_2016_names_authors_without_a_fullname() -> None:
    [post] = items(parse_reddit(recorded("reddit_comments_of_a_post_2016.json")))
    assert post.author is not None
    assert (post.author.platform_user_id, post.author.handle) == ("CorvetteCole", "CorvetteCole")
    assert post.text == "testing define bot!\n\ntest"
    assert post.metrics is not None
    assert post.metrics.model_dump(exclude_none=True) == {
        "score": 1,
        "likes": 1,
        "replies": 19,
        "permalink": "https://www.reddit.com/r/test/comments/52o2fl/testing_define_bot/",
        "community": "test",
    }


def test_a_deleted_reddit_comment_is_kept_without_author_or_text() -> None:
    [comment] = items(parse_reddit(recorded("reddit_info_deleted_comment_2016.json")))
    assert comment.platform_id == "t1_d7ltvl0"
    assert (comment.author, comment.text, comment.edited_at) == (None, None, None)


def test_reddit_edited_as_a_time_or_as_true() -> None:
    [edited] = items(parse_reddit(recorded("reddit_editusertext_2016.json")))
    assert edited.edited_at == datetime.fromtimestamp(1458444463, UTC)
    assert edited.author is not None and edited.author.handle == "<USERNAME>"

    body = recorded("reddit_editusertext_2016.json")
    body["json"]["data"]["things"][0]["data"]["edited"] = True  # older items say only "edited"
    [old] = items(parse_reddit(body))
    assert old.edited_at is None
    assert old.text == "New text"


def test_reddit_entities_are_decoded_and_removed_text_is_no_text() -> None:
    body = recorded("reddit_comments_of_a_post_2016.json")
    data = body[0]["data"]["children"][0]["data"]
    data.update(title="Q&amp;A: 1 &lt; 2", selftext="[removed]", author_fullname="t2_abc")
    [post] = items(parse_reddit(body))
    assert post.text == "Q&A: 1 < 2"
    assert post.author is not None and post.author.platform_user_id == "t2_abc"


# --- YouTube --------------------------------------------------------------------------------


def test_youtube_threads_keep_text_author_and_likes() -> None:
    comments = items(parse_youtube(recorded("youtube_comment_threads_2022.json")))
    assert [c.text for c in comments][0] == "Nobody's love ... Song title made me die from laughter"
    assert comments[0].author is not None
    assert comments[0].author.platform_user_id == "UCP22MyBntbNASpmy3aC4sdw"
    assert comments[0].metrics is not None
    assert (comments[0].metrics.likes, comments[0].metrics.replies) == (0, 0)


def test_youtube_display_text_is_read_as_text_when_the_original_is_not_given() -> None:
    body = recorded("youtube_comment_threads_2022.json")
    for thread in body["items"]:
        del thread["snippet"]["topLevelComment"]["snippet"]["textOriginal"]
    comments = items(parse_youtube(body))
    original = recorded("youtube_comment_threads_2022.json")
    expected = [
        t["snippet"]["topLevelComment"]["snippet"]["textOriginal"] for t in original["items"]
    ]
    assert [c.text for c in comments] == expected


def test_a_youtube_comment_of_a_removed_channel_is_kept_without_author() -> None:
    body = recorded("youtube_comment_threads_2022.json")
    snippet = body["items"][0]["snippet"]["topLevelComment"]["snippet"]
    del snippet["authorChannelId"], snippet["authorChannelUrl"]
    comments = items(parse_youtube(body))
    assert comments[0].author is None
    assert comments[1].author is not None


def test_a_youtube_comment_list_of_replies() -> None:
    thread = recorded("youtube_comment_threads_2022.json")["items"][0]
    reply = copy.deepcopy(thread["snippet"]["topLevelComment"])
    reply["id"] = thread["id"] + ".reply1"
    reply["snippet"]["parentId"] = thread["id"]
    [item] = items(parse_youtube({"kind": "youtube#commentListResponse", "items": [reply]}))
    assert (item.kind, item.parent_id) == ("reply", thread["id"])


# --- Meta -----------------------------------------------------------------------------------


def test_a_facebook_comment_without_from_is_kept_and_an_edit_has_metas_time() -> None:
    body = {
        "object": "page",
        "entry": [
            {
                "id": "0",
                "time": 1714557600,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "edited",
                            "post_id": "44444444_444444444",
                            "comment_id": "444444444_555555",
                            "message": "Still waiting for my refund",
                            "created_time": 1714550000,
                        },
                    }
                ],
            }
        ],
    }
    [comment] = items(parse_meta(body))
    assert comment.author is None
    assert comment.edited_at == datetime.fromtimestamp(1714557600, UTC)


def test_an_instagram_comment_of_the_first_webhook_version_has_no_from() -> None:
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841405309211844",
                "time": 1520622968,
                "changes": [
                    {
                        "field": "comments",
                        "value": {"id": "17865799348089039", "text": "This is an example."},
                    }
                ],
            }
        ],
    }
    [comment] = items(parse_meta(body))
    assert (comment.kind, comment.author, comment.text) == ("comment", None, "This is an example.")


# --- trackers in every script ---------------------------------------------------------------


def _tracker(kind: str, term: str) -> Any:
    import uuid

    from engagement.listening.models import Tracker

    return Tracker(id=uuid.uuid4(), tenant_id=uuid.uuid4(), kind=kind, term=term)


def test_trackers_match_in_scripts_without_spaces() -> None:
    from engagement.listening.service import matching

    acme, huawei, sony_ja, tag = (
        _tracker("keyword", "Acme"),
        _tracker("keyword", "华为"),
        _tracker("keyword", "ソニー"),
        _tracker("hashtag", "#acme"),
    )
    trackers = [acme, huawei, sony_ja, tag]
    assert matching("我喜欢Acme耳机", trackers) == [acme.id]
    assert matching("我昨天买了华为手机，很好用", trackers) == [huawei.id]
    assert matching("ソニーのヘッドホンが壊れた", trackers) == [sony_ja.id]
    assert matching("ＡＣＭＥの新製品 #acme", trackers) == [acme.id, tag.id]  # full-width
    # Between words of spaced scripts the whole word is still required.
    assert matching("acmeaudio is great", trackers) == []
    assert matching("Привет acme!", trackers) == [acme.id]
