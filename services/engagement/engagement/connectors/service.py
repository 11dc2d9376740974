"""Connected accounts: connecting (OAuth 2.0), tokens sealed and refreshed, pulling pages into
ingestion with stored cursors, and publishing care replies and staff posts.

Every platform call happens outside any transaction; what it brings is stored in a transaction
of its own that also moves the cursor (pulling) or the publication's status (publishing), so a
process killed at any point leaves either the old state (the call is made again) or the new
one (nothing is done twice). One account's failure is recorded on that account and never
stops the round of another.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import metrics
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, CrmError, NotFound
from crm_shared.events import record_event
from crm_shared.outbound import guarded_client
from crm_shared.sealed import KeyRing
from engagement.care import service as care
from engagement.care.models import CaseReply
from engagement.connectors.events import PublicationFailed, PublicationPublished
from engagement.connectors.models import (
    CHANNELS,
    ConnectedAccount,
    ConnectorAuthorization,
    ConnectorCursor,
    Publication,
)
from engagement.connectors.platforms import (
    DEFAULT_URLS,
    PLATFORMS,
    App,
    AuthorizationRevoked,
    Outgoing,
    Platform,
    PlatformError,
    RateLimited,
    Tokens,
    pkce_pair,
)
from engagement.ingestion.normalized import AuthorRef, NormalizedItem
from engagement.ingestion.service import analyse, ingest
from engagement.interactions.models import Interaction
from engagement.listening import service as listening
from engagement.settings import EngagementSettings

log = logging.getLogger(__name__)
meter = metrics.get_meter("engagement.connectors")
items_pulled = meter.create_counter(
    "crm.connector.items.pulled", description="Items pulled from the platforms and ingested."
)
pull_lag = meter.create_histogram(
    "crm.connector.lag",
    unit="s",
    description="Seconds from an item's platform time to its storing (newest item of a page).",
)
rate_limit_waits = meter.create_counter(
    "crm.connector.rate_limit.waits",
    description="Times a platform's rate limit made an account or publication wait.",
)
sync_failures = meter.create_counter(
    "crm.connector.sync.failures", description="Account rounds that failed (backed off)."
)
publish_failures = meter.create_counter(
    "crm.connector.publish.failures",
    description="Publication attempts that failed (retried or, at the end, failed).",
)
published = meter.create_counter(
    "crm.connector.published", description="Publications the platforms accepted."
)

AUTHORIZATION_TTL = timedelta(minutes=15)
MAX_POST_LENGTH = {"x": 280, "reddit": 10_000, "youtube": 10_000}


class NotConfigured(CrmError):
    """The deployment has not set up what this needs (a key ring, the platform's app)."""

    code = "FAILED_PRECONDITION"
    http_status = 412


class PlatformRefused(CrmError):
    """The platform refused what we asked on the caller's behalf."""

    code = "PLATFORM_ERROR"
    http_status = 502


def _uuid(value: uuid.UUID) -> uuid.UUID:
    """A plain ``uuid.UUID`` (asyncpg returns its own subclass, which orjson refuses)."""
    return uuid.UUID(str(value))


# --- configuration --------------------------------------------------------------------------


def supported_channels() -> tuple[str, ...]:
    return tuple(PLATFORMS)


def keyring(settings: EngagementSettings) -> KeyRing:
    if not settings.connector_token_keys:
        raise NotConfigured(
            "channel: ENGAGEMENT_CONNECTOR_TOKEN_KEYS is not set; tokens cannot be sealed",
            field="channel",
        )
    return KeyRing(settings.connector_token_keys)


def platform_for(settings: EngagementSettings, channel: str) -> Platform:
    """The platform ``channel`` with the deployment's app and URLs."""
    cls = PLATFORMS.get(channel)
    if cls is None:
        raise BadUserInput(
            f"channel: one of {', '.join(PLATFORMS)} (more channels: not yet)", field="channel"
        )
    app = settings.connector_apps.get(channel) or {}
    if not app.get("client_id"):
        raise NotConfigured(
            f"channel: no {channel} app configured (ENGAGEMENT_CONNECTOR_APPS)", field="channel"
        )
    urls = {**DEFAULT_URLS[channel], **settings.connector_urls.get(channel, {})}
    return cls(urls, App(app["client_id"], app.get("client_secret")))


def http_client(settings: EngagementSettings) -> httpx.AsyncClient:
    """The guarded outbound client (no internal addresses unless the settings allow them)."""
    return guarded_client(settings.outbound_policy, timeout=settings.connector_http_timeout_seconds)


# --- connecting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    authorization_url: str
    state: str
    expires_at: datetime


def _listen_settings(subreddits: Sequence[str] | None, query: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if subreddits:
        names = []
        for i, name in enumerate(subreddits):
            clean = name.strip().removeprefix("r/")
            if not clean or not all(c.isalnum() or c == "_" for c in clean) or len(clean) > 21:
                raise BadUserInput(
                    f"input.subreddits[{i}]: a subreddit name (letters, digits, _)",
                    field=f"input.subreddits[{i}]",
                )
            names.append(clean)
        found["subreddits"] = names
    if query is not None:
        if len(query) > 512:
            raise BadUserInput("input.query: at most 512 characters", field="input.query")
        found["query"] = query.strip()
    return found


async def start_connection(
    *,
    session: AsyncSession,
    settings: EngagementSettings,
    tenant_id: uuid.UUID,
    channel: str,
    redirect_uri: str,
    started_by: str,
    subreddits: Sequence[str] | None = None,
    query: str | None = None,
) -> Started:
    """Begin the authorization-code flow: the URL to send the staff member to, and its state."""
    platform = platform_for(settings, channel)
    keys = keyring(settings)
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadUserInput("input.redirectUri: an absolute http(s) URL", field="input.redirectUri")
    listen = _listen_settings(subreddits, query)
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    expires_at = utcnow() + AUTHORIZATION_TTL
    session.add(
        ConnectorAuthorization(
            state=state,
            tenant_id=tenant_id,
            channel=channel,
            redirect_uri=redirect_uri,
            code_verifier=keys.seal(verifier),
            settings=listen,
            started_by=started_by,
            expires_at=expires_at,
        )
    )
    await session.flush()
    url = platform.authorization_url(redirect_uri=redirect_uri, state=state, challenge=challenge)
    return Started(url, state, expires_at)


async def complete_connection(
    *,
    db: Database,
    settings: EngagementSettings,
    tenant_id: uuid.UUID,
    state: str,
    code: str,
    http: httpx.AsyncClient,
) -> ConnectedAccount:
    """Exchange the code for tokens, learn whose account it is, and keep it (tokens sealed).

    The state is used once: it is deleted before the platform is called. Connecting an
    account again (the same platform user) renews its tokens and makes it active.
    """
    keys = keyring(settings)
    async with db.session() as session, session.begin():
        pending = await session.get(ConnectorAuthorization, state, with_for_update=True)
        if pending is None or pending.tenant_id != tenant_id or pending.expires_at < utcnow():
            raise BadUserInput(
                "state: unknown or expired; start the connection again", field="state"
            )
        await session.delete(pending)
    platform = platform_for(settings, pending.channel)
    try:
        tokens = await platform.exchange_code(
            http,
            code=code,
            verifier=keys.open(pending.code_verifier),
            redirect_uri=pending.redirect_uri,
        )
        identity = await platform.identify(http, access_token=tokens.access_token)
    except (PlatformError, RateLimited) as exc:
        raise PlatformRefused(f"code: {exc}", field="code") from None
    except httpx.HTTPError as exc:
        raise PlatformRefused(
            f"code: {pending.channel} did not answer: {exc}", field="code"
        ) from None
    async with db.session() as session, session.begin():
        account = (
            await session.exec(
                select(ConnectedAccount)
                .where(
                    ConnectedAccount.tenant_id == tenant_id,
                    ConnectedAccount.channel == pending.channel,
                    ConnectedAccount.platform_user_id == identity.platform_user_id,
                )
                .with_for_update()
            )
        ).first()
        if account is None:
            account = ConnectedAccount(
                tenant_id=tenant_id,
                channel=pending.channel,
                platform_user_id=identity.platform_user_id,
                connected_by=pending.started_by,
            )
        account.handle = identity.handle
        account.settings = pending.settings
        account.status = "active"
        account.last_error = None
        account.failures = 0
        account.next_sync_at = None
        _keep_tokens(account, tokens, keys)
        session.add(account)
        brand = await care.brand_account_keys(session=session, tenant_id=tenant_id)
        if (account.channel, account.platform_user_id) not in brand:
            # What the account writes is the brand speaking (care's replies come from it).
            await care.create_brand_account(
                session=session,
                tenant_id=tenant_id,
                channel=account.channel,
                platform_user_id=account.platform_user_id,
                handle=account.handle,
            )
        await session.flush()
        await session.refresh(account)
    return account


def _keep_tokens(account: ConnectedAccount, tokens: Tokens, keys: KeyRing) -> None:
    account.access_token = keys.seal(tokens.access_token)
    if tokens.refresh_token is not None:
        account.refresh_token = keys.seal(tokens.refresh_token)
    account.expires_at = tokens.expires_at
    if tokens.scopes:
        account.scopes = list(tokens.scopes)


async def list_accounts(*, session: AsyncSession, tenant_id: uuid.UUID) -> list[ConnectedAccount]:
    rows = await session.exec(
        select(ConnectedAccount)
        .where(ConnectedAccount.tenant_id == tenant_id)
        .order_by(col(ConnectedAccount.created_at), col(ConnectedAccount.id))
    )
    return list(rows)


async def cursors_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ConnectorCursor]]:
    rows = await session.exec(
        select(ConnectorCursor)
        .where(
            ConnectorCursor.tenant_id == tenant_id,
            col(ConnectorCursor.account_id).in_(list(account_ids)),
        )
        .order_by(col(ConnectorCursor.source))
    )
    found: dict[uuid.UUID, list[ConnectorCursor]] = {i: [] for i in account_ids}
    for row in rows:
        found[row.account_id].append(row)
    return found


