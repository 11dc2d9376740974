"""The platforms' own documented payloads, turned into normalized items.

Each parser takes the decoded JSON body and returns every item with its position in the
request: a normalized item, a :class:`Rejection` naming the platform's own field, or ``None``
for something deliberately not stored (a reaction, a deletion). A body that is not the
platform's shape at all raises BAD_USER_INPUT (422) naming the field that is wrong.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from crm_shared.errors import BadUserInput
from engagement.ingestion.normalized import (
    ItemError,
    NormalizedItem,
    Parsed,
    Rejection,
    normalized,
)

# --- small readers that name the offending field -------------------------------------------


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ItemError(path, "must be an object")
    return value


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ItemError(_join(path, key), "is required (a non-empty string)")
    return value


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ItemError(_join(path, key), "must be a string")
    return value


def _time(obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> datetime | None:
    """An ISO 8601 time or a Unix timestamp (seconds, or milliseconds when that large)."""
    value = obj.get(key)
    field = _join(path, key)
    if value is None:
        if required:
            raise ItemError(field, "is required (the platform's time of the item)")
        return None
    if isinstance(value, bool):
        raise ItemError(field, "must be a time")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            # Facebook's Graph API form: 2024-05-01T10:00:00+0000
            try:
                parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                raise ItemError(field, "is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ItemError(field, "must be a time")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shape(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise BadUserInput(f"{field}: {message}", field=field)


class _Positions:
    """Hands out positions of items in a request, in order."""

    def __init__(self, start: int = 0) -> None:
        self.next = start

    def take(self) -> int:
        index = self.next
        self.next += 1
        return index


def _attempt(
    index: int, item_id: Callable[[], str | None], build: Callable[[], NormalizedItem | None]
) -> Parsed:
    try:
        return index, build()
    except ItemError as exc:
        try:
            found = item_id()
        except Exception:
            found = None
        return index, Rejection(index=index, id=found, field=exc.field, message=exc.message)


def _id_of(value: Any, key: str = "id") -> Callable[[], str | None]:
    def get() -> str | None:
        found = value.get(key) if isinstance(value, dict) else None
        return str(found) if isinstance(found, str | int) and not isinstance(found, bool) else None

    return get


# --- X (API v2) ---------------------------------------------------------------------------


def parse_x(body: Any, positions: _Positions | None = None) -> list[Parsed]:
    """An X API v2 response: ``{data: post | [post], includes, matching_rules}``.

    Posts carry whatever fields the client requested: without ``created_at`` the time is read
    from the id (a snowflake), without ``author_id`` the post is kept with no author.
    ``includes`` (users, referenced posts, media, places) are used when present.
    """
    positions = positions or _Positions()
    _shape(isinstance(body, dict), "body", "an X API v2 response is a JSON object")
    if "data" not in body and ("meta" in body or "errors" in body):
        return []  # a search with no results (meta.result_count 0), or only partial errors
    _shape("data" in body, "data", "an X API v2 response carries its post(s) in `data` (none here)")
    data = body["data"]
    _shape(isinstance(data, dict | list), "data", "must be a post object or a list of posts")
    includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
    expansions = _XIncludes(includes or {})
    rules = body.get("matching_rules")
    posts = data if isinstance(data, list) else [data]
    paths = [f"data[{i}]" for i in range(len(posts))] if isinstance(data, list) else ["data"]
    return [
        _attempt(positions.take(), _id_of(post), partial(_x_post, post, path, expansions, rules))
        for post, path in zip(posts, paths, strict=True)
    ]


class _XIncludes:
    """A response's ``includes``, by id: users, posts, media (by media key) and places."""

    def __init__(self, includes: dict[str, Any]) -> None:
        self.users = _by_key(includes.get("users"), "id")
        self.tweets = _by_key(includes.get("tweets"), "id")
        self.media = _by_key(includes.get("media"), "media_key")
        self.places = _by_key(includes.get("places"), "id")


