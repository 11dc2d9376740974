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
                "SELECT p.amount FROM rewards.postings p "
                "JOIN rewards.journal_entries e ON e.id = p.entry_id "
                "JOIN rewards.accounts a ON a.id = p.account_id "
                "WHERE a.customer_id = :c ORDER BY e.created_at, e.id"
            ),
            {"c": customer_id},
        )
        return [int(r[0]) for r in rows]
