"""Plan execution: runs the fetches (independent ones in parallel) and merges their data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from gateway.planner import Fetch, QueryPlan, RepField

JsonPath = list[str | int]


class SubgraphError(Exception):
    """A subgraph could not be asked or did not answer GraphQL."""

    def __init__(self, message: str, code: str = "SUBGRAPH_UNAVAILABLE") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# (fetch, variables) -> the subgraph's GraphQL response body.
FetchFunction = Callable[[Fetch, dict[str, Any]], Awaitable[dict[str, Any]]]


def deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merges a subgraph answer into an object of the gateway's data, recursively."""
    for key, value in source.items():
        existing = target.get(key)
        if isinstance(value, dict) and isinstance(existing, dict):
            deep_merge(existing, value)
        elif isinstance(value, list) and isinstance(existing, list) and len(value) == len(existing):
            for index, item in enumerate(value):
                current = existing[index]
                if isinstance(item, dict) and isinstance(current, dict):
                    deep_merge(current, item)
                else:
                    existing[index] = item
        else:
            target[key] = value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def objects_at(data: Any, path: tuple[str, ...]) -> list[tuple[dict[str, Any], JsonPath]]:
    """The objects found at a response path (lists flattened), with their concrete paths."""
    found: list[tuple[dict[str, Any], JsonPath]] = []
    concrete: JsonPath = []
    depth = len(path)

    def walk(value: Any, index: int) -> None:
        if value is None:
            return
        if isinstance(value, list):
            for position, item in enumerate(value):
                concrete.append(position)
                walk(item, index)
                concrete.pop()
            return
        if not isinstance(value, dict):
            return
        if index == depth:
            found.append((value, list(concrete)))
            return
        key = path[index]
        if key in value:
            concrete.append(key)
            walk(value[key], index + 1)
            concrete.pop()

    walk(data, 0)
    return found


_MISSING = object()


def _read(value: Any, fields: tuple[RepField, ...]) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_read(item, fields) for item in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for rep in fields:
        item = value.get(rep.key, _MISSING)
        if item is _MISSING:
            return _MISSING
        if rep.children:
            item = _read(item, rep.children)
            if item is _MISSING:
                return _MISSING
        result[rep.name] = item
    return result


def representation(
    obj: Mapping[str, Any], typename: str, fields: tuple[RepField, ...]
) -> dict[str, Any] | None:
    """The ``_Any`` representation of an object, or None when a key/required field is missing."""
    values = _read(obj, fields)
    if values is _MISSING:
        return None
    return {"__typename": typename, **values}


def subgraph_error(error: Any, subgraph: str, path: JsonPath | None) -> dict[str, Any]:
    """A subgraph's error as the client sees it (Apollo's shape: serviceName, code)."""
    message = error.get("message") if isinstance(error, dict) else None
    extensions = error.get("extensions") if isinstance(error, dict) else None
    extensions = dict(extensions) if isinstance(extensions, dict) else {}
    extensions["serviceName"] = subgraph
    if not extensions.get("code"):
        extensions["code"] = "DOWNSTREAM_SERVICE_ERROR"
    result: dict[str, Any] = {
        "message": message or f'Error while fetching subquery from service "{subgraph}"'
    }
    if path is not None:
        result["path"] = path
    result["extensions"] = extensions
    return result


