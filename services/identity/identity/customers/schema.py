"""The identity subgraph's part of the customer graph."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo, authorize, keyed_loader
from crm_shared.pagination import (
    Connection,
    Edge,
    PageInfo,
    SortCursor,
    check_first,
    check_page_size,
    encode_cursor,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id, validated
from identity.consent import service as consent_service
from identity.consent.models import ConsentInput, ConsentRecord, Purpose
from identity.consent.schema import ConsentRecordType, ConsentType
from identity.customers import merge as merging
from identity.customers import service
from identity.customers.merge_schema import CustomerMergeType
from identity.customers.models import (
    ContactKind,
    ContactPoint,
    ContactPointInput,
    Customer,
    CustomerCreate,
    LifecycleStatus,
    ProfileFields,
    normalize_contact,
)
from identity.profiles import service as profile_service
from identity.profiles.models import Channel, SocialProfile
from identity.profiles.schema import SocialProfileType
from identity.settings import IdentitySettings

strawberry.enum(LifecycleStatus, name="LifecycleStatus")  # makes the model enum a GraphQL enum
strawberry.enum(ContactKind, name="ContactKind")  # makes the model enum a GraphQL enum
strawberry.enum(service.CustomerSortField, name="CustomerSortField")


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input
class CustomerOrder:
    """How a customer list is ordered; ties are broken by id, so pages never overlap."""

    field: service.CustomerSortField = service.CustomerSortField.CREATED
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class ConsentCondition:
    purpose: Purpose
    granted: bool = strawberry.field(
        default=True, description="false: customers without that consent now (never asked too)."
    )


@strawberry.input(description="Conditions a listed customer meets (all of them; a list: any).")
class CustomerFilter:
    segments: list[str] | None = strawberry.field(
        default=None, description="Participation segments (from engagement), e.g. creators."
    )
    tiers: list[str] | None = strawberry.field(
        default=None, description="Tier names (from rewards)."
    )
    channels: list[Channel] | None = strawberry.field(
        default=None, description="Customers with a social profile on one of these channels."
    )
    tags: list[str] | None = strawberry.field(default=None, description="Customers tagged so.")
    consent: ConsentCondition | None = None


def _filters(search: str | None, given: CustomerFilter | None) -> service.CustomerFilters:
    if given is None:
        return service.CustomerFilters(search=search)
    return service.CustomerFilters(
        search=search,
        segments=tuple(given.segments or ()),
        tiers=tuple(given.tiers or ()),
        channels=tuple(c.value for c in given.channels or ()),
        tags=tuple(t.strip().lower() for t in given.tags or ()),
        consent=((given.consent.purpose.value, given.consent.granted) if given.consent else None),
    )


@strawberry.type(name="ContactPoint")
class ContactPointType:
    """An e-mail address (lower case) or phone number (E.164) of the customer."""

    id: strawberry.ID
    kind: ContactKind
    value: str
    verified: bool
    verified_at: datetime | None

    @classmethod
    def from_model(cls, point: ContactPoint) -> ContactPointType:
        return cls(
            id=strawberry.ID(str(point.id)),
            kind=ContactKind(point.kind),
            value=point.value,
            verified=point.verified,
            verified_at=point.verified_at,
        )


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    """A person the brand knows, across channels."""

    id: strawberry.ID
    name: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    gender: str | None
    locale: str | None = strawberry.field(description="BCP 47 language tag, e.g. pt-BR.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    preferences: JSON
    lifecycle_status: LifecycleStatus
    created_at: datetime
    updated_at: datetime | None
    merged_into_id: strawberry.ID | None = strawberry.field(
        description="Set while this record is merged into another: use that one."
    )

    @classmethod
    def from_model(cls, customer: Customer) -> CustomerType:
        return cls(
            id=strawberry.ID(str(customer.id)),
            name=customer.name,
            given_name=customer.given_name,
            family_name=customer.family_name,
            birth_date=customer.birth_date,
            gender=customer.gender,
            locale=customer.locale,
            country=customer.country,
            preferences=JSON(customer.preferences),
            lifecycle_status=LifecycleStatus(customer.lifecycle_status),
            created_at=customer.created_at,
            updated_at=customer.updated_at,
            merged_into_id=(
                strawberry.ID(str(customer.merged_into_id)) if customer.merged_into_id else None
            ),
        )

    @classmethod
    async def resolve_reference(cls, info: CrmInfo, id: strawberry.ID) -> CustomerType | None:
        customer_id = parse_id(id, field="id")
        authorize(info, Permission.CUSTOMERS_READ, customer_id=customer_id)
        return await customer_loader(info).load(customer_id)

    @strawberry.field(
        description="The first e-mail address, verified ones first.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="self.id")],
    )
    async def email(self, info: CrmInfo) -> str | None:
        points = await self._contact_points(info)
        emails = sorted((p for p in points if p.kind == "email"), key=lambda p: not p.verified)
        return emails[0].value if emails else None

    @strawberry.field(
        description="E-mail addresses and phone numbers, verified or not.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="self.id")],
    )
    async def contact_points(self, info: CrmInfo) -> list[ContactPointType]:
        return [ContactPointType.from_model(p) for p in await self._contact_points(info)]

    async def _contact_points(self, info: CrmInfo) -> list[ContactPoint]:
        loader: DataLoader[uuid.UUID, list[ContactPoint]] = keyed_loader(
            info, "contact_points", _contact_points, []
        )
        return await loader.load(uuid.UUID(self.id))

    @strawberry.field(
        description="Labels staff put on the customer, alphabetically.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="self.id")],
    )
    async def tags(self, info: CrmInfo) -> list[str]:
        loader: DataLoader[uuid.UUID, list[str]] = keyed_loader(info, "tags", _tags, [])
        return await loader.load(uuid.UUID(self.id))

    @strawberry.field(
        description="The social profiles linked to the customer.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="self.id")],
    )
    async def social_profiles(self, info: CrmInfo) -> list[SocialProfileType]:
        customer_id = uuid.UUID(self.id)
        loader: DataLoader[uuid.UUID, list[SocialProfile]] = keyed_loader(
            info, "social_profiles", _profiles, []
        )
        profiles = await loader.load(customer_id)
        return [SocialProfileType.from_model(p) for p in profiles]

    @strawberry.field(
        description="Merges this customer survived or was merged in, newest first.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="self.id")],
    )
    async def merges(self, info: CrmInfo) -> list[CustomerMergeType]:
        customer_id = uuid.UUID(self.id)
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await merging.merges_of(
                session=session, tenant_id=principal.tenant_id, customer_id=customer_id
            )
        return [CustomerMergeType.from_model(row) for row in rows]

    @strawberry.field(
        description="Consent per purpose as it stands now.",
        extensions=[needs(Permission.CONSENT_READ, customer="self.id")],
    )
    async def consents(self, info: CrmInfo) -> list[ConsentType]:
        customer_id = uuid.UUID(self.id)
        loader: DataLoader[uuid.UUID, dict[str, ConsentRecord]] = keyed_loader(
            info, "consents", _consents, {}
        )
        current = await loader.load(customer_id)
        states = []
        for purpose in Purpose:
            record = current.get(purpose.value)
            states.append(
                ConsentType(
                    purpose=purpose,
                    granted=bool(record and record.granted),
                    policy_version=record.policy_version if record else None,
                    source=record.source if record else None,
                    changed_at=record.recorded_at if record else None,
                )
            )
        return states

    @strawberry.field(
        description="Every consent record, newest first.",
        extensions=[needs(Permission.CONSENT_READ, customer="self.id")],
    )
    async def consent_history(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ConsentRecordType]:
        customer_id = uuid.UUID(self.id)
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: consent_service.consent_history(
                session=session,
                tenant_id=tenant_id,
                customer_id=customer_id,
                limit=limit,
                before=position,
            ),
            cursor=lambda r: encode_cursor(r.recorded_at, r.id),
            node=ConsentRecordType.from_model,
        )


@strawberry.type(name="CustomerConnection")
class CustomerConnection:
    """A page of customers; ``totalCount`` counts every customer the list holds."""

    edges: list[Edge[CustomerType]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many customers the whole list holds (all pages).")
    async def total_count(self) -> int:
        return await self.count()


async def _customers(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, CustomerType]:
    found = await service.get_customers(session=session, tenant_id=tenant_id, ids=ids)
    return {key: CustomerType.from_model(customer) for key, customer in found.items()}


async def _contact_points(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[ContactPoint]]:
    return await service.contact_points_of(session=session, tenant_id=tenant_id, customer_ids=ids)


async def _tags(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[str]]:
    return await service.tags_of(session=session, tenant_id=tenant_id, customer_ids=ids)


async def _profiles(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[SocialProfile]]:
    return await profile_service.profiles_of(session=session, tenant_id=tenant_id, customer_ids=ids)


async def _consents(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, dict[str, ConsentRecord]]:
    current = await consent_service.current_consents(
        session=session, tenant_id=tenant_id, customer_ids=ids
    )
    found: dict[uuid.UUID, dict[str, ConsentRecord]] = {}
    for (customer_id, purpose), record in current.items():
        found.setdefault(customer_id, {})[purpose] = record
    return found


def customer_loader(info: CrmInfo) -> DataLoader[uuid.UUID, CustomerType | None]:
    """The request's batch loader of the caller's tenant's customers."""
    return keyed_loader(info, "customers", _customers, None)


