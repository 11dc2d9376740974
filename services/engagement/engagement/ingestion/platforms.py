"""The platforms' own documented payloads, turned into normalized items.

Each parser takes the decoded JSON body and returns every item with its position in the
request: a normalized item, a :class:`Rejection` naming the platform's own field, or ``None``
for something deliberately not stored (a reaction, a deletion). A body that is not the
platform's shape at all raises BAD_USER_INPUT (422) naming the field that is wrong.
"""

from __future__ import annotations

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
    """An X API v2 response: ``{data: post | [post], includes: {users}, matching_rules}``."""
    positions = positions or _Positions()
    _shape(isinstance(body, dict), "body", "an X API v2 response is a JSON object")
    _shape("data" in body, "data", "an X API v2 response carries its post(s) in `data` (none here)")
    data = body["data"]
    _shape(isinstance(data, dict | list), "data", "must be a post object or a list of posts")
    includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
    users = {
        str(u["id"]): u
        for u in (includes or {}).get("users") or []
        if isinstance(u, dict) and isinstance(u.get("id"), str)
    }
    rules = body.get("matching_rules")
    posts = data if isinstance(data, list) else [data]
    paths = [f"data[{i}]" for i in range(len(posts))] if isinstance(data, list) else ["data"]
    return [
        _attempt(positions.take(), _id_of(post), partial(_x_post, post, path, users, rules))
        for post, path in zip(posts, paths, strict=True)
    ]


def _x_post(post: Any, path: str, users: dict[str, dict[str, Any]], rules: Any) -> NormalizedItem:
    post = _obj(post, path)
    post_id = _str(post, "id", path)
    text = post.get("text")
    if not isinstance(text, str):
        raise ItemError(_join(path, "text"), "is required (a string)")
    author_id = _str(post, "author_id", path)
    created_at = _time(post, "created_at", path)
    history = post.get("edit_history_tweet_ids")
    # An edit gets a new id; the first id of the edit history names the post throughout.
    original = (
        history[0]
        if isinstance(history, list) and history and isinstance(history[0], str)
        else None
    )
    platform_id = original or post_id
    kind, parent = "post", None
    for ref in post.get("referenced_tweets") or []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to":
            kind, parent = "reply", _opt_str(ref, "id", _join(path, "referenced_tweets"))
    user = users.get(author_id, {})
    metrics = user.get("public_metrics") if isinstance(user.get("public_metrics"), dict) else {}
    followers = (metrics or {}).get("followers_count")
    verified = user.get("verified")
    return normalized(
        {
            "channel": "x",
            "platform_id": platform_id,
            "kind": kind,
            "thread_id": _opt_str(post, "conversation_id", path) or platform_id,
            "parent_id": parent,
            "author": {
                "platform_user_id": author_id,
                "handle": user.get("username"),
                "display_name": user.get("name"),
                "followers": followers if isinstance(followers, int) else None,
                "verified": verified if isinstance(verified, bool) else None,
            },
            "text": text,
            "created_at": created_at,
            "edited_at": created_at if original and original != post_id else None,
            "raw": {"post": post, "user": user or None, "matching_rules": rules},
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
    sender = _obj(value.get("from"), _join(vpath, "from"))
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
    return normalized(
        {
            "channel": "facebook",
            "platform_id": platform_id,
            "kind": kind,
            "thread_id": post_id,
            "parent_id": parent,
            "author": {
                "platform_user_id": _str(sender, "id", _join(vpath, "from")),
                "display_name": _opt_str(sender, "name", _join(vpath, "from")),
            },
            "text": _opt_str(value, "message", vpath),
            "created_at": created_at,
            "edited_at": datetime.now(UTC) if edited else None,
            "raw": value,
        },
        path=vpath,
    )


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
    sender = _obj(value.get("from"), _join(vpath, "from"))
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
            "author": {
                "platform_user_id": _str(sender, "id", _join(vpath, "from")),
                "handle": _opt_str(sender, "username", _join(vpath, "from")),
            },
            "text": _opt_str(value, "text", vpath),
            "created_at": created_at,
            "raw": value,
        },
        path=vpath,
    )


# --- YouTube Data API v3 ------------------------------------------------------------------

_HANDLE_IN_URL = re.compile(r"/@([^/?#]+)")