def _by_key(values: Any, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(values, list):
        return {}
    return {str(v[key]): v for v in values if isinstance(v, dict) and isinstance(v.get(key), str)}


# X's ids since November 2010 are snowflakes: milliseconds since X's epoch, shifted by 22 bits.
X_EPOCH_MS = 1_288_834_974_657
X_FIRST_SNOWFLAKE = 29_700_859_247


def x_time_of_id(post_id: str) -> datetime | None:
    """The time encoded in an X post id, or None for an id older than snowflakes."""
    if not post_id.isdigit() or int(post_id) < X_FIRST_SNOWFLAKE:
        return None
    return datetime.fromtimestamp(((int(post_id) >> 22) + X_EPOCH_MS) / 1000, UTC)


def _count(obj: Any, key: str) -> int | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # YouTube sends its counts as strings in some resources
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _sum(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _x_post(post: Any, path: str, expansions: _XIncludes, rules: Any) -> NormalizedItem:
    post = _obj(post, path)
    post_id = _str(post, "id", path)
    text = post.get("text")
    if not isinstance(text, str):
        raise ItemError(_join(path, "text"), "is required (a string)")
    author_id = _opt_str(post, "author_id", path)
    created_at = _time(post, "created_at", path, required=False) or x_time_of_id(post_id)
    if created_at is None:
        raise ItemError(_join(path, "created_at"), "is required (the id is older than snowflakes)")
    history = post.get("edit_history_tweet_ids")
    # An edit gets a new id; the first id of the edit history names the post throughout.
    original = (
        history[0]
        if isinstance(history, list) and history and isinstance(history[0], str)
        else None
    )
    platform_id = original or post_id
    kind, parent = "post", None
    referenced = []
    for ref in post.get("referenced_tweets") or []:
        if not isinstance(ref, dict):
            continue
        ref_id = _opt_str(ref, "id", _join(path, "referenced_tweets"))
        if ref_id in expansions.tweets:
            referenced.append(expansions.tweets[ref_id])
        if ref.get("type") == "replied_to":
            kind, parent = "reply", ref_id
        elif ref.get("type") == "retweeted":
            kind, parent = "share", ref_id
    user = expansions.users.get(author_id or "", {})
    followers = _count(user.get("public_metrics"), "followers_count")
    verified = user.get("verified")
    handle = user.get("username") if isinstance(user.get("username"), str) else None
    metrics = post.get("public_metrics")
    attachments = post.get("attachments") if isinstance(post.get("attachments"), dict) else {}
    media_keys = (attachments or {}).get("media_keys") or []
    geo = post.get("geo") if isinstance(post.get("geo"), dict) else {}
    place = expansions.places.get(str((geo or {}).get("place_id")))
    return normalized(
        {
            "channel": "x",
            "platform_id": platform_id,
            "kind": kind,
            "thread_id": _opt_str(post, "conversation_id", path) or platform_id,
            "parent_id": parent,
            "author": (
                {
                    "platform_user_id": author_id,
                    "handle": handle,
                    "display_name": user.get("name"),
                    "followers": followers,
                    "verified": verified if isinstance(verified, bool) else None,
                }
                if author_id
                else None  # the client did not ask for author_id: a mention of someone unknown
            ),
            "text": text,
            "created_at": created_at,
            "edited_at": created_at if original and original != post_id else None,
            "metrics": {
                "likes": _count(metrics, "like_count"),
                "shares": _sum(_count(metrics, "retweet_count"), _count(metrics, "quote_count")),
                "replies": _count(metrics, "reply_count"),
                "views": _count(metrics, "impression_count"),
                "permalink": f"https://x.com/{handle or 'i/web'}/status/{post_id}",
            },
            "raw": {
                "post": post,
                "user": user or None,
                "matching_rules": rules,
                "referenced": referenced or None,
                "media": [expansions.media[k] for k in media_keys if k in expansions.media] or None,
                "place": place,
            },
        },
        path=path,
    )


# --- Meta (Facebook Page and Instagram webhooks) ------------------------------------------

FACEBOOK_TEXT_ITEMS = ("comment", "post", "status")
FACEBOOK_STORED_VERBS = ("add", "edited", "edit")
INSTAGRAM_TEXT_FIELDS = ("comments", "live_comments", "mentions")


def parse_meta(body: Any) -> list[Parsed]:
    """A Meta webhook delivery: ``{object: "page"|"instagram", entry: [{changes: [...]}]}``."""
    _shape(isinstance(body, dict), "body", "a Meta webhook delivery is a JSON object")
    obj = body.get("object")
    _shape(
        obj in ("page", "instagram"),
        "object",
        "must be 'page' (Facebook Page feed) or 'instagram'",
    )
    entries = body.get("entry")
    _shape(isinstance(entries, list), "entry", "must be a list of entries")
    positions = _Positions()
    parsed: list[Parsed] = []
    for e, entry in enumerate(entries):
        path = f"entry[{e}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            index = positions.take()
            parsed.append(
                (index, Rejection(index=index, id=None, field=path, message="must be an entry"))
            )
            continue
        for c, change in enumerate(entry.get("changes") or []):
            cpath = f"{path}.changes[{c}]"
            parse = _facebook_change if obj == "page" else _instagram_change
            value = change.get("value") if isinstance(change, dict) else None
            parsed.append(
                _attempt(
                    positions.take(),
                    partial(_meta_id, value),
                    partial(parse, change, cpath, entry),
                )
            )
        # Messenger/Instagram direct messages arrive as `messaging`: not taken yet.
        for _ in entry.get("messaging") or []:
            parsed.append((positions.take(), None))
    return parsed


def _meta_id(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in ("comment_id", "post_id", "id", "media_id"):
        found = value.get(key)
        if isinstance(found, str | int) and not isinstance(found, bool):
            return str(found)
    return None


def _facebook_change(change: Any, path: str, entry: dict[str, Any]) -> NormalizedItem | None:
    change = _obj(change, path)
    if change.get("field") != "feed":
        return None
    value = _obj(change.get("value"), _join(path, "value"))
    vpath = _join(path, "value")
    item = value.get("item")
    if item not in FACEBOOK_TEXT_ITEMS or value.get("verb") not in FACEBOOK_STORED_VERBS:
        return None  # reactions, likes, shares, removals: nothing said
    post_id = _str(value, "post_id", vpath)
    created_at = _time(value, "created_time", vpath, required=False) or _time(
        entry, "time", "entry"
    )
    if item == "comment":
        comment_id = _str(value, "comment_id", vpath)
        parent = _opt_str(value, "parent_id", vpath) or post_id
        kind, platform_id = ("comment" if parent == post_id else "reply"), comment_id
    else:
        kind, platform_id, parent = "post", post_id, None
    edited = value.get("verb") in ("edited", "edit")
    # The change's own time (entry.time) is when Meta saw the edit.
    edited_at = (
        (_time(entry, "time", "entry", required=False) or datetime.now(UTC)) if edited else None
    )
    return normalized(
        {
            "channel": "facebook",
            "platform_id": platform_id,
            "kind": kind,
            "thread_id": post_id,
            "parent_id": parent,
            "author": _meta_sender(value, vpath, name_key="name"),
            "text": _opt_str(value, "message", vpath),
            "created_at": created_at,
            "edited_at": edited_at,
            "raw": value,
        },
        path=vpath,
    )


def _meta_sender(value: dict[str, Any], vpath: str, *, name_key: str) -> dict[str, Any] | None:
    """``value.from`` as an author; None when Meta left it out (privacy, older API versions)."""
    if value.get("from") is None:
        return None
    fpath = _join(vpath, "from")
    sender = _obj(value.get("from"), fpath)
    name = _opt_str(sender, name_key, fpath)
    return {
        "platform_user_id": _str(sender, "id", fpath),
        ("display_name" if name_key == "name" else "handle"): name,
    }


def _instagram_change(change: Any, path: str, entry: dict[str, Any]) -> NormalizedItem | None:
    change = _obj(change, path)
    field = change.get("field")
    if field not in INSTAGRAM_TEXT_FIELDS:
        return None
    vpath = _join(path, "value")
    value = _obj(change.get("value"), vpath)
    created_at = _time(value, "timestamp", vpath, required=False) or _time(entry, "time", "entry")
    if field == "mentions" and "id" not in value:
        # The documented mention: only where the account was mentioned; the text is fetched later.
        comment_id = _opt_str(value, "comment_id", vpath)
        media_id = _str(value, "media_id", vpath)
        return normalized(
            {
                "channel": "instagram",
                "platform_id": comment_id or media_id,
                "kind": "mention",
                "thread_id": media_id,
                "created_at": created_at,
                "raw": value,
            },
            path=vpath,
        )
    media = value.get("media")
    thread: str | None = (
        _str(media, "id", _join(vpath, "media")) if isinstance(media, dict) else None
    )
    parent = _opt_str(value, "parent_id", vpath)
    kind = "mention" if field == "mentions" else ("reply" if parent else "comment")
    return normalized(
        {
            "channel": "instagram",
            "platform_id": _str(value, "id", vpath),
            "kind": kind,
            "thread_id": thread or _opt_str(value, "media_id", vpath),
            "parent_id": parent,
            "author": _meta_sender(value, vpath, name_key="username"),
            "text": _opt_str(value, "text", vpath),
            "created_at": created_at,
            "raw": value,
        },
        path=vpath,
    )


# --- YouTube Data API v3 ------------------------------------------------------------------

_HANDLE_IN_URL = re.compile(r"/@([^/?#]+)")
_CHANNEL_IN_URL = re.compile(r"/channel/([A-Za-z0-9_-]+)")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
YOUTUBE_KINDS = (
    "youtube#commentThreadListResponse",
    "youtube#commentThread",
    "youtube#commentListResponse",
)


def html_text(value: str) -> str:
    """Text of an HTML fragment (YouTube's ``textDisplay``): line breaks kept, tags dropped."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", value)))


def parse_youtube(body: Any) -> list[Parsed]:
    """A ``youtube#commentThreadListResponse``, one ``youtube#commentThread``, or a
    ``youtube#commentListResponse`` (``comments.list``: the replies of a thread)."""
    _shape(isinstance(body, dict), "body", "a YouTube response is a JSON object")
    kind = body.get("kind")
    _shape(kind in YOUTUBE_KINDS, "kind", "must be one of " + ", ".join(YOUTUBE_KINDS))
    positions = _Positions()
    parsed: list[Parsed] = []
    if kind == "youtube#commentListResponse":
        items = body.get("items")
        _shape(isinstance(items, list), "items", "must be a list of youtube#comment")
        for i, comment in enumerate(items):
            parsed.append(
                _attempt(
                    positions.take(),
                    _id_of(comment),
                    partial(_youtube_comment, comment, f"items[{i}]", None, None, None),
                )
            )
        return parsed
    if kind == "youtube#commentThread":
        threads: list[tuple[str, Any]] = [("", body)]
    else:
        items = body.get("items")
        _shape(isinstance(items, list), "items", "must be a list of youtube#commentThread")
        threads = [(f"items[{i}]", t) for i, t in enumerate(items)]
    for path, thread in threads:
        try:
            comments = list(_youtube_comments(thread, path))
        except ItemError as exc:
            index = positions.take()
            parsed.append(
                (
                    index,
                    Rejection(
                        index=index, id=_id_of(thread)(), field=exc.field, message=exc.message
                    ),
                )
            )
            continue
        for cpath, comment, video_id, parent, replies in comments:
            parsed.append(
                _attempt(
                    positions.take(),
                    _id_of(comment),
                    partial(_youtube_comment, comment, cpath, video_id, parent, replies),
                )
            )
    return parsed


def _youtube_comments(
    thread: Any, path: str
) -> Iterator[tuple[str, Any, str | None, str | None, int | None]]:
    thread = _obj(thread, path or "body")
    snippet = _obj(thread.get("snippet"), _join(path, "snippet"))
    top = _obj(snippet.get("topLevelComment"), _join(path, "snippet.topLevelComment"))
    video_id = _opt_str(snippet, "videoId", _join(path, "snippet"))
    replies_count = _count(snippet, "totalReplyCount")
    yield _join(path, "snippet.topLevelComment"), top, video_id, None, replies_count
    replies = thread.get("replies")
    comments = replies.get("comments") if isinstance(replies, dict) else None
    for r, reply in enumerate(comments or []):
        yield _join(path, f"replies.comments[{r}]"), reply, video_id, _id_of(top)(), None


def _youtube_author(snippet: dict[str, Any], spath: str) -> dict[str, Any] | None:
    """The comment's author: ``authorChannelId.value`` (or the id in ``authorChannelUrl``)."""
    channel = snippet.get("authorChannelId")
    if isinstance(channel, dict):
        channel_id = _opt_str(channel, "value", _join(spath, "authorChannelId"))
    else:
        channel_id = _opt_str(snippet, "authorChannelId", spath)
    url = _opt_str(snippet, "authorChannelUrl", spath) or ""
    if not channel_id:
        in_url = _CHANNEL_IN_URL.search(url)
        channel_id = in_url.group(1) if in_url else None
    display = _opt_str(snippet, "authorDisplayName", spath)
    found = _HANDLE_IN_URL.search(url)
    handle = found.group(1) if found else (display[1:] if display and display[:1] == "@" else None)
    if not channel_id:
        return None  # a removed channel: the comment stays, its author is unknown
    return {"platform_user_id": channel_id, "handle": handle, "display_name": display}


def _youtube_comment(
    comment: Any,
    path: str,
    video_id: str | None,
    parent: str | None,
    replies: int | None,
) -> NormalizedItem:
    comment = _obj(comment, path)
    comment_id = _str(comment, "id", path)
    spath = _join(path, "snippet")
    snippet = _obj(comment.get("snippet"), spath)
    text = snippet.get("textOriginal")
    if not isinstance(text, str):
        # textOriginal is only given to some callers; textDisplay is HTML.
        display_text = snippet.get("textDisplay")
        text = html_text(display_text) if isinstance(display_text, str) else None
    if not isinstance(text, str):
        raise ItemError(_join(spath, "textOriginal"), "is required (a string)")
    published = _time(snippet, "publishedAt", spath)
    updated = _time(snippet, "updatedAt", spath, required=False)
    parent_id = _opt_str(snippet, "parentId", spath) or parent
    thread = video_id or _opt_str(snippet, "videoId", spath)
    return normalized(
        {
            "channel": "youtube",
            "platform_id": comment_id,
            "kind": "reply" if parent_id else "comment",
            "thread_id": thread,
            "parent_id": parent_id,
            "author": _youtube_author(snippet, spath),
            "text": text,
            "created_at": published,
            "edited_at": updated if updated and updated != published else None,
            "metrics": {
                "likes": _count(snippet, "likeCount"),
                "replies": replies,
                "permalink": (
                    f"https://www.youtube.com/watch?v={thread}&lc={comment_id}" if thread else None
                ),
            },
            "raw": comment,
        },
        path=path,
    )


# --- Reddit ---------------------------------------------------------------------------------

# What Reddit shows in place of a removed author or text.
REDDIT_PLACEHOLDERS = ("[deleted]", "[removed]")


def parse_reddit(body: Any) -> list[Parsed]:
    """A Reddit ``Listing`` of ``t1`` comments and ``t3`` posts (or a list of Listings), or
    the ``{json: {data: {things: [...]}}}`` answer of Reddit's write endpoints."""
    if isinstance(body, dict) and isinstance(body.get("json"), dict):
        data = body["json"].get("data")
        things = data.get("things") if isinstance(data, dict) else None
        _shape(isinstance(things, list), "json.data.things", "must be a list of things")
        assert isinstance(things, list)
        positions = _Positions()
        parsed: list[Parsed] = []
        _reddit_children(things, "json.data.things", positions, parsed)
        return parsed
    listings = body if isinstance(body, list) else [body]
    for i, listing in enumerate(listings):
        prefix = f"[{i}]" if isinstance(body, list) else ""
        _shape(
            isinstance(listing, dict) and listing.get("kind") == "Listing",
            f"{prefix}kind" if prefix else "kind",
            "a Reddit response is a Listing ({kind: 'Listing', data: {children: [...]}})",
        )
        data = listing.get("data")
        _shape(
            isinstance(data, dict) and isinstance(data.get("children"), list),
            f"{prefix}data.children",
            "must be a list of things",
        )
    positions = _Positions()
    parsed = []
    for i, listing in enumerate(listings):
        prefix = f"[{i}]." if isinstance(body, list) else ""
        _reddit_children(listing["data"]["children"], f"{prefix}data.children", positions, parsed)
    return parsed


def _reddit_children(
    children: list[Any], path: str, positions: _Positions, parsed: list[Parsed]
) -> None:
    for c, thing in enumerate(children):
        tpath = f"{path}[{c}]"
        kind = thing.get("kind") if isinstance(thing, dict) else None
        data = thing.get("data") if isinstance(thing, dict) else None
        if kind not in ("t1", "t3"):
            parsed.append((positions.take(), None))  # "more" stubs, users, subreddits
            continue
        parsed.append(
            _attempt(
                positions.take(),
                _id_of(data, "name"),
                partial(_reddit_thing, kind, data, f"{tpath}.data"),
            )
        )
        replies = data.get("replies") if isinstance(data, dict) else None
        if isinstance(replies, dict) and isinstance(replies.get("data"), dict):
            nested = replies["data"].get("children")
            if isinstance(nested, list):
                _reddit_children(nested, f"{tpath}.data.replies.data.children", positions, parsed)


def _reddit_text(data: dict[str, Any], key: str, path: str) -> str | None:
    """Reddit's markdown with its HTML entities decoded; a placeholder is no text."""
    value = _opt_str(data, key, path)
    if value is None or value.strip() in REDDIT_PLACEHOLDERS:
        return None
    return html.unescape(value)


def _reddit_author(data: dict[str, Any], path: str) -> dict[str, Any] | None:
    """``author_fullname`` (t2_…) when Reddit sends it, else the ``author`` name (older data)."""
    name = _opt_str(data, "author", path)
    if name in REDDIT_PLACEHOLDERS:
        name = None
    fullname = _opt_str(data, "author_fullname", path)
    if not fullname and not name:
        return None  # a deleted account
    return {"platform_user_id": fullname or name, "handle": name}


def _reddit_thing(kind: str, data: Any, path: str) -> NormalizedItem:
    data = _obj(data, path)
    name = _str(data, "name", path)
    created = _time(data, "created_utc", path, required=False) or _time(data, "created", path)
    edited = data.get("edited")
    # `edited` is false, a Unix time, or (older items) true: edited at an unknown time.
    edited_at = (
        _time(data, "edited", path)
        if isinstance(edited, int | float) and not isinstance(edited, bool) and edited
        else None
    )
    permalink = _opt_str(data, "permalink", path)
    metrics = {
        "score": data.get("score") if type(data.get("score")) is int else None,
        "likes": _count(data, "ups"),
        "replies": _count(data, "num_comments"),
        "shares": _count(data, "num_crossposts"),
        "permalink": f"https://www.reddit.com{permalink}" if permalink else None,
        "community": _opt_str(data, "subreddit", path),
    }
    raw = {k: v for k, v in data.items() if k != "replies"}
    if kind == "t1":
        if not isinstance(data.get("body"), str):
            raise ItemError(_join(path, "body"), "is required (a string)")
        parent = _opt_str(data, "parent_id", path)
        return normalized(
            {
                "channel": "reddit",
                "platform_id": name,
                "kind": "reply" if parent and parent.startswith("t1_") else "comment",
                "thread_id": _opt_str(data, "link_id", path),
                "parent_id": parent,
                "author": _reddit_author(data, path),
                "text": _reddit_text(data, "body", path),
                "created_at": created,
                "edited_at": edited_at,
                "metrics": metrics,
                "raw": raw,
            },
            path=path,
        )
    title = html.unescape(_str(data, "title", path))
    selftext = _reddit_text(data, "selftext", path)
    return normalized(
        {
            "channel": "reddit",
            "platform_id": name,
            "kind": "post",
            "thread_id": name,
            "author": _reddit_author(data, path),
            "text": f"{title}\n\n{selftext}" if selftext else title,
            "created_at": created,
            "edited_at": edited_at,
            "metrics": metrics,
            "raw": raw,
        },
        path=path,
    )


# --- our normalized form ------------------------------------------------------------------


def parse_normalized_item(index: int, data: Any) -> Parsed:
    """One item of our normalized form (``raw`` defaults to the item as sent)."""

    def build() -> NormalizedItem:
        item = _obj(data, "item")
        if item.get("raw") is None:
            item = {**item, "raw": dict(item)}
        return normalized(item, path="")

    return _attempt(index, _id_of(data, "platform_id"), build)


def parse_normalized(body: Any) -> list[Parsed]:
    """A JSON list of normalized items."""
    _shape(isinstance(body, list), "body", "must be a JSON list of interactions")
    return [parse_normalized_item(i, item) for i, item in enumerate(body)]
