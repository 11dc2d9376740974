"""Privacy in rewards: the consent projection, the export, and erasure.

Erasure keeps every amount (the ledger must still balance and totals must not move) and
removes what could name the person: free-text reasons of their journal entries become
``(erased)`` (the one change the ledger's trigger allows), their consent projection goes, and
published outbox rows about them are deleted. Accounts and entries keep the customer's id,
which no longer leads to anyone once identity has erased the customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.privacy import ErasureRequested, confirm_erasure, scrub_outbox
from rewards.offers import service as offers
from rewards.purchases import service as purchases
from rewards.referrals import service as referrals
from rewards.rules import service as rules

SERVICE = "rewards"


async def export_customer(
    session: AsyncSession, *, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any]:
    """Rewards' records of a customer as plain JSON."""
    params = {"t": tenant_id, "c": customer_id}
    account = (
        await session.execute(
            text(
                "SELECT id, balance, created_at FROM rewards.accounts"
                " WHERE tenant_id = :t AND customer_id = :c AND kind = 'customer'"
            ),
            params,
        )
    ).first()
    entries = await session.execute(
        text(
            "SELECT e.id, e.kind, e.reason, e.created_at, p.amount FROM rewards.journal_entries e"
            " JOIN rewards.postings p ON p.entry_id = e.id"
            " JOIN rewards.accounts a ON a.id = p.account_id AND a.kind = 'customer'"
            " WHERE e.tenant_id = :t AND e.customer_id = :c ORDER BY e.created_at, e.id"
        ),
        params,
    )
    lots = await session.execute(
        text(
            "SELECT l.points, l.remaining, l.expires_at FROM rewards.lots l"
            " JOIN rewards.accounts a ON a.id = l.account_id"
            " WHERE a.tenant_id = :t AND a.customer_id = :c ORDER BY l.expires_at"
        ),
        params,
    )
    consents = await session.execute(
        text(
            "SELECT purpose, granted, changed_at FROM rewards.consents"
            " WHERE tenant_id = :t AND customer_id = :c ORDER BY purpose"
        ),
        params,
    )
    offers_part = await offers.export_customer(
        session=session, tenant_id=tenant_id, customer_id=customer_id
    )
    payouts = await session.execute(
        text(
            "SELECT rule_id, version, points, offer_id, occurred_at FROM rewards.rule_payouts"
            " WHERE tenant_id = :t AND customer_id = :c ORDER BY occurred_at"
        ),
        params,
    )
    triggers = await session.execute(
        text(
            "SELECT type, occurred_at, facts FROM rewards.trigger_events"
            " WHERE tenant_id = :t AND customer_id = :c ORDER BY occurred_at"
        ),
        params,
    )
    tier = (
        await session.execute(
            text(
                "SELECT t.name, ct.since FROM rewards.customer_tiers ct"
                " JOIN rewards.tiers t ON t.id = ct.tier_id"
                " WHERE ct.tenant_id = :t AND ct.customer_id = :c"
            ),
            params,
        )
    ).first()
    return {
        **offers_part,
        "rule_payouts": [
            {
                "rule_id": str(r.rule_id),
                "version": r.version,
                "points": int(r.points),
                "offer_id": str(r.offer_id) if r.offer_id else None,
                "occurred_at": r.occurred_at.isoformat(),
            }
            for r in payouts
        ],
        "events_seen": [
            {"type": r.type, "occurred_at": r.occurred_at.isoformat(), "facts": r.facts}
            for r in triggers
        ],
        "tier": {"name": tier.name, "since": tier.since.isoformat()} if tier else None,
        "balance": account.balance if account else None,
        "account_opened_at": account.created_at.isoformat() if account else None,
        "entries": [
            {
                "id": str(row.id),
                "kind": row.kind,
                "reason": row.reason,
                "points": int(row.amount),
                "at": row.created_at.isoformat(),
            }
            for row in entries
        ],
        "lots": [
            {
                "points": int(r.points),
                "remaining": int(r.remaining),
                "expires_at": r.expires_at.isoformat(),
            }
            for r in lots
        ],
        "consents": [
            {"purpose": r.purpose, "granted": r.granted, "changed_at": r.changed_at.isoformat()}
            for r in consents
        ],
        "purchases": await purchases.export_customer(
            session=session, tenant_id=tenant_id, customer_id=customer_id
        ),
        **await referrals.export_customer(
            session=session, tenant_id=tenant_id, customer_id=customer_id
        ),
    }


async def erase(session: AsyncSession, request: ErasureRequested, *, tenant_id: uuid.UUID) -> None:
    """Carry out an erasure request and confirm it, in one transaction."""
    ids: Sequence[uuid.UUID] = request.customer_ids or [request.customer_id]
    params = {"t": tenant_id, "ids": list(ids)}
    await session.execute(
        text(
            "UPDATE rewards.journal_entries SET reason = '(erased)'"
            " WHERE tenant_id = :t AND customer_id = ANY(:ids) AND reason <> '(erased)'"
        ),
        params,
    )
    # What rules knew of the person's behaviour goes too; payouts (ids and amounts) stay, as
    # the ledger's entries do.
    for table in ("consents", "trigger_events", "customer_segments"):
        await session.execute(
            text(f"DELETE FROM rewards.{table} WHERE tenant_id = :t AND customer_id = ANY(:ids)"),
            params,
        )
    # Events of the person's profiles still waiting for a link.
    await rules.forget_pending(session, tenant_id=tenant_id, profiles=request.profiles)
    await scrub_outbox(session, "rewards", [str(i) for i in ids])
    await confirm_erasure(session, request, tenant_id=tenant_id, service=SERVICE)