@strawberry.input
class ContactPointEntry:
    kind: ContactKind
    value: str
    verified: bool = False


@strawberry.input
class RegistrationConsent:
    purpose: Purpose
    granted: bool
    source: str
    policy_version: str


def _registration_consents(info: CrmInfo, given: list[RegistrationConsent] | None) -> list[Any]:
    """The consents of a registration, checked (consent:write is needed to give any)."""
    if not given:
        return []
    authorize(info, Permission.CONSENT_WRITE)
    return [
        validated(
            ConsentInput,
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "source": c.source,
                "policy_version": c.policy_version,
            },
            prefix=f"input.consents.{index}",
        )
        for index, c in enumerate(given)
    ]


@strawberry.input
class RegisterCustomerInput:
    name: str
    email: str | None = strawberry.field(
        default=None, description="Shorthand for an unverified e-mail contact point."
    )
    phone: str | None = strawberry.field(
        default=None, description="Shorthand for an unverified phone contact point."
    )
    contact_points: list[ContactPointEntry] | None = None
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    locale: str | None = None
    country: str | None = None
    preferences: JSON | None = None
    lifecycle_status: LifecycleStatus | None = None
    referral_code: str | None = strawberry.field(
        default=None,
        description="The code of the customer who referred this one (rewards attributes it).",
    )
    consents: list[RegistrationConsent] | None = strawberry.field(
        default=None,
        description="Consents given while registering (consent:write), recorded with the "
        "customer: a grant of partner_sharing lets the registration itself reach partners.",
    )


