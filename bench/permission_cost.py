"""What a permission declared on the field costs per resolution, in-process (no HTTP, no
database): 400 objects each resolving one async field that answers 1, with

- ``bare``: no check;
- ``body``: ``authorize(info, ...)`` called in the resolver (how resolvers were written);
- ``declared``: ``needs(...)`` on the field (``crm_shared.resolvers.Authorized``);
- ``strawberryExt``: the same check in strawberry's ``PermissionExtension``.

CPU microseconds per field (``time.process_time``), interleaved rounds; the median and the
lowest of the rounds are printed (a loaded machine inflates single rounds).

    PYTHONPATH=. .venv/bin/python bench/permission_cost.py [--rounds 15]
"""

# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass

import strawberry
from strawberry.permission import PermissionExtension

from crm_shared.auth import Permission, Principal
from crm_shared.graphql import authorize
from crm_shared.resolvers import Needs, needs

CUSTOMER = uuid.uuid4()
OBJECTS = 400


@dataclass
class BenchContext:
    principal: Principal


@strawberry.type
class Item:
    id: strawberry.ID

    @strawberry.field
    async def bare(self) -> int:
        return 1

    @strawberry.field
    async def body(self, info: strawberry.Info) -> int:
        authorize(info, Permission.INTERACTIONS_READ, customer_id=uuid.UUID(self.id))
        return 1

    @strawberry.field(extensions=[needs(Permission.INTERACTIONS_READ, customer="self.id")])
    async def declared(self) -> int:
        return 1

    @strawberry.field(
        extensions=[
            PermissionExtension(
                [Needs(Permission.INTERACTIONS_READ, customer="self.id")], use_directives=False
            )
        ]
    )
    async def strawberry_ext(self) -> int:
        return 1


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(id=strawberry.ID(str(CUSTOMER))) for _ in range(OBJECTS)]


schema = strawberry.Schema(query=Query)
FIELDS = ("bare", "body", "declared", "strawberryExt")


async def per_field(field: str, context: BenchContext, repeat: int = 20) -> float:
    """CPU microseconds per resolution of ``field``."""
    query = "{ items { " + field + " } }"
    start = time.process_time()
    for _ in range(repeat):
        result = await schema.execute(query, context_value=context)
        assert not result.errors, result.errors
    return (time.process_time() - start) / repeat / OBJECTS * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    context = BenchContext(
        Principal(
            tenant_id=uuid.uuid4(),
            kind="staff",
            subject="bench",
            permissions=frozenset(p.value for p in Permission),
            role="admin",
            customer_id=None,
            token_id=None,
        )
    )
    for field in FIELDS:  # warm up
        await per_field(field, context, repeat=3)
    rounds: dict[str, list[float]] = {field: [] for field in FIELDS}
    for _ in range(args.rounds):
        for field in FIELDS:
            rounds[field].append(await per_field(field, context))
    for field in FIELDS:
        print(
            f"{field:14s} median {statistics.median(rounds[field]):6.1f} µs"
            f"  lowest {min(rounds[field]):6.1f} µs per field"
        )


if __name__ == "__main__":
    asyncio.run(main())
