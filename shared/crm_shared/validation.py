"""Turning input into validated models, with errors that name the offending field."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crm_shared.errors import BadUserInput

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any], *, prefix: str = "input") -> M:
    """``model`` built from ``data``; BAD_USER_INPUT naming the first invalid field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(_camel(part) for part in (prefix, *first["loc"]) if part != "")
        raise BadUserInput(f"{path}: {first['msg']}", field=path) from None


def _camel(part: object) -> str:
    """A model field name as GraphQL spells it (``contact_points`` -> ``contactPoints``)."""
    head, *rest = str(part).split("_")
    return head + "".join(word.title() for word in rest)


def parse_id(value: str, *, field: str) -> uuid.UUID:
    """A UUID from a GraphQL ID argument, or BAD_USER_INPUT naming the argument."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadUserInput(f"{field}: not a valid id", field=field) from None


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(value: object) -> object:
    """An e-mail address trimmed and lower-cased (other values pass through for validation)."""
    return value.strip().lower() if isinstance(value, str) else value


def check_email(value: str) -> str:
    """``value`` if it looks like an e-mail address; ValueError (for pydantic) otherwise."""
    if not EMAIL_PATTERN.fullmatch(value):
        raise ValueError("not an e-mail address")
    return value


def reason_text(value: str, *, field: str = "input.reason", limit: int = 500) -> str:
    """A required free-text reason, trimmed, 1..``limit`` characters; BAD_USER_INPUT otherwise."""
    reason = value.strip()
    if not reason or len(reason) > limit:
        raise BadUserInput(f"{field}: say why, in 1 to {limit} characters", field=field)
    return reason
