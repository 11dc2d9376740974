"""Fixtures of the contract tests: the gateway fixtures plus the reference Apollo gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import gateway_url, signer, subgraphs, supergraph_path
from tests.gateway.harness import ApolloGateway, free_port

__all__ = ["apollo_url", "gateway_url", "signer", "subgraphs", "supergraph_path"]


@pytest.fixture(scope="session")
def apollo_url(supergraph_path: Path) -> Iterator[str]:
    """``@apollo/gateway`` over the same supergraph (node subprocess on a free port)."""
    apollo = ApolloGateway(supergraph_path, free_port())
    url = apollo.wait_ready()
    yield url
    apollo.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The differential corpus' share of queries answered as @apollo/gateway does."""
    from tests.contract.corpus_runner import TALLY

    if TALLY.outcomes:
        terminalreporter.section("federation corpus")
        for line in TALLY.lines():
            terminalreporter.write_line(line)
