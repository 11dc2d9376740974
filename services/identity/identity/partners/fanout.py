"""Identity's webhook and partner queues receive only what someone listens to.

Both queues (``identity.webhooks.events``, ``identity.partners.events``) are bound to the
events exchange per (type, tenant): ``<type>.<tenant id>`` for each type a webhook endpoint or
a live partner subscription of the tenant takes, ``#.<tenant id>`` for an endpoint that takes
every type. An event of a tenant with neither is routed to neither queue: identity spends
nothing on it (before, both queues were bound to ``#`` and every event cost two handler
transactions).

- **Adding interest** (an endpoint made or its types changed, a subscription made) binds in
  the change's own transaction, before it commits, holding the tenant's advisory lock: once
  the change is visible, every event it wants is routed to the queue. If the broker refuses,
  the change fails (``SERVICE_UNAVAILABLE``) and nothing is kept.
- **Removing interest** (types dropped, a subscription or partner client revoked) unbinds
  after the commit, in a transaction that takes the same lock and reads what is wanted
  then, so an addition committing meanwhile is never undone. A binding left behind (a crash
  before the unbind) only costs work: the handlers still check endpoints, subscriptions and
  partner sharing for every event.
- **Reconciliation** (a ``PeriodicJob``: at start-up and every ``FANOUT_RECONCILE_SECONDS``)
  binds whatever is wanted and is not bound, and removes every other binding of the queues,
  ``#`` included (what a consumer binds when it starts, and how the queues were bound before).

Endpoints count whether enabled or not (a disabled endpoint may be re-enabled and replay what
was kept meanwhile), except those of a revoked partner client (never re-enabled).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.app import PeriodicJob
from crm_shared.db import Database, lock_keys
from crm_shared.events.topology import QueueNames, tenant_binding_key
from identity.partners.broker import BrokerAdmin, BrokerUnavailable, broker_admin
from identity.settings import IdentitySettings

log = logging.getLogger(__name__)

WEBHOOKS = "webhooks"
PARTNERS = "partners"
PURPOSES = (WEBHOOKS, PARTNERS)
EVERY_TYPE = "#"

# purpose -> binding keys
Keys = dict[str, set[str]]

_WEBHOOK_INTEREST = """
    SELECT e.tenant_id, e.event_types FROM identity.webhook_endpoints e
    WHERE (e.client_id IS NULL OR EXISTS (
        SELECT 1 FROM identity.api_clients c WHERE c.id = e.client_id AND c.active))
"""
_PARTNER_INTEREST = """
    SELECT s.tenant_id, s.event_types FROM identity.partner_subscriptions s
    WHERE s.revoked_at IS NULL
