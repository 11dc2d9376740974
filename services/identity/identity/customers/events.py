"""Events about customers."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class CustomerRegistered(Event):
    """A customer became known to the brand (no contact details: events carry no PII)."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime
