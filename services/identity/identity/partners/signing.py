"""Standard Webhooks signing (https://www.standardwebhooks.com) and the retry schedule.

A request carries ``webhook-id`` (the event's id, the same on every retry and replay, so
receivers can drop duplicates), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` over
``<id>.<timestamp>.<body>``, one per valid secret (two during a rotation's overlap).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
_JITTER = random.Random()


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature_header(
    signing_secrets: Iterable[str], *, msg_id: str, timestamp: int, body: bytes
) -> str:
    """The ``webhook-signature`` value: one ``v1,<signature>`` per secret."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(s), content, hashlib.sha256).digest()).decode()
        for s in signing_secrets
    )


def headers(
    signing_secrets: Iterable[str], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            signing_secrets, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


def retry_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential, capped, with "equal
    jitter" (between half and all of it) so that endpoints coming back are not stampeded."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + (rng or _JITTER).uniform(0, ceiling / 2)
