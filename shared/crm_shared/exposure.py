"""What a service shows the public: schema hints, its SDL and its metrics.

- Field suggestions ("Did you mean 'customers'?") map the schema for anyone who guesses: they
  are cut from error messages of callers without a valid token, and for everyone in production.
- ``_service { sdl }`` and introspection (``__schema``, ``__type``) answer only where
  ``ServiceSettings.sdl_exposed`` (not in production unless ``<SERVICE>_EXPOSE_SDL=true``):
  the supergraph is composed before deploy.
- ``/metrics`` in production answers only ``Authorization: Bearer <SERVICE>_METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from crm_shared.settings import ServiceSettings

SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)
SDL_FIELD = "_service"
# Root fields that describe the schema: refused together where the SDL is not exposed.
SCHEMA_FIELDS = frozenset({SDL_FIELD, "__schema", "__type"})


def without_suggestions(message: str) -> str:
    """An error message with graphql-core's "Did you mean ...?" cut off."""
    return SUGGESTION.sub("", message)


def _without_suggestions(error: GraphQLError) -> GraphQLError:
    message = without_suggestions(error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        error.extensions,
    )


def _settings(context: Any) -> ServiceSettings | None:
    request = getattr(context, "request", None)
    app = getattr(request, "app", None) if request is not None else None
    settings = getattr(getattr(app, "state", None), "settings", None)
    return settings if isinstance(settings, ServiceSettings) else None


def _schema_field(selection_set: SelectionSetNode, fragments: dict[str, Any]) -> str | None:
    """The first root field describing the schema (``_service``, ``__schema``, ``__type``)
    a root selection reaches, directly or through fragments."""
    seen: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in SCHEMA_FIELDS:
                    return selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    pending.append(fragment.selection_set)
    return None


class SchemaExposure(SchemaExtension):
    """Refuses ``_service`` and introspection where the schema is not exposed; hides
    suggestions from callers
    without a valid token and from everyone in production."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        settings = _settings(context)
        document = self.execution_context.graphql_document
        if settings is not None and not settings.sdl_exposed and document is not None:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            for definition in document.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                name = _schema_field(definition.selection_set, fragments)
                if name is not None:
                    self.execution_context.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"{name} is not served here: the supergraph is composed "
                                "before deploy",
                                extensions={"code": "FORBIDDEN", "field": name},
                            )
                        ],
                    )
                    break
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        context = self.execution_context.context
        settings = _settings(context)
        production = settings is not None and settings.environment == "production"
        anonymous = getattr(context, "caller", None) is None
        if production or anonymous:
            # New errors, not edited ones: validation errors are cached and shared by requests.
            result.errors = [_without_suggestions(error) for error in errors]


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded_metrics(endpoint: Endpoint) -> Endpoint:
    """``/metrics`` as ``endpoint`` serves it, except in production: there only to a caller
    with ``Authorization: Bearer <metrics_token>`` (404 for anyone else, or if none is set)."""

    async def guarded(request: Request) -> Response:
        settings = getattr(request.app.state, "settings", None)
        if isinstance(settings, ServiceSettings) and settings.environment == "production":
            token = settings.metrics_token
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token.get_secret_value()}" if token is not None else None
            if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
                return Response(
                    '{"error":{"code":"NOT_FOUND","message":"no metrics here"}}',
                    status_code=404,
                    media_type="application/json",
                )
        return await endpoint(request)

    return guarded


def expose_with_care(schema: Any) -> None:
    """Adds :class:`SchemaExposure` to a subgraph schema's extensions (once)."""
    if SchemaExposure not in schema.extensions:
        schema.extensions = (*schema.extensions, SchemaExposure)
