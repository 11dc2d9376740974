"""Referrals in the graph: codes and links, a customer's referrals, the review queue, the
tenant's program, and staff review (approve pays, reject claws back)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import strawberry
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import Connection, check_first, connection, decode_cursor, encode_cursor
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, reason_text, validated
from rewards.accounts.models import Account, AccountKind
from rewards.referrals import service
from rewards.referrals.models import (
    HoldReason,
    ProgramSettings,
    QualifyingKind,
    Referral,
    ReferralStatus,
)
from rewards.settings import RewardsSettings

strawberry.enum(ReferralStatus, name="ReferralStatus")
strawberry.enum(QualifyingKind, name="QualifyingKind")
strawberry.enum(HoldReason, name="HoldReason")


def _settings(info: CrmInfo) -> RewardsSettings:
    found = getattr(info.context.request.app.state, "settings", None)
    return found if isinstance(found, RewardsSettings) else RewardsSettings()


@strawberry.type(name="Referral")
class ReferralType:
    """A referred customer and where their referral stands."""

    id: strawberry.ID
    referrer_id: strawberry.ID
    referred_id: strawberry.ID
    status: ReferralStatus
    hold_reasons: list[HoldReason]
    attributed_at: datetime
    qualified_at: datetime | None
    rewarded_at: datetime | None
    reviewed_at: datetime | None

    @classmethod
    def from_model(cls, row: Referral) -> ReferralType:
        return cls(
            id=strawberry.ID(str(row.id)),
            referrer_id=strawberry.ID(str(row.referrer_id)),
            referred_id=strawberry.ID(str(row.referred_id)),
            status=ReferralStatus(row.status),
            hold_reasons=[HoldReason(r) for r in row.hold_reasons],
            attributed_at=row.attributed_at,
            qualified_at=row.qualified_at,
            rewarded_at=row.rewarded_at,
            reviewed_at=row.reviewed_at,
        )


@strawberry.type(name="ReferralCode")
class ReferralCodeType:
    """A customer's referral code and the link that carries it."""

    code: str
    link: str


@strawberry.type(name="ReferralMilestone")
class MilestoneType:
    id: str
    referrals: int = strawberry.field(description="Rewarded referrals needed.")
    offer_id: strawberry.ID = strawberry.field(description="The offer of the coupon granted.")


@strawberry.type(name="ReferralProgram")
class ReferralProgramType:
    """The tenant's referral program: what qualifies, what each side gets, fraud limits."""

    enabled: bool
    qualifying_kind: QualifyingKind
    min_amount_cents: int
    referrer_points: int
    referred_points: int
    referrer_offer_id: strawberry.ID | None
    referred_offer_id: strawberry.ID | None
    milestones: list[MilestoneType]
    velocity_limit: int = strawberry.field(
        description="More attributions than this to one referrer within the window are held."
    )
    velocity_window_hours: int
    link_base: str | None

    @classmethod
    def from_settings(cls, program: ProgramSettings) -> ReferralProgramType:
        def opt(value: uuid.UUID | None) -> strawberry.ID | None:
            return strawberry.ID(str(value)) if value else None

        return cls(
            enabled=program.enabled,
            qualifying_kind=program.qualifying_kind,
            min_amount_cents=program.min_amount_cents,
            referrer_points=program.referrer_points,
            referred_points=program.referred_points,
            referrer_offer_id=opt(program.referrer_offer_id),
            referred_offer_id=opt(program.referred_offer_id),
            milestones=[
                MilestoneType(
                    id=m.id, referrals=m.referrals, offer_id=strawberry.ID(str(m.offer_id))
                )
                for m in program.milestones
            ],
            velocity_limit=program.velocity_limit,
            velocity_window_hours=program.velocity_window_hours,
            link_base=program.link_base,
        )


async def _codes(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, str | None]:
    found: dict[uuid.UUID, str | None] = dict(
        await service.get_codes(session=session, tenant_id=tenant_id, customer_ids=ids)
    )
    missing = [i for i in ids if i not in found]
    if missing:
        # Customers from before referrals existed get their code on first sight.
        known = await session.exec(
            select(Account.customer_id).where(
                Account.tenant_id == tenant_id,
                Account.kind == AccountKind.CUSTOMER.value,
                col(Account.customer_id).in_(missing),
            )
        )
        for customer_id in known.all():
            if customer_id is not None:
                made = await service.code_for(
                    session=session, tenant_id=tenant_id, customer_id=customer_id
                )
                found[customer_id] = made.code
    return found


def code_loader(info: CrmInfo) -> DataLoader[uuid.UUID, str | None]:
    """The request's batch loader of referral codes (None: no such customer)."""
    # Customers from before referrals existed get their code on first sight: it writes.
    return keyed_loader(info, "referral_codes", _codes, None, writes=True)


async def _program(info: CrmInfo, tenant_id: uuid.UUID) -> ProgramSettings:
    async def fetch(
        session: AsyncSession, tenant: uuid.UUID, keys: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, ProgramSettings | None]:
        return {tenant: await service.get_program(session, tenant)}

    found = await keyed_loader(info, "referral_program", fetch, None).load(tenant_id)
    return found or ProgramSettings()


def _page(rows: list[Referral], limit: int) -> Connection[ReferralType]:
    return connection(
        rows,
        limit,
        cursor=lambda r: encode_cursor(r.attributed_at, r.id),
        node=ReferralType.from_model,
    )


