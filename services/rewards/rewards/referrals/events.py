"""Events about referrals (ids and amounts: no personal data)."""

from __future__ import annotations

import uuid

from crm_shared.events import Event


class ReferralEvent(Event):
    """Something happened to a referral of ``referrer_id`` who brought ``referred_id``."""

    referral_id: uuid.UUID
    referrer_id: uuid.UUID
    referred_id: uuid.UUID


class ReferralAttributed(ReferralEvent):
    """The referred customer registered with the referrer's code."""

    type = "rewards.referral.attributed.v1"


class ReferralQualified(ReferralEvent):
    """The referred customer's purchase (or, under a sign-up program, their sign-up: no
    purchase) qualified the referral, and the fraud checks passed."""

    type = "rewards.referral.qualified.v1"

    purchase_id: uuid.UUID | None


class ReferralRewarded(ReferralEvent):
    """Both sides were paid (``*_points``: points credited; ``*_grant_id``: coupons granted)."""

    type = "rewards.referral.rewarded.v1"

    referrer_points: int
    referred_points: int
    referrer_entry_id: uuid.UUID | None
    referred_entry_id: uuid.UUID | None


class ReferralHeld(ReferralEvent):
    """A fraud check failed: the referral waits for review, unpaid."""

    type = "rewards.referral.held.v1"

    reasons: list[str]
    # None when the sign-up qualified it.
    purchase_id: uuid.UUID | None


class ReferralRejected(ReferralEvent):
    """Staff rejected the referral; ``clawed_back_points`` were taken back from the sides."""

    type = "rewards.referral.rejected.v1"

    clawed_back_points: int


class ReferralUnqualified(ReferralEvent):
    """The qualifying purchase was refunded: the rewards were reversed."""

    type = "rewards.referral.unqualified.v1"

    purchase_id: uuid.UUID
    reversed_points: int
