"""Customers: the people a brand knows, whatever channel they came from."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field
from crm_shared.validation import check_email, check_stored_json, normalize_email


class LifecycleStatus(StrEnum):
    """Where the customer is in their relationship with the brand."""

    PROSPECT = "prospect"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CHURNED = "churned"


class ContactKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


# BCP 47 language tag (e.g. "en", "pt-BR", "zh-Hant-TW"), checked for shape only.
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


# The optional profile fields: a merge fills those the survivor lacks, erasure clears them.
OPTIONAL_PROFILE_FIELDS = ("given_name", "family_name", "birth_date", "gender", "locale", "country")


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", index=True)
    name: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    locale: str | None = None
    country: str | None = None
    preferences: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False)
    )
    lifecycle_status: str = LifecycleStatus.ACTIVE.value
    created_at: datetime = created_at_field()
    updated_at: datetime | None = None
    # Set while this record is merged into another (identity.customers.merge).
    merged_into_id: uuid.UUID | None = None
    # Set once the customer is erased: the record stays as an empty shell (identity.privacy).
    erased_at: datetime | None = None


class ContactPoint(SQLModel, table=True):
    """An e-mail address or phone number of a customer, verified or not."""

    __tablename__ = "contact_points"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID = Field(foreign_key="identity.customers.id")
    kind: str
    value: str
    verified: bool = False
    verified_at: datetime | None = None
    created_at: datetime = created_at_field()


def normalize_contact(kind: ContactKind, value: str, *, country: str | None = None) -> str:
    """The canonical form: a lower-case e-mail address, or a phone number in E.164.

    A phone number without ``+`` is read in ``country`` (ISO 3166 alpha-2) when given.
    Raises ValueError with the reason, for pydantic to name the field.
    """
    if kind is ContactKind.EMAIL:
        email = normalize_email(value)
        assert isinstance(email, str)
        return check_email(email)
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "not a phone number (use the international format, e.g. +44 20 7946 0958)"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Mail providers that ignore dots in the local part (so do their users' second accounts).
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_mailbox(email: str) -> str:
    """The mailbox behind an address: no ``+tag``, and no dots where the provider ignores them."""
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), _DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def contact_fingerprint(secret: str, tenant_id: uuid.UUID, kind: str, value: str) -> str:
    """``v1:`` + HMAC-SHA256(secret, ``<tenant>|<kind>|<canonical value>``) in hex.

    ``value`` is the stored (normalized) contact point; e-mail addresses are reduced to their
    mailbox first, so ``ann+2@gmail.com`` and ``a.nn@gmail.com`` match. The tenant is part of
    the message: fingerprints of one brand never match another's.
    """
    canonical = canonical_mailbox(value) if kind == ContactKind.EMAIL.value else value
    message = f"{tenant_id}|{kind}|{canonical}".encode()
    return "v1:" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class ContactPointInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ContactKind
    value: str = PydanticField(min_length=1, max_length=320)
    verified: bool = False


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class ProfileFields(BaseModel):
    """The profile fields a caller may set; unset ones are left alone on update."""

    name: str | None = PydanticField(default=None, min_length=1, max_length=200)
    given_name: str | None = PydanticField(default=None, max_length=100)
    family_name: str | None = PydanticField(default=None, max_length=100)
    birth_date: date | None = None
    gender: str | None = PydanticField(default=None, max_length=40)
    locale: str | None = None
    country: str | None = None
    preferences: dict[str, Any] | None = None
    lifecycle_status: LifecycleStatus | None = None

    _strip_text = field_validator(
        "name", "given_name", "family_name", "gender", "locale", "country", mode="before"
    )(_strip)

    @field_validator("birth_date")
    @classmethod
    def _past(cls, value: date | None) -> date | None:
        if value is not None and (value > date.today() or value.year < 1900):
            raise ValueError("must be a date between 1900 and today")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not _LOCALE.fullmatch(value):
            raise ValueError("not a BCP 47 language tag (e.g. en, pt-BR)")
        return value

    @field_validator("country", mode="after")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.upper()
            if not _COUNTRY.fullmatch(value):
                raise ValueError("not an ISO 3166-1 alpha-2 country code (e.g. DE)")
        return value

    @field_validator("preferences")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Bounded in depth too: a value nested hundreds deep could not be read back.
        checked: dict[str, Any] | None = check_stored_json(value)
        return checked


class CustomerCreate(ProfileFields):
    """A new customer: a name and optionally contact points and profile fields."""

    name: str = PydanticField(min_length=1, max_length=200)
    contact_points: list[ContactPointInput] = PydanticField(default_factory=list, max_length=20)


class CustomerTag(SQLModel, table=True):
    """A label staff put on a customer ("vip", "press") to find them by."""

    __tablename__ = "customer_tags"
    __table_args__ = {"schema": "identity"}

    tenant_id: uuid.UUID
    customer_id: uuid.UUID = Field(foreign_key="identity.customers.id", primary_key=True)
    tag: str = Field(primary_key=True)
    tagged_at: datetime = created_at_field()


MAX_TAG_LENGTH = 60


def normalize_tag(tag: str) -> str:
    """A tag as stored: trimmed, lower case, 1 to 60 characters (ValueError otherwise)."""
    tag = tag.strip().lower()
    if not 1 <= len(tag) <= MAX_TAG_LENGTH:
        raise ValueError(f"a tag has 1 to {MAX_TAG_LENGTH} characters")
    return tag
