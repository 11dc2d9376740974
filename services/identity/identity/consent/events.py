"""Consent changes, which engagement and rewards project and honour."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class ConsentChanged(Event):
    """A customer granted or withdrew consent for a purpose."""

    type = "identity.consent.changed.v1"

    customer_id: uuid.UUID
    purpose: str
    granted: bool
    policy_version: str
    source: str
    changed_at: datetime
