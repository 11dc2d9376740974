"""The committed supergraph is what standard composition makes of the current subgraphs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from crm_shared import devstack


def test_the_committed_supergraph_is_current() -> None:
    federation = devstack.REPO / "infra" / "federation"
    if shutil.which("node") is None or not (federation / "node_modules").exists():
        pytest.skip("node or infra/federation/node_modules missing (make test installs them)")
    subgraphs = subprocess.run(
        [sys.executable, str(devstack.REPO / "infra" / "local" / "print_subgraphs.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(json.loads(subgraphs)["subgraphs"]) == 3
    composed = subprocess.run(
        ["node", str(federation / "compose.mjs")],
        input=subgraphs,
        capture_output=True,
        text=True,
    )
    assert composed.returncode == 0, f"composition failed:\n{composed.stderr}"
    committed = (devstack.REPO / "infra" / "supergraph.graphql").read_text()
    assert composed.stdout == committed, "infra/supergraph.graphql is stale: run `make supergraph`"
