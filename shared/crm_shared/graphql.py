"""GraphQL plumbing every subgraph shares: context, error codes, caches, the ASGI app."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, TypeVar

import strawberry
from graphql import GraphQLError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, QueryDepthLimiter, SchemaExtension, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.types import ExecutionContext, Info
from strawberry.types.base import StrawberryObjectDefinition

from crm_shared.auth import Permission, Principal, TokenVerifier, bearer_token
from crm_shared.db import Database
from crm_shared.errors import (
    UNSTORABLE_TEXT_MESSAGE,
    BadUserInput,
    CrmError,
    Unauthenticated,
    unstorable_text,
)
from crm_shared.events.envelope import Envelope
from crm_shared.events.live import LiveEvents

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every resolver may use: the request, the caller, the database, per-request loaders.

    The caller's token is verified before any resolver runs; a request without one still
    reaches fields that need no caller (``_service``), and every other field asks for its
    permission through :func:`authorize`, which answers UNAUTHENTICATED or FORBIDDEN.
    """

    request: Request | WebSocket
    response: Response | None
    db: Database
    caller: Principal | None = None
    auth_error: CrmError | None = None
    loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    # The broker's events as they happen, for subscription resolvers.
    live: LiveEvents | None = None

    @property
    def principal(self) -> Principal:
        """The verified caller; UNAUTHENTICATED when the request has no valid token."""
        if self.auth_error is not None:
            raise self.auth_error
        if self.caller is None:
            raise Unauthenticated("the request carries no bearer token")
        return self.caller

    @property
    def tenant_id(self) -> uuid.UUID:
        """The caller's tenant (every query filters on it)."""
        return self.principal.tenant_id

    def loader(
        self, name: str, factory: Callable[[], DataLoader[Any, Any]]
    ) -> DataLoader[Any, Any]:
        """The request's DataLoader called ``name``, made on first use."""
        if name not in self.loaders:
            self.loaders[name] = factory()
        return self.loaders[name]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A database session for one resolver's unit of work."""
        async with self.db.session() as session:
            yield session


CrmInfo = Info[Context, None]

K = TypeVar("K")
V = TypeVar("V")
Fetch = Callable[[AsyncSession, uuid.UUID, Sequence[K]], Awaitable[Mapping[K, V]]]


def keyed_loader(info: CrmInfo, name: str, fetch: Fetch[K, V], default: V) -> DataLoader[K, V]:
    """The request's batch loader ``name``: ``fetch(session, tenant_id, keys)`` answers a
    mapping for the caller's tenant; keys it lacks get ``default``."""
    context = info.context
    tenant_id = context.tenant_id

    async def load(keys: list[K]) -> list[V]:
        async with context.session() as session:
            found = await fetch(session, tenant_id, keys)
        return [found.get(key, default) for key in keys]

    return context.loader(name, partial(DataLoader, load_fn=load))


async def live_updates(
    info: CrmInfo,
    *,
    event_types: Iterable[str],
    tenant_id: uuid.UUID,
    match: Callable[[Envelope], bool] | None = None,
) -> AsyncIterator[Envelope]:
    """The tenant's events of ``event_types`` as they happen, for a subscription resolver.

    Each event is answered like a request of its own: the loaders' caches are dropped first,
    so a value read for an earlier event is read again.
    """
    live = info.context.live
    if live is None:
        raise RuntimeError("this app serves no subscriptions (no live events)")
    async for envelope in live.subscribe(event_types=event_types, tenant_id=tenant_id, match=match):
        info.context.loaders.clear()
        yield envelope


def authorize(
    info: CrmInfo, permission: Permission, *, customer_id: uuid.UUID | None = None
) -> Principal:
    """The caller, if they hold ``permission`` (and, with a customer token, own ``customer_id``)."""
    principal = info.context.principal
    principal.check(permission, customer_id=customer_id)
    return principal


class ErrorCodes(SchemaExtension):
    """Gives every error a code; masks unexpected ones so nothing internal leaks."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_with_code(error) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Each event of a subscription (and its refusal) is sent on its own, not at the end.
        if getattr(result, "errors", None):
            result.errors = [_with_code(error) for error in result.errors]
        yield


# A variable that does not coerce to its type: "Variable '$i' has invalid value at .birthDate".
_VARIABLE_ERROR = re.compile(r"^Variable '\$(\w+)' (?:has|got) invalid value(?: at ([\w.\[\]]+))?")


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if unstorable_text(original):
        original = BadUserInput(UNSTORABLE_TEXT_MESSAGE)
    variable = _VARIABLE_ERROR.match(error.message) if error.path is None else None
    if variable is not None and not isinstance(original, CrmError):
        # A value the scalar refused (a date of month 13, an Int past 32 bits): the caller's.
        name, at = variable.groups()
        return GraphQLError(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            extensions={"code": "BAD_USER_INPUT", "field": name + (at or "")},
        )
    if isinstance(original, CrmError):
        return GraphQLError(
            original.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions=original.extensions(),
        )
    if original is None:
        code = (error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
        return GraphQLError(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={**(error.extensions or {}), "code": code},
        )
    log.error("unexpected error in a resolver", exc_info=original)
    return GraphQLError(
        "Internal server error",
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


def schema_extensions(max_depth: int = 15) -> list[Any]:
    """Extensions on every subgraph: caches (validation is costly) and the error codes.

    Factories, not instances: strawberry shares an instance between concurrent requests, and
    an extension keeps its request in ``self.execution_context`` (errors lost their codes under
    load). The parse and validation caches live at module level, so they are still shared.
    """
    return [
        partial(ParserCache, maxsize=1024),
        partial(ValidationCache, maxsize=1024),
        partial(QueryDepthLimiter, max_depth=max_depth),
        ErrorCodes,
    ]


class SubgraphSchema(strawberry.federation.Schema):
    """A Federation v2 subgraph schema with our extensions and quiet expected errors."""

    # The newest Federation version that standard composition (theguild 0.27) and
    # @apollo/gateway 2.14 both accept; strawberry would default to 2.11.
    FEDERATION_VERSION: Final = "2.9"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            extensions=schema_extensions(), federation_version=self.FEDERATION_VERSION, **kwargs
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the caller's business; unexpected ones are logged by ErrorCodes.
        return None

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """``_entities``; a representation that is not an object naming one of our types is
        the caller's error (strawberry would fail on it with an internal error)."""
        for index, representation in enumerate(representations):
            if not self._is_entity_representation(representation):
                raise BadUserInput(
                    f"representations.{index}: not a representation of an entity of this subgraph",
                    field=f"representations.{index}",
                )
        return super().entities_resolver(info, representations)

    def _is_entity_representation(self, representation: object) -> bool:
        if not isinstance(representation, dict):
            return False
        name = representation.get("__typename")
        found = self.schema_converter.type_map.get(name) if isinstance(name, str) else None
        return found is not None and isinstance(found.definition, StrawberryObjectDefinition)


class SubgraphApp(GraphQL[Context, None]):
    """A subgraph's ASGI GraphQL app, with our context (HTTP, and WebSocket subscriptions)."""

    def __init__(
        self,
        schema: SubgraphSchema,
        db: Database,
        verifier: TokenVerifier,
        live: LiveEvents | None = None,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self._db = db
        self._verifier = verifier
        self._live = live

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> Context:
        context = Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            db=self._db,
            live=self._live,
        )
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is not None:
                context.caller = await self._verifier.verify(token)
        except CrmError as exc:
            context.auth_error = exc
        return context
