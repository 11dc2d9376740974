"""The events identity consumes (none yet: engagement's ``author seen`` comes with issue 3)."""

from crm_shared.events.consumer import Registry, registry
from identity.access.handlers import AUDIT_HANDLERS

HANDLERS: Registry = registry(*AUDIT_HANDLERS)
