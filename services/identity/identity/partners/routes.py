"""``POST /partner/signups``: a partner registers a customer it signed up, safely retried.

The request carries ``Authorization: Bearer`` (``customers:write``), an ``Idempotency-Key``
header and a JSON body of the customer (``name``, optional ``email``, ``phone`` and profile
fields, snake_case). The first request registers the customer through identity's own
``register_customer`` (so ``identity.customer.registered.v1`` is published) and answers 201;
the same key with the same body answers 200 with the same customer and
``Idempotent-Replayed: true``; the same key with another body answers 409. Invalid JSON
answers 422 naming the field (``{"error": {"code", "field", "message"}}``).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from sqlalchemy import text
from sqlmodel import select

from crm_shared.auth import Permission, Principal
from crm_shared.db import Database
from crm_shared.errors import BadUserInput, Conflict, CrmError
from crm_shared.http import requires
from crm_shared.validation import validated
from identity.customers.models import ContactKind, CustomerCreate, normalize_contact
from identity.customers.service import register_customer
from identity.partners.models import PartnerSignup

router = APIRouter(prefix="/partner", tags=["partners"])
Writer = Annotated[Principal, Depends(requires(Permission.CUSTOMERS_WRITE))]
MAX_BODY = 64 * 1024


class MalformedBody(CrmError):
    """The body is not a JSON object."""

    code = "BAD_REQUEST"
    http_status = 400


class SignupBody(CustomerCreate):
    """A customer as a partner sends it: the registration fields plus e-mail/phone shorthands."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)


def _customer(body: SignupBody) -> tuple[CustomerCreate, list[str]]:
    """The registration and the field name of each contact point (for errors)."""
    points = [p.model_dump() for p in body.contact_points]
    fields = [f"contact_points.{i}.value" for i in range(len(points))]
    for kind, value in ((ContactKind.EMAIL, body.email), (ContactKind.PHONE, body.phone)):
        if value is not None:
            try:
                normalize_contact(kind, value, country=body.country)
            except ValueError as error:
                raise BadUserInput(f"{kind}: {error}", field=str(kind)) from None
            points.append({"kind": kind, "value": value})
            fields.append(str(kind))
    data = body.model_dump(exclude={"email", "phone", "contact_points"}, exclude_unset=True)
    return validated(CustomerCreate, {**data, "contact_points": points}, prefix=""), fields


def _answer(customer_id: uuid.UUID, *, created: bool) -> JSONResponse:
    return JSONResponse(
        {"customer_id": str(customer_id)},
        status_code=201 if created else 200,
        headers={} if created else {"Idempotent-Replayed": "true"},
    )


@router.post("/signups")
async def partner_signup(
    request: Request,
    principal: Writer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Register a customer a partner signed up; the same ``Idempotency-Key`` never twice."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise BadUserInput(
            "Idempotency-Key: a header of 1 to 200 characters is required",
            field="Idempotency-Key",
        )
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadUserInput(f"body: larger than {MAX_BODY} bytes", field="body")
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedBody("body: not JSON", field="body") from None
    if not isinstance(parsed, dict):
        raise MalformedBody("body: not a JSON object", field="body")
    body = validated(SignupBody, parsed, prefix="")
    body_hash = hashlib.sha256(orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)).hexdigest()
    data, fields = _customer(body)
    db: Database = request.app.state.db
    async with db.session() as session, session.begin():
        # Two requests with one key at once: the second waits here, then finds the first.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"partner-signup|{principal.tenant_id}|{principal.actor}|{idempotency_key}"},
        )
        found = (
            await session.exec(
                select(PartnerSignup).where(
                    PartnerSignup.tenant_id == principal.tenant_id,
                    PartnerSignup.caller == principal.actor,
                    PartnerSignup.idempotency_key == idempotency_key,
                )
            )
        ).first()
        if found is not None:
            if found.body_hash != body_hash:
                raise Conflict(
                    "Idempotency-Key: already used with another body", field="Idempotency-Key"
                )
            return _answer(found.customer_id, created=False)
        customer = await register_customer(
            session=session, tenant_id=principal.tenant_id, data=data, fields=fields
        )
        session.add(
            PartnerSignup(
                tenant_id=principal.tenant_id,
                caller=principal.actor,
                idempotency_key=idempotency_key,
                body_hash=body_hash,
                customer_id=customer.id,
            )
        )
    return _answer(customer.id, created=True)
