"""The events engagement consumes, wired to their handlers in one place.

Engagement does not consume its own ``interaction.recorded``: what reacts to a new interaction
inside engagement (care, trends, segments, the graph's edges, a ``#yes``/``#no`` answer to a
reuse request) runs in the transaction that stores it (``engagement.ingestion.service``), so
a bulk load costs no broker delivery, inbox row or transaction per item here.
"""

from crm_shared.events.consumer import Handler, Registry, registry
from engagement.care.handlers import CustomerValueChanged, remember_customer_value
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
)
