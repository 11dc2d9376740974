"""Ledger benchmark: credits/s with 50 concurrent writers, and redemptions/s on one hot account.

Rewards' own service functions (``earn``, ``spend``), in-process, each movement in its own
transaction as the API and the consumer make them, against a private PostgreSQL cluster.
The floor, measured in the same run: the same concurrency doing the least a movement must do
in PostgreSQL (one INSERT per transaction for credits; one ``UPDATE ... SET balance =
balance - 1`` of one row per transaction for the hot account), and for credits the same
INSERT with the ``pg_notify`` that the outbox trigger adds to every announced movement. Also
the event consumer's way of crediting (``accounts.credits.earn_many``: the accounts held, then
``--batch`` credits in one statement, one transaction) by ``--batch-writers`` concurrent
transactions, per credit, against the same floor. Writes
``bench/results/ledger.json``.

    .venv/bin/python -m bench.ledger [--runs 3] [--seconds 5] [--writers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench.harness import (
    bench_config,
    exit_cleanly_on_sigterm,
    provision,
    ratio,
    record,
    summary,
)
from crm_shared import devstack
from crm_shared.db import Database, utcnow
from rewards.accounts import credits, service
from rewards.settings import RewardsSettings
from tests.support.private_postgres import PrivatePostgres

Movement = Callable[[int], Awaitable[None]]


CPU_MS: dict[str, list[float]] = {}
FAILURES: dict[str, str] = {}


async def _rate(writers: int, seconds: float, move: Movement) -> float:
    """Movements per second of ``writers`` concurrent loops calling ``move(writer)``; the
    CPU this process spent per movement is kept in ``CPU_MS`` under the movement's name."""
    done = 0
    failed = 0
    deadline = time.monotonic() + seconds

    async def loop(writer: int) -> None:
        nonlocal done, failed
        while time.monotonic() < deadline:
            try:
                await move(writer)
                done += 1
            except Exception as exc:  # a refused movement counts as failed, not as done
                failed += 1
                FAILURES.setdefault(move.__name__, repr(exc)[:300])

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(loop(w) for w in range(writers)))
    if failed:
        print(f"  ({failed} {move.__name__} failed, e.g. {FAILURES[move.__name__]})")
    if done:
        CPU_MS.setdefault(move.__name__, []).append(1000 * (time.process_time() - cpu) / done)
    return done / (time.monotonic() - started)


