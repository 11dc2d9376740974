"""Rate limiting per client: a token bucket of cost points, in this process."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Throttle:
    """The outcome of asking for ``cost`` points: allowed or not, and what is left."""

    allowed: bool
    maximum_available: float
    currently_available: float
    restore_rate: float
    # Seconds until the request could run (0 when allowed).
    retry_after: float = 0.0

    def status(self) -> dict[str, float]:
        """``extensions.cost.throttleStatus`` (Shopify's shape)."""
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": math.floor(self.currently_available),
            "restoreRate": self.restore_rate,
        }


class TokenBucketLimiter:
    """One bucket of ``capacity`` points per client, refilled at ``restore_rate`` points/second.

    A request takes its calculated cost from its client's bucket, or is refused (nothing taken)
    when the bucket holds less. Buckets live in this process: several gateway replicas each keep
    their own, so a deployment with N replicas needs a shared store (e.g. Redis) to enforce one
    limit. At most ``max_clients`` buckets are kept; the least recently seen are forgotten (a
    forgotten client starts again with a full bucket).
    """

    def __init__(
        self,
        capacity: float,
        restore_rate: float,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.restore_rate = restore_rate
        self.max_clients = max(1, max_clients)
        self.clock = clock
        # client -> (points available, when they were counted)
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def _available(self, client: tuple[str, str], now: float) -> float:
        level, counted = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, level + (now - counted) * self.restore_rate)

    def take(self, client: tuple[str, str], cost: float) -> Throttle:
        """Takes ``cost`` points from the client's bucket if it holds them."""
        now = self.clock()
        available = self._available(client, now)
        allowed = cost <= available
        if allowed:
            available -= cost
        self._buckets[client] = (available, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        retry_after = 0.0
        if not allowed:
            retry_after = (cost - available) / self.restore_rate if self.restore_rate > 0 else 0
        return Throttle(allowed, self.capacity, available, self.restore_rate, retry_after)
