"""Expiring due lots, one account per transaction (run on a schedule by rewards' app)."""

from datetime import datetime

from crm_shared.db import Database, utcnow
from rewards.accounts import service


async def expire_once(db: Database, *, now: datetime | None = None, batch: int = 500) -> int:
    """Expire every lot due at ``now``; how many expire entries were written."""
    now = now or utcnow()
    written = 0
    while True:
        async with db.session() as session:
            accounts = await service.due_accounts(session, now=now, limit=batch)
        if not accounts:
            return written
        for account_id in accounts:
            async with db.session() as session, session.begin():
                moved = await service.expire_account(session, account_id, now=now)
            written += sum(1 for m in moved if not m.replayed)