async def _account(
    session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID, *, field: str
) -> ConnectedAccount:
    account = await session.get(ConnectedAccount, account_id, with_for_update=True)
    if account is None or account.tenant_id != tenant_id:
        raise NotFound(f"{field}: no such connected account", field=field)
    return account


async def set_paused(
    *, session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID, paused: bool
) -> ConnectedAccount:
    """Pause (nothing pulled or published; cursors kept) or resume an account."""
    account = await _account(session, tenant_id, account_id, field="accountId")
    if account.status in ("disconnected", "reauthorize"):
        raise Conflict(
            f"accountId: the account is {account.status}; connect it again", field="accountId"
        )
    account.status = "paused" if paused else "active"
    if not paused:
        account.next_sync_at = None
    session.add(account)
    await session.flush()
    return account


async def disconnect(
    *,
    db: Database,
    settings: EngagementSettings,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    http: httpx.AsyncClient,
) -> ConnectedAccount:
    """Revoke the account's tokens on the platform, then forget them.

    The tokens are deleted whatever the platform answers (a token we no longer hold cannot be
    used by us); a revocation the platform refused is kept in ``last_error`` so staff can
    revoke the app on the platform themselves. Queued publications of the account fail.
    """
    async with db.session() as session:
        account = await _account(session, tenant_id, account_id, field="accountId")
    revoke_error: str | None = None
    if account.access_token or account.refresh_token:
        keys = keyring(settings)
        platform = platform_for(settings, account.channel)
        try:
            # Revoking the refresh token ends the grant (X, Reddit, Google revoke both).
            if account.refresh_token:
                await platform.revoke(
                    http, token=keys.open(account.refresh_token), hint="refresh_token"
                )
            if account.access_token:
                await platform.revoke(
                    http, token=keys.open(account.access_token), hint="access_token"
                )
        except (PlatformError, RateLimited, httpx.HTTPError) as exc:
            revoke_error = f"revocation failed, revoke the app on {account.channel}: {exc}"
    async with db.session() as session, session.begin():
        account = await _account(session, tenant_id, account_id, field="accountId")
        account.status = "disconnected"
        account.access_token = None
        account.refresh_token = None
        account.expires_at = None
        account.last_error = revoke_error
        account.last_error_at = utcnow() if revoke_error else None
        session.add(account)
        queued = await session.exec(
            select(Publication)
            .where(Publication.account_id == account.id, Publication.status == "queued")
            .with_for_update()
        )
        for publication in queued:
            await _fail(session, publication, "the account was disconnected")
        await session.flush()
        await session.refresh(account)
    return account


