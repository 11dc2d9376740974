"""Tenants: the brands, each seeing only its own data."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class TenantBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=2, max_length=63, regex=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")


class TenantCreate(TenantBase):
    pass


class Tenant(TenantBase, table=True):
    __tablename__ = "tenants"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(unique=True)
    created_at: datetime = created_at_field()
