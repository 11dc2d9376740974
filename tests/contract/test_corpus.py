"""The differential corpus: every query of every corpus supergraph (tests/contract/corpus) is
answered by our gateway and by ``@apollo/gateway`` over the same running subgraphs; the data and
the presence of errors must be equal, except where a query says why we knowingly differ (where
the reference is wrong by the specification: see the gateway README). Random queries over the
same supergraphs are compared the same way. The share answered as Apollo does is printed in the
terminal summary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import SubgraphClient
from gateway.runtime import Gateway
from gateway.supergraph import Supergraph, SupergraphError
from tests.contract.corpus import Case, all_cases
from tests.contract.corpus_runner import (
    TALLY,
    ApolloCorpus,
    Composed,
    Outcome,
    QueryGenerator,
    Router,
    ServerThread,
    comparable,
    compose_all,
    monotonic_ms,
)
from tests.gateway.harness import node_tooling_missing

CASES = all_cases()
RANDOM_QUERIES_PER_CASE = 4


@pytest.fixture(scope="session")
def corpus_server() -> Iterator[str]:
    """Every corpus subgraph, served by one uvicorn server."""
    # Idle keep-alive connections are kept longer than uvicorn's default 5 s: on a loaded
    # machine the reference's client reused connections the server had just closed ("socket
    # hang up").
    server = ServerThread(Router(CASES), keep_alive_seconds=120).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def composed(corpus_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Composed]:
    """Each case's supergraph, composed by the standard composition."""
    missing = node_tooling_missing()
    if missing:
        pytest.skip(f"the corpus needs node tooling: {missing}")
    return compose_all(CASES, corpus_server, tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def apollo() -> Iterator[ApolloCorpus]:
    """The reference gateway over the corpus."""
    missing = node_tooling_missing()
    if missing:
        pytest.skip(f"the corpus needs node tooling: {missing}")
    reference = ApolloCorpus()
    yield reference
    reference.stop()


@pytest.fixture(scope="session")
async def subgraph_client() -> AsyncIterator[SubgraphClient]:
    """One pooled client for every corpus gateway."""
    client = SubgraphClient(timeout_seconds=20)
    await client.start()
    yield client
    await client.close()


async def _ours(gateway: Gateway, query: str, variables: dict[str, Any] | None) -> Any:
    response = await gateway.execute(query, variables)
    return response.body


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_corpus_answers_equal_apollo(
    case: Case,
    composed: dict[str, Composed],
    apollo: ApolloCorpus,
    subgraph_client: SubgraphClient,
) -> None:
    result = composed[case.name]
    assert result.path is not None, f"composition refused {case.name}: {result.error}"
    path: Path = result.path
    started = monotonic_ms()
    try:
        supergraph = Supergraph.from_file(path)
    except SupergraphError as error:
        ours_startup: str | None = str(error)
    else:
        ours_startup = None
    our_ms = monotonic_ms() - started
    first = case.queries[0] if case.queries else None
    probe = apollo.ask(path, first.text if first else "{ __typename }", None)
    if case.invalid or "startup" in probe:
        # The reference refuses the supergraph at start-up: so must we, with a message.
        assert "startup" in probe, f"Apollo served the supergraph {case.name} marked invalid"
        assert ours_startup, f"we served {case.name}, which Apollo refuses: {probe['startup']}"
        TALLY.outcomes.append(Outcome(case.name, "<start-up>", None, ours_startup, probe, True))
        return
    assert ours_startup is None, f"we refuse {case.name}, which Apollo serves: {ours_startup}"
    TALLY.startups[case.name] = (our_ms, apollo.startup_ms.get(path.stem, 0.0))
    gateway = Gateway(supergraph, subgraph_client)

    generator = QueryGenerator(supergraph.api_schema, case.arguments, seed=case.name)
    asked = [(query.text, query.variables, case.divergence(query), False) for query in case.queries]
    asked += [
        (text, None, case.divergence(text), True)
        for text in generator.queries(RANDOM_QUERIES_PER_CASE)
    ]
    unexpected: list[str] = []
    for text, variables, divergent, generated in asked:
        theirs_reply = probe if first is not None and text == first.text and not variables else None
        if theirs_reply is None:
            theirs_reply = apollo.ask(path, text, variables)
        theirs = theirs_reply["result"]
        ours = await _ours(gateway, text, variables)
        equal = comparable(ours) == comparable(theirs)
        TALLY.outcomes.append(
            Outcome(case.name, text, variables, ours, theirs, equal, divergent, generated)
        )
        if equal == (divergent is None):
            continue
        if divergent is not None:
            unexpected.append(f"now equal, drop its divergence note ({divergent}): {text}")
        else:
            unexpected.append(f"{' '.join(text.split())}\n  ours:   {ours}\n  apollo: {theirs}")
    assert not unexpected, "\n".join(unexpected)
