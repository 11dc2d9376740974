"""Tenants: the brands, each seeing only its own data."""

import re
import uuid
from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class TenantBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=2, max_length=63)


class TenantCreate(TenantBase):
    @field_validator("slug")
    @classmethod
    def _check_slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", value):
            raise ValueError("lowercase letters, digits and inner hyphens only")
        return value


class Tenant(TenantBase, table=True):
    __tablename__ = "tenants"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(unique=True)
    created_at: datetime = created_at_field()