@strawberry.input
class UpdateCustomerInput:
    """Fields left out stay as they are; an explicit null clears an optional one."""

    id: strawberry.ID
    name: str | None = strawberry.UNSET
    given_name: str | None = strawberry.UNSET
    family_name: str | None = strawberry.UNSET
    birth_date: date | None = strawberry.UNSET
    gender: str | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    preferences: JSON | None = strawberry.UNSET
    lifecycle_status: LifecycleStatus | None = strawberry.UNSET


@strawberry.input
class CustomerTagsInput:
    customer_id: strawberry.ID
    tags: list[str] = strawberry.field(description="1 to 20 tags, each 1 to 60 characters.")


@strawberry.input
class AddContactPointInput:
    customer_id: strawberry.ID
    kind: ContactKind
    value: str
    verified: bool = False


_PROFILE_FIELDS = tuple(ProfileFields.model_fields)


def _fingerprint_secret(info: CrmInfo) -> str:
    found = getattr(info.context.request.app.state, "settings", None)
    settings = found if isinstance(found, IdentitySettings) else IdentitySettings()
    return settings.contact_fingerprint_secret


def _country(value: str | None) -> str | None:
    return value.strip().upper() if value else None


def _given(input: object) -> dict[str, Any]:
    """The profile fields the caller gave (UNSET ones are left out)."""
    return {
        name: getattr(input, name)
        for name in _PROFILE_FIELDS
        if getattr(input, name, strawberry.UNSET) is not strawberry.UNSET
    }


