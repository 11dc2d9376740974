"""The events the community publishes (see docs/events.md); ids only, no personal data."""

import uuid

from crm_shared.events import Event


class PollVoted(Event):
    """A customer voted in a poll (once per customer and poll)."""

    type = "engagement.poll.voted.v1"

    poll_id: uuid.UUID
    customer_id: uuid.UUID
    option_id: uuid.UUID


class IdeaSubmitted(Event):
    """A customer submitted an idea."""

    type = "engagement.idea.submitted.v1"

    idea_id: uuid.UUID
    customer_id: uuid.UUID


class IdeaVoted(Event):
    """A customer voted for someone's idea (``customer_id`` is the voter)."""

    type = "engagement.idea.voted.v1"

    idea_id: uuid.UUID
    customer_id: uuid.UUID
    author_id: uuid.UUID


class IdeaVoteWithdrawn(Event):
    """A customer took back their vote for an idea."""

    type = "engagement.idea.vote_withdrawn.v1"

    idea_id: uuid.UUID
    customer_id: uuid.UUID
    author_id: uuid.UUID


class IdeaStatusChanged(Event):
    """Staff moved an idea to a new status; a notifier tells its author and voters."""

    type = "engagement.idea.status_changed.v1"

    idea_id: uuid.UUID
    customer_id: uuid.UUID
    previous_status: str
    status: str
    note: str | None
    voter_count: int


class ContestEntered(Event):
    """A customer entered a contest."""

    type = "engagement.contest.entered.v1"

    contest_id: uuid.UUID
    entry_id: uuid.UUID
    customer_id: uuid.UUID


class ContestWinnerChosen(Event):
    """An entry won a contest at ``rank`` (one event per winner, once)."""

    type = "engagement.contest.winner_chosen.v1"

    contest_id: uuid.UUID
    entry_id: uuid.UUID
    customer_id: uuid.UUID
    rank: int


class ContentReuseRequested(Event):
    """The brand asked an author for permission to reuse an interaction."""

    type = "engagement.content_reuse.requested.v1"

    request_id: uuid.UUID
    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str


class ContentReuseGranted(Event):
    """The author allowed the reuse (``via``: customer, reply or staff)."""

    type = "engagement.content_reuse.granted.v1"

    request_id: uuid.UUID
    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    via: str


class ContentReuseDenied(Event):
    """The author refused the reuse (``via``: customer, reply or staff)."""

    type = "engagement.content_reuse.denied.v1"

    request_id: uuid.UUID
    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    via: str
