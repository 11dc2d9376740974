"""GraphQL plumbing every subgraph shares: context, error codes, caches, the ASGI app."""

from __future__ import annotations

import asyncio
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
from functools import cache, partial
from typing import Any, Final, TypeVar

import asyncpg
import strawberry
from graphql import GraphQLError, ValidationRule
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.extensions import (
    AddValidationRules,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.query_depth_limiter import create_validator
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

    A request has one database session, opened on first use and closed when the request ends
    (:class:`RequestSessions`): :meth:`session` for reads, :meth:`transaction` for writes.
    """

    request: Request | WebSocket
    response: Response | None
    db: Database
    caller: Principal | None = None
    auth_error: CrmError | None = None
    loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    # The broker's events as they happen, for subscription resolvers.
    live: LiveEvents | None = None
    _session: AsyncSession | None = field(default=None, init=False, repr=False)
    # asyncpg runs one statement at a time on a connection: one block uses the session at once.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _holder: asyncio.Task[Any] | None = field(default=None, init=False, repr=False)

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
        """The request's session, for reading: shared by the request's resolvers and loaders,
        one block at a time, in one read transaction that ends with the request.

        Do not write in it (use :meth:`transaction`), and do not wait for a loader inside the
        block: the loader needs the session too.
        """
        async with self._turn():
            try:
                yield self._session or self._open()
            except BaseException:
                # A failed statement aborts the transaction; the next block starts afresh.
                await self._discard()
                raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block exits, rolled back if it raises (the
        request's next block, e.g. the next mutation, still works).

        It takes the request's turn on the database like :meth:`session`, in a session of its
        own: the read transaction before it is ended first (nothing was written in it), and
        reads after it start afresh, so they see what the database made of the write
        (triggers, defaults) rather than the objects the write left behind.
        """
        async with self._turn():
            await self._discard()
            session = self._open()
            try:
                async with session.begin():
                    yield session
            finally:
                await self._discard()

    async def release(self) -> None:
        """End the request's session: its transaction rolled back, its connection returned to
        the pool. The next block opens a new one (a subscription releases it between events)."""
        if self._session is None:
            return
        async with self._lock:
            await self._discard()

    def _open(self) -> AsyncSession:
        self._session = self.db.new_session()
        return self._session

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """The request's turn on its session: one block at a time."""
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError(
                "session() or transaction() inside another one: the block would wait for itself"
            )
        async with self._lock:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    async def _discard(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                # Shielded: a cancelled request must still hand its connection back.
                await asyncio.shield(session.close())
            except Exception:  # the connection is gone (outage); the pool replaces it
                log.warning("closing a request's database session failed", exc_info=True)


CrmInfo = Info[Context, None]

K = TypeVar("K")
V = TypeVar("V")
Fetch = Callable[[AsyncSession, uuid.UUID, Sequence[K]], Awaitable[Mapping[K, V]]]


def keyed_loader(
    info: CrmInfo, name: str, fetch: Fetch[K, V], default: V, *, writes: bool = False
) -> DataLoader[K, V]:
    """The request's batch loader ``name``: ``fetch(session, tenant_id, keys)`` answers a
    mapping for the caller's tenant; keys it lacks get ``default``. A fetch that writes what
    it finds missing (``writes``) runs in a transaction of its own, committed."""
    context = info.context
    tenant_id = context.tenant_id

    async def load(keys: list[K]) -> list[V]:
        block = context.transaction() if writes else context.session()
        async with block as session:
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
    so a value read for an earlier event is read again, and the session is released after it.
    """
    live = info.context.live
    if live is None:
        raise RuntimeError("this app serves no subscriptions (no live events)")
    # No connection is held while waiting for events: each event opens its own session.
    await info.context.release()
    async for envelope in live.subscribe(event_types=event_types, tenant_id=tenant_id, match=match):
        info.context.loaders.clear()
        yield envelope
        await info.context.release()


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


class DatabaseUnavailable(CrmError):
    """The database did not answer (outage, or no connection free in time): retry later."""

    code = "SERVICE_UNAVAILABLE"


_DATABASE_UNAVAILABLE = (
    PoolTimeout,
    OSError,  # refused or reset while connecting
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def _database_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` is the pool timing out or a connection lost (not a statement's fault)."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, _DATABASE_UNAVAILABLE):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or getattr(error, "orig", None)
        seen += 1
    return False


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if unstorable_text(original):
        original = BadUserInput(UNSTORABLE_TEXT_MESSAGE)
    elif _database_unavailable(original):
        log.warning("database unavailable: %s", original)
        original = DatabaseUnavailable("the database is unavailable; retry later")
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


@cache
def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    """The depth limit as a validation rule, one class per limit for the process's lifetime.

    strawberry's ``QueryDepthLimiter`` makes a new rule class per instance, and the validation
    cache is keyed on the rules: with an instance per request it never hit.
    """
    return create_validator(max_depth, None, None)


class DepthLimit(AddValidationRules):
    """Refuses operations nested deeper than ``max_depth``, with the same rule each request."""

    def __init__(self, max_depth: int) -> None:
        super().__init__([depth_limit_rule(max_depth)])


class RequestSessions(SchemaExtension):
    """Closes the request's database session when its operation ends (and, for a subscription,
    after each event), so that a connection is held only while a request uses it."""

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await _release(self.execution_context.context)

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
        await _release(self.execution_context.context)
        yield


async def _release(context: object) -> None:
    if isinstance(context, Context):
        await context.release()


def schema_extensions(max_depth: int = 15) -> list[Any]:
    """Extensions on every subgraph: caches (validation is costly), the depth limit, the
    request's database session and the error codes.

    Factories, not instances: strawberry shares an instance between concurrent requests, and
    an extension keeps its request in ``self.execution_context`` (errors lost their codes under
    load). The parse and validation caches live at module level, so they are still shared, and
    the depth limit's rule is built once (:func:`depth_limit_rule`), so the validation cache
    (keyed on the schema, the document and the rules) hits for a document seen before.
    """
    return [
        partial(ParserCache, maxsize=1024),
        partial(ValidationCache, maxsize=1024),
        partial(DepthLimit, max_depth=max_depth),
        RequestSessions,
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
