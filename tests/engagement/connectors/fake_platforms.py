"""Local fakes of X and Reddit on 127.0.0.1: OAuth 2.0 as the platforms do it, recorded API
responses (``recorded/``), the auth headers and scopes each endpoint checks, and rate limits.

The fake is one Starlette app served by uvicorn in a thread. Tests drive it through its
attributes: ``page_size`` (items per page, whatever was asked), ``limit()`` (a rate-limit
window per endpoint), ``hold()`` (block a page until released: the chaos test kills the
connector while it waits), ``requests`` (what was asked, in order).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RECORDED = Path(__file__).parent / "recorded"

X_CLIENT = ("x-client-id", None)  # a public client: PKCE, client_id in the form
REDDIT_CLIENT = ("reddit-client-id", "reddit-client-secret")  # a confidential web app

YOUTUBE_CLIENT = ("youtube-client-id", "youtube-client-secret")  # Google: secret in the form

X_SCOPES = {"tweet.read", "tweet.write", "users.read", "offline.access"}
YOUTUBE_SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"
REDDIT_SCOPES = {"identity", "read", "submit", "privatemessages", "history"}


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, as the platforms read it."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


@dataclass
class Grant:
    channel: str
    scopes: set[str]
    user_id: str
    expires_at: float = 0.0


@dataclass
class Window:
    limit: int
    seconds: float
    used: int = 0
    reset_at: float = 0.0


@dataclass
class Hold:
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class FakePlatforms:
    """X and Reddit, as far as the connectors use them."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.revoked: set[str] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.token_grants: list[tuple[str, str]] = []
        self.windows: dict[str, Window] = {}
        self.holds: dict[tuple[str, str | None], Hold] = {}
        self.page_size = 100
        self.access_ttl = 7200
        self.fail_status: dict[str, int] = {}
        self.x_search = recorded("x_search_recent.json")
        self.x_posts: list[dict[str, Any]] = []
        self.reddit_new = recorded("reddit_askreddit_new.json")
        self.reddit_comments: list[dict[str, Any]] = []
        self.youtube_threads = recorded("youtube_comment_threads_all_to_me.json")
        self.youtube_comments: list[dict[str, Any]] = []
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = 0

    # --- running -------------------------------------------------------------------------

    def start(self, port: int = 0) -> None:
        app = Starlette(routes=self._routes())
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake platforms did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        for hold in self.holds.values():
            hold.released.set()
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def urls(self) -> dict[str, dict[str, str]]:
        """``ENGAGEMENT_CONNECTOR_URLS`` pointing every platform here."""
        return self.urls_at(self.port)

    @staticmethod
    def urls_at(port: int) -> dict[str, dict[str, str]]:
        """``ENGAGEMENT_CONNECTOR_URLS`` for fakes on ``port``."""
        base = f"http://127.0.0.1:{port}"
        return {
            "x": {
                "api": f"{base}/x",
                "authorize": f"{base}/x/i/oauth2/authorize",
                "token": f"{base}/x/2/oauth2/token",
                "revoke": f"{base}/x/2/oauth2/revoke",
            },
            "reddit": {
                "api": f"{base}/reddit",
                "authorize": f"{base}/reddit/api/v1/authorize",
                "token": f"{base}/reddit/api/v1/access_token",
                "revoke": f"{base}/reddit/api/v1/revoke_token",
            },
            "youtube": {
                "api": f"{base}/youtube/v3",
                "authorize": f"{base}/youtube/o/oauth2/v2/auth",
                "token": f"{base}/youtube/token",
                "revoke": f"{base}/youtube/revoke",
            },
        }

    @staticmethod
    def apps() -> dict[str, dict[str, str]]:
        return {
            "x": {"client_id": X_CLIENT[0]},
            "reddit": {"client_id": REDDIT_CLIENT[0], "client_secret": REDDIT_CLIENT[1]},
            "youtube": {"client_id": YOUTUBE_CLIENT[0], "client_secret": YOUTUBE_CLIENT[1]},
        }

    # --- what tests set --------------------------------------------------------------------

    def limit(self, endpoint: str, limit: int, seconds: float) -> None:
        """At most ``limit`` requests to ``endpoint`` per window of ``seconds``."""
        self.windows[endpoint] = Window(limit, seconds)

    def hold(self, endpoint: str, page_token: str | None) -> Hold:
        """Block the request for that page until ``released`` is set."""
        hold = Hold()
        self.holds[(endpoint, page_token)] = hold
        return hold

    def authorize(self, url: str, *, user_id: str, deny_scopes: set[str] | None = None) -> str:
        """The person's consent: the authorize URL's checks, then the code for the redirect."""
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        channel = parts.path.split("/")[1]
        clients = {"x": X_CLIENT, "reddit": REDDIT_CLIENT, "youtube": YOUTUBE_CLIENT}
        assert query["response_type"] == "code"
        assert query["client_id"] == clients[channel][0]
        scopes = set(query["scope"].split())
        if channel == "youtube":
            assert query["code_challenge_method"] == "S256"
            assert query["access_type"] == "offline"
            assert scopes == {YOUTUBE_SCOPE}
        elif channel == "x":
            # X requires PKCE; S256 or plain.
            assert query["code_challenge_method"] == "S256", "X needs a PKCE challenge"
            assert scopes <= X_SCOPES
        else:
            assert query["duration"] == "permanent"
            assert scopes <= REDDIT_SCOPES
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "channel": channel,
            "redirect_uri": query["redirect_uri"],
            "challenge": query.get("code_challenge"),
            "scopes": scopes - (deny_scopes or set()),
            "user_id": user_id,
        }
        return code

    # --- the app -------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/x/2/oauth2/token", self.x_token, methods=["POST"]),
            Route("/x/2/oauth2/revoke", self.x_revoke, methods=["POST"]),
            Route("/x/2/users/me", self.x_me),
            Route("/x/2/users/{user_id}/mentions", self.x_mentions),
            Route("/x/2/tweets/search/recent", self.x_search_recent),
            Route("/x/2/tweets", self.x_create, methods=["POST"]),
            Route("/reddit/api/v1/access_token", self.reddit_token, methods=["POST"]),
            Route("/reddit/api/v1/revoke_token", self.reddit_revoke, methods=["POST"]),
            Route("/reddit/api/v1/me", self.reddit_me),
            Route("/reddit/r/{name}/new", self.reddit_listing),
            Route("/reddit/message/inbox", self.reddit_inbox),
            Route("/reddit/api/comment", self.reddit_comment, methods=["POST"]),
            Route("/youtube/token", self.youtube_token, methods=["POST"]),
            Route("/youtube/revoke", self.youtube_revoke, methods=["POST"]),
            Route("/youtube/v3/channels", self.youtube_channels),
            Route("/youtube/v3/commentThreads", self.youtube_list_threads),
            Route("/youtube/v3/comments", self.youtube_insert_comment, methods=["POST"]),
        ]

    def _issue(self, grant: Grant, *, refresh: bool) -> dict[str, Any]:
        access = secrets.token_urlsafe(24)
        self.access[access] = Grant(
            grant.channel, grant.scopes, grant.user_id, time.time() + self.access_ttl
        )
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "access_token": access,
            "scope": " ".join(sorted(grant.scopes)),
        }
        if refresh:
            token = secrets.token_urlsafe(24)
            self.refresh[token] = grant
            body["refresh_token"] = token
        return body

    async def _token(self, request: Request, channel: str) -> Response:
        form = await _form(request)
        auth = request.headers.get("authorization", "")
        if channel == "reddit":
            expected = base64.b64encode(f"{REDDIT_CLIENT[0]}:{REDDIT_CLIENT[1]}".encode()).decode()
            if auth != f"Basic {expected}":
                return JSONResponse({"message": "Unauthorized", "error": 401}, status_code=401)
            if not request.headers.get("user-agent"):
                return JSONResponse({"message": "Too Many Requests", "error": 429}, 429)
        elif channel == "youtube":
            if (form.get("client_id"), form.get("client_secret")) != YOUTUBE_CLIENT:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "Unauthorized"}, 401
                )
        elif form.get("client_id") != X_CLIENT[0]:
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Missing valid authorization header",
                },
                status_code=401,
            )
        self.token_grants.append((channel, form["grant_type"]))
        if form["grant_type"] == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if (
                code is None
                or code["channel"] != channel
                or code["redirect_uri"] != form.get("redirect_uri")
            ):
                return JSONResponse(
                    {
                        "error": "invalid_request",
                        "error_description": "Value passed for the authorization code was invalid.",
                    },
                    status_code=400,
                )
            if channel in ("x", "youtube"):
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                if digest.rstrip(b"=").decode() != code["challenge"]:
                    return JSONResponse(
                        {
                            "error": "invalid_request",
                            "error_description": "code verifier does not match the challenge",
                        },
                        status_code=400,
                    )
            grant = Grant(channel, code["scopes"], code["user_id"])
            return JSONResponse(self._issue(grant, refresh=True))
        if form["grant_type"] == "refresh_token":
            token = form.get("refresh_token", "")
            grant_or_none = self.refresh.get(token)
            if grant_or_none is None or token in self.revoked:
                return JSONResponse(
                    {
                        "error": "invalid_request",
                        "error_description": "Value passed for the token was invalid.",
                    },
                    status_code=400,
                )
            if channel == "x":
                del self.refresh[token]  # X rotates refresh tokens: the old one is spent
                return JSONResponse(self._issue(grant_or_none, refresh=True))
            return JSONResponse(self._issue(grant_or_none, refresh=False))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    async def x_token(self, request: Request) -> Response:
        return await self._token(request, "x")

    async def reddit_token(self, request: Request) -> Response:
        return await self._token(request, "reddit")

    async def _revoke(self, request: Request) -> None:
        form = await _form(request)
        token = form["token"]
        self.revoked.add(token)
        grant = self.refresh.get(token)
        if grant is not None:  # revoking the refresh token ends the whole grant
            for access, g in list(self.access.items()):
                if g.user_id == grant.user_id and g.channel == grant.channel:
                    self.revoked.add(access)

    async def x_revoke(self, request: Request) -> Response:
        await self._revoke(request)
        return JSONResponse({"revoked": True})

    async def reddit_revoke(self, request: Request) -> Response:
        await self._revoke(request)
        return Response(status_code=204)

    def _caller(self, request: Request, channel: str, needs: set[str]) -> Grant | Response:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("bearer ")
        grant = self.access.get(token)
        if not auth.lower().startswith("bearer ") or grant is None or token in self.revoked:
            if channel == "x":
                return JSONResponse(
                    {
                        "title": "Unauthorized",
                        "type": "about:blank",
                        "status": 401,
                        "detail": "Unauthorized",
                    },
                    status_code=401,
                )
            return JSONResponse({"message": "Unauthorized", "error": 401}, status_code=401)
        if grant.expires_at < time.time():
            return JSONResponse(
                {"title": "Unauthorized", "status": 401, "detail": "token expired"}, 401
            )
        if not needs <= grant.scopes:
            return JSONResponse(
                {
                    "title": "Forbidden",
                    "status": 403,
                    "detail": f"missing scopes {sorted(needs - grant.scopes)}",
                },
                status_code=403,
            )
        return grant

    def _rate(self, endpoint: str, channel: str) -> tuple[dict[str, str], Response | None]:
        window = self.windows.get(endpoint)
        if window is None:
            return {}, None
        now = time.time()
        if now >= window.reset_at:
            window.used, window.reset_at = 0, now + window.seconds
        window.used += 1
        remaining = max(window.limit - window.used, 0)
        if channel == "x":
            headers = {
                "x-rate-limit-limit": str(window.limit),
                "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(window.reset_at) + 1),
            }
        else:
            headers = {
                "x-ratelimit-used": str(window.used),
                "x-ratelimit-remaining": f"{float(remaining):.1f}",
                "x-ratelimit-reset": str(int(window.reset_at - now) + 1),
            }
        if window.used > window.limit:
            body = (
                {
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                }
                if channel == "x"
                else {"message": "Too Many Requests", "error": 429}
            )
            return headers, JSONResponse(body, status_code=429, headers=headers)
        return headers, None

    async def _held(self, endpoint: str, token: str | None) -> None:
        hold = self.holds.get((endpoint, token))
        if hold is None:
            return
        hold.reached.set()
        while not hold.released.is_set():
            await asyncio.sleep(0.05)

    def _log(self, request: Request, endpoint: str) -> None:
        self.requests.append((endpoint, request.method, dict(request.query_params)))

    def _failing(self, endpoint: str) -> Response | None:
        status = self.fail_status.get(endpoint)
        if status is None:
            return None
        return JSONResponse({"title": "Service Unavailable", "status": status}, status_code=status)

    # --- X ---------------------------------------------------------------------------------

    async def x_me(self, request: Request) -> Response:
        grant = self._caller(request, "x", {"users.read", "tweet.read"})
        if isinstance(grant, Response):
            return grant
        body = recorded("x_users_me.json")
        body["data"]["id"] = grant.user_id
        return JSONResponse(body)

    def _x_page(
        self, request: Request, endpoint: str, token_param: str
    ) -> tuple[dict[str, Any], str | None]:
        params = request.query_params
        posts = self.x_search["data"] + self.x_posts
        posts = sorted(posts, key=lambda p: int(p["id"]), reverse=True)
        since = params.get("since_id")
        if since:
            posts = [p for p in posts if int(p["id"]) > int(since)]
        start = int((params.get(token_param) or "p0")[1:])
        size = min(int(params.get("max_results", "10")), self.page_size)
        page = posts[start : start + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if start + size < len(posts):
            meta["next_token"] = f"p{start + size}"
        authors = {p["author_id"] for p in page}
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            body["includes"] = {
                "users": [u for u in self.x_search["includes"]["users"] if u["id"] in authors]
            }
        return body, params.get(token_param)

    async def _x_list(self, request: Request, endpoint: str, token_param: str) -> Response:
        self._log(request, endpoint)
        grant = self._caller(request, "x", {"tweet.read", "users.read"})
        if isinstance(grant, Response):
            return grant
        failing = self._failing(endpoint)
        if failing is not None:
            return failing
        headers, limited = self._rate(endpoint, "x")
        if limited is not None:
            return limited
        body, token = self._x_page(request, endpoint, token_param)
        await self._held(endpoint, token)
        return JSONResponse(body, headers=headers)

    async def x_mentions(self, request: Request) -> Response:
        return await self._x_list(request, "mentions", "pagination_token")

    async def x_search_recent(self, request: Request) -> Response:
        return await self._x_list(request, "search", "next_token")

    async def x_create(self, request: Request) -> Response:
        self._log(request, "create")
        grant = self._caller(request, "x", {"tweet.read", "tweet.write", "users.read"})
        if isinstance(grant, Response):
            return grant
        failing = self._failing("create")
        if failing is not None:
            return failing
        headers, limited = self._rate("create", "x")
        if limited is not None:
            return limited
        payload = await request.json()
        body = recorded("x_create_tweet.json")
        body["data"]["id"] = str(int(body["data"]["id"]) + len(self.x_posts))
        body["data"]["text"] = payload["text"]
        self.x_posts.append({"payload": payload, "id": body["data"]["id"], "user": grant.user_id})
        return JSONResponse(body, status_code=201, headers=headers)

    # --- Reddit ----------------------------------------------------------------------------

    async def reddit_me(self, request: Request) -> Response:
        grant = self._caller(request, "reddit", {"identity"})
        if isinstance(grant, Response):
            return grant
        return JSONResponse({"id": grant.user_id, "name": "brand_on_reddit"})

    async def reddit_listing(self, request: Request) -> Response:
        endpoint = f"r/{request.path_params['name']}"
        self._log(request, endpoint)
        grant = self._caller(request, "reddit", {"read"})
        if isinstance(grant, Response):
            return grant
        failing = self._failing(endpoint)
        if failing is not None:
            return failing
        headers, limited = self._rate(endpoint, "reddit")
        if limited is not None:
            return limited
        listing = copy.deepcopy(self.reddit_new)
        children = listing["data"]["children"]
        after = request.query_params.get("after")
        start = 0
        if after:
            names = [c["data"]["name"] for c in children]
            start = names.index(after) + 1 if after in names else len(children)
        size = min(int(request.query_params.get("limit", "25")), self.page_size)
        page = children[start : start + size]
        listing["data"]["children"] = page
        listing["data"]["dist"] = len(page)
        listing["data"]["after"] = (
            page[-1]["data"]["name"] if start + size < len(children) else None
        )
        await self._held(endpoint, after)
        return JSONResponse(listing, headers=headers)

    async def reddit_inbox(self, request: Request) -> Response:
        self._log(request, "inbox")
        grant = self._caller(request, "reddit", {"privatemessages"})
        if isinstance(grant, Response):
            return grant
        empty = {
            "kind": "Listing",
            "data": {
                "after": None,
                "dist": 0,
                "modhash": None,
                "geo_filter": "",
                "children": [],
                "before": None,
            },
        }
        return JSONResponse(empty)

    async def reddit_comment(self, request: Request) -> Response:
        self._log(request, "comment")
        grant = self._caller(request, "reddit", {"submit"})
        if isinstance(grant, Response):
            return grant
        form = await _form(request)
        body = recorded("reddit_comment_reply.json")
        thing = body["json"]["data"]["things"][0]["data"]
        thing["parent_id"] = form["thing_id"]
        thing["body"] = form["text"]
        self.reddit_comments.append(form)
        return JSONResponse(body)

    # --- YouTube -------------------------------------------------------------------------

    async def youtube_token(self, request: Request) -> Response:
        return await self._token(request, "youtube")

    async def youtube_revoke(self, request: Request) -> Response:
        await self._revoke(request)
        return JSONResponse({})

    def _quota(self, endpoint: str) -> Response | None:
        window = self.windows.get(endpoint)
        if window is None:
            return None
        window.used += 1
        if window.used <= window.limit:
            return None
        message = "The request cannot be completed because you have exceeded your quota."
        reason = {"message": message, "domain": "youtube.quota", "reason": "quotaExceeded"}
        body = {"error": {"code": 403, "message": message, "errors": [reason]}}
        return JSONResponse(body, status_code=403)

    async def youtube_channels(self, request: Request) -> Response:
        grant = self._caller(request, "youtube", {YOUTUBE_SCOPE})
        if isinstance(grant, Response):
            return grant
        assert request.query_params.get("mine") == "true"
        return JSONResponse(
            {
                "kind": "youtube#channelListResponse",
                "items": [
                    {
                        "kind": "youtube#channel",
                        "id": grant.user_id,
                        "snippet": {"title": "ikaros data", "customUrl": "@ikarosdata"},
                    }
                ],
            }
        )

    async def youtube_list_threads(self, request: Request) -> Response:
        self._log(request, "commentThreads")
        grant = self._caller(request, "youtube", {YOUTUBE_SCOPE})
        if isinstance(grant, Response):
            return grant
        limited = self._quota("commentThreads")
        if limited is not None:
            return limited
        assert request.query_params["allThreadsRelatedToChannelId"] == grant.user_id
        body = copy.deepcopy(self.youtube_threads)
        start = int((request.query_params.get("pageToken") or "p0")[1:])
        size = min(int(request.query_params.get("maxResults", "20")), self.page_size)
        body["items"] = body["items"][start : start + size]
        if start + size < len(self.youtube_threads["items"]):
            body["nextPageToken"] = f"p{start + size}"
        await self._held("commentThreads", request.query_params.get("pageToken"))
        return JSONResponse(body)

    async def youtube_insert_comment(self, request: Request) -> Response:
        self._log(request, "comments")
        grant = self._caller(request, "youtube", {YOUTUBE_SCOPE})
        if isinstance(grant, Response):
            return grant
        payload = await request.json()
        body = recorded("youtube_comment_insert.json")
        parent = payload["snippet"]["parentId"]
        body["id"] = f"{parent}.9iPXEClD9lW9iPXLqKy_P{len(self.youtube_comments)}"
        body["snippet"]["parentId"] = parent
        body["snippet"]["textOriginal"] = body["snippet"]["textDisplay"] = payload["snippet"][
            "textOriginal"
        ]
        self.youtube_comments.append(payload)
        return JSONResponse(body)