"""


def queue_of(purpose: str) -> str:
    """The queue of a purpose: ``identity.<purpose>.events``."""
    return QueueNames(f"identity.{purpose}").events


def keys_for(tenant_id: uuid.UUID, event_types: list[str]) -> set[str]:
    """The binding keys of one endpoint or subscription (no types: every type)."""
    return {tenant_binding_key(t, tenant_id) for t in (event_types or [EVERY_TYPE])}


def tenant_of(key: str) -> uuid.UUID | None:
    """The tenant a binding key names (its last part), if any."""
    try:
        return uuid.UUID(key.rpartition(".")[2])
    except ValueError:
        return None


async def wanted(session: AsyncSession, tenant_id: uuid.UUID | None = None) -> Keys:
    """The binding keys the endpoints and subscriptions ask for (of one tenant, or all)."""
    keys: Keys = {purpose: set() for purpose in PURPOSES}
    for purpose, sql in ((WEBHOOKS, _WEBHOOK_INTEREST), (PARTNERS, _PARTNER_INTEREST)):
        alias = "e" if purpose == WEBHOOKS else "s"
        where = f" AND {alias}.tenant_id = :tenant" if tenant_id is not None else ""
        rows = await session.execute(text(sql + where), {"tenant": tenant_id})
        for row_tenant, event_types in rows:
            keys[purpose] |= keys_for(row_tenant, list(event_types))
    return keys


def _lock_key(tenant_id: uuid.UUID) -> str:
    return f"identity.fanout:{tenant_id}"


@dataclass
class FanoutReconciled:
    """What a reconciliation did."""

    bound: int = 0
    unbound: int = 0


# The bindings of each Database's engine (service functions find them through the session).
_installed: weakref.WeakKeyDictionary[Any, FanoutBindings] = weakref.WeakKeyDictionary()


class FanoutBindings:
    """Binds and unbinds identity's webhook and partner queues (see the module's docstring).

    AMQP (as identity's own broker user) binds and unbinds; the management API lists what is
    bound (without it, reconciliation can only add bindings and drop ``#``)."""

    def __init__(self, *, amqp_url: str, exchange: str, management: BrokerAdmin | None) -> None:
        self._url = amqp_url
        self.exchange = exchange
        self._management = management
        self._db: Database | None = None
        self._lock = asyncio.Lock()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def install(self, db: Database) -> None:
        """Make these the bindings that changes made through ``db``'s sessions keep."""
        self._db = db
        _installed[db.engine.sync_engine] = self

    @property
    def db(self) -> Database:
        assert self._db is not None, "FanoutBindings.install(db) first"
        return self._db

    async def _ready(self) -> AbstractChannel:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect_robust(self._url)
                self._channel = None
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel()
            return self._channel

    async def _apply(self, purpose: str, key: str, *, bind: bool) -> None:
        try:
            channel = await self._ready()
            queue = await channel.get_queue(queue_of(purpose), ensure=False)
            if bind:
                await queue.bind(self.exchange, routing_key=key)
            else:
                await queue.unbind(self.exchange, routing_key=key)
        except (aio_pika.exceptions.AMQPError, ConnectionError, OSError) as exc:
            # A refused binding closes the channel: the next call opens another.
            self._channel = None
            verb = "bind" if bind else "unbind"
            raise BrokerUnavailable(f"broker refused to {verb} {key}: {exc!r}") from None

    async def bind_tenant(self, session: AsyncSession, tenant_id: uuid.UUID) -> int:
        """Bind what the tenant's endpoints and subscriptions want, as ``session`` sees them
        (before its transaction commits); the tenant's lock is held until it ends."""
        await lock_keys(session, [_lock_key(tenant_id)])
        keys = await wanted(session, tenant_id)
        count = 0
        for purpose, purpose_keys in keys.items():
            for key in sorted(purpose_keys):
                await self._apply(purpose, key, bind=True)
                count += 1
        return count

    async def bound(self) -> Keys | None:
        """What the queues are bound to on the events exchange; None without the management
        API."""
        if self._management is None:
            return None
        try:
            return {
                purpose: await self._management.bindings(queue_of(purpose), self.exchange)
                for purpose in PURPOSES
            }
        except BrokerUnavailable as exc:
            log.warning("cannot list the fan-out bindings: %s", exc)
            return None

    async def _release(self, tenant_id: uuid.UUID, candidates: Keys) -> int:
        """Unbind the tenant's ``candidates`` that nothing wants any more (under its lock)."""
        if not any(candidates.values()):
            return 0
        unbound = 0
        async with self.db.session() as session, session.begin():
            await lock_keys(session, [_lock_key(tenant_id)])
            keys = await wanted(session, tenant_id)
            for purpose, purpose_keys in candidates.items():
                for key in sorted(purpose_keys - keys[purpose]):
                    await self._apply(purpose, key, bind=False)
                    unbound += 1
        return unbound

    async def release_tenant(self, tenant_id: uuid.UUID) -> int:
        """Unbind what the tenant's endpoints and subscriptions no longer want."""
        bound = await self.bound()
        if bound is None:
            return 0
        mine = {p: {k for k in keys if tenant_of(k) == tenant_id} for p, keys in bound.items()}
        return await self._release(tenant_id, mine)

    def release_after_commit(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        """Once ``session``'s transaction commits, unbind what the tenant no longer wants."""

        def after_commit(_: Any) -> None:
            task = asyncio.get_running_loop().create_task(self.release_tenant(tenant_id))
            self._tasks.add(task)
            task.add_done_callback(self._released)

        event.listen(session.sync_session, "after_commit", after_commit, once=True)

    def _released(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The reconciliation removes it later; a binding left behind only costs work.
            log.warning("fan-out unbinding failed: %r", task.exception())

    async def reconcile(self) -> FanoutReconciled:
        """Bind what is wanted and missing; unbind ``#`` and whatever nothing wants."""
        done = FanoutReconciled()
        async with self.db.session() as session:
            keys = await wanted(session)
        bound = await self.bound()
        for purpose in PURPOSES:
            have = bound[purpose] if bound is not None else set()
            for key in sorted(keys[purpose] - have):
                await self._apply(purpose, key, bind=True)
                done.bound += 1
            if bound is None or EVERY_TYPE in have:
                # What every consumer binds when it starts; the tenants' keys are bound now.
                await self._apply(purpose, EVERY_TYPE, bind=False)
                done.unbound += int(bound is not None)
        if bound is None:
            return done
        by_tenant: dict[uuid.UUID, Keys] = defaultdict(lambda: {p: set() for p in PURPOSES})
        for purpose in PURPOSES:
            for key in bound[purpose] - keys[purpose] - {EVERY_TYPE}:
                tenant_id = tenant_of(key)
                if tenant_id is None:  # e.g. ``<type>.*`` from an older definitions file
                    await self._apply(purpose, key, bind=False)
                    done.unbound += 1
                else:
                    by_tenant[tenant_id][purpose].add(key)
        for tenant_id, candidates in by_tenant.items():
            done.unbound += await self._release(tenant_id, candidates)
        return done

    async def close(self) -> None:
        """Wait for unbindings under way, then close the connection."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection, self._channel = None, None


def bindings_of(session: AsyncSession) -> FanoutBindings | None:
    """The bindings installed for the session's database (none in-process without an app)."""
    engine = getattr(session.bind, "sync_engine", None)
    return None if engine is None else _installed.get(engine)


async def bind_before_commit(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Bind the queues to what the tenant wants as ``session`` sees it, before it commits."""
    bindings = bindings_of(session)
    if bindings is not None:
        await bindings.bind_tenant(session, tenant_id)


def unbind_after_commit(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """After ``session`` commits, unbind what the tenant no longer wants."""
    bindings = bindings_of(session)
    if bindings is not None:
        bindings.release_after_commit(session, tenant_id)


def fanout_bindings(settings: IdentitySettings) -> FanoutBindings:
    """The bindings of identity's broker, from its settings."""
    return FanoutBindings(
        amqp_url=settings.amqp_url, exchange=settings.exchange, management=broker_admin(settings)
    )


def fanout_jobs(settings: IdentitySettings, bindings: FanoutBindings) -> list[PeriodicJob]:
    """The reconciliation of the bindings, for ``create_service_app(jobs=...)``: it runs once
    the consumers have started (and bound ``#``), then every ``FANOUT_RECONCILE_SECONDS``."""

    async def run(db: Database) -> FanoutReconciled:
        done = await bindings.reconcile()
        if done.bound or done.unbound:
            log.info("fan-out bindings: %d bound, %d unbound", done.bound, done.unbound)
        return done

    return [PeriodicJob("fanout-reconcile", settings.fanout_reconcile_seconds, run)]