# --- tokens ---------------------------------------------------------------------------------


async def fresh_access_token(
    *,
    db: Database,
    settings: EngagementSettings,
    account: ConnectedAccount,
    platform: Platform,
    http: httpx.AsyncClient,
) -> str:
    """The account's access token, refreshed first when it expires within the margin.

    The refreshed tokens are sealed and stored at once (X rotates its refresh tokens: the old
    one stops working). A token sealed with an older key is sealed again with the current one.
    """
    keys = keyring(settings)
    if account.access_token is None:
        raise AuthorizationRevoked(f"{account.channel}: the account holds no token")
    margin = timedelta(seconds=settings.connector_refresh_margin_seconds)
    due = account.expires_at is not None and account.expires_at - margin <= utcnow()
    if not due:
        if not keys.is_current(account.access_token):
            await _reseal(db, account.id, keys)
        return keys.open(account.access_token)
    if account.refresh_token is None:
        raise AuthorizationRevoked(f"{account.channel}: the token expired and cannot be refreshed")
    tokens = await platform.refresh(http, refresh_token=keys.open(account.refresh_token))
    async with db.session() as session, session.begin():
        row = await session.get(ConnectedAccount, account.id, with_for_update=True)
        if row is not None:
            _keep_tokens(row, tokens, keys)
            session.add(row)
    _keep_tokens(account, tokens, keys)
    return tokens.access_token


