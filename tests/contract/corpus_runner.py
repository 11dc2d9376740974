"""Machinery of the differential corpus: one server for every corpus subgraph, compositions,
the reference gateway (``infra/federation/apollo-corpus.mjs``) and random queries."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from strawberry.asgi import GraphQL
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

from tests.contract.corpus import Case
from tests.gateway.harness import FEDERATION_DIR, ServerThread, compose_schemas


class Router:
    """One ASGI app serving every corpus subgraph at ``/<case>/<subgraph>/graphql``."""

    def __init__(self, cases: list[Case]) -> None:
        self.apps: dict[str, Any] = {}
        for case in cases:
            for name, schema in case.subgraphs.items():
                self.apps[f"/{case.name}/{name}/graphql"] = GraphQL(schema, graphql_ide=None)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        app = self.apps.get(scope.get("path", ""))
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no such subgraph"})
            return
        await app(scope, receive, send)


@dataclass
class Composed:
    """A case's supergraph file, or why composition refused it."""

    path: Path | None
    error: str | None = None


def compose_all(cases: list[Case], base_url: str, into: Path) -> dict[str, Composed]:
    """Composes every case (a few node processes at a time)."""

    def one(case: Case) -> tuple[str, Composed]:
        urls = {name: f"{base_url}/{case.name}/{name}/graphql" for name in case.subgraphs}
        try:
            sdl = compose_schemas(case.subgraphs, urls)
        except RuntimeError as error:
            return case.name, Composed(None, str(error))
        path = into / f"{case.name}.graphql"
        path.write_text(sdl, encoding="utf-8")
        return case.name, Composed(path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, cases))


class ApolloCorpus:
    """``@apollo/gateway`` over the corpus supergraphs, in one node process (no HTTP)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(FEDERATION_DIR / "apollo-corpus.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()
        self.next_id = 0
        self.startup_ms: dict[str, float] = {}
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "startup":
                self.startup_ms[Path(parts[1]).stem] = float(parts[2])
            else:
                self._stderr.append(line)

    def ask(self, supergraph: Path, query: str, variables: dict[str, Any] | None) -> Any:
        """The reference's reply: ``{"result": ...}`` or ``{"startup": message}``."""
        with self.lock:
            self.next_id += 1
            request = {
                "id": self.next_id,
                "supergraph": str(supergraph),
                "query": query,
                "variables": variables,
            }
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("apollo-corpus.mjs stopped: " + "".join(self._stderr[-20:]))
        reply = json.loads(line)
        if "crash" in reply:
            raise RuntimeError(f"apollo-corpus.mjs failed: {reply['crash']}")
        return reply

    def stop(self) -> None:
        """Ends the node process (only the one this object started)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Outcome:
    """How one query was answered by both gateways."""

    case: str
    query: str
    variables: dict[str, Any] | None
    ours: Any
    theirs: Any
    equal: bool
    divergent: str | None = None
    generated: bool = False


@dataclass
class Tally:
    """Outcomes of the whole corpus run (printed in the terminal summary)."""

    outcomes: list[Outcome] = field(default_factory=list)
    startups: dict[str, tuple[float, float]] = field(default_factory=dict)

    def lines(self) -> Iterator[str]:
        """The summary: the share answered as Apollo does, written and generated queries."""
        for generated in (False, True):
            chosen = [o for o in self.outcomes if o.generated is generated]
            if not chosen:
                continue
            equal = sum(o.equal for o in chosen)
            cases = len({o.case for o in chosen})
            kind = "generated" if generated else "written"
            yield (
                f"{kind} queries answered as @apollo/gateway does: {equal}/{len(chosen)} "
                f"({100 * equal / len(chosen):.1f} %) over {cases} supergraphs"
            )
        for outcome in self.outcomes:
            if not outcome.equal:
                reason = f" [{outcome.divergent}]" if outcome.divergent else ""
                yield f"  differs{reason}: {outcome.case}: {' '.join(outcome.query.split())}"
        if self.startups:
            ours = sum(s[0] for s in self.startups.values())
            theirs = sum(s[1] for s in self.startups.values())
            yield (
                f"start-up over {len(self.startups)} supergraphs: ours {ours:.0f} ms, "
                f"@apollo/gateway {theirs:.0f} ms"
            )


TALLY = Tally()


def comparable(body: Any) -> tuple[Any, bool]:
    """What must be equal: the data, and whether there are errors."""
    if not isinstance(body, dict):
        return body, True
    return body.get("data"), bool(body.get("errors"))


# -- random queries -----------------------------------------------------------------------------


class QueryGenerator:
    """Random valid queries over an API schema (seeded: the same corpus every run)."""

    def __init__(self, schema: GraphQLSchema, arguments: dict[str, dict[str, Any]], seed: str):
        self.schema = schema
        self.arguments = arguments
        self.random = random.Random(seed)

    def _args(self, parent: str, name: str, definition: GraphQLField) -> str | None:
        given = self.arguments.get(f"{parent}.{name}", {})
        parts = []
        for arg_name, arg in definition.args.items():
            if arg_name in given:
                parts.append(f"{arg_name}: {json.dumps(given[arg_name])}")
            elif isinstance(arg.type, GraphQLNonNull) and arg.default_value is None:
                return None
        return f"({', '.join(parts)})" if parts else ""

    def _fields(self, type_: GraphQLObjectType | GraphQLInterfaceType, depth: int) -> str:
        choices = list(type_.fields.items())
        self.random.shuffle(choices)
        picked: list[str] = []
        for name, definition in choices[: self.random.randint(1, 4)]:
            args = self._args(type_.name, name, definition)
            if args is None:
                continue
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                picked.append(f"{name}{args}")
            elif depth < 3:
                picked.append(f"{name}{args} {self._selection(named, depth + 1)}")
        if not picked:
            picked.append("__typename")
        elif self.random.random() < 0.2:
            picked.append("__typename")
        return " ".join(picked)

    def _selection(self, named: Any, depth: int) -> str:
        if is_abstract_type(named):
            parts = ["__typename"]
            if isinstance(named, GraphQLInterfaceType) and self.random.random() < 0.6:
                parts.append(self._fields(named, depth))
            possible = list(self.schema.get_possible_types(named))
            self.random.shuffle(possible)
            for member in possible[: self.random.randint(1, 2)]:
                parts.append(f"... on {member.name} {{ {self._fields(member, depth)} }}")
            if isinstance(named, GraphQLUnionType) and len(parts) == 1:
                parts.append("__typename")
            return "{ " + " ".join(parts) + " }"
        return "{ " + self._fields(named, depth) + " }"

    def queries(self, count: int) -> list[str]:
        """``count`` random queries (fewer when the root has nothing to ask)."""
        root = self.schema.query_type
        assert root is not None
        found: list[str] = []
        attempts = 0
        while len(found) < count and attempts < count * 10:
            attempts += 1
            text = "{ " + self._fields(root, 1) + " }"
            if text != "{ __typename }" and text not in found:
                found.append(text)
        return found


def monotonic_ms() -> float:
    """Milliseconds of a monotonic clock."""
    return time.perf_counter() * 1000


__all__ = [
    "TALLY",
    "ApolloCorpus",
    "Composed",
    "Outcome",
    "QueryGenerator",
    "Router",
    "ServerThread",
    "Tally",
    "comparable",
    "compose_all",
    "monotonic_ms",
]
