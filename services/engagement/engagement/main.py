"""The engagement service: listens to and engages with customers."""

from fastapi import FastAPI

from crm_shared.app import PeriodicJob, create_service_app
from crm_shared.db import Database
from engagement.care.service import check_breaches
from engagement.community.contests.service import choose_due_winners
from engagement.connectors.service import publish_due, sync_due
from engagement.handlers import HANDLERS
from engagement.influence.service import recompute_every_tenant
from engagement.ingestion.router import ingestion_router
from engagement.schema import schema
from engagement.segments.service import refresh_all
from engagement.settings import EngagementSettings
from engagement.trends.service import detect_spikes
from engagement.understanding import warm_up


def create_app(settings: EngagementSettings | None = None) -> FastAPI:
    """The engagement app (``uvicorn --factory engagement.main:create_app``)."""
    settings = settings or EngagementSettings()
    warm_up()
    return create_service_app(
        settings=settings,
        schema=schema,
        handlers=HANDLERS,
        title="engagement",
        routers=[ingestion_router(settings)],
        # Ingestion takes larger bodies (it bounds them itself); NDJSON is read as a stream.
        body_limits={"/ingest/": settings.ingest_max_body_bytes, "/ingest/ndjson": None},
        jobs=[
            PeriodicJob("case-breaches", settings.case_breach_interval_seconds, check_breaches),
            PeriodicJob(
                "contest-winners", settings.contest_winners_interval_seconds, choose_due_winners
            ),
            *understanding_jobs(settings),
            *connector_jobs(settings),
        ],
    )


def understanding_jobs(settings: EngagementSettings) -> list[PeriodicJob]:
    """Spike detection, segment refresh and influence recomputation on their schedules."""

    async def spikes(db: Database) -> int:
        return await detect_spikes(
            db,
            baseline_hours=settings.trend_baseline_hours,
            k=settings.trend_spike_k,
            min_volume=settings.trend_spike_min_volume,
        )

    async def influence(db: Database) -> int:
        return await recompute_every_tenant(db, settings)

    return [
        PeriodicJob("trend-spikes", settings.trend_spike_interval_seconds, spikes),
        PeriodicJob("segments", settings.segment_interval_seconds, refresh_all),
        PeriodicJob("influence", settings.influence_interval_seconds, influence),
    ]


def connector_jobs(settings: EngagementSettings) -> list[PeriodicJob]:
    """Pulling due connected accounts and publishing due replies and posts."""

    async def pull(db: Database) -> int:
        return await sync_due(db, settings)

    async def publish(db: Database) -> int:
        return await publish_due(db, settings)

    jobs = []
    if settings.connector_sync_interval_seconds > 0:
        jobs.append(PeriodicJob("connector-pull", settings.connector_sync_interval_seconds, pull))
    if settings.connector_publish_interval_seconds > 0:
        jobs.append(
            PeriodicJob("connector-publish", settings.connector_publish_interval_seconds, publish)
        )
    return jobs