async def _reseal(db: Database, account_id: uuid.UUID, keys: KeyRing) -> None:
    async with db.session() as session, session.begin():
        row = await session.get(ConnectedAccount, account_id, with_for_update=True)
        if row is None:
            return
        if row.access_token:
            row.access_token = keys.reseal(row.access_token)
        if row.refresh_token:
            row.refresh_token = keys.reseal(row.refresh_token)
        session.add(row)


# --- pulling --------------------------------------------------------------------------------


@dataclass
class Pulled:
    """What one account's round did."""

    pages: int = 0
    items: int = 0
    rejected: int = 0


async def _tracker_query(session: AsyncSession, tenant_id: uuid.UUID, channel: str) -> str | None:
    """The tenant's trackers as one search query (X and Reddit search syntax agree here)."""
    trackers = await listening.list_trackers(session=session, tenant_id=tenant_id)
    terms = []
    for tracker in trackers:
        term = tracker.term.replace('"', "")
        terms.append(term if tracker.kind == "hashtag" else f'"{term}"')
    if not terms:
        return None
    query = " OR ".join(terms)
    return f"({query}) -is:retweet" if channel == "x" else query


async def sync_account(
    *,
    db: Database,
    settings: EngagementSettings,
    account_id: uuid.UUID,
    http: httpx.AsyncClient,
    pulled: Pulled | None = None,
) -> Pulled:
    """Pull every source of the account, page by page, each page stored with its cursor.

    Raises what stopped it (a rate limit, a refused token, a failure); the caller records it
    on the account.
    """
    async with db.session() as session:
        account = await session.get(ConnectedAccount, account_id)
        if account is None or account.status != "active":
            return pulled if pulled is not None else Pulled()
        query = account.settings.get("query")
        if query is None:
            query = await _tracker_query(session, account.tenant_id, account.channel)
    platform = platform_for(settings, account.channel)
    access = await fresh_access_token(
        db=db, settings=settings, account=account, platform=platform, http=http
    )
    sources = platform.sources(
        account_user_id=account.platform_user_id, settings={**account.settings, "query": query}
    )
    done = pulled if pulled is not None else Pulled()
    for source in sources:
        for _ in range(settings.connector_max_pages_per_round):
            complete = await pull_page(
                db=db,
                settings=settings,
                account=account,
                platform=platform,
                source=source,
                access_token=access,
                http=http,
                pulled=done,
            )
            if platform.exhausted_until is not None:
                raise RateLimited(platform.exhausted_until, f"{account.channel}: window used up")
            if complete:
                break
    return done


async def pull_page(
    *,
    db: Database,
    settings: EngagementSettings,
    account: ConnectedAccount,
    platform: Platform,
    source: Any,
    access_token: str,
    http: httpx.AsyncClient,
    pulled: Pulled,
) -> bool:
    """Fetch the source's next page and store it with the cursor; True when the pass is done.

    The cursor is read before the call and locked and compared in the storing transaction:
    if another worker moved it meanwhile, this page is dropped (it stored the same page).
    """
    async with db.session() as session:
        cursor = await session.get(ConnectorCursor, (account.id, source.key))
    high_water = cursor.high_water if cursor else None
    token = cursor.page_token if cursor else None
    page = await platform.fetch(
        http,
        source,
        access_token=access_token,
        page_token=token,
        high_water=high_water,
        page_size=settings.connector_page_size,
    )
    parsed = platform.parse(page.body) if page.count else []
    items = [p for _, p in parsed if isinstance(p, NormalizedItem)]
    pulled.rejected += sum(
        1 for _, p in parsed if p is not None and not isinstance(p, NormalizedItem)
    )
    async with db.session() as session:
        analysis = await analyse(
            session=session,
            tenant_id=account.tenant_id,
            items=items,
            min_confidence=settings.language_min_confidence,
        )
    now = utcnow()
    async with db.session() as session, session.begin():
        row = await session.get(ConnectorCursor, (account.id, source.key), with_for_update=True)
        if row is None:
            row = ConnectorCursor(
                account_id=account.id, source=source.key, tenant_id=account.tenant_id
            )
            session.add(row)
            await session.flush()
        elif (row.high_water, row.page_token) != (high_water, token):
            return True  # another worker stored this page: leave the rest to it
        if items:
            await ingest(
                session=session,
                tenant_id=_uuid(account.tenant_id),
                items=items,
                min_confidence=settings.language_min_confidence,
                analysis=analysis,
            )
        pending = max(
            (k for k in (row.pending_high_water, page.newest_key) if k is not None), default=None
        )
        complete = not page.next_token or page.reached_stored or page.count == 0
        if complete:
            row.high_water = max(
                (k for k in (row.high_water, pending) if k is not None), default=None
            )
            row.pending_high_water = None
            row.page_token = None
        else:
            row.pending_high_water = pending
            row.page_token = page.next_token
        row.pages += 1
        row.items += len(items)
        row.last_synced_at = now
        session.add(row)
        if page.newest_at is not None:
            await session.execute(
                text(
                    "UPDATE engagement.connected_accounts SET newest_item_at = "
                    "GREATEST(newest_item_at, :at) WHERE id = :id"
                ),
                {"at": page.newest_at, "id": account.id},
            )
    pulled.pages += 1
    pulled.items += len(items)
    attributes = {"channel": account.channel, "source": source.key.split("/")[0]}
    items_pulled.add(len(items), attributes)
    if page.newest_at is not None:
        pull_lag.record(max(0.0, (now - page.newest_at).total_seconds()), attributes)
    return complete


