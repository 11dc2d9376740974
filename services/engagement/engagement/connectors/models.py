"""Connectors' records: connected accounts, their pending authorizations, pull cursors, and
what is to be (or was) published on the platforms."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

CHANNELS = ("x", "reddit", "youtube", "facebook", "instagram")
# active: pulled and published; paused: neither (nothing is lost, the cursors wait);
# reauthorize: the platform refused our tokens (refresh failed), a person must connect again;
# disconnected: tokens revoked and deleted.
ACCOUNT_STATUSES = ("active", "paused", "reauthorize", "disconnected")
# queued -> sending -> published | failed (a failed one can be queued again by staff).
PUBLICATION_STATUSES = ("queued", "sending", "published", "failed")


def _tz(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


class ConnectedAccount(SQLModel, table=True):
    """A brand's account on a platform the system reaches with the tokens the brand granted."""

    __tablename__ = "connected_accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "platform_user_id", name="connected_account"),
        {"schema": "engagement"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    channel: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=200)
    handle: str | None = Field(default=None, max_length=200)
    status: str = Field(default="active", max_length=16)
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    # What to listen to besides the account itself: {"subreddits": [...], "query": "..."}.
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Fernet tokens (crm key ring), never the plain tokens.
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = _tz(default=None)
    connected_by: str = Field(max_length=250)
    created_at: datetime = created_at_field()
    last_sync_at: datetime | None = _tz(default=None)
    # Platform time of the newest item pulled, for the lag.
    newest_item_at: datetime | None = _tz(default=None)
    last_error: str | None = None
    last_error_at: datetime | None = _tz(default=None)
    failures: int = 0
    next_sync_at: datetime | None = _tz(default=None)
    rate_limited_until: datetime | None = _tz(default=None)
    # One worker syncs an account at a time: the lease it holds (a crashed one's expires).
    lease_until: datetime | None = _tz(default=None)


class ConnectorAuthorization(SQLModel, table=True):
    """An authorization-code flow a staff member started: its state and PKCE verifier."""

    __tablename__ = "connector_authorizations"
    __table_args__ = {"schema": "engagement"}

    state: str = Field(primary_key=True, max_length=100)
    tenant_id: uuid.UUID
    channel: str = Field(max_length=32)
    redirect_uri: str
    code_verifier: str  # encrypted
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    started_by: str = Field(max_length=250)
    expires_at: datetime = _tz()


class ConnectorCursor(SQLModel, table=True):
    """Where pulling one source of an account stands: what is stored, and the page in flight.

    ``high_water`` is the newest item of the last complete pass; a pass pages from the newest
    item back to it, remembering the next page (``page_token``) and the newest item it saw
    (``pending_high_water``) in the transaction that stores each page, so a restart resumes
    at the page that was not stored: no gap, no duplicate.
    """

    __tablename__ = "connector_cursors"
    __table_args__ = {"schema": "engagement"}

    account_id: uuid.UUID = Field(primary_key=True)
    source: str = Field(primary_key=True, max_length=200)
    tenant_id: uuid.UUID
    high_water: str | None = None
    pending_high_water: str | None = None
    page_token: str | None = None
    pages: int = 0
    items: int = 0
    last_synced_at: datetime | None = _tz(default=None)


class Publication(SQLModel, table=True):
    """A care reply or a staff post to publish on the platform through a connected account."""

    __tablename__ = "connector_publications"
    __table_args__ = (
        UniqueConstraint("interaction_id", name="connector_publication_interaction"),
        {"schema": "engagement"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    account_id: uuid.UUID
    channel: str = Field(max_length=32)
    # reply (care), post (staff), comment (staff, under a platform item)
    kind: str = Field(max_length=16)
    text: str
    # The platform item answered (an X post id, a Reddit fullname, a YouTube comment or video).
    in_reply_to: str | None = Field(default=None, max_length=200)
    # The interaction this publishes (a care reply's); a staff post's once published.
    interaction_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    requested_by: str = Field(max_length=250)
    status: str = Field(default="queued", max_length=16)
    platform_id: str | None = Field(default=None, max_length=200)
    error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime = created_at_field()
    lease_until: datetime | None = _tz(default=None)
    created_at: datetime = created_at_field()
    published_at: datetime | None = _tz(default=None)
