"""Persisted operations: Apollo's automatic persisted queries (APQ) and a safelist manifest."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson

from gateway.cache import LRUCache
from gateway.limits import Refusal

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(query: str) -> str:
    """The hash APQ clients send: SHA-256 of the query text (UTF-8), lower-case hex."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """A ``{"<sha256>": "<query>"}`` manifest; a wrong hash or shape fails at start-up."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the persisted operations manifest must be a JSON object")
    manifest: dict[str, str] = {}
    for key, query in data.items():
        if not isinstance(query, str) or sha256_hex(query) != str(key).lower():
            raise ValueError(f"{path}: entry {key!r} is not the SHA-256 of its query text")
        manifest[str(key).lower()] = query
    return manifest


class PersistedOperations:
    """Resolves a request's query text from ``query`` and ``extensions.persistedQuery``.

    Without a safelist, any operation may run and clients may register operations by hash (APQ:
    kept in an in-process LRU, so each replica learns a hash on its own; clients just send the
    text again after ``PERSISTED_QUERY_NOT_FOUND``). With ``safelist_only``, only the manifest's
    operations run, by hash or by their exact text, and nothing can be registered.
    """

    def __init__(
        self,
        manifest: dict[str, str] | None = None,
        *,
        safelist_only: bool = False,
        cache_size: int = 10_000,
    ) -> None:
        self.manifest = dict(manifest or {})
        self.texts = frozenset(self.manifest.values())
        self.safelist_only = safelist_only
        self._registered: LRUCache[str, str] = LRUCache(cache_size)

    def lookup(self, sha256: str) -> str | None:
        """The query text known under a hash."""
        known = self.manifest.get(sha256)
        if known is None and not self.safelist_only:
            known = self._registered.get(sha256)
        return known

    def register(self, sha256: str, query: str) -> None:
        """Remembers a validated query under its (verified) hash."""
        if not self.safelist_only:
            self._registered.put(sha256, query)

    def resolve(self, query: Any, extensions: Any) -> tuple[Any, str | None] | Refusal:
        """(the query to run, the hash to register once it validates) or a refusal."""
        if extensions is not None and not isinstance(extensions, dict):
            return Refusal("`extensions` must be an object if provided.", "BAD_REQUEST")
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if self.safelist_only and not (isinstance(query, str) and query in self.texts):
                return Refusal(
                    "Only persisted operations may run here: send the hash of a known "
                    "operation in `extensions.persistedQuery`.",
                    "PERSISTED_QUERY_REQUIRED",
                )
            return query, None
        if not isinstance(persisted, dict):
            return Refusal("`extensions.persistedQuery` must be an object.", "BAD_REQUEST")
        if persisted.get("version") != 1:
            return Refusal("Unsupported persisted query version (only 1).", "BAD_REQUEST")
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
            return Refusal(
                "`extensions.persistedQuery.sha256Hash` must be 64 hex digits.", "BAD_REQUEST"
            )
        sha256 = sha256.lower()
        if query is None:
            known = self.lookup(sha256)
            if known is None:
                return Refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return known, None
        if not isinstance(query, str):
            return query, None  # the runtime refuses a query that is not a string
        if sha256_hex(query) != sha256:
            return Refusal("provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH")
        if self.safelist_only and sha256 not in self.manifest:
            return Refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        return query, sha256
