"""The events care publishes (see docs/events.md): ids and times, never the texts."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class CaseOpened(Event):
    """A complaint, question or negative mention became a case."""

    type = "engagement.case.opened.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    interaction_id: uuid.UUID
    channel: str
    kind: str
    priority: str
    opened_at: datetime
    first_response_due_at: datetime
    resolution_due_at: datetime


class CaseAssigned(Event):
    """A case was given to an agent (a staff user's id)."""

    type = "engagement.case.assigned.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    assignee_id: str
    assigned_at: datetime


class CaseAnswered(Event):
    """The brand answered a case for the first time (its first response)."""

    type = "engagement.case.answered.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    interaction_id: uuid.UUID
    answered_at: datetime
    first_response_seconds: float


class CaseResolved(Event):
    """A case was resolved."""

    type = "engagement.case.resolved.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    resolved_at: datetime
    resolution_seconds: float


class CaseReopened(Event):
    """A resolved or closed case was opened again."""

    type = "engagement.case.reopened.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    reopened_at: datetime


class CaseClosed(Event):
    """A case was closed (nothing more to do)."""

    type = "engagement.case.closed.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    closed_at: datetime


class CaseBreached(Event):
    """A case missed one of its SLA targets (``first_response`` or ``resolution``)."""

    type = "engagement.case.breached.v1"

    case_id: uuid.UUID
    customer_id: uuid.UUID | None
    target: str
    priority: str
    due_at: datetime
    breached_at: datetime


class ContentShared(Event):
    """Someone shared content the brand's own account posted."""

    type = "engagement.content.shared.v1"

    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str
