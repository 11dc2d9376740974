"""Keeps the broker as the partner tables say, on a schedule (and once at start-up).

- A live subscription of a client that is no longer active (revoked before revocations
  cascaded, or by hand in the database) is revoked: broker user and queue removed, the row
  marked with the reason, the client's enabled webhook endpoints disabled.
- Every other live subscription is reconciled (:meth:`BrokerAdmin.reconcile`): its queue is
  bound to the partner exchange only (a subscription made when partner queues were bound to
  ``crm.events`` loses that binding, which bypassed the partner_sharing check) and its
  permissions are set again. Nothing is created: a queue or user that is gone stays gone.

Each subscription is handled in its own transaction, locked with ``SKIP LOCKED``, so replicas
running this at once, or a revocation under way, never step on each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import col, select

from crm_shared.app import PeriodicJob
from crm_shared.db import Database
from identity.access.models import ApiClient
from identity.partners import service
from identity.partners.broker import BrokerAdmin, access_for, broker_admin
from identity.partners.models import PartnerSubscription
from identity.settings import IdentitySettings

log = logging.getLogger(__name__)


@dataclass
class Reconciled:
    """What a round did."""

    rebound: int = 0
    revoked: int = 0
    missing: int = 0


async def reconcile_partner_subscriptions(db: Database, *, broker: BrokerAdmin) -> Reconciled:
    """One round over every live subscription (see the module's docstring)."""
    done = Reconciled()
    async with db.session() as session:
        ids = list(
            await session.exec(
                select(PartnerSubscription.id)
                .where(col(PartnerSubscription.revoked_at).is_(None))
                .order_by(col(PartnerSubscription.created_at))
            )
        )
    for subscription_id in ids:
        async with db.session() as session, session.begin():
            subscription = (
                await session.exec(
                    select(PartnerSubscription)
                    .where(
                        PartnerSubscription.id == subscription_id,
                        col(PartnerSubscription.revoked_at).is_(None),
                    )
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if subscription is None:
                continue  # revoked meanwhile, or another replica has it
            client = await session.get(ApiClient, subscription.client_id)
            if client is None or not client.active:
                await service.revoke_partner_client(
                    session=session,
                    client_id=subscription.client_id,
                    broker=broker,
                    reason=f"API client {subscription.client_id} revoked",
                )
                done.revoked += 1
                continue
            if await broker.reconcile(
                access_for(subscription.id),
                tenant_id=subscription.tenant_id,
                event_types=list(subscription.event_types),
            ):
                done.rebound += 1
            else:
                done.missing += 1
                log.warning(
                    "partner subscription %s has no broker user or queue; revoke it and make"
                    " a new one",
                    subscription.id,
                )
    return done


def partner_jobs(settings: IdentitySettings) -> list[PeriodicJob]:
    """The reconciliation, for ``create_service_app(jobs=...)`` (0 seconds: off)."""

    async def run(db: Database) -> Reconciled:
        return await reconcile_partner_subscriptions(db, broker=broker_admin(settings))

    return [PeriodicJob("partner-reconcile", settings.partner_reconcile_seconds, run)]