@strawberry.type
class ReferralsCustomerFields:
    """Rewards' referral fields of ``Customer``."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's code and link to refer others (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def referral_code(self, info: CrmInfo) -> ReferralCodeType | None:
        customer_id = parse_id(self.id, field="id")
        principal = info.context.principal
        code = await code_loader(info).load(customer_id)
        if code is None:
            return None
        program = await _program(info, principal.tenant_id)
        link = service.link_for(code, program, _settings(info).referral_link_base)
        return ReferralCodeType(code=code, link=link)

    @strawberry.field(
        description="The customers this customer referred, newest first.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def referrals(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ReferralType]:
        customer_id = parse_id(self.id, field="id")
        principal = info.context.principal
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        async with info.context.session() as session:
            rows = await service.referrals_of(
                session=session,
                tenant_id=principal.tenant_id,
                referrer_id=customer_id,
                limit=limit + 1,
                after=position,
            )
        return _page(rows, limit)


@strawberry.type
class Query:
    @strawberry.field(
        description="Referrals held by a fraud check, oldest first (fraud:review).",
        extensions=[needs(Permission.FRAUD_REVIEW)],
    )
    async def held_referrals(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ReferralType]:
        principal = info.context.principal
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        async with info.context.session() as session:
            rows = await service.held_referrals(
                session=session, tenant_id=principal.tenant_id, limit=limit + 1, after=position
            )
        return _page(rows, limit)

    @strawberry.field(
        description="The tenant's referral program (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def referral_program(self, info: CrmInfo) -> ReferralProgramType:
        principal = info.context.principal
        return ReferralProgramType.from_settings(await _program(info, principal.tenant_id))


@strawberry.input
class MilestoneInput:
    id: str
    referrals: int
    offer_id: strawberry.ID


@strawberry.input
class UpdateReferralProgramInput:
    """Fields left out keep their current value."""

    enabled: bool | None = strawberry.UNSET
    qualifying_kind: QualifyingKind | None = strawberry.UNSET
    min_amount_cents: int | None = strawberry.UNSET
    referrer_points: int | None = strawberry.UNSET
    referred_points: int | None = strawberry.UNSET
    referrer_offer_id: strawberry.ID | None = strawberry.UNSET
    referred_offer_id: strawberry.ID | None = strawberry.UNSET
    milestones: list[MilestoneInput] | None = strawberry.UNSET
    velocity_limit: int | None = strawberry.UNSET
    velocity_window_hours: int | None = strawberry.UNSET
    link_base: str | None = strawberry.UNSET


@strawberry.input
class ApproveReferralInput:
    referral_id: strawberry.ID
    note: str | None = None


@strawberry.input
class RejectReferralInput:
    referral_id: strawberry.ID
    reason: str


@strawberry.type
class ReferralRejection:
    referral: ReferralType
    clawed_back_points: int = strawberry.field(
        description="Points taken back from both sides (0 when it had not been paid)."
    )


# Fields that may be cleared with an explicit null; the others keep their value on null.
_NULLABLE = {"referrer_offer_id", "referred_offer_id", "link_base"}


def _changes(input: UpdateReferralProgramInput) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ProgramSettings.model_fields:
        given = getattr(input, name, strawberry.UNSET)
        if given is strawberry.UNSET or (given is None and name not in _NULLABLE):
            continue
        if name == "milestones":
            given = [{"id": m.id, "referrals": m.referrals, "offer_id": m.offer_id} for m in given]
        changes[name] = given
    return changes


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Change the tenant's referral program (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def update_referral_program(
        self, info: CrmInfo, input: UpdateReferralProgramInput
    ) -> ReferralProgramType:
        principal = info.context.principal
        changes = _changes(input)
        async with info.context.transaction() as session:
            current = await service.get_program(session, principal.tenant_id)
            program = validated(ProgramSettings, {**current.model_dump(), **changes})
            await service.update_program(
                session=session,
                tenant_id=principal.tenant_id,
                settings=program,
                actor=principal.actor,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="referral_program.updated",
                record_type="referral_program",
                record_id=principal.tenant_id,
                details={"changed": sorted(changes)},
            )
        return ReferralProgramType.from_settings(program)

    @strawberry.mutation(
        description="Pay a held referral after review (fraud:review).",
        extensions=[needs(Permission.FRAUD_REVIEW)],
    )
    async def approve_referral(self, info: CrmInfo, input: ApproveReferralInput) -> ReferralType:
        principal = info.context.principal
        referral_id = parse_id(input.referral_id, field="input.referralId")
        note = reason_text(input.note, field="input.note") if input.note is not None else None
        async with info.context.transaction() as session:
            referral = await service.approve(
                session=session,
                tenant_id=principal.tenant_id,
                referral_id=referral_id,
                actor=principal.actor,
                note=note,
                ttl_days=_settings(info).points_ttl_days,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="referral.approved",
                record_type="referral",
                record_id=referral.id,
                details={"hold_reasons": referral.hold_reasons},
            )
        return ReferralType.from_model(referral)

    @strawberry.mutation(
        description="Reject a referral as fraud: unpaid if held, clawed back if paid "
        "(fraud:review).",
        extensions=[needs(Permission.FRAUD_REVIEW)],
    )
    async def reject_referral(self, info: CrmInfo, input: RejectReferralInput) -> ReferralRejection:
        principal = info.context.principal
        referral_id = parse_id(input.referral_id, field="input.referralId")
        reason = reason_text(input.reason)
        async with info.context.transaction() as session:
            referral, taken = await service.reject(
                session=session,
                tenant_id=principal.tenant_id,
                referral_id=referral_id,
                actor=principal.actor,
                reason=reason,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="referral.rejected",
                record_type="referral",
                record_id=referral.id,
                details={"clawed_back_points": taken},
            )
        return ReferralRejection(
            referral=ReferralType.from_model(referral), clawed_back_points=taken
        )
