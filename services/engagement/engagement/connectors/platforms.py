"""The platforms' own APIs, spoken with httpx through the guarded client: OAuth 2.0 (with PKCE
where the platform offers it), the pages we pull, the replies we publish, and their rate limits.

Why httpx and not the platforms' Python clients: tweepy's asynchronous client needs aiohttp
and OAuth 1.0a or its own OAuth 2.0 handler, asyncpraw brings aiohttp and its own token
manager, google-api-python-client is synchronous; none would send its requests through
``crm_shared.outbound`` (the guard against internal addresses), and each keeps tokens its own
way where ours are sealed in the database. The calls we need are a dozen plain REST requests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from crm_shared.db import utcnow
from engagement.ingestion import platforms as adapters
from engagement.ingestion.normalized import Parsed

USER_AGENT = "crm-engagement-connectors/0.1"

DEFAULT_URLS: Mapping[str, Mapping[str, str]] = {
    "x": {
        "api": "https://api.x.com",
        "authorize": "https://x.com/i/oauth2/authorize",
        "token": "https://api.x.com/2/oauth2/token",
        "revoke": "https://api.x.com/2/oauth2/revoke",
    },
    "reddit": {
        "api": "https://oauth.reddit.com",
        "authorize": "https://www.reddit.com/api/v1/authorize",
        "token": "https://www.reddit.com/api/v1/access_token",
        "revoke": "https://www.reddit.com/api/v1/revoke_token",
    },
    "youtube": {
        "api": "https://www.googleapis.com/youtube/v3",
        "authorize": "https://accounts.google.com/o/oauth2/v2/auth",
        "token": "https://oauth2.googleapis.com/token",
        "revoke": "https://oauth2.googleapis.com/revoke",
    },
}


class RateLimited(Exception):
    """The platform asks us to wait until ``until`` (its own headers say so)."""

    def __init__(self, until: datetime, message: str):
        super().__init__(message)
        self.until = until


class PlatformError(Exception):
    """The platform refused or failed; ``transient`` ones are worth another attempt."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


class AuthorizationRevoked(PlatformError):
    """The platform no longer accepts the account's tokens: a person must connect again."""


@dataclass(frozen=True)
class App:
    """The deployment's OAuth client registered with a platform."""

    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    platform_user_id: str
    handle: str | None


@dataclass
class Page:
    """One page of a source: the body for the adapter (only items newer than the cursor),
    how many items it holds, the next page's token, the newest item's key and time."""

    body: Any
    count: int
    next_token: str | None
    newest_key: str | None
    newest_at: datetime | None
    # The page reached items already stored: the pass is complete.
    reached_stored: bool = False


@dataclass(frozen=True)
class Source:
    """Something pulled from an account (its mentions, a subreddit, a search)."""

    key: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outgoing:
    """What to publish: text, and the platform item it answers (None: a new post)."""

    text: str
    in_reply_to: str | None
    kind: str


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``code_verifier`` and its S256 ``code_challenge`` (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _basic(app: App) -> str:
    raw = f"{app.client_id}:{app.client_secret or ''}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _retry_after(response: httpx.Response, now: datetime) -> datetime | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value))
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for key in ("detail", "error_description", "message", "title", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:300]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or errors[0])[:300]
    return str(body)[:300]


