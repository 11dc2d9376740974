"""Checking a movement's input, and the fingerprint of an entry's content (pure)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from crm_shared.errors import BadUserInput

MAX_POINTS = 1_000_000_000
MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 500


def check_points(points: int, *, allow_negative: bool = False) -> int:
    """``points`` if it is a valid amount (non-zero, within MAX_POINTS); BAD_USER_INPUT."""
    if points == 0 or (points < 0 and not allow_negative):
        rule = "must not be 0" if allow_negative else "must be greater than 0"
        raise BadUserInput(f"points: {rule}", field="points")
    if abs(points) > MAX_POINTS:
        raise BadUserInput(f"points: must be at most {MAX_POINTS}", field="points")
    return points


def check_reason(reason: str) -> str:
    """The reason trimmed; BAD_USER_INPUT when empty or too long."""
    cleaned = reason.strip()
    if not cleaned:
        raise BadUserInput("reason: must not be empty", field="reason")
    if len(cleaned) > MAX_REASON_LENGTH:
        raise BadUserInput(
            f"reason: must be at most {MAX_REASON_LENGTH} characters", field="reason"
        )
    return cleaned


def check_key(key: str) -> str:
    """The key; BAD_USER_INPUT when empty or too long."""
    if not key.strip():
        raise BadUserInput("idempotencyKey: must not be empty", field="idempotencyKey")
    if len(key) > MAX_KEY_LENGTH:
        raise BadUserInput(
            f"idempotencyKey: must be at most {MAX_KEY_LENGTH} characters",
            field="idempotencyKey",
        )
    return key


def request_key(caller_key: str) -> str:
    """The ledger key of a caller's idempotency key (``request:<key>``)."""
    return f"request:{check_key(caller_key)}"


def fingerprint(**content: Any) -> str:
    """A stable hash of an entry's content (what it does, not when or by whom)."""
    canonical = orjson.dumps({k: str(v) for k, v in content.items()}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
