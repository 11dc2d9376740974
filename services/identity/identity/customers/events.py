"""Events about customers (ids and field names only: events carry no personal data)."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class CustomerRegistered(Event):
    """A customer became known to the brand."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime


class CustomerUpdated(Event):
    """A customer's profile or contact points changed; ``changed`` names the fields."""

    type = "identity.customer.updated.v1"

    customer_id: uuid.UUID
    changed: list[str]
