"""The events engagement consumes, wired to their handlers in one place."""

from crm_shared.events.consumer import Handler, Registry, registry
from engagement.care.handlers import CustomerValueChanged, remember_customer_value
from engagement.community.handlers import COMMUNITY_HANDLERS
from engagement.connectors.handlers import CONNECTOR_HANDLERS
from engagement.interactions.handlers import (
    SocialProfileLinked,
    SocialProfileUnlinked,
    attach_history,
    detach_history,
)
from engagement.privacy.handlers import PRIVACY_HANDLERS

HANDLERS: Registry = registry(
    Handler(SocialProfileLinked, attach_history),
    Handler(SocialProfileUnlinked, detach_history),
    Handler(CustomerValueChanged, remember_customer_value),
    *PRIVACY_HANDLERS,
    *COMMUNITY_HANDLERS,
    *CONNECTOR_HANDLERS,
)