def parse_youtube(body: Any) -> list[Parsed]:
    """A ``youtube#commentThreadListResponse`` or one ``youtube#commentThread``."""
    _shape(isinstance(body, dict), "body", "a YouTube response is a JSON object")
    kind = body.get("kind")
    _shape(
        kind in ("youtube#commentThreadListResponse", "youtube#commentThread"),
        "kind",
        "must be 'youtube#commentThreadListResponse' or 'youtube#commentThread'",
    )
    if kind == "youtube#commentThread":
        threads: list[tuple[str, Any]] = [("", body)]
    else:
        items = body.get("items")
        _shape(isinstance(items, list), "items", "must be a list of youtube#commentThread")
        threads = [(f"items[{i}]", t) for i, t in enumerate(items)]
    positions = _Positions()
    parsed: list[Parsed] = []
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
        for cpath, comment, video_id, parent in comments:
            parsed.append(
                _attempt(
                    positions.take(),
                    _id_of(comment),
                    partial(_youtube_comment, comment, cpath, video_id, parent),
                )
            )
    return parsed


def _youtube_comments(thread: Any, path: str) -> Iterator[tuple[str, Any, str | None, str | None]]:
    thread = _obj(thread, path or "body")
    snippet = _obj(thread.get("snippet"), _join(path, "snippet"))
    top = _obj(snippet.get("topLevelComment"), _join(path, "snippet.topLevelComment"))
    video_id = _opt_str(snippet, "videoId", _join(path, "snippet"))
    yield _join(path, "snippet.topLevelComment"), top, video_id, None
    replies = thread.get("replies")
    comments = replies.get("comments") if isinstance(replies, dict) else None
    for r, reply in enumerate(comments or []):
        yield _join(path, f"replies.comments[{r}]"), reply, video_id, _id_of(top)()


def _youtube_comment(
    comment: Any, path: str, video_id: str | None, parent: str | None
) -> NormalizedItem:
    comment = _obj(comment, path)
    comment_id = _str(comment, "id", path)
    spath = _join(path, "snippet")
    snippet = _obj(comment.get("snippet"), spath)
    text = snippet.get("textOriginal")
    if not isinstance(text, str):
        text = snippet.get("textDisplay")
    if not isinstance(text, str):
        raise ItemError(_join(spath, "textOriginal"), "is required (a string)")
    channel = _obj(snippet.get("authorChannelId"), _join(spath, "authorChannelId"))
    display = _opt_str(snippet, "authorDisplayName", spath)
    found = _HANDLE_IN_URL.search(_opt_str(snippet, "authorChannelUrl", spath) or "")
    handle = found.group(1) if found else (display[1:] if display and display[:1] == "@" else None)
    published = _time(snippet, "publishedAt", spath)
    updated = _time(snippet, "updatedAt", spath, required=False)
    parent_id = _opt_str(snippet, "parentId", spath) or parent
    return normalized(
        {
            "channel": "youtube",
            "platform_id": comment_id,
            "kind": "reply" if parent_id else "comment",
            "thread_id": video_id or _opt_str(snippet, "videoId", spath),
            "parent_id": parent_id,
            "author": {
                "platform_user_id": _str(channel, "value", _join(spath, "authorChannelId")),
                "handle": handle,
                "display_name": display,
            },
            "text": text,
            "created_at": published,
            "edited_at": updated if updated and updated != published else None,
            "raw": comment,
        },
        path=path,
    )


# --- Reddit ---------------------------------------------------------------------------------


def parse_reddit(body: Any) -> list[Parsed]:
    """A Reddit ``Listing`` of ``t1`` comments and ``t3`` posts (or a list of Listings)."""
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
    parsed: list[Parsed] = []
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


def _reddit_thing(kind: str, data: Any, path: str) -> NormalizedItem:
    data = _obj(data, path)
    name = _str(data, "name", path)
    created = _time(data, "created_utc", path)
    edited = data.get("edited")
    edited_at = _time(data, "edited", path) if isinstance(edited, int | float) and edited else None
    fullname = _opt_str(data, "author_fullname", path)
    author = (
        {"platform_user_id": fullname, "handle": _opt_str(data, "author", path)}
        if fullname
        else None  # "[deleted]" authors have no fullname
    )
    raw = {k: v for k, v in data.items() if k != "replies"}
    if kind == "t1":
        body = data.get("body")
        if not isinstance(body, str):
            raise ItemError(_join(path, "body"), "is required (a string)")
        parent = _opt_str(data, "parent_id", path)
        return normalized(
            {
                "channel": "reddit",
                "platform_id": name,
                "kind": "reply" if parent and parent.startswith("t1_") else "comment",
                "thread_id": _opt_str(data, "link_id", path),
                "parent_id": parent,
                "author": author,
                "text": body,
                "created_at": created,
                "edited_at": edited_at,
                "raw": raw,
            },
            path=path,
        )
    title = _str(data, "title", path)
    selftext = _opt_str(data, "selftext", path)
    return normalized(
        {
            "channel": "reddit",
            "platform_id": name,
            "kind": "post",
            "thread_id": name,
            "author": author,
            "text": f"{title}\n\n{selftext}" if selftext else title,
            "created_at": created,
            "edited_at": edited_at,
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
