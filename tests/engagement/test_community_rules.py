"""The community's pure rules: the idea state machine, #yes/#no answers, contest ranking and
windows (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from crm_shared.errors import BadUserInput, Conflict
from engagement.community.contests.service import ContestWindows, check_windows, rank_entries
from engagement.community.ideas.service import next_idea_status
from engagement.community.models import ContestEntry
from engagement.community.reuse.service import reply_answer

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("under_review", "planned"),
        ("under_review", "declined"),
        ("planned", "shipped"),
        ("planned", "declined"),
    ],
)
def test_an_idea_moves_forward_along_its_statuses(current: str, target: str) -> None:
    assert next_idea_status(current, target) == target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("under_review", "shipped"),
        ("under_review", "under_review"),
        ("planned", "under_review"),
        ("shipped", "declined"),
        ("shipped", "planned"),
        ("declined", "planned"),
        ("declined", "under_review"),
    ],
)
def test_an_idea_cannot_skip_go_back_or_leave_a_final_status(current: str, target: str) -> None:
    with pytest.raises(Conflict) as refused:
        next_idea_status(current, target)
    assert refused.value.field == "input.status"


def test_an_unknown_idea_status_is_bad_input() -> None:
    with pytest.raises(BadUserInput) as refused:
        next_idea_status("under_review", "done")
    assert refused.value.field == "input.status"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("#yes go ahead!", True),
        ("Sure #YES", True),
        ("#no thanks", False),
        ("#yes #no", None),
        ("yes", None),
        ("#yesterday was great", None),
        ("##yes", None),
        (None, None),
    ],
)
def test_a_reply_answers_with_exactly_one_of_yes_or_no(
    text: str | None, answer: bool | None
) -> None:
    assert reply_answer(text) is answer


def _entry(votes: int, minutes: int) -> ContestEntry:
    return ContestEntry(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        contest_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        vote_count=votes,
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_winners_have_the_most_votes_and_ties_go_to_the_earliest_entry() -> None:
    late_tie, early_tie, top, few = _entry(3, 30), _entry(3, 10), _entry(5, 50), _entry(1, 0)
    assert rank_entries([late_tie, few, top, early_tie], 3) == [top, early_tie, late_tie]
    assert rank_entries([few], 3) == [few]


def test_contest_windows_must_follow_each_other() -> None:
    good = ContestWindows(
        T0, T0 + timedelta(days=7), T0 + timedelta(days=7), T0 + timedelta(days=9)
    )
    assert check_windows(good) is good
    cases = {
        "input.entriesCloseAt": ContestWindows(T0, T0, T0, T0 + timedelta(days=1)),
        "input.votingOpensAt": ContestWindows(
            T0, T0 + timedelta(days=1), T0 - timedelta(days=1), T0 + timedelta(days=2)
        ),
        "input.votingClosesAt": ContestWindows(
            T0, T0 + timedelta(days=3), T0 + timedelta(days=1), T0 + timedelta(days=2)
        ),
        "input.entriesOpenAt": ContestWindows(
            T0.replace(tzinfo=None), T0 + timedelta(days=1), T0, T0 + timedelta(days=2)
        ),
    }
    for field, windows in cases.items():
        with pytest.raises(BadUserInput) as refused:
            check_windows(windows)
        assert refused.value.field == field
