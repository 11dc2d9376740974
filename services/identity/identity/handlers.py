"""The events identity consumes: staff actions for the audit log, authors engagement saw."""

from crm_shared.events.consumer import Handler, Registry, registry
from identity.access.handlers import AUDIT_HANDLERS
from identity.profiles.handlers import AuthorSeen, record_author

HANDLERS: Registry = registry(*AUDIT_HANDLERS, Handler(AuthorSeen, record_author))
