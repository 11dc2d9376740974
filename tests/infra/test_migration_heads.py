"""Each service's migrations form one line: branches made side by side are merged, so that
``alembic upgrade head`` (singular, as production tools run it) knows where to go."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", ["identity", "engagement", "rewards"])
def test_a_service_has_exactly_one_migration_head(service: str) -> None:
    config = Config(str(REPO / "services" / service / "alembic.ini"))
    config.set_main_option("script_location", str(REPO / "services" / service / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"{service} has several heads {heads}: add a merge revision"
