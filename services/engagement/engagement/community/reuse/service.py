"""Content reuse: the brand asks an author to reuse an item; the author answers (also by a
#yes/#no reply); granting needs their content_reuse consent."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import Conflict, Forbidden, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from crm_shared.privacy import consent_allows
from engagement.community.events import (
    ContentReuseDenied,
    ContentReuseGranted,
    ContentReuseRequested,
)
from engagement.community.models import (
    ContentReuseRequest,
)
from engagement.community.service import CONSENT_PURPOSE, Position, clean_text, required_text
from engagement.interactions.models import Interaction

ANSWER_TAG = re.compile(r"(?<![\w#])#(yes|no)(?!\w)", re.IGNORECASE)


def reply_answer(text: str | None) -> bool | None:
    """What a reply says to a reuse request: ``#yes`` True, ``#no`` False, else (or both) None."""
    tags = {tag.lower() for tag in ANSWER_TAG.findall(text or "")}
    if len(tags) != 1:
        return None
    return tags == {"yes"}


async def request_content_reuse(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    interaction_id: uuid.UUID,
    purpose: str,
    requested_by: str,
) -> ContentReuseRequest:
    """Ask an interaction's author to let the brand reuse it; one open request per item."""
    why = required_text(purpose, field="input.purpose", limit=1000)
    found = await session.exec(
        select(Interaction).where(
            Interaction.tenant_id == tenant_id, Interaction.id == interaction_id
        )
    )
    interaction = found.first()
    if interaction is None:
        raise NotFound("input.interactionId: no such interaction", field="input.interactionId")
    request = ContentReuseRequest(
        tenant_id=tenant_id,
        interaction_id=interaction.id,
        channel=interaction.channel,
        author_platform_user_id=interaction.author_platform_user_id,
        customer_id=interaction.customer_id,
        purpose=why,
        requested_by=requested_by,
    )
    session.add(request)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "input.interactionId: a request for this interaction awaits its author's answer",
            field="input.interactionId",
        ) from None
    await record_event(
        session,
        ContentReuseRequested(
            request_id=request.id,
            interaction_id=interaction.id,
            customer_id=interaction.customer_id,
            channel=interaction.channel,
        ),
        tenant_id=tenant_id,
        subject=str(interaction.customer_id or request.id),
    )
    return request


async def get_reuse_request(
    *, session: AsyncSession, tenant_id: uuid.UUID, request_id: uuid.UUID, lock: bool = False
) -> ContentReuseRequest | None:
    """The tenant's reuse request (locked for update when asked)."""
    query = select(ContentReuseRequest).where(
        ContentReuseRequest.tenant_id == tenant_id, ContentReuseRequest.id == request_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def _author_customer(session: AsyncSession, request: ContentReuseRequest) -> uuid.UUID | None:
    """The author's customer now (the interaction may have been linked since it was asked)."""
    found = await session.exec(
        select(Interaction.customer_id).where(
            Interaction.tenant_id == request.tenant_id, Interaction.id == request.interaction_id
        )
    )
    return found.first() or request.customer_id


async def answer_content_reuse(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    request_id: uuid.UUID,
    granted: bool,
    via: str,
    customer_id: uuid.UUID | None = None,
    note: str | None = None,
    answer_interaction_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> ContentReuseRequest:
    """Record the author's answer.

    ``via="customer"``: the author answering with their own token (``customer_id``);
    ``via="reply"``: their ``#yes``/``#no`` reply; ``via="staff"``: staff recording an answer
    given elsewhere, which may grant only while the author consents to ``content_reuse``.
    """
    now = now or utcnow()
    cleaned = clean_text(note, field="input.note", limit=1000, required=False)
    request = await get_reuse_request(
        session=session, tenant_id=tenant_id, request_id=request_id, lock=True
    )
    author = await _author_customer(session, request) if request is not None else None
    if request is None or (via == "customer" and (author is None or author != customer_id)):
        # Another customer's request is as absent as one that does not exist.
        raise NotFound("input.requestId: no such request", field="input.requestId")
    if request.status != "requested":
        raise Conflict(
            f"input.requestId: the author already answered ({request.status})",
            field="input.requestId",
        )
    if via == "staff" and granted:
        consenting = (
            await consent_allows(
                session,
                "engagement",
                tenant_id=tenant_id,
                customer_ids=[author],
                purpose=CONSENT_PURPOSE,
            )
            if author is not None
            else set()
        )
        if author not in consenting:
            raise Forbidden(
                "input.granted: without the author's content_reuse consent only the author's"
                " own answer can grant this request",
                field="input.granted",
            )
    request.status = "granted" if granted else "denied"
    request.answered_via = via
    request.answered_at = now
    request.answer_note = cleaned
    request.answer_interaction_id = answer_interaction_id
    request.customer_id = author
    session.add(request)
    await session.flush()
    event = ContentReuseGranted if granted else ContentReuseDenied
    await record_event(
        session,
        event(
            request_id=request.id,
            interaction_id=request.interaction_id,
            customer_id=author,
            via=via,
        ),
        tenant_id=tenant_id,
        subject=str(author or request.id),
    )
    return request


async def answer_from_reply(
    *, session: AsyncSession, tenant_id: uuid.UUID, interaction_id: uuid.UUID
) -> ContentReuseRequest | None:
    """An ingested reply of an author, ``#yes`` or ``#no``, answers their open request in the
    same thread (a reply to the asked item, or anywhere in its conversation)."""
    found = await session.exec(
        select(Interaction).where(
            Interaction.tenant_id == tenant_id, Interaction.id == interaction_id
        )
    )
    reply = found.first()
    if reply is None or reply.author_platform_user_id is None:
        return None
    answer = reply_answer(reply.text)
    places = []
    if reply.parent_id is not None:
        places.append(col(Interaction.platform_id) == reply.parent_id)
    if reply.thread_id is not None:
        places.append(col(Interaction.thread_id) == reply.thread_id)
    if answer is None or not places:
        return None
    asked = (
        select(ContentReuseRequest.id)
        .join(Interaction, col(Interaction.id) == ContentReuseRequest.interaction_id)
        .where(
            ContentReuseRequest.tenant_id == tenant_id,
            ContentReuseRequest.status == "requested",
            ContentReuseRequest.channel == reply.channel,
            ContentReuseRequest.author_platform_user_id == reply.author_platform_user_id,
            col(Interaction.id) != reply.id,
            or_(*places),
            ContentReuseRequest.created_at <= reply.received_at,
        )
        .order_by(col(ContentReuseRequest.created_at).desc())
        .limit(1)
    )
    request_id = (await session.exec(asked)).first()
    if request_id is None:
        return None
    return await answer_content_reuse(
        session=session,
        tenant_id=tenant_id,
        request_id=request_id,
        granted=answer,
        via="reply",
        answer_interaction_id=reply.id,
    )


async def list_reuse_requests(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    before: Position | None,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> list[ContentReuseRequest]:
    """The tenant's reuse requests (a customer's own, when given), newest first."""
    query = select(ContentReuseRequest).where(ContentReuseRequest.tenant_id == tenant_id)
    if status is not None:
        query = query.where(ContentReuseRequest.status == status)
    if customer_id is not None:
        query = query.where(ContentReuseRequest.customer_id == customer_id)
    page = keyset_page(
        query,
        col(ContentReuseRequest.created_at),
        col(ContentReuseRequest.id),
        before,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(page))
