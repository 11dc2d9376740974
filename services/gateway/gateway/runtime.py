"""The request pipeline: parse and validate once per document, plan once per operation, execute."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute_sync,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from crm_shared.auth import Principal, TokenVerifier, bearer_token
from crm_shared.errors import Unauthenticated
from gateway.cache import LRUCache
from gateway.client import FORWARDED_HEADERS, SubgraphClient
from gateway.executor import execute_plan
from gateway.limits import (
    Measure,
    Refusal,
    alias_count,
    fragments_of,
    measure,
    page_size_variables,
    root_field_count,
    uses_introspection,
)
from gateway.operation import condition_variables, operation_depth
from gateway.persisted import PersistedOperations
from gateway.planner import Fetch, PlanningError, QueryPlan, build_plan
from gateway.ratelimit import Throttle, TokenBucketLimiter
from gateway.shaping import Shaper
from gateway.supergraph import Supergraph

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GraphQLResponse:
    """What the HTTP layer sends back."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EdgePolicy:
    """The public edge's limits (see the README); every one is checked before planning."""

    max_tokens: int | None = None
    # Characters of query text (comments included, which max_tokens does not count).
    max_query_length: int | None = None
    max_aliases: int | None = None
    max_root_fields: int | None = None
    max_list_size: int = 100
    max_cost: int | None = None
    introspection: bool = True
    mask_errors: bool = False
    report_cost: bool = False
    # No "Did you mean ...?" in validation and variable errors (production).
    hide_suggestions: bool = False


# Measures kept per operation (one per distinct page size and @skip/@include values).
_MEASURES_PER_OPERATION = 64


@dataclass(slots=True)
class _OperationInfo:
    depth: int
    condition_variables: tuple[str, ...]
    introspection: bool
    # What a measure depends on besides the document: the @skip/@include values and these.
    page_size_variables: tuple[str, ...]
    # Measures by (@skip/@include values, values of page_size_variables).
    measures: dict[tuple[Any, ...], Measure] = field(default_factory=dict)


@dataclass(slots=True)
class _Document:
    """A parsed and validated document (or why it is not usable)."""

    document: DocumentNode | None
    errors: list[dict[str, Any]] | None = None
    status: int = 200
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    infos: dict[str | None, _OperationInfo] = field(default_factory=dict)


@dataclass(slots=True)
class _PlanEntry:
    plan: QueryPlan | None
    shaper: Shaper | None
    error: str | None = None
    introspection_document: DocumentNode | None = None


@dataclass(frozen=True, slots=True)
class _Ready:
    """An operation that passed the edge and is planned, with its caller's bill."""

    planned: _PlanEntry
    variables: dict[str, Any]
    headers: Mapping[str, str]
    cost: int
    throttle: Throttle | None
    subscription: bool


async def _single(answer: Awaitable[GraphQLResponse]) -> AsyncIterator[dict[str, Any]]:
    yield (await answer).body


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = list(error.path)
    extensions = dict(error.extensions or {})
    extensions["code"] = code
    formatted["extensions"] = extensions
    return formatted


def _request_error(message: str, code: str, status: int = 400, **extra: Any) -> GraphQLResponse:
    return GraphQLResponse(
        status, {"errors": [{"message": message, "extensions": {"code": code}, **extra}]}
    )


def _refused(refusal: Refusal, extensions: dict[str, Any] | None = None) -> GraphQLResponse:
    body: dict[str, Any] = {"errors": [refusal.error()]}
    if extensions:
        body["extensions"] = extensions
    return GraphQLResponse(refusal.status, body)


def _nested_too_deep(code: str = "GRAPHQL_PARSE_FAILED") -> dict[str, Any]:
    return {"message": "The request is nested too deeply.", "extensions": {"code": code}}


def _text_weight(query: str, _: object) -> int:
    return len(query)


def _plan_weight(key: tuple[str, str | None, tuple[bool, ...]], _: object) -> int:
    return len(key[0])


def _masked(error: dict[str, Any]) -> dict[str, Any]:
    """A subgraph error as production shows it: message, path and code only."""
    masked: dict[str, Any] = {"message": error.get("message", "Error")}
    if "path" in error:
        masked["path"] = error["path"]
    code = (error.get("extensions") or {}).get("code")
    if code is not None:
        masked["extensions"] = {"code": code}
    return masked


