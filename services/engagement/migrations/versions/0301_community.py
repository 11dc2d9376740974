"""Community: polls, options and votes; ideas, votes and status history; contests, entries,
votes and winners; content reuse requests. One vote per customer is a primary key.

Revision ID: 0301
Revises: 0103
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0301"
down_revision: str | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def _at(name: str, nullable: bool = False, default: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default else None,
    )


def upgrade() -> None:
    uid, text = sa.Uuid, sa.String
    op.create_table(
        "polls",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("question", text(500), nullable=False),
        _at("opens_at"),
        _at("closes_at"),
        _at("closed_at", nullable=True),
        sa.Column("created_by", text(200), nullable=False),
        _at("created_at", default=True),
        sa.CheckConstraint("closes_at > opens_at", name="polls_window"),
        schema=S,
    )
    op.create_index("polls_newest", "polls", ["tenant_id", "created_at", "id"], schema=S)
    op.create_table(
        "poll_options",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column(
            "poll_id", uid(), sa.ForeignKey(f"{S}.polls.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("label", text(200), nullable=False),
        sa.UniqueConstraint("poll_id", "position", name="poll_options_position"),
        # The target of poll_votes' (poll, option) key: a vote's option is its poll's.
        sa.UniqueConstraint("poll_id", "id", name="poll_options_poll_id"),
        schema=S,
    )
    op.create_table(
        "poll_votes",
        sa.Column("poll_id", uid(), primary_key=True),
        sa.Column("customer_id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("option_id", uid(), nullable=False),
        _at("voted_at", default=True),
        sa.ForeignKeyConstraint(
            ["poll_id", "option_id"],
            [f"{S}.poll_options.poll_id", f"{S}.poll_options.id"],
            ondelete="CASCADE",
        ),
        schema=S,
    )
    op.create_index("poll_votes_option", "poll_votes", ["option_id"], schema=S)

    op.create_table(
        "ideas",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("customer_id", uid(), nullable=False),
        sa.Column("title", text(200), nullable=False),
        sa.Column("body", text(5000), nullable=False),
        sa.Column("status", text(16), nullable=False, server_default="under_review"),
        sa.Column("status_note", text(1000)),
        _at("status_changed_at", default=True),
        sa.Column("vote_count", sa.Integer(), nullable=False, server_default="0"),
        _at("created_at", default=True),
        sa.CheckConstraint(
            "status IN ('under_review', 'planned', 'shipped', 'declined')", name="ideas_status"
        ),
        sa.CheckConstraint("vote_count >= 0", name="ideas_vote_count"),
        schema=S,
    )
    op.execute(f"CREATE INDEX ideas_newest ON {S}.ideas (tenant_id, created_at DESC, id DESC)")
    op.execute(
        f"CREATE INDEX ideas_most_voted ON {S}.ideas"
        " (tenant_id, vote_count DESC, created_at DESC, id DESC)"
    )
    op.execute(
        f"CREATE INDEX ideas_by_author ON {S}.ideas"
        " (tenant_id, customer_id, created_at DESC, id DESC)"
    )
    op.create_table(
        "idea_votes",
        sa.Column(
            "idea_id", uid(), sa.ForeignKey(f"{S}.ideas.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("customer_id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        _at("voted_at", default=True),
        schema=S,
    )
    op.create_table(
        "idea_status_changes",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column(
            "idea_id", uid(), sa.ForeignKey(f"{S}.ideas.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("previous", text(16), nullable=False),
        sa.Column("status", text(16), nullable=False),
        sa.Column("note", text(1000)),
        sa.Column("actor", text(200), nullable=False),
        _at("changed_at", default=True),
        schema=S,
    )
    op.create_index(
        "idea_status_changes_idea", "idea_status_changes", ["idea_id", "changed_at"], schema=S
    )

    op.create_table(
        "contests",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("title", text(200), nullable=False),
        sa.Column("description", text(5000)),
        _at("entries_open_at"),
        _at("entries_close_at"),
        _at("voting_opens_at"),
        _at("voting_closes_at"),
        sa.Column("winner_count", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("chosen_by", text(8), nullable=False, server_default="rule"),
        _at("winners_chosen_at", nullable=True),
        sa.Column("created_by", text(200), nullable=False),
        _at("created_at", default=True),
        sa.CheckConstraint(
            "entries_close_at > entries_open_at AND voting_closes_at > voting_opens_at"
            " AND voting_opens_at >= entries_open_at AND voting_closes_at >= entries_close_at",
            name="contests_windows",
        ),
        sa.CheckConstraint("winner_count BETWEEN 1 AND 100", name="contests_winner_count"),
        sa.CheckConstraint("chosen_by IN ('rule', 'staff')", name="contests_chosen_by"),
        schema=S,
    )
    op.create_index("contests_newest", "contests", ["tenant_id", "created_at", "id"], schema=S)
    # The rule's job finds contests whose voting closed and have no winners yet.
    op.execute(
        f"CREATE INDEX contests_awaiting_winners ON {S}.contests (voting_closes_at)"
        " WHERE winners_chosen_at IS NULL AND chosen_by = 'rule'"
    )
    op.create_table(
        "contest_entries",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column(
            "contest_id",
            uid(),
            sa.ForeignKey(f"{S}.contests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("customer_id", uid(), nullable=False),
        sa.Column("text", text(5000)),
        sa.Column(
            "interaction_id", uid(), sa.ForeignKey(f"{S}.interactions.id", ondelete="SET NULL")
        ),
        sa.Column("vote_count", sa.Integer(), nullable=False, server_default="0"),
        _at("created_at", default=True),
        sa.UniqueConstraint("contest_id", "customer_id", name="contest_entries_one_per_customer"),
        sa.UniqueConstraint("contest_id", "id", name="contest_entries_contest_id"),
        schema=S,
    )
    op.create_index(
        "contest_entries_order", "contest_entries", ["contest_id", "created_at", "id"], schema=S
    )
    op.create_table(
        "contest_votes",
        sa.Column("contest_id", uid(), primary_key=True),
        sa.Column("customer_id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("entry_id", uid(), nullable=False),
        _at("voted_at", default=True),
        sa.ForeignKeyConstraint(
            ["contest_id", "entry_id"],
            [f"{S}.contest_entries.contest_id", f"{S}.contest_entries.id"],
            ondelete="CASCADE",
        ),
        schema=S,
    )
    op.create_table(
        "contest_winners",
        sa.Column(
            "contest_id",
            uid(),
            sa.ForeignKey(f"{S}.contests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rank", sa.SmallInteger(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column("entry_id", uid(), nullable=False),
        sa.Column("customer_id", uid(), nullable=False),
        sa.Column("chosen_by", text(200), nullable=False),
        _at("chosen_at", default=True),
        sa.UniqueConstraint("contest_id", "entry_id", name="contest_winners_entry"),
        schema=S,
    )

    op.create_table(
        "content_reuse_requests",
        sa.Column("id", uid(), primary_key=True),
        sa.Column("tenant_id", uid(), nullable=False),
        sa.Column(
            "interaction_id",
            uid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", text(32), nullable=False),
        sa.Column("author_platform_user_id", text(200)),
        sa.Column("customer_id", uid()),
        sa.Column("purpose", text(1000), nullable=False),
        sa.Column("status", text(16), nullable=False, server_default="requested"),
        sa.Column("answered_via", text(16)),
        _at("answered_at", nullable=True),
        sa.Column("answer_interaction_id", uid()),
        sa.Column("answer_note", text(1000)),
        sa.Column("requested_by", text(200), nullable=False),
        _at("created_at", default=True),
        sa.CheckConstraint(
            "status IN ('requested', 'granted', 'denied')", name="content_reuse_status"
        ),
        sa.CheckConstraint(
            "(status = 'requested') = (answered_at IS NULL)", name="content_reuse_answered"
        ),
        schema=S,
    )
    # One open request per interaction: asking again waits for the author's answer.
    op.execute(
        f"CREATE UNIQUE INDEX content_reuse_one_open ON {S}.content_reuse_requests"
        " (tenant_id, interaction_id) WHERE status = 'requested'"
    )
    op.create_index(
        "content_reuse_newest",
        "content_reuse_requests",
        ["tenant_id", "created_at", "id"],
        schema=S,
    )
    op.create_index(
        "content_reuse_author",
        "content_reuse_requests",
        ["tenant_id", "channel", "author_platform_user_id"],
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "content_reuse_requests",
        "contest_winners",
        "contest_votes",
        "contest_entries",
        "contests",
        "idea_status_changes",
        "idea_votes",
        "ideas",
        "poll_votes",
        "poll_options",
        "polls",
    ):
        op.drop_table(table, schema=S)
