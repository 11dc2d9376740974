"""A small LRU cache (documents, plans, persisted queries)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A small least-recently-used cache: at most ``size`` entries and, with ``max_weight``,
    at most that total weight (``weigh(key, value)``, e.g. a document's length)."""

    def __init__(
        self,
        size: int,
        *,
        max_weight: int | None = None,
        weigh: Callable[[K, V], int] | None = None,
    ) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[K, V] = OrderedDict()
        self.max_weight = max_weight
        self._weigh = weigh
        self.weight = 0

    def get(self, key: K) -> V | None:
        """The cached value, marking it recently used."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Stores a value, evicting the least recently used ones when full."""
        if self._weigh is not None:
            weight = self._weigh(key, value)
            if self.max_weight is not None and weight > self.max_weight:
                return  # larger than the whole cache: not kept
            previous = self._items.get(key)
            if previous is not None:
                self.weight -= self._weigh(key, previous)
            self.weight += weight
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size or (
            self.max_weight is not None and self.weight > self.max_weight
        ):
            old_key, old_value = self._items.popitem(last=False)
            if self._weigh is not None:
                self.weight -= self._weigh(old_key, old_value)

    def __len__(self) -> int:
        return len(self._items)