async def claim_due_accounts(
    db: Database, settings: EngagementSettings, limit: int
) -> list[uuid.UUID]:
    """Lease the accounts due for a round (no other worker takes them until the lease ends)."""
    lease = timedelta(seconds=settings.connector_account_round_seconds * 2)
    async with db.session() as session, session.begin():
        rows = await session.execute(
            text(
                "UPDATE engagement.connected_accounts SET lease_until = now() + :lease "
                "WHERE id IN (SELECT id FROM engagement.connected_accounts "
                "  WHERE status = 'active' AND access_token IS NOT NULL"
                "    AND (next_sync_at IS NULL OR next_sync_at <= now())"
                "    AND (rate_limited_until IS NULL OR rate_limited_until <= now())"
                "    AND (lease_until IS NULL OR lease_until < now())"
                "  ORDER BY next_sync_at NULLS FIRST, id LIMIT :limit FOR UPDATE SKIP LOCKED) "
                "RETURNING id"
            ),
            {"lease": lease, "limit": limit},
        )
        return [_uuid(r[0]) for r in rows]


async def run_account_round(
    *, db: Database, settings: EngagementSettings, account_id: uuid.UUID, http: httpx.AsyncClient
) -> Pulled:
    """One account's round, bounded in time, its outcome recorded on the account."""
    now = utcnow
    outcome: dict[str, Any] = {}
    pulled = Pulled()
    try:
        await asyncio.wait_for(
            sync_account(db=db, settings=settings, account_id=account_id, http=http, pulled=pulled),
            timeout=settings.connector_account_round_seconds,
        )
        outcome = {
            "last_sync_at": now(),
            "failures": 0,
            "last_error": None,
            "next_sync_at": now() + timedelta(seconds=settings.connector_pull_every_seconds),
        }
    except RateLimited as exc:
        rate_limit_waits.add(1, {"channel": "any", "what": "pull"})
        outcome = {"rate_limited_until": exc.until, "next_sync_at": exc.until}
    except AuthorizationRevoked as exc:
        outcome = {"status": "reauthorize", "last_error": str(exc), "last_error_at": now()}
    except Exception as exc:  # one account's failure is recorded, never spread
        log.warning("connector round of %s failed: %s", account_id, exc, exc_info=True)
        sync_failures.add(1)
        outcome = {"last_error": f"{type(exc).__name__}: {exc}"[:1000], "last_error_at": now()}
        outcome["failures"] = None  # incremented below
    async with db.session() as session, session.begin():
        row = await session.get(ConnectedAccount, account_id, with_for_update=True)
        if row is not None:
            if "failures" in outcome and outcome["failures"] is None:
                row.failures += 1
                delay = min(
                    settings.connector_backoff_base_seconds * 2 ** (row.failures - 1),
                    settings.connector_backoff_max_seconds,
                )
                row.next_sync_at = now() + timedelta(seconds=delay)
                del outcome["failures"]
            for key, value in outcome.items():
                setattr(row, key, value)
            row.lease_until = None
            session.add(row)
    return pulled


async def sync_due(db: Database, settings: EngagementSettings, *, concurrency: int = 4) -> int:
    """Every due account's round (the periodic job): at most ``concurrency`` at once."""
    accounts = await claim_due_accounts(db, settings, limit=concurrency * 4)
    if not accounts:
        return 0
    gate = asyncio.Semaphore(concurrency)
    async with http_client(settings) as http:

        async def one(account_id: uuid.UUID) -> None:
            async with gate:
                await run_account_round(db=db, settings=settings, account_id=account_id, http=http)

        await asyncio.gather(*(one(a) for a in accounts))
    return len(accounts)


# --- publishing -----------------------------------------------------------------------------


