"""The events identity consumes: staff actions for the audit log, authors engagement saw,
other services' erasure confirmations, the figures customer lists sort and filter on, and
identity's own customer changes (duplicate suggestions)."""

from crm_shared.events.consumer import Handler, Registry, registry
from identity.access.handlers import AUDIT_HANDLERS
from identity.activity.handlers import ACTIVITY_HANDLERS
from identity.duplicates.handlers import DUPLICATE_HANDLERS
from identity.privacy.handlers import confirmation_handlers
from identity.profiles.handlers import AuthorSeen, record_author
from identity.settings import IdentitySettings


def build_handlers(settings: IdentitySettings) -> Registry:
    """Identity's handlers, with the services an erasure waits for bound."""
    return registry(
        *AUDIT_HANDLERS,
        Handler(AuthorSeen, record_author),
        *confirmation_handlers(settings.erasure_services),
        *ACTIVITY_HANDLERS,
        *DUPLICATE_HANDLERS,
    )