class Execution:
    """One run of a plan: the merged data and the errors met."""

    def __init__(self, plan: QueryPlan, variables: Mapping[str, Any], fetch: FetchFunction) -> None:
        self.plan = plan
        self.variables = variables
        self.fetch_function = fetch
        self.data: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []

    async def run(self) -> None:
        """Runs every fetch once its dependencies are done."""
        fetches = self.plan.fetches
        if not fetches:
            return
        if len(fetches) == 1:
            await self._run_one(fetches[0])
            return
        tasks: dict[int, asyncio.Task[None]] = {}

        async def after(fetch: Fetch) -> None:
            if fetch.depends_on:
                await asyncio.gather(*(tasks[d] for d in fetch.depends_on))
            await self._run_one(fetch)

        for fetch in fetches:
            tasks[fetch.id] = asyncio.ensure_future(after(fetch))
        await asyncio.gather(*tasks.values())

    def _variables(self, fetch: Fetch) -> dict[str, Any]:
        return {n: self.variables[n] for n in fetch.variables if n in self.variables}

    async def _run_one(self, fetch: Fetch) -> None:
        try:
            if fetch.representations is None:
                await self._root(fetch)
            else:
                await self._entities(fetch, fetch.representations)
        except SubgraphError as error:
            self.errors.append(
                {
                    "message": error.message,
                    "extensions": {"code": error.code, "serviceName": fetch.subgraph},
                }
            )

    async def _root(self, fetch: Fetch) -> None:
        response = await self.fetch_function(fetch, self._variables(fetch))
        for error in response.get("errors") or ():
            path = error.get("path") if isinstance(error, dict) else None
            self.errors.append(subgraph_error(error, fetch.subgraph, list(path) if path else None))
        data = response.get("data")
        if isinstance(data, dict):
            deep_merge(self.data, data)

    async def _entities(self, fetch: Fetch, specs: Mapping[str, tuple[RepField, ...]]) -> None:
        representations: list[dict[str, Any]] = []
        targets: list[list[tuple[dict[str, Any], JsonPath]]] = []
        index_of: dict[bytes, int] = {}
        renames = fetch.rep_typenames
        for obj, path in objects_at(self.data, fetch.path):
            typename = obj.get("__typename")
            fields = specs.get(typename) if isinstance(typename, str) else None
            if fields is None:
                continue
            sent = renames.get(typename, typename) if renames else typename  # type: ignore[arg-type]
            rep = representation(obj, sent, fields)  # type: ignore[arg-type]
            if rep is None:
                # Never a silent null: the fields this fetch owes the object stay unanswered.
                self.errors.append(
                    {
                        "message": f"Cannot complete {typename} from subgraph "
                        f'"{fetch.subgraph}": its key or required fields are missing',
                        "path": path,
                        "extensions": {
                            "code": "QUERY_PLANNING_FAILED",
                            "serviceName": fetch.subgraph,
                        },
                    }
                )
                continue
            # Identical representations are asked once; the answer goes to every occurrence.
            identity = orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
            index = index_of.get(identity)
            if index is None:
                index_of[identity] = len(representations)
                representations.append(rep)
                targets.append([(obj, path)])
            else:
                targets[index].append((obj, path))
        if not representations:
            return
        variables = self._variables(fetch)
        variables["representations"] = representations
        response = await self.fetch_function(fetch, variables)
        for error in response.get("errors") or ():
            self._entity_error(error, fetch.subgraph, targets)
        data = response.get("data")
        entities = data.get("_entities") if isinstance(data, dict) else None
        if entities is None:
            return
        if not isinstance(entities, list) or len(entities) != len(representations):
            self.errors.append(
                {
                    "message": f'Expected "data._entities" to contain {len(representations)} '
                    "elements",
                    "extensions": {"code": "INVALID_GRAPHQL", "serviceName": fetch.subgraph},
                }
            )
            return
        for entity, occurrences in zip(entities, targets, strict=True):
            if not isinstance(entity, dict):
                continue
            first = True
            if renames:
                # An @interfaceObject answers with the interface's name: keep the object's own.
                entity.pop("__typename", None)
            for obj, _ in occurrences:
                if "__typename" not in entity:
                    entity["__typename"] = obj.get("__typename")
                deep_merge(obj, entity if first else _copy(entity))
                first = False

    def _entity_error(
        self,
        error: Any,
        subgraph: str,
        targets: list[list[tuple[dict[str, Any], JsonPath]]],
    ) -> None:
        path = error.get("path") if isinstance(error, dict) else None
        if (
            isinstance(path, list)
            and len(path) >= 2
            and path[0] == "_entities"
            and isinstance(path[1], int)
            and 0 <= path[1] < len(targets)
        ):
            for _, concrete in targets[path[1]]:
                self.errors.append(subgraph_error(error, subgraph, concrete + list(path[2:])))
            return
        self.errors.append(subgraph_error(error, subgraph, None))


async def execute_plan(
    plan: QueryPlan, variables: Mapping[str, Any], fetch: FetchFunction
) -> Execution:
    """Runs a plan and returns the merged data and the subgraph errors."""
    execution = Execution(plan, variables, fetch)
    await execution.run()
    return execution
