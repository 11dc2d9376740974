"""The brand community: polls and their votes, ideas and theirs, contests with entries, votes
and winners, and requests to reuse a fan's content.

One vote per customer is the database's rule (a primary key on the voter), not the code's.
"""

import uuid
from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

IDEA_STATUSES = ("under_review", "planned", "shipped", "declined")
REUSE_STATUSES = ("requested", "granted", "denied")
# How an author's answer to a reuse request reached us.
REUSE_ANSWER_VIA = ("customer", "reply", "staff")
WINNER_CHOICE = ("rule", "staff")


class Poll(SQLModel, table=True):
    """A question with options, open to votes from ``opens_at`` until ``closes_at``."""

    __tablename__ = "polls"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    question: str = Field(max_length=500)
    opens_at: datetime = Field(sa_type=DateTime(timezone=True))
    closes_at: datetime = Field(sa_type=DateTime(timezone=True))
    # Set when staff close the poll before closes_at.
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), nullable=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = created_at_field()


class PollOption(SQLModel, table=True):
    """One answer a poll offers, in its position."""

    __tablename__ = "poll_options"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    poll_id: uuid.UUID
    position: int
    label: str = Field(max_length=200)


class PollVote(SQLModel, table=True):
    """A customer's one vote in a poll."""

    __tablename__ = "poll_votes"
    __table_args__ = {"schema": "engagement"}

    poll_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    option_id: uuid.UUID
    voted_at: datetime = created_at_field()


class Idea(SQLModel, table=True):
    """A customer's suggestion, voted on by others; staff move it through its statuses."""

    __tablename__ = "ideas"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    title: str = Field(max_length=200)
    body: str = Field(max_length=5000)
    status: str = Field(default="under_review", max_length=16)
    status_note: str | None = Field(default=None, max_length=1000)
    status_changed_at: datetime = created_at_field()
    # Kept with each vote and withdrawal, in their transaction, so lists order by it.
    vote_count: int = 0
    created_at: datetime = created_at_field()


class IdeaVote(SQLModel, table=True):
    """A customer's vote for someone else's idea (withdrawn: deleted)."""

    __tablename__ = "idea_votes"
    __table_args__ = {"schema": "engagement"}

    idea_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    voted_at: datetime = created_at_field()


class IdeaStatusChange(SQLModel, table=True):
    """One step of an idea's status, with the staff member's note."""

    __tablename__ = "idea_status_changes"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    idea_id: uuid.UUID
    previous: str = Field(max_length=16)
    status: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=1000)
    actor: str = Field(max_length=200)
    changed_at: datetime = created_at_field()


class Contest(SQLModel, table=True):
    """Entries are taken in one window and voted on in another; then winners are chosen."""

    __tablename__ = "contests"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    entries_open_at: datetime = Field(sa_type=DateTime(timezone=True))
    entries_close_at: datetime = Field(sa_type=DateTime(timezone=True))
    voting_opens_at: datetime = Field(sa_type=DateTime(timezone=True))
    voting_closes_at: datetime = Field(sa_type=DateTime(timezone=True))
    winner_count: int = 1
    # "rule": chosen by votes when voting closes; "staff": waits for staff to choose.
    chosen_by: str = Field(default="rule", max_length=8)
    winners_chosen_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    created_by: str = Field(max_length=200)
    created_at: datetime = created_at_field()


class ContestEntry(SQLModel, table=True):
    """A customer's one entry in a contest: a text, or one of their interactions."""

    __tablename__ = "contest_entries"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    contest_id: uuid.UUID
    customer_id: uuid.UUID
    text: str | None = Field(default=None, max_length=5000)
    interaction_id: uuid.UUID | None = None
    vote_count: int = 0
    created_at: datetime = created_at_field()


class ContestVote(SQLModel, table=True):
    """A customer's one vote in a contest, for an entry not their own."""

    __tablename__ = "contest_votes"
    __table_args__ = {"schema": "engagement"}

    contest_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    entry_id: uuid.UUID
    voted_at: datetime = created_at_field()


class ContestWinner(SQLModel, table=True):
    """A chosen winner; ``rank`` 1 is first."""

    __tablename__ = "contest_winners"
    __table_args__ = {"schema": "engagement"}

    contest_id: uuid.UUID = Field(primary_key=True)
    rank: int = Field(primary_key=True)
    tenant_id: uuid.UUID
    entry_id: uuid.UUID
    customer_id: uuid.UUID
    # "rule" (most votes, ties to the earliest entry) or the staff member who chose.
    chosen_by: str = Field(max_length=200)
    chosen_at: datetime = created_at_field()


class ContentReuseRequest(SQLModel, table=True):
    """The brand's request to reuse an interaction, and the author's answer."""

    __tablename__ = "content_reuse_requests"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    interaction_id: uuid.UUID
    # The author as known when asked: their account, and their customer once linked.
    channel: str = Field(max_length=32)
    author_platform_user_id: str | None = Field(default=None, max_length=200)
    customer_id: uuid.UUID | None = None
    purpose: str = Field(max_length=1000)
    status: str = Field(default="requested", max_length=16)
    answered_via: str | None = Field(default=None, max_length=16)
    answered_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    # The reply that answered ("#yes"/"#no"), when the answer came that way.
    answer_interaction_id: uuid.UUID | None = None
    answer_note: str | None = Field(default=None, max_length=1000)
    requested_by: str = Field(max_length=200)
    created_at: datetime = created_at_field()
