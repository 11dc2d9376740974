"""The spike detector: is an hour's volume far above the hours before it?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev


@dataclass(frozen=True)
class Spike:
    """An hour above its baseline: the volume, the baseline's mean and the threshold it beat."""

    volume: int
    baseline: float
    threshold: float


def detect_spike(volume: int, history: Sequence[int], *, k: float, min_volume: int) -> Spike | None:
    """A spike when ``volume`` is at least ``min_volume`` and above mean + ``k`` * stddev of
    ``history`` (the hours before, zeros included); None otherwise, or without history."""
    if volume < min_volume or not history:
        return None
    mean = fmean(history)
    threshold = mean + k * pstdev(history, mean)
    if volume <= threshold:
        return None
    return Spike(volume=volume, baseline=round(mean, 4), threshold=round(threshold, 4))
