"""Reading rewards' ledger in tests, as its own role."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from crm_shared.db import Database


async def ledger_points(db: Database, customer_id: uuid.UUID) -> list[int]:
    """The points of every ledger entry of the customer's account, oldest first."""
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT e.points FROM rewards.ledger_entries e "
                "JOIN rewards.accounts a ON a.id = e.account_id "
                "WHERE a.customer_id = :c ORDER BY e.created_at"
            ),
            {"c": customer_id},
        )
        return [r[0] for r in rows]
