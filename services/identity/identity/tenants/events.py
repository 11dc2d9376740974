"""Events about tenants."""

import uuid

from crm_shared.events import Event


class TenantCreated(Event):
    """A brand was set up."""

    type = "identity.tenant.created.v1"

    tenant_id: uuid.UUID
    slug: str
    name: str
