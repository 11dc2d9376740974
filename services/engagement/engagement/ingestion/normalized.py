"""Our normalized interaction (what every platform payload becomes) and the ingestion report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from crm_shared.errors import CrmError

# crm_shared.channels.INTERACTION_CHANNELS, spelled out for the type checker (a test keeps
# the two equal).
Channel = Literal[
    "x", "facebook", "instagram", "youtube", "reddit", "tiktok", "web", "email", "other"
]
Kind = Literal[
    "post", "comment", "reply", "mention", "message", "review", "question", "complaint", "share"
]
PlatformId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class AuthorRef(BaseModel):
    """Who wrote an item, as the platform knows them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform_user_id: PlatformId
    handle: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    display_name: Name | None = None
    followers: Annotated[int, Field(ge=0)] | None = None
    verified: bool | None = None


Count = Annotated[int, Field(ge=0)]


class PlatformMetrics(BaseModel):
    """What the platform reported about an item's reach when it was read (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: int | None = None  # Reddit's score (up minus down votes): can be negative
    likes: Count | None = None
    shares: Count | None = None  # retweets, quotes, crossposts
    replies: Count | None = None  # comments or replies the item has
    views: Count | None = None
    permalink: Annotated[str, StringConstraints(max_length=2000)] | None = None
    community: Annotated[str, StringConstraints(max_length=300)] | None = None  # a subreddit


class NormalizedItem(BaseModel):
    """One interaction in our documented form (``/ingest/normalized``, ``/ingest/ndjson``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel
    platform_id: PlatformId
    kind: Kind
    thread_id: PlatformId | None = None
    parent_id: PlatformId | None = None
    author: AuthorRef | None = None
    text: Annotated[str, Field(max_length=40_000)] | None = None
    created_at: AwareDatetime
    edited_at: AwareDatetime | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    metrics: PlatformMetrics | None = None
    raw: dict[str, Any] | None = None


class Rejection(BaseModel):
    """An item that was not taken: where it is in the request, its id, which field, why."""

    index: int
    id: str | None
    field: str
    message: str


class Report(BaseModel):
    """What became of a request's items."""

    accepted: int = 0
    duplicates: int = 0
    updated: int = 0
    ignored: int = 0
    rejected: list[Rejection] = Field(default_factory=list)

    def add(self, other: Report) -> None:
        """Count ``other``'s items in this report too."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.updated += other.updated
        self.ignored += other.ignored
        self.rejected.extend(other.rejected)


class ItemError(Exception):
    """One item is malformed: ``field`` (a path in the platform's own terms) and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MalformedBody(CrmError):
    """The request body cannot be read at all (not JSON, not UTF-8)."""

    code = "BAD_REQUEST"
    http_status = 400


def normalized(data: dict[str, Any], *, path: str) -> NormalizedItem:
    """``data`` as a normalized item; ItemError naming ``path``'s first invalid field otherwise."""
    try:
        return NormalizedItem.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in (path, *first["loc"]) if part != "")
        raise ItemError(field, first["msg"]) from None


# An item of a request: its position and either the item or why it was not taken.
Parsed = tuple[int, NormalizedItem | Rejection | None]
"""``None`` marks an item deliberately ignored (a reaction, a deletion, an unknown kind)."""