@strawberry.type
class Query:
    @strawberry.field(
        description="One customer of the caller's tenant, or null.",
        extensions=[needs(Permission.CUSTOMERS_READ, customer="id")],
    )
    async def customer(self, info: CrmInfo, id: strawberry.ID) -> CustomerType | None:
        customer_id = parse_id(id, field="id")
        return await customer_loader(info).load(customer_id)

    @strawberry.field(
        description="The tenant's customers (not merged away, not erased), a page at a time: "
        "`first`/`after` forward, `last`/`before` backward (a `before` without `last` takes "
        "`first` rows). Ordered by `orderBy` (default: oldest first); `filter` narrows them; "
        "`search` matches part of the name (accents and case ignored), part of an e-mail "
        "address, phone number (international or national format) or social handle.",
        extensions=[needs(Permission.CUSTOMERS_READ)],
    )
    async def customers(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        search: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: CustomerOrder | None = None,
        filter: CustomerFilter | None = None,
    ) -> CustomerConnection:
        principal = info.context.principal
        order = order_by or CustomerOrder()
        backward = last is not None or before is not None
        if last is not None:
            limit = check_page_size(last, "last")
        else:
            limit = check_first(first)
        filters = _filters(search, filter)
        list_cursor = SortCursor(order.field.value, order.direction is SortDirection.DESC)
        rows: list[tuple[Customer, Any]] = []
        async with info.context.session() as session:
            rows = await service.list_customers(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                filters=filters,
                sort=order.field,
                descending=order.direction is SortDirection.DESC,
                after=list_cursor.decode(after, "after") if after is not None else None,
                before=list_cursor.decode(before, "before") if before is not None else None,
                backward=backward,
            )
        more = len(rows) > limit
        page = rows[1:] if backward and more else rows[:limit]
        edges = [
            Edge(cursor=list_cursor.encode(key, c.id), node=CustomerType.from_model(c))
            for c, key in page
        ]
        tenant_id = principal.tenant_id

        async def count() -> int:
            async with info.context.session() as session:
                return await service.count_customers(
                    session=session, tenant_id=tenant_id, filters=filters
                )

        return CustomerConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=(more and not backward) or (backward and before is not None),
                end_cursor=edges[-1].cursor if edges else None,
                has_previous_page=(more and backward) or (not backward and after is not None),
                start_cursor=edges[0].cursor if edges else None,
            ),
            count=count,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Register a customer; emits identity.customer.registered.v1.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def register_customer(self, info: CrmInfo, input: RegisterCustomerInput) -> CustomerType:
        principal = info.context.principal
        points = [
            {"kind": p.kind, "value": p.value, "verified": p.verified}
            for p in input.contact_points or []
        ]
        fields = [f"input.contactPoints.{i}.value" for i in range(len(points))]
        for kind, value in ((ContactKind.EMAIL, input.email), (ContactKind.PHONE, input.phone)):
            if value is not None:
                try:  # checked here so that the error names the shorthand the caller used
                    normalize_contact(kind, value, country=_country(input.country))
                except ValueError as error:
                    raise BadUserInput(f"input.{kind}: {error}", field=f"input.{kind}") from None
                points.append({"kind": kind, "value": value})
                fields.append(f"input.{kind}")
        data = validated(
            CustomerCreate,
            {
                **{k: v for k, v in _given(input).items() if v is not None},
                "contact_points": points,
            },
        )
        consents = _registration_consents(info, input.consents)
        async with info.context.transaction() as session:
            customer = await service.register_customer(
                session=session,
                tenant_id=principal.tenant_id,
                data=data,
                fields=fields,
                referral_code=input.referral_code,
                fingerprint_secret=_fingerprint_secret(info),
                consents=consents,
                recorded_by=principal.actor,
            )
        return CustomerType.from_model(customer)

    @strawberry.mutation(
        description="Change profile fields; emits identity.customer.updated.v1.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def update_customer(self, info: CrmInfo, input: UpdateCustomerInput) -> CustomerType:
        customer_id = parse_id(input.id, field="input.id")
        principal = info.context.principal
        data = validated(ProfileFields, _given(input))
        async with info.context.transaction() as session:
            customer = await service.update_customer(
                session=session, tenant_id=principal.tenant_id, customer_id=customer_id, data=data
            )
        return CustomerType.from_model(customer)

    @strawberry.mutation(
        description="Give a customer another e-mail address or phone number.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def add_contact_point(
        self, info: CrmInfo, input: AddContactPointInput
    ) -> ContactPointType:
        customer_id = parse_id(input.customer_id, field="input.customerId")
        principal = info.context.principal
        point = validated(
            ContactPointInput,
            {"kind": input.kind, "value": input.value, "verified": input.verified},
        )
        async with info.context.transaction() as session:
            contact = await service.add_contact_point(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                point=point,
                fingerprint_secret=_fingerprint_secret(info),
            )
        return ContactPointType.from_model(contact)

    @strawberry.mutation(
        description="Mark a contact point verified.", extensions=[needs(Permission.CUSTOMERS_WRITE)]
    )
    async def verify_contact_point(self, info: CrmInfo, id: strawberry.ID) -> ContactPointType:
        principal = info.context.principal
        contact_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            contact = await service.verify_contact_point(
                session=session,
                tenant_id=principal.tenant_id,
                contact_point_id=contact_id,
                fingerprint_secret=_fingerprint_secret(info),
            )
        return ContactPointType.from_model(contact)

    @strawberry.mutation(
        description="Remove a contact point; answers the customer.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def remove_contact_point(self, info: CrmInfo, id: strawberry.ID) -> CustomerType:
        principal = info.context.principal
        contact_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            customer = await service.remove_contact_point(
                session=session, tenant_id=principal.tenant_id, contact_point_id=contact_id
            )
        return CustomerType.from_model(customer)

    @strawberry.mutation(
        description="Put tags on a customer (kept lower case).",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def tag_customer(self, info: CrmInfo, input: CustomerTagsInput) -> CustomerType:
        customer_id = parse_id(input.customer_id, field="input.customerId")
        principal = info.context.principal
        async with info.context.transaction() as session:
            customer = await service.tag_customer(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                tags=input.tags,
            )
        return CustomerType.from_model(customer)

    @strawberry.mutation(
        description="Take tags off a customer.", extensions=[needs(Permission.CUSTOMERS_WRITE)]
    )
    async def untag_customer(self, info: CrmInfo, input: CustomerTagsInput) -> CustomerType:
        customer_id = parse_id(input.customer_id, field="input.customerId")
        principal = info.context.principal
        async with info.context.transaction() as session:
            customer = await service.untag_customer(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                tags=input.tags,
            )
        return CustomerType.from_model(customer)