def check_post_text(channel: str, value: str, *, field: str) -> str:
    body = value.strip()
    if not body:
        raise BadUserInput(f"{field}: must not be empty", field=field)
    limit = MAX_POST_LENGTH.get(channel, 10_000)
    if len(body) > limit:
        raise BadUserInput(f"{field}: at most {limit} characters on {channel}", field=field)
    return body


async def request_post(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    text_: str,
    in_reply_to: str | None,
    requested_by: str,
) -> Publication:
    """Queue a staff member's post (or comment under ``in_reply_to``) on the account."""
    account = await _account(session, tenant_id, account_id, field="input.accountId")
    if account.status == "disconnected":
        raise Conflict("input.accountId: the account is disconnected", field="input.accountId")
    body = check_post_text(account.channel, text_, field="input.text")
    if account.channel in ("reddit", "youtube") and not in_reply_to:
        raise BadUserInput(
            f"input.inReplyTo: on {account.channel} we publish comments (name what they answer)",
            field="input.inReplyTo",
        )
    publication = Publication(
        tenant_id=tenant_id,
        account_id=account.id,
        channel=account.channel,
        # On YouTube staff answer a comment (comments.insert with its parentId).
        kind="reply" if account.channel == "youtube" else "comment" if in_reply_to else "post",
        text=body,
        in_reply_to=in_reply_to,
        requested_by=requested_by,
    )
    session.add(publication)
    await session.flush()
    return publication


async def queue_care_reply(
    *, session: AsyncSession, tenant_id: uuid.UUID, interaction_id: uuid.UUID
) -> Publication | None:
    """If the interaction is a care reply still to publish and its brand account is
    connected, queue it (once: the interaction is unique among publications). Care's
    ``publish_status`` stays ``to_publish`` until the platform answers."""
    reply = await session.get(CaseReply, interaction_id, with_for_update=True)
    if reply is None or reply.tenant_id != tenant_id or reply.publish_status != "to_publish":
        return None
    queued = await session.exec(
        select(Publication.id).where(Publication.interaction_id == interaction_id)
    )
    if queued.first() is not None:
        return None  # queued already (a redelivered event)
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None:
        return None
    account = (
        await session.exec(
            select(ConnectedAccount).where(
                ConnectedAccount.tenant_id == tenant_id,
                ConnectedAccount.channel == interaction.channel,
                ConnectedAccount.platform_user_id == interaction.author_platform_user_id,
                ConnectedAccount.status != "disconnected",
            )
        )
    ).first()
    if account is None:
        return None  # no connected account: a person publishes it
    publication = Publication(
        tenant_id=tenant_id,
        account_id=account.id,
        channel=account.channel,
        kind="reply",
        text=interaction.text or "",
        in_reply_to=interaction.parent_id,
        interaction_id=interaction.id,
        case_id=reply.case_id,
        requested_by=reply.replied_by,
    )
    session.add(publication)
    await session.flush()
    return publication


async def list_publications(
    *, session: AsyncSession, tenant_id: uuid.UUID, status: str | None, first: int
) -> list[Publication]:
    query = select(Publication).where(Publication.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Publication.status == status)
    rows = await session.exec(
        query.order_by(col(Publication.created_at).desc(), col(Publication.id)).limit(first)
    )
    return list(rows)


async def retry_publication(
    *, session: AsyncSession, tenant_id: uuid.UUID, publication_id: uuid.UUID
) -> Publication:
    """Queue a failed publication again (staff checked the platform first if it says so)."""
    publication = await session.get(Publication, publication_id, with_for_update=True)
    if publication is None or publication.tenant_id != tenant_id:
        raise NotFound("publicationId: no such publication", field="publicationId")
    if publication.status != "failed":
        raise Conflict(f"publicationId: it is {publication.status}", field="publicationId")
    publication.status = "queued"
    publication.attempts = 0
    publication.error = None
    publication.next_attempt_at = utcnow()
    session.add(publication)
    if publication.interaction_id is not None:
        reply = await session.get(CaseReply, publication.interaction_id)
        if reply is not None:
            reply.publish_status = "to_publish"
            session.add(reply)
    await session.flush()
    return publication


async def _fail(session: AsyncSession, publication: Publication, error: str) -> None:
    publication.status = "failed"
    publication.error = error[:2000]
    publication.lease_until = None
    session.add(publication)
    if publication.interaction_id is not None:
        reply = await session.get(CaseReply, publication.interaction_id)
        if reply is not None:
            reply.publish_status = "failed"
            session.add(reply)
    publish_failures.add(1, {"channel": publication.channel, "final": "true"})
    await record_event(
        session,
        PublicationFailed(
            publication_id=publication.id,
            account_id=publication.account_id,
            channel=publication.channel,
            kind=publication.kind,
            error=publication.error,
            attempts=publication.attempts,
            interaction_id=publication.interaction_id,
            case_id=publication.case_id,
        ),
        tenant_id=_uuid(publication.tenant_id),
        subject=str(publication.id),
    )


