"""Errors a caller can act on: each has a code and, for bad input, the offending field."""

from __future__ import annotations

import asyncpg

# PostgreSQL refuses NUL in text ("invalid byte sequence ... 0x00") and in jsonb ("unsupported
# Unicode escape sequence"): the caller's text, not our failure.
_UNSTORABLE_TEXT = (
    asyncpg.exceptions.CharacterNotInRepertoireError,
    asyncpg.exceptions.UntranslatableCharacterError,
)
UNSTORABLE_TEXT_MESSAGE = "a text value contains a NUL character (\\u0000), not allowed"


class CrmError(Exception):
    """An expected failure, shown to the caller with its code (anything else is masked)."""

    code = "INTERNAL_SERVER_ERROR"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def extensions(self) -> dict[str, str]:
        """The GraphQL ``extensions`` of this error."""
        ext = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        return ext


class BadUserInput(CrmError):
    """The input is invalid; ``field`` names which part."""

    code = "BAD_USER_INPUT"
    http_status = 422


class Conflict(CrmError):
    """The input clashes with existing data (a duplicate)."""

    code = "CONFLICT"
    http_status = 409


class NotFound(CrmError):
    """No such record for this tenant."""

    code = "NOT_FOUND"
    http_status = 404


class Unauthenticated(CrmError):
    """The caller did not say who they are."""

    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(CrmError):
    """The caller may not do this."""

    code = "FORBIDDEN"
    http_status = 403


def unstorable_text(error: BaseException | None) -> bool:
    """Whether ``error`` comes from text PostgreSQL cannot store (through any wrapping)."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, _UNSTORABLE_TEXT):
            return True
        error = error.__cause__ or getattr(error, "orig", None)
        seen += 1
    return False
