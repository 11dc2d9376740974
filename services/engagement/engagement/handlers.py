"""The events engagement consumes (the link projection arrives with issues 3 and 4)."""

from crm_shared.events.consumer import Registry, registry

HANDLERS: Registry = registry()
