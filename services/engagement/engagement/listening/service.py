"""Trackers: creating, listing, and matching them against a text."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.errors import BadUserInput, Conflict
from engagement.listening.models import TRACKER_KINDS, Tracker

MAX_TERM = 200


def normalize_term(kind: str, term: str) -> str:
    """The term as stored: trimmed, inner spaces collapsed, a hashtag with its ``#``."""
    if kind not in TRACKER_KINDS:
        raise BadUserInput(f"kind: must be one of {', '.join(TRACKER_KINDS)}", field="kind")
    cleaned = " ".join(term.split())
    if kind == "hashtag":
        cleaned = "#" + cleaned.lstrip("#")
        if not re.fullmatch(r"#\w+", cleaned):
            raise BadUserInput(
                "term: a hashtag is # and one word (letters, digits, _)", field="term"
            )
    elif kind == "keyword" and (not cleaned or " " in cleaned):
        raise BadUserInput("term: a keyword is one word (use a phrase for several)", field="term")
    elif kind == "phrase" and not cleaned:
        raise BadUserInput("term: must not be empty", field="term")
    if len(cleaned) > MAX_TERM:
        raise BadUserInput(f"term: at most {MAX_TERM} characters", field="term")
    return cleaned


async def create_tracker(
    *, session: AsyncSession, tenant_id: uuid.UUID, kind: str, term: str
) -> Tracker:
    """A new tracker; CONFLICT if the tenant already tracks the same term (any case)."""
    tracker = Tracker(tenant_id=tenant_id, kind=kind, term=normalize_term(kind, term))
    existing = await session.exec(
        select(Tracker).where(
            Tracker.tenant_id == tenant_id,
            Tracker.kind == kind,
            func.lower(Tracker.term) == tracker.term.lower(),
        )
    )
    if existing.first() is not None:
        raise Conflict(f"term: the {kind} {tracker.term!r} is already tracked", field="term")
    session.add(tracker)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"term: the {kind} {tracker.term!r} is already tracked", field="term"
        ) from None
    return tracker


async def list_trackers(*, session: AsyncSession, tenant_id: uuid.UUID) -> list[Tracker]:
    """The tenant's trackers, oldest first."""
    rows = await session.exec(
        select(Tracker)
        .where(Tracker.tenant_id == tenant_id)
        .order_by(col(Tracker.created_at), col(Tracker.id))
    )
    return list(rows)


# Scripts written without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer,
# Myanmar): a letter of theirs next to a term is no word boundary to honour.
_UNSPACED = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
)
# A letter, digit or "_" of a script that separates its words with spaces.
_SPACED_WORD = f"[^\\W{_UNSPACED}]"


@lru_cache(maxsize=4096)
def _pattern(kind: str, term: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in unicodedata.normalize("NFKC", term).split()]
    body = r"\s+".join(words)
    # Word boundaries that also hold around a leading "#" (\b would not), and that hold
    # between a term and the letters of a script without spaces ("我喜欢Acme耳机", "华为").
    before = f"(?<!#)(?<!{_SPACED_WORD})" if kind == "hashtag" else f"(?<!{_SPACED_WORD})"
    return re.compile(before + body + f"(?!{_SPACED_WORD})", re.IGNORECASE)


def matching(text: str | None, trackers: Sequence[Tracker]) -> list[uuid.UUID]:
    """The ids of the trackers whose term occurs in ``text`` (case-insensitive, whole words;
    in scripts without spaces, anywhere). Full-width forms match their ASCII (NFKC)."""
    if not text:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return [t.id for t in trackers if _pattern(t.kind, t.term).search(text)]