async def run(stack: devstack.Stack, args: argparse.Namespace) -> dict[str, Any]:
    db = Database(
        RewardsSettings(database_url=stack.database_url("rewards"), db_pool_size=args.writers)
    )
    raw = await asyncpg.create_pool(
        stack.database_url("rewards"), min_size=args.writers, max_size=args.writers
    )
    tenant_id = uuid.uuid4()
    customers = [uuid.uuid4() for _ in range(args.writers)]
    hot = uuid.uuid4()
    async with db.session() as session, session.begin():
        for customer_id in [*customers, hot]:
            await service.open_account(
                session=session, tenant_id=tenant_id, customer_id=customer_id
            )
        await service.earn(
            session,
            tenant_id=tenant_id,
            customer_id=hot,
            points=10_000_000,
            reason="bench float",
            idempotency_key=f"bench:{uuid.uuid4()}",
            actor="bench",
        )
    async with raw.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, "
            "account uuid NOT NULL, points int NOT NULL, key text NOT NULL UNIQUE, "
            "created_at timestamptz NOT NULL DEFAULT now());"
            "CREATE TABLE IF NOT EXISTS bench_hot (id int PRIMARY KEY, balance bigint NOT NULL);"
            "INSERT INTO bench_hot VALUES (1, 1000000000) ON CONFLICT DO NOTHING"
        )

    async def credit(writer: int) -> None:
        async with db.session() as session, session.begin():
            await service.earn(
                session,
                tenant_id=tenant_id,
                customer_id=customers[writer],
                points=10,
                reason="bench credit",
                idempotency_key=f"bench:{uuid.uuid4()}",
                actor="bench",
            )

    async def credit_batch(writer: int) -> None:
        # The consumer's way (rules.batch): the accounts held in one statement, then a batch
        # of credits in one (accounts.credits.earn_many), one transaction.
        async with db.session() as session, session.begin():
            group = customers[writer :: args.batch_writers]
            accounts = await service.hold_accounts(
                session=session, tenant_id=tenant_id, customer_ids=group
            )
            await credits.earn_many(
                session,
                tenant_id=tenant_id,
                accounts=accounts,
                credits=[
                    credits.Credit(
                        customer_id=group[n % len(group)],
                        points=10,
                        reason="bench credit",
                        idempotency_key=f"bench:{uuid.uuid4()}",
                    )
                    for n in range(args.batch)
                ],
                actor="bench",
                ttl_days=365,
                now=utcnow(),
            )

    async def redeem(writer: int) -> None:
        async with db.session() as session, session.begin():
            await service.spend(
                session,
                tenant_id=tenant_id,
                customer_id=hot,
                points=1,
                reason="bench redemption",
                idempotency_key=f"bench:{uuid.uuid4()}",
                actor="bench",
            )

    async def floor_credit(writer: int) -> None:
        async with raw.acquire() as conn:
            await conn.execute(
                "INSERT INTO bench_floor (account, points, key) VALUES ($1, 10, $2)",
                customers[writer],
                str(uuid.uuid4()),
            )

    async def floor_credit_notifying(writer: int) -> None:
        # The same, plus the NOTIFY the outbox trigger sends with every announced movement.
        async with raw.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO bench_floor (account, points, key) VALUES ($1, 10, $2)",
                customers[writer],
                str(uuid.uuid4()),
            )
            await conn.execute("SELECT pg_notify('bench_floor', '')")

    async def floor_redeem(writer: int) -> None:
        async with raw.acquire() as conn:
            await conn.execute("UPDATE bench_hot SET balance = balance - 1 WHERE id = 1")

    figures: dict[str, Any] = {"writers": args.writers}
    cases: dict[str, tuple[Movement, Movement]] = {
        "credits_per_second": (credit, floor_credit),
        "hot_account_redemptions_per_second": (redeem, floor_redeem),
    }
    for name, (ours, floor) in cases.items():
        await _rate(args.writers, 1.0, ours)  # warm-up
        measured = [await _rate(args.writers, args.seconds, ours) for _ in range(args.runs)]
        floors = [await _rate(args.writers, args.seconds, floor) for _ in range(args.runs)]
        figures[name] = {
            "rewards": summary(measured),
            "floor": summary(floors),
            # Client CPU per movement: on a loaded machine it tells Python's cost from waiting.
            "client_cpu_ms_per_movement": {
                "rewards": summary(CPU_MS[ours.__name__][-args.runs :]),
                "floor": summary(CPU_MS[floor.__name__][-args.runs :]),
            },
            "ratio_to_floor": ratio(summary(measured)["median"], summary(floors)["median"]),
        }
        if name == "credits_per_second":
            notifying = [
                await _rate(args.writers, args.seconds, floor_credit_notifying)
                for _ in range(args.runs)
            ]
            figures[name]["floor_with_notify"] = summary(notifying)
            # The target: credits/s against one INSERT + NOTIFY per transaction.
            figures[name]["ratio_to_floor_with_notify"] = ratio(
                summary(measured)["median"], summary(notifying)["median"]
            )
            await _rate(args.batch_writers, 1.0, credit_batch)  # warm-up
            batched = [
                args.batch * await _rate(args.batch_writers, args.seconds, credit_batch)
                for _ in range(args.runs)
            ]
            figures["batched_credits_per_second"] = {
                "batch": args.batch,
                "writers": args.batch_writers,
                "rewards": summary(batched),
                "client_cpu_ms_per_credit": summary(
                    [ms / args.batch for ms in CPU_MS["credit_batch"][-args.runs :]]
                ),
                "ratio_to_floor_with_notify": ratio(
                    summary(batched)["median"], summary(notifying)["median"]
                ),
            }
            print("batched credits", summary(batched)["median"])
        print(name, figures[name]["rewards"]["median"], "floor", figures[name]["floor"]["median"])
    await raw.close()
    await db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100, help="credits a batched transaction")
    parser.add_argument(
        "--batch-writers", type=int, default=4, help="concurrent batched transactions"
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    with PrivatePostgres(durable=True) as pg:
        stack = bench_config(pg.host)
        provision(stack, pg.admin_dsn)
        figures = asyncio.run(run(stack, args))
    record("ledger", figures)


if __name__ == "__main__":
    main()