class Platform:
    """What every platform does; subclasses fill in the platform's own paths and fields."""

    channel: str = ""
    scopes: tuple[str, ...] = ()
    pkce: bool = True

    def __init__(self, urls: Mapping[str, str], app: App):
        self.urls = urls
        self.app = app
        # Set when a response said the rate-limit window is used up (until its reset).
        self.exhausted_until: datetime | None = None

    # --- OAuth 2.0 --------------------------------------------------------------------------

    def authorization_url(self, *, redirect_uri: str, state: str, challenge: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            **self.extra_authorize_params(),
        }
        if self.pkce:
            params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        return f"{self.urls['authorize']}?{urlencode(params)}"

    def extra_authorize_params(self) -> dict[str, str]:
        return {}

    def token_auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and form fields that authenticate the client at the token endpoint."""
        if self.app.client_secret:
            return {"authorization": _basic(self.app)}, {}
        return {}, {"client_id": self.app.client_id}

    async def exchange_code(
        self, http: httpx.AsyncClient, *, code: str, verifier: str, redirect_uri: str
    ) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if self.pkce:
            form["code_verifier"] = verifier
        return await self._token(http, form)

    async def refresh(self, http: httpx.AsyncClient, *, refresh_token: str) -> Tokens:
        tokens = await self._token(
            http, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if tokens.refresh_token is None:  # kept when the platform does not rotate it
            tokens = Tokens(tokens.access_token, refresh_token, tokens.expires_at, tokens.scopes)
        return tokens

    async def _token(self, http: httpx.AsyncClient, form: dict[str, str]) -> Tokens:
        headers, fields = self.token_auth()
        response = await http.post(
            self.urls["token"],
            data=form | fields,
            headers=headers | {"user-agent": USER_AGENT},
        )
        now = utcnow()
        if response.status_code in (400, 401) and form["grant_type"] == "refresh_token":
            raise AuthorizationRevoked(
                f"{self.channel} refused the refresh token: {_error_text(response)}",
                status=response.status_code,
            )
        self._raise_for(response, now)
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise PlatformError(f"{self.channel}: the token endpoint sent no access_token")
        expires_in = body.get("expires_in")
        scope = body.get("scope")
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=float(expires_in)) if expires_in else None,
            scopes=tuple(scope.replace(",", " ").split()) if isinstance(scope, str) else (),
        )

    async def revoke(self, http: httpx.AsyncClient, *, token: str, hint: str) -> None:
        headers, fields = self.token_auth()
        response = await http.post(
            self.urls["revoke"],
            data={"token": token, "token_type_hint": hint} | fields,
            headers=headers | {"user-agent": USER_AGENT},
        )
        self._raise_for(response, utcnow())

    # --- the API ------------------------------------------------------------------------

    async def call(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        access_token: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> Any:
        response = await http.request(
            method,
            self.urls["api"] + path,
            params=dict(params or {}),
            json=json,
            data=dict(data) if data is not None else None,
            headers={"authorization": f"Bearer {access_token}", "user-agent": USER_AGENT},
        )
        self._raise_for(response, utcnow())
        return response.json()

    def _raise_for(self, response: httpx.Response, now: datetime) -> None:
        """Raise what the response means: a rate limit, a refusal, a failure; else nothing.

        A successful response whose headers say the window is used up is kept (it counted)
        and remembered in :attr:`exhausted_until`: the caller stores it and stops there.
        """
        status = response.status_code
        limited = self.rate_limited_until(response, now)
        if status < 400 and limited is not None and limited > now:
            self.exhausted_until = limited
        if status == 429 or (status == 403 and self.quota_exhausted(response)):
            until = limited or _retry_after(response, now) or now + timedelta(seconds=60)
            raise RateLimited(until, f"{self.channel} rate limit: {_error_text(response)}")
        if status == 401:
            raise AuthorizationRevoked(
                f"{self.channel} refused the token: {_error_text(response)}", status=status
            )
        if status >= 500:
            raise PlatformError(
                f"{self.channel} failed ({status}): {_error_text(response)}",
                status=status,
                transient=True,
            )
        if status >= 400:
            raise PlatformError(
                f"{self.channel} refused ({status}): {_error_text(response)}", status=status
            )

    def rate_limited_until(self, response: httpx.Response, now: datetime) -> datetime | None:
        return None

    def quota_exhausted(self, response: httpx.Response) -> bool:
        return False

    async def identify(self, http: httpx.AsyncClient, *, access_token: str) -> Identity:
        raise NotImplementedError

    def sources(self, *, account_user_id: str, settings: Mapping[str, Any]) -> list[Source]:
        raise NotImplementedError

    async def fetch(
        self,
        http: httpx.AsyncClient,
        source: Source,
        *,
        access_token: str,
        page_token: str | None,
        high_water: str | None,
        page_size: int,
    ) -> Page:
        raise NotImplementedError

    def parse(self, body: Any) -> list[Parsed]:
        raise NotImplementedError

    async def publish(
        self, http: httpx.AsyncClient, outgoing: Outgoing, *, access_token: str
    ) -> str:
        raise NotImplementedError


def _newer(items: list[Any], key: Callable[[Any], str], high_water: str | None) -> list[Any]:
    return [i for i in items if high_water is None or key(i) > high_water]


# --- X ---------------------------------------------------------------------------------------

X_TWEET_FIELDS = "created_at,author_id,conversation_id,referenced_tweets,edit_history_tweet_ids"
X_USER_FIELDS = "username,name,verified,public_metrics"


def _x_key(post: Any) -> str:
    return f"{int(post['id']):020d}"


class XPlatform(Platform):
    """X API v2: OAuth 2.0 with PKCE; mentions and recent search; posts and replies."""

    channel = "x"
    scopes = ("tweet.read", "tweet.write", "users.read", "offline.access")

    def rate_limited_until(self, response: httpx.Response, now: datetime) -> datetime | None:
        reset = response.headers.get("x-rate-limit-reset")
        remaining = response.headers.get("x-rate-limit-remaining")
        if reset and (response.status_code == 429 or remaining == "0"):
            return datetime.fromtimestamp(int(reset), UTC)
        return None

    async def identify(self, http: httpx.AsyncClient, *, access_token: str) -> Identity:
        body = await self.call(http, "GET", "/2/users/me", access_token=access_token)
        data = body.get("data") or {}
        return Identity(str(data["id"]), data.get("username"))

    def sources(self, *, account_user_id: str, settings: Mapping[str, Any]) -> list[Source]:
        found = [Source("mentions", f"/2/users/{account_user_id}/mentions")]
        query = settings.get("query")
        if isinstance(query, str) and query.strip():
            found.append(Source("search", "/2/tweets/search/recent", {"query": query}))
        return found

    async def fetch(
        self,
        http: httpx.AsyncClient,
        source: Source,
        *,
        access_token: str,
        page_token: str | None,
        high_water: str | None,
        page_size: int,
    ) -> Page:
        params = dict(source.params) | {
            "max_results": str(max(page_size, 10 if source.key == "search" else 5)),
            "tweet.fields": X_TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": X_USER_FIELDS,
        }
        if high_water is not None:
            params["since_id"] = str(int(high_water))
        if page_token:
            params["next_token" if source.key == "search" else "pagination_token"] = page_token
        body = await self.call(http, "GET", source.path, access_token=access_token, params=params)
        posts = body.get("data") or []
        newer = _newer(posts, _x_key, high_water)
        meta = body.get("meta") or {}
        newest = max(newer, key=_x_key, default=None)
        return Page(
            body={**body, "data": newer},
            count=len(newer),
            next_token=meta.get("next_token"),
            newest_key=_x_key(newest) if newest else None,
            newest_at=_time(newest.get("created_at")) if newest else None,
            reached_stored=len(newer) < len(posts),
        )

    def parse(self, body: Any) -> list[Parsed]:
        return adapters.parse_x(body) if body.get("data") else []

    async def publish(
        self, http: httpx.AsyncClient, outgoing: Outgoing, *, access_token: str
    ) -> str:
        payload: dict[str, Any] = {"text": outgoing.text}
        if outgoing.in_reply_to:
            payload["reply"] = {"in_reply_to_tweet_id": outgoing.in_reply_to}
        body = await self.call(http, "POST", "/2/tweets", access_token=access_token, json=payload)
        return str(body["data"]["id"])


# --- Reddit ---------------------------------------------------------------------------------


def _reddit_key(thing: Any) -> str:
    data = thing.get("data") or {}
    created = int(float(data.get("created_utc") or 0))
    return f"{created:012d}:{int(str(data.get('id') or '0'), 36):016d}"


class RedditPlatform(Platform):
    """Reddit's OAuth API: a confidential web app (no PKCE: Reddit does not offer it),
    permanent refresh tokens; subreddits' new items, search, the inbox; comments."""

    channel = "reddit"
    scopes = ("identity", "read", "submit", "privatemessages", "history")
    pkce = False

    def extra_authorize_params(self) -> dict[str, str]:
        return {"duration": "permanent"}

    def token_auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return {"authorization": _basic(self.app)}, {}

    def rate_limited_until(self, response: httpx.Response, now: datetime) -> datetime | None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if reset and (response.status_code == 429 or (remaining and float(remaining) < 1)):
            return now + timedelta(seconds=float(reset))
        return None

    async def identify(self, http: httpx.AsyncClient, *, access_token: str) -> Identity:
        body = await self.call(http, "GET", "/api/v1/me", access_token=access_token)
        return Identity(f"t2_{body['id']}", body.get("name"))

    def sources(self, *, account_user_id: str, settings: Mapping[str, Any]) -> list[Source]:
        found = [Source("inbox", "/message/inbox")]
        for name in settings.get("subreddits") or []:
            found.append(Source(f"r/{name}", f"/r/{name}/new"))
        query = settings.get("query")
        if isinstance(query, str) and query.strip():
            found.append(Source("search", "/search", {"q": query, "sort": "new"}))
        return found

    async def fetch(
        self,
        http: httpx.AsyncClient,
        source: Source,
        *,
        access_token: str,
        page_token: str | None,
        high_water: str | None,
        page_size: int,
    ) -> Page:
        params = dict(source.params) | {"limit": str(page_size), "raw_json": "1"}
        if page_token:
            params["after"] = page_token
        body = await self.call(http, "GET", source.path, access_token=access_token, params=params)
        data = body.get("data") or {}
        children = [c for c in data.get("children") or [] if c.get("kind") in ("t1", "t3")]
        newer = _newer(children, _reddit_key, high_water)
        newest = max(newer, key=_reddit_key, default=None)
        created = (newest or {}).get("data", {}).get("created_utc")
        return Page(
            body={"kind": "Listing", "data": {**data, "children": newer}},
            count=len(newer),
            next_token=data.get("after"),
            newest_key=_reddit_key(newest) if newest else None,
            newest_at=datetime.fromtimestamp(float(created), UTC) if created else None,
            reached_stored=len(newer) < len(children),
        )

    def parse(self, body: Any) -> list[Parsed]:
        return adapters.parse_reddit(body)

    async def publish(
        self, http: httpx.AsyncClient, outgoing: Outgoing, *, access_token: str
    ) -> str:
        if not outgoing.in_reply_to:
            raise PlatformError("reddit: a comment answers a post or comment (inReplyTo)")
        body = await self.call(
            http,
            "POST",
            "/api/comment",
            access_token=access_token,
            data={"thing_id": outgoing.in_reply_to, "text": outgoing.text, "api_type": "json"},
        )
        result = body.get("json") or {}
        if result.get("errors"):
            raise PlatformError(f"reddit refused the comment: {result['errors']}")
        return str(result["data"]["things"][0]["data"]["name"])


