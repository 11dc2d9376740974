"""The differential corpus: small supergraphs, one or more per federation feature, and queries.

Each module of this package defines ``CASES``: supergraphs made of strawberry federation
subgraphs, with the queries asked of them. ``tests/contract/test_corpus.py`` serves every
subgraph, composes each supergraph with ``infra/federation/compose.mjs`` and asks each query of
our gateway and of ``@apollo/gateway``; the answers (data, and whether there are errors) must be
equal.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import strawberry


@dataclass(frozen=True)
class Query:
    """One operation of the corpus; ``divergent`` says why we knowingly answer otherwise."""

    text: str
    variables: dict[str, Any] | None = None
    divergent: str | None = None


@dataclass(frozen=True)
class Case:
    """One supergraph: its subgraphs and the queries asked of it."""

    name: str
    subgraphs: dict[str, strawberry.federation.Schema]
    queries: tuple[Query, ...]
    # Values for required arguments of the random queries: "Type.field" -> {argument: value}.
    arguments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Apollo refuses the supergraph at start-up: so must we (the message need not be equal).
    invalid: bool = False
    # Known divergences of any query (written or generated) containing the text: text -> why.
    divergences: dict[str, str] = field(default_factory=dict)

    def divergence(self, query: Query | str) -> str | None:
        """Why we knowingly answer this query otherwise than Apollo, if we do."""
        if isinstance(query, Query):
            if query.divergent:
                return query.divergent
            query = query.text
        return next((why for text, why in self.divergences.items() if text in query), None)


def q(text: str, variables: dict[str, Any] | None = None, divergent: str | None = None) -> Query:
    """A corpus query."""
    return Query(text, variables, divergent)


def all_cases() -> list[Case]:
    """Every case of every module of the package, by name."""
    cases: list[Case] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        cases.extend(getattr(module, "CASES", ()))
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases
