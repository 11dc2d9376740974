"""Which participation segment a customer's activity puts them in (pure, no I/O).

In the tenant's window (``window_days`` back from now), counting the customer's own items:

- ``creator``: at least ``creator_min_originals`` original items (posts and reviews);
- ``occasional``: otherwise, at least ``occasional_min_contributions`` items of any kind
  (comments, replies, mentions, messages, and originals below the creator threshold);
- ``observer``: otherwise, either fewer items than that, or none ever (known by a linked
  profile, watching without saying anything: reactions are not stored);
- ``inactive``: nothing in the window, but something before it (they have gone quiet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Segment = Literal["creator", "occasional", "observer", "inactive"]
SEGMENTS: tuple[Segment, ...] = ("creator", "occasional", "observer", "inactive")
ORIGINAL_KINDS = ("post", "review")


@dataclass(frozen=True)
class Thresholds:
    """A tenant's segment settings."""

    window_days: int
    creator_min_originals: int
    occasional_min_contributions: int


@dataclass(frozen=True)
class Activity:
    """A customer's own items: originals and all items in the window, and all items ever."""

    originals: int = 0
    items: int = 0
    ever: int = 0


def classify(activity: Activity, thresholds: Thresholds) -> Segment:
    """The segment of ``activity`` under ``thresholds`` (see the module's definitions)."""
    if activity.originals >= thresholds.creator_min_originals:
        return "creator"
    if activity.items >= thresholds.occasional_min_contributions:
        return "occasional"
    if activity.items > 0 or activity.ever == 0:
        return "observer"
    return "inactive"