async def claim_due_publications(
    db: Database, settings: EngagementSettings, limit: int
) -> list[uuid.UUID]:
    """Mark due publications ``sending`` (one worker each) and fail the ones whose sender
    died mid-call: whether the platform took them is unknown, and posting again could say
    it twice, so staff decide (``retryPublication``)."""
    lease = timedelta(seconds=settings.connector_http_timeout_seconds * 3)
    async with db.session() as session, session.begin():
        stale = await session.exec(
            select(Publication)
            .where(Publication.status == "sending", col(Publication.lease_until) < utcnow())
            .with_for_update(skip_locked=True)
        )
        for publication in stale:
            await _fail(
                session,
                publication,
                "OUTCOME_UNKNOWN: the publisher stopped while posting; check the platform "
                "before retrying",
            )
        rows = await session.execute(
            text(
                "UPDATE engagement.connector_publications p "
                "SET status = 'sending', attempts = attempts + 1, lease_until = now() + :lease "
                "WHERE id IN (SELECT q.id FROM engagement.connector_publications q "
                "  JOIN engagement.connected_accounts a ON a.id = q.account_id "
                "  WHERE q.status = 'queued' AND q.next_attempt_at <= now() "
                "    AND a.status = 'active' "
                "    AND (a.rate_limited_until IS NULL OR a.rate_limited_until <= now()) "
                "  ORDER BY q.next_attempt_at, q.id LIMIT :limit FOR UPDATE OF q SKIP LOCKED) "
                "RETURNING id"
            ),
            {"lease": lease, "limit": limit},
        )
        return [_uuid(r[0]) for r in rows]


async def send_publication(
    *,
    db: Database,
    settings: EngagementSettings,
    publication_id: uuid.UUID,
    http: httpx.AsyncClient,
) -> str:
    """Post one claimed publication and record the outcome; the status it ends in."""
    async with db.session() as session:
        publication = await session.get(Publication, publication_id)
        account = (
            await session.get(ConnectedAccount, publication.account_id) if publication else None
        )
    if publication is None or account is None or publication.status != "sending":
        return "skipped"
    platform = platform_for(settings, account.channel)
    outgoing = Outgoing(publication.text, publication.in_reply_to, publication.kind)
    try:
        access = await fresh_access_token(
            db=db, settings=settings, account=account, platform=platform, http=http
        )
        platform_id = await platform.publish(http, outgoing, access_token=access)
    except RateLimited as exc:
        rate_limit_waits.add(1, {"channel": account.channel, "what": "publish"})
        return await _requeue(
            db, publication_id, exc.until, str(exc), count=False, account_until=exc.until
        )
    except AuthorizationRevoked as exc:
        async with db.session() as session, session.begin():
            row = await session.get(ConnectedAccount, account.id, with_for_update=True)
            if row is not None:
                row.status = "reauthorize"
                row.last_error = str(exc)
                row.last_error_at = utcnow()
                session.add(row)
        return await _finish_failed(db, publication_id, str(exc))
    except (PlatformError, httpx.HTTPError) as exc:
        transient = isinstance(exc, httpx.HTTPError) or getattr(exc, "transient", False)
        publish_failures.add(1, {"channel": account.channel, "final": "false"})
        if transient and publication.attempts < settings.connector_publish_max_attempts:
            delay = settings.connector_publish_backoff_seconds * 2 ** (publication.attempts - 1)
            return await _requeue(
                db, publication_id, utcnow() + timedelta(seconds=delay), str(exc), count=True
            )
        return await _finish_failed(db, publication_id, str(exc))
    await _finish_published(db, settings, publication_id, account, platform_id)
    published.add(1, {"channel": account.channel})
    return "published"


async def _requeue(
    db: Database,
    publication_id: uuid.UUID,
    at: datetime,
    error: str,
    *,
    count: bool,
    account_until: datetime | None = None,
) -> str:
    async with db.session() as session, session.begin():
        publication = await session.get(Publication, publication_id, with_for_update=True)
        if publication is None:
            return "skipped"
        publication.status = "queued"
        publication.next_attempt_at = at
        publication.error = error[:2000]
        publication.lease_until = None
        if not count:
            publication.attempts -= 1
        session.add(publication)
        if account_until is not None:
            account = await session.get(
                ConnectedAccount, publication.account_id, with_for_update=True
            )
            if account is not None:
                account.rate_limited_until = account_until
                session.add(account)
    return "queued"


async def _finish_failed(db: Database, publication_id: uuid.UUID, error: str) -> str:
    async with db.session() as session, session.begin():
        publication = await session.get(Publication, publication_id, with_for_update=True)
        if publication is not None:
            await _fail(session, publication, error)
    return "failed"


