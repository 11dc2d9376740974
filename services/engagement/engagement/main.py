"""The engagement service: listens to and engages with customers."""

from fastapi import FastAPI

from crm_shared.app import PeriodicJob, create_service_app
from engagement.care.service import check_breaches
from engagement.community.service import choose_due_winners
from engagement.handlers import HANDLERS
from engagement.ingestion.router import ingestion_router
from engagement.schema import schema
from engagement.settings import EngagementSettings
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
        jobs=[
            PeriodicJob("case-breaches", settings.case_breach_interval_seconds, check_breaches),
            PeriodicJob(
                "contest-winners", settings.contest_winners_interval_seconds, choose_due_winners
            ),
        ],
    )
