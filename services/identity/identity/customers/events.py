"""Events about customers (ids and field names only: events carry no personal data)."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class CustomerRegistered(Event):
    """A customer became known to the brand."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime
    # The referral code the person registered with, as they typed it (rewards attributes it).
    referral_code: str | None = None
    # Keyed fingerprints of the contact points verified at registration (see
    # ``identity.customers.models.contact_fingerprint``): fraud checks without the addresses.
    verified_contact_fingerprints: list[str] = []


class ContactPointVerified(Event):
    """A customer's e-mail address or phone number is now verified (its fingerprint only)."""

    type = "identity.contact_point.verified.v1"

    customer_id: uuid.UUID
    contact_point_id: uuid.UUID
    kind: str
    fingerprint: str


class CustomerUpdated(Event):
    """A customer's profile or contact points changed; ``changed`` names the fields."""

    type = "identity.customer.updated.v1"

    customer_id: uuid.UUID
    changed: list[str]