async def _finish_published(
    db: Database,
    settings: EngagementSettings,
    publication_id: uuid.UUID,
    account: ConnectedAccount,
    platform_id: str,
) -> None:
    """Record the platform's id: the care reply's interaction takes it (so pulling the reply
    back finds it stored); a staff post is stored as the brand's interaction."""
    now = utcnow()
    async with db.session() as session, session.begin():
        publication = await session.get(Publication, publication_id, with_for_update=True)
        if publication is None:
            return
        if publication.interaction_id is not None:
            await session.execute(
                text(
                    "UPDATE engagement.interactions i SET platform_id = :pid, "
                    "raw = coalesce(i.raw, '{}'::jsonb) || jsonb_build_object("
                    "  'crm_platform_id', i.platform_id, 'publish_status', 'published') "
                    "WHERE i.id = :id AND NOT EXISTS (SELECT 1 FROM engagement.interactions o "
                    "  WHERE o.tenant_id = i.tenant_id AND o.channel = i.channel "
                    "    AND o.platform_id = :pid)"
                ),
                {"pid": platform_id, "id": publication.interaction_id},
            )
            reply = await session.get(CaseReply, publication.interaction_id, with_for_update=True)
            if reply is not None:
                reply.publish_status = "published"
                session.add(reply)
        else:
            item = NormalizedItem(
                channel=account.channel,
                platform_id=platform_id,
                kind="reply" if publication.in_reply_to else "post",
                thread_id=None,
                parent_id=publication.in_reply_to,
                author=AuthorRef(platform_user_id=account.platform_user_id, handle=account.handle),
                text=publication.text,
                created_at=now,
                raw={"source": "publishPost", "publication_id": str(publication.id)},
            )
            _, stored = await ingest(
                session=session,
                tenant_id=_uuid(publication.tenant_id),
                items=[item],
                min_confidence=settings.language_min_confidence,
            )
            publication.interaction_id = stored[0].interaction.id
        publication.status = "published"
        publication.platform_id = platform_id
        publication.published_at = now
        publication.error = None
        publication.lease_until = None
        session.add(publication)
        await session.flush()
        await record_event(
            session,
            PublicationPublished(
                publication_id=publication.id,
                account_id=publication.account_id,
                channel=publication.channel,
                kind=publication.kind,
                platform_id=platform_id,
                interaction_id=publication.interaction_id,
                case_id=publication.case_id,
                published_at=now,
            ),
            tenant_id=_uuid(publication.tenant_id),
            subject=str(publication.id),
        )


# Care replies still to publish from an account connected before they were written, not yet
# queued: engagement's own queue does not carry every interaction for the few that are these.
_UNQUEUED_CARE_REPLIES = text(
    """
    SELECT r.tenant_id, r.interaction_id
    FROM engagement.case_replies r
    JOIN engagement.interactions i ON i.id = r.interaction_id
    JOIN engagement.connected_accounts a
      ON a.tenant_id = r.tenant_id AND a.channel = i.channel
     AND a.platform_user_id = i.author_platform_user_id AND a.status <> 'disconnected'
     AND a.created_at <= r.created_at
    WHERE r.publish_status = 'to_publish'
      AND NOT EXISTS (
          SELECT 1 FROM engagement.connector_publications p
          WHERE p.interaction_id = r.interaction_id
      )
    ORDER BY r.created_at
    LIMIT :limit
    """
)


async def queue_care_replies(db: Database, *, limit: int = 100) -> int:
    """Queue the care replies written on connected accounts (``queue_care_reply`` each, in one
    transaction); run at the start of every publishing round."""
    queued = 0
    async with db.session() as session, session.begin():
        rows = (await session.execute(_UNQUEUED_CARE_REPLIES, {"limit": limit})).all()
        for tenant_id, interaction_id in rows:
            if await queue_care_reply(
                session=session, tenant_id=tenant_id, interaction_id=interaction_id
            ):
                queued += 1
    return queued


async def publish_due(db: Database, settings: EngagementSettings) -> int:
    """Queue care replies written since the last round, then send every due publication (the
    periodic job)."""
    await queue_care_replies(db)
    claimed = await claim_due_publications(db, settings, limit=20)
    if not claimed:
        return 0
    async with http_client(settings) as http:
        for publication_id in claimed:
            try:
                await send_publication(
                    db=db, settings=settings, publication_id=publication_id, http=http
                )
            except Exception:  # recorded by its lease: it fails as OUTCOME_UNKNOWN later
                log.exception("publication %s could not be sent", publication_id)
    return len(claimed)


def channels() -> tuple[str, ...]:
    return CHANNELS
