"""HTTP error bodies: expected failures keep their status and code; nothing else leaks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from crm_shared.errors import CrmError

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Map ``CrmError`` to its status with a JSON body; FastAPI already answers 422 for schemas."""

    @app.exception_handler(CrmError)
    async def _crm_error(request: Request, exc: CrmError) -> JSONResponse:
        return JSONResponse(
            {"error": {**exc.extensions(), "message": exc.message}}, status_code=exc.http_status
        )
