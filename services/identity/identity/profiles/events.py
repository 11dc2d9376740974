"""Events about social profiles and their links (ids, channel and platform id only)."""

import uuid

from crm_shared.events import Event


class SocialProfileLinked(Event):
    """A profile now belongs to a customer: its history attaches to them."""

    type = "identity.social_profile.linked.v1"

    link_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str
    evidence: str
    confidence: float


class SocialProfileUnlinked(Event):
    """A profile no longer belongs to the customer: its history detaches."""

    type = "identity.social_profile.unlinked.v1"

    link_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str
