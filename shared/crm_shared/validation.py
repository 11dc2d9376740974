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


# Stored JSON (preferences, settings) is read back inside GraphQL answers and events: bounded so
# that what is stored can always be encoded and read again (orjson stops at 254 levels).
STORED_JSON_MAX_DEPTH = 10
STORED_JSON_MAX_CHARS = 4000


def json_depth(value: object, *, stop_at: int | None = None) -> int:
    """How deeply ``value`` nests objects and arrays (a scalar is 0, ``{}`` is 1); iterative,
    so any depth is measured without recursion; it stops counting past ``stop_at``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop_at is not None and deepest > stop_at:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def check_stored_json(
    value: Any, *, max_depth: int = STORED_JSON_MAX_DEPTH, max_chars: int = STORED_JSON_MAX_CHARS
) -> Any:
    """``value`` if it nests at most ``max_depth`` levels and encodes in ``max_chars``
    characters; ValueError (for a pydantic validator) otherwise."""
    if value is None:
        return value
    if json_depth(value, stop_at=max_depth) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    if len(str(value)) > max_chars:
        raise ValueError(f"at most {max_chars} characters")
    return value
