"""The ledger's invariants, checked on a schedule and reported as metrics.

``service.check_ledger`` proves a tenant's ledger consistent (an empty list). Run for every
tenant by a periodic job, its findings become ``rewards_ledger_problems`` (0 when consistent;
alert on anything else) and ``rewards_ledger_checked_timestamp_seconds`` (alert when it stops
moving: the check itself is failing). Each problem is logged with its subject.
"""

import logging
import time
from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy import text

from crm_shared.db import Database
from rewards.accounts import service

log = logging.getLogger(__name__)
meter = metrics.get_meter("rewards")
# The last completed check: problems found, and when (unset until the first check ends).
_last: dict[str, float] = {}


def _problems(_: CallbackOptions) -> Iterable[Observation]:
    return [Observation(_last["problems"])] if "problems" in _last else []


def _checked(_: CallbackOptions) -> Iterable[Observation]:
    return [Observation(_last["checked"])] if "checked" in _last else []


meter.create_observable_gauge(
    "rewards.ledger.problems",
    callbacks=[_problems],
    description="Ledger invariant violations found by the last check (0: consistent).",
)
meter.create_observable_gauge(
    "rewards.ledger.checked.timestamp",
    callbacks=[_checked],
    unit="s",
    description="Unix time when the last ledger invariant check completed.",
)


async def check_every_tenant(db: Database) -> int:
    """Check every tenant's ledger; how many problems were found (also the metric's value)."""
    found = 0
    async with db.session() as session:
        tenants = (
            await session.execute(text("SELECT DISTINCT tenant_id FROM rewards.accounts"))
        ).scalars()
        for tenant_id in list(tenants):
            for problem in await service.check_ledger(session, tenant_id):
                log.error("ledger of tenant %s: %s", tenant_id, problem)
                found += 1
    _last.update(problems=found, checked=time.time())
    return found
