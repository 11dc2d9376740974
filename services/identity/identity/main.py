"""The identity service: who the customer is (and, later, who the caller is)."""

from fastapi import FastAPI

from crm_shared.app import create_service_app
from identity.handlers import HANDLERS
from identity.schema import schema
from identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    """The identity app (``uvicorn --factory identity.main:create_app``)."""
    return create_service_app(
        settings=settings or IdentitySettings(),
        schema=schema,
        handlers=HANDLERS,
        title="identity",
    )