# --- YouTube --------------------------------------------------------------------------------


def _youtube_key(thread: Any) -> str:
    snippet = ((thread.get("snippet") or {}).get("topLevelComment") or {}).get("snippet") or {}
    return f"{snippet.get('publishedAt', '')}:{thread.get('id', '')}"


class YouTubePlatform(Platform):
    """YouTube Data API v3 with Google's OAuth (PKCE, offline access): the comment threads of
    the brand's channel; replies to comments and comments on videos."""

    channel = "youtube"
    scopes = ("https://www.googleapis.com/auth/youtube.force-ssl",)

    def extra_authorize_params(self) -> dict[str, str]:
        return {"access_type": "offline", "prompt": "consent"}

    def token_auth(self) -> tuple[dict[str, str], dict[str, str]]:
        fields = {"client_id": self.app.client_id}
        if self.app.client_secret:
            fields["client_secret"] = self.app.client_secret
        return {}, fields

    def quota_exhausted(self, response: httpx.Response) -> bool:
        try:
            errors = response.json()["error"]["errors"]
        except (ValueError, KeyError, TypeError):
            return False
        return any(
            e.get("reason") in ("quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded")
            for e in errors
            if isinstance(e, dict)
        )

    async def identify(self, http: httpx.AsyncClient, *, access_token: str) -> Identity:
        body = await self.call(
            http,
            "GET",
            "/channels",
            access_token=access_token,
            params={"part": "snippet", "mine": "true"},
        )
        channel = (body.get("items") or [{}])[0]
        snippet = channel.get("snippet") or {}
        return Identity(str(channel["id"]), snippet.get("customUrl") or snippet.get("title"))

    def sources(self, *, account_user_id: str, settings: Mapping[str, Any]) -> list[Source]:
        return [
            Source(
                "comment-threads",
                "/commentThreads",
                {"allThreadsRelatedToChannelId": account_user_id, "order": "time"},
            )
        ]

    async def fetch(
        self,
        http: httpx.AsyncClient,
        source: Source,
        *,
        access_token: str,
        page_token: str | None,
        high_water: str | None,
        page_size: int,
    ) -> Page:
        params = dict(source.params) | {"part": "snippet,replies", "maxResults": str(page_size)}
        if page_token:
            params["pageToken"] = page_token
        body = await self.call(http, "GET", source.path, access_token=access_token, params=params)
        threads = body.get("items") or []
        newer = _newer(threads, _youtube_key, high_water)
        newest = max(newer, key=_youtube_key, default=None)
        return Page(
            body={**body, "items": newer},
            count=len(newer),
            next_token=body.get("nextPageToken"),
            newest_key=_youtube_key(newest) if newest else None,
            newest_at=_time(_youtube_key(newest).rsplit(":", 1)[0]) if newest else None,
            reached_stored=len(newer) < len(threads),
        )

    def parse(self, body: Any) -> list[Parsed]:
        return adapters.parse_youtube(body)

    async def publish(
        self, http: httpx.AsyncClient, outgoing: Outgoing, *, access_token: str
    ) -> str:
        if not outgoing.in_reply_to:
            raise PlatformError("youtube: a comment answers a comment or a video (inReplyTo)")
        if outgoing.kind == "reply":
            payload: dict[str, Any] = {
                "snippet": {"parentId": outgoing.in_reply_to, "textOriginal": outgoing.text}
            }
            path = "/comments"
        else:
            payload = {
                "snippet": {
                    "videoId": outgoing.in_reply_to,
                    "topLevelComment": {"snippet": {"textOriginal": outgoing.text}},
                }
            }
            path = "/commentThreads"
        body = await self.call(
            http, "POST", path, access_token=access_token, params={"part": "snippet"}, json=payload
        )
        return str(body["id"])


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


PLATFORMS: Mapping[str, type[Platform]] = {
    "x": XPlatform,
    "reddit": RedditPlatform,
    "youtube": YouTubePlatform,
}