class Gateway:
    """A federation runtime for one supergraph."""

    def __init__(  # noqa: PLR0913 (to split, issue 18)
        self,
        supergraph: Supergraph,
        client: SubgraphClient,
        *,
        max_depth: int = 15,
        debug_extensions: bool = False,
        document_cache_size: int = 1000,
        plan_cache_size: int = 1000,
        cache_max_chars: int | None = None,
        verifier: TokenVerifier | None = None,
        policy: EdgePolicy | None = None,
        limiter: TokenBucketLimiter | None = None,
        persisted: PersistedOperations | None = None,
    ) -> None:
        self.supergraph = supergraph
        self.policy = policy or EdgePolicy()
        # Cost points per client (tenant, subject of the verified token); None: unlimited.
        self.limiter = limiter
        self.persisted = persisted or PersistedOperations()
        # Verifies the bearer token of every operation that reaches a subgraph; the subgraphs
        # verify it again (a subgraph reached directly is no open door).
        self.verifier = verifier
        self.client = client
        self.max_depth = max_depth
        self.debug_extensions = debug_extensions
        # Bounded by entries and by the characters of their query texts (what their parsed
        # documents and plans grow with), so distinct large documents cannot fill the memory.
        self._documents: LRUCache[str, _Document] = LRUCache(
            document_cache_size, max_weight=cache_max_chars, weigh=_text_weight
        )
        self._plans: LRUCache[tuple[str, str | None, tuple[bool, ...]], _PlanEntry] = LRUCache(
            plan_cache_size, max_weight=cache_max_chars, weigh=_plan_weight
        )

    # -- documents and plans -----------------------------------------------------------------

    def document(self, query: str) -> _Document:
        """Parses and validates a document against the API schema, once per query text."""
        cached = self._documents.get(query)
        if cached is not None:
            return cached
        try:
            document = parse(query, max_tokens=self.policy.max_tokens)
        except GraphQLError as error:
            entry = _Document(None, [_formatted(error, "GRAPHQL_PARSE_FAILED")], 400)
        except RecursionError:
            # Values nested thousands deep (within max_tokens): refused, not a 500.
            entry = _Document(None, [_nested_too_deep()], 400)
        else:
            # Counted before validation: an abusive document is refused at the cost of one walk.
            refusal = self._document_limits(document)
            try:
                errors = (
                    []
                    if refusal
                    else validate(
                        self.supergraph.api_schema,
                        document,
                        hide_suggestions=self.policy.hide_suggestions,
                    )
                )
            except RecursionError:
                refusal = Refusal(_nested_too_deep()["message"], "GRAPHQL_PARSE_FAILED")
                errors = []
            if refusal:
                entry = _Document(None, [refusal.error()], refusal.status)
            elif errors:
                entry = _Document(
                    None, [_formatted(e, "GRAPHQL_VALIDATION_FAILED") for e in errors], 400
                )
            else:
                entry = _Document(document)
                for definition in document.definitions:
                    if isinstance(definition, OperationDefinitionNode):
                        name = definition.name.value if definition.name else None
                        entry.operations[name] = definition
                    elif isinstance(definition, FragmentDefinitionNode):
                        entry.fragments[definition.name.value] = definition
        self._documents.put(query, entry)
        return entry

    def _document_limits(self, document: DocumentNode) -> Refusal | None:
        """Aliases and root fields of every operation of the document, within the limits."""
        policy = self.policy
        fragments = fragments_of(document)
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if policy.max_aliases is not None:
                aliases = alias_count(definition, fragments)
                if aliases > policy.max_aliases:
                    return Refusal(
                        f"The operation has {aliases} aliases; at most {policy.max_aliases} "
                        "are allowed.",
                        "TOO_MANY_ALIASES",
                    )
            if policy.max_root_fields is not None:
                roots = root_field_count(definition, fragments)
                if roots > policy.max_root_fields:
                    return Refusal(
                        f"The operation selects {roots} root fields; at most "
                        f"{policy.max_root_fields} are allowed.",
                        "TOO_MANY_ROOT_FIELDS",
                    )
        return None

    def _info(
        self, entry: _Document, name: str | None, op: OperationDefinitionNode
    ) -> _OperationInfo:
        info = entry.infos.get(name)
        if info is None:
            info = _OperationInfo(
                depth=operation_depth(op, entry.fragments),
                condition_variables=condition_variables(op, entry.fragments),
                introspection=uses_introspection(op, entry.fragments),
                page_size_variables=page_size_variables(op, entry.fragments),
            )
            entry.infos[name] = info
        return info

    def plan(
        self,
        query: str,
        entry: _Document,
        name: str | None,
        operation: OperationDefinitionNode,
        bools: dict[str, bool],
    ) -> _PlanEntry:
        """The cached plan of an operation for these @skip/@include values."""
        key = (query, name, tuple(bools.values()))
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        try:
            plan = build_plan(self.supergraph, operation, entry.fragments, bools)
        except PlanningError as error:
            logger.warning("cannot plan operation %r: %s", name, error)
            planned = _PlanEntry(None, None, str(error))
        else:
            introspection_document = None
            if plan.introspection:
                introspection_document = DocumentNode(
                    definitions=(
                        replace(
                            operation,
                            selection_set=SelectionSetNode(selections=plan.introspection),
                        ),
                        *entry.fragments.values(),
                    )
                )
            planned = _PlanEntry(
                plan, Shaper(self.supergraph.api_schema, plan), None, introspection_document
            )
        self._plans.put(key, planned)
        return planned

    # -- requests ----------------------------------------------------------------------------

    async def execute(
        self,
        query: Any,
        variables: Any = None,
        operation_name: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        extensions: Any = None,
    ) -> GraphQLResponse:
        """Runs one GraphQL request; never raises for bad input."""
        ready = await self._prepare(
            query, variables, operation_name, headers or {}, method=method, extensions=extensions
        )
        if isinstance(ready, GraphQLResponse):
            return ready
        if ready.subscription:
            return _request_error(
                "Subscriptions are served over WebSocket (graphql-transport-ws) at this path.",
                "BAD_REQUEST",
            )
        response = await self._run(ready.planned, ready.variables, ready.headers)
        if self.policy.report_cost:
            response.body.setdefault("extensions", {}).update(
                self._cost_extensions(ready.cost, ready.throttle)
            )
        return response

    async def subscribe(
        self,
        query: Any,
        variables: Any = None,
        operation_name: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        extensions: Any = None,
    ) -> GraphQLResponse | AsyncIterator[dict[str, Any]]:
        """A subscription's results as they come (or the refusal, as for ``execute``).

        The root field's subgraph streams its events over graphql-transport-ws; every event
        is completed by the plan's other fetches and shaped like a query's answer. A query or
        mutation sent this way yields its one answer.
        """
        ready = await self._prepare(
            query, variables, operation_name, headers or {}, method="POST", extensions=extensions
        )
        if isinstance(ready, GraphQLResponse):
            return ready
        if not ready.subscription:
            return _single(self._run(ready.planned, ready.variables, ready.headers))
        return self._stream(ready)

    async def _stream(self, ready: _Ready) -> AsyncIterator[dict[str, Any]]:
        plan = ready.planned.plan
        assert plan is not None and plan.fetches
        root = plan.fetches[0]
        forwarded = {n: ready.headers[n] for n in FORWARDED_HEADERS if n in ready.headers}
        body: dict[str, Any] = {
            "query": root.operation,
            "variables": {n: ready.variables[n] for n in root.variables if n in ready.variables},
        }
        if root.operation_name:
            body["operationName"] = root.operation_name
        url = self.supergraph.subgraph_urls[root.subgraph]
        async for event in self.client.subscribe(root.subgraph, url, body, forwarded):
            response = await self._run(ready.planned, ready.variables, ready.headers, event)
            yield response.body

    async def _prepare(  # noqa: C901 (to split, issue 18)
        self,
        query: Any,
        variables: Any,
        operation_name: Any,
        headers: Mapping[str, str],
        *,
        method: str,
        extensions: Any,
    ) -> _Ready | GraphQLResponse:
        """Everything before execution: the caller, the edge, the document, the plan, the bill.

        The caller comes first: nothing is parsed for a request without a valid token (no
        schema hints for strangers), and every operation is charged to a caller.
        """
        principal: Principal | None = None
        if self.verifier is not None:
            authenticated = await self._authenticate(headers)
            if isinstance(authenticated, GraphQLResponse):
                return authenticated
            principal = authenticated
        resolved = self.persisted.resolve(query, extensions)
        if isinstance(resolved, Refusal):
            return _refused(resolved)
        query, register = resolved
        if not isinstance(query, str) or not query.strip():
            return _request_error(
                "GraphQL operations must contain a non-empty `query`.", "BAD_REQUEST"
            )
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return _request_error("`variables` must be an object if provided.", "BAD_REQUEST")
        if operation_name is not None and not isinstance(operation_name, str):
            return _request_error("`operationName` must be a string if provided.", "BAD_REQUEST")
        max_length = self.policy.max_query_length
        if max_length is not None and len(query) > max_length:
            return _request_error(
                f"The query is {len(query)} characters long; at most {max_length} are allowed.",
                "QUERY_TOO_LARGE",
                413,
            )
        entry = self.document(query)
        if entry.errors is not None:
            return GraphQLResponse(entry.status, {"errors": entry.errors})
        if register is not None:
            self.persisted.register(register, query)
        operation = self._operation(entry, operation_name)
        if isinstance(operation, GraphQLResponse):
            return operation
        if method == "GET" and operation.operation != OperationType.QUERY:
            return GraphQLResponse(
                405,
                {
                    "errors": [
                        {
                            "message": "GET requests only support query operations, not "
                            f"{operation.operation.value} operations",
                            "extensions": {"code": "BAD_REQUEST"},
                        }
                    ]
                },
                {"allow": "POST"},
            )
        name = operation.name.value if operation.name else None
        info = self._info(entry, name, operation)
        if info.depth > self.max_depth:
            return _request_error(
                f"Query depth {info.depth} exceeds the maximum allowed depth of {self.max_depth}.",
                "GRAPHQL_VALIDATION_FAILED",
            )
        if info.introspection and not self.policy.introspection:
            return _request_error(
                "Introspection is disabled on this gateway.", "INTROSPECTION_DISABLED"
            )
        try:
            coerced = get_variable_values(
                self.supergraph.api_schema,
                operation.variable_definitions or (),
                variables,
                hide_suggestions=self.policy.hide_suggestions,
            )
        except RecursionError:
            return GraphQLResponse(400, {"errors": [_nested_too_deep("BAD_USER_INPUT")]})
        if isinstance(coerced, list):
            return GraphQLResponse(
                400, {"errors": [_formatted(e, "BAD_USER_INPUT") for e in coerced]}
            )
        bools = {n: bool(coerced.coerced.get(n)) for n in info.condition_variables}
        key = (
            tuple(bools.values()),
            tuple(coerced.coerced.get(n) for n in info.page_size_variables),
        )
        measure_key: tuple[Any, ...] | None = key
        try:
            measured = info.measures.get(key)
        except TypeError:  # a page size that is not a plain value: measured every time
            measured = measure_key = None
        if measured is None:
            measured = measure(
                self.supergraph.api_schema,
                operation,
                entry.fragments,
                coerced.coerced,
                bools,
                self.policy.max_list_size,
            )
            if measure_key is not None and len(info.measures) < _MEASURES_PER_OPERATION:
                info.measures[measure_key] = measured
        if measured.refusal is not None:
            return _refused(measured.refusal)
        max_cost = self.policy.max_cost
        if max_cost is not None and measured.cost > max_cost:
            return _refused(
                Refusal(
                    f"The operation costs {measured.cost} points; at most {max_cost} are "
                    "allowed. Ask for fewer items (first/last) or fewer fields.",
                    "QUERY_TOO_COMPLEX",
                ),
                self._cost_extensions(measured.cost, None),
            )
        planned = self.plan(query, entry, name, operation, bools)
        if planned.plan is None or planned.shaper is None:
            return GraphQLResponse(
                200,
                {
                    "errors": [
                        {
                            "message": f"Query planning failed: {planned.error}",
                            "extensions": {"code": "QUERY_PLANNING_FAILED"},
                        }
                    ],
                    "data": None,
                },
            )
        throttle: Throttle | None = None
        if principal is not None:
            if self.limiter is not None:
                client = (str(principal.tenant_id), principal.subject)
                # At least a point each: `{ __typename }` costs nothing but is not free.
                throttle = self.limiter.take(client, max(1, measured.cost))
                if not throttle.allowed:
                    seconds = max(1, math.ceil(throttle.retry_after))
                    refused = _refused(
                        Refusal(
                            f"Rate limit exceeded: the operation costs {measured.cost} points "
                            f"and {math.floor(throttle.currently_available)} are available "
                            f"(restored at {throttle.restore_rate:g}/s); retry in {seconds} s.",
                            "RATE_LIMITED",
                            429,
                        ),
                        self._cost_extensions(measured.cost, throttle),
                    )
                    return replace(refused, headers={"retry-after": str(seconds)})
        return _Ready(
            planned,
            variables,
            headers,
            measured.cost,
            throttle,
            operation.operation == OperationType.SUBSCRIPTION,
        )

    def _cost_extensions(self, cost: int, throttle: Throttle | None) -> dict[str, Any]:
        if not self.policy.report_cost:
            return {}
        report: dict[str, Any] = {"requestedQueryCost": cost}
        if throttle is not None:
            report["throttleStatus"] = throttle.status()
        return {"cost": report}

    async def _authenticate(self, headers: Mapping[str, str]) -> Principal | GraphQLResponse:
        """The principal of a valid token; a 401 UNAUTHENTICATED answer otherwise."""
        assert self.verifier is not None
        try:
            token = bearer_token(headers.get("authorization"))
            if token is None:
                raise Unauthenticated("the request carries no bearer token")
            return await self.verifier.verify(token)
        except Unauthenticated as error:
            refused = _request_error(str(error), "UNAUTHENTICATED", 401)
            return replace(refused, headers={"www-authenticate": 'Bearer realm="social-crm"'})

    def _operation(
        self, entry: _Document, operation_name: str | None
    ) -> OperationDefinitionNode | GraphQLResponse:
        if operation_name is None:
            if len(entry.operations) == 1:
                return next(iter(entry.operations.values()))
            return _request_error(
                "Must provide operation name if query contains multiple operations.",
                "OPERATION_RESOLUTION_FAILURE",
            )
        found = entry.operations.get(operation_name)
        if found is None:
            return _request_error(
                f'Unknown operation named "{operation_name}".', "OPERATION_RESOLUTION_FAILURE"
            )
        return found

    async def _run(
        self,
        planned: _PlanEntry,
        variables: dict[str, Any],
        headers: Mapping[str, str],
        root_event: dict[str, Any] | None = None,
    ) -> GraphQLResponse:
        """Run the plan; with ``root_event``, that is the answer of its first (root) fetch."""
        plan = planned.plan
        shaper = planned.shaper
        assert plan is not None and shaper is not None
        forwarded = {n: headers[n] for n in FORWARDED_HEADERS if n in headers}
        counts: dict[str, int] = {}
        urls = self.supergraph.subgraph_urls
        client = self.client

        async def fetch(item: Fetch, fetch_variables: dict[str, Any]) -> dict[str, Any]:
            if root_event is not None and item.id == 0:
                return root_event
            counts[item.subgraph] = counts.get(item.subgraph, 0) + 1
            body: dict[str, Any] = {"query": item.operation, "variables": fetch_variables}
            if item.operation_name:
                body["operationName"] = item.operation_name
            return await client.post(
                item.subgraph, urls[item.subgraph], body, forwarded, item.operation_name
            )

        execution = await execute_plan(plan, variables, fetch)
        introspection = None
        if planned.introspection_document is not None:
            result = execute_sync(
                self.supergraph.api_schema,
                planned.introspection_document,
                variable_values=variables,
            )
            introspection = result.data or {}
        data, completion_errors = shaper.shape(execution.data, introspection)
        body: dict[str, Any] = {}
        if execution.errors:
            if self.policy.mask_errors:
                # Details (exception, stack, serviceName) go to the logs only.
                for error in execution.errors:
                    logger.warning("subgraph error: %s", error)
                body["errors"] = [_masked(e) for e in execution.errors]
            else:
                body["errors"] = execution.errors
        body["data"] = data
        extensions: dict[str, Any] = {}
        if completion_errors and not execution.errors:
            # Apollo's gateway reports value-completion problems here, not in "errors".
            extensions["valueCompletion"] = completion_errors
        if self.debug_extensions:
            extensions["subgraphRequests"] = counts
        if extensions:
            body["extensions"] = extensions
        return GraphQLResponse(200, body)

    async def check_subgraphs(self, timeout_seconds: float = 2.0) -> dict[str, str]:
        """Asks every subgraph ``{ __typename }``; returns the failing ones with the reason."""

        async def probe(name: str, url: str) -> tuple[str, str | None]:
            try:
                answer = await self.client.post(
                    name, url, {"query": "{ __typename }"}, {}, None, timeout_seconds
                )
            except Exception as error:  # noqa: BLE001 - any failure means "not ready"
                return name, str(error) or type(error).__name__
            if answer.get("errors") or not isinstance(answer.get("data"), dict):
                return name, "answered with errors"
            return name, None

        results = await asyncio.gather(
            *(probe(n, u) for n, u in self.supergraph.subgraph_urls.items())
        )
        return {name: reason for name, reason in results if reason is not None}
