"""Coupon codes and audience matching: pure logic."""

from __future__ import annotations

import uuid
from typing import Any

from rewards.offers import codes
from rewards.offers.models import AudienceMember, Offer, in_audience


def test_a_new_code_uses_only_unambiguous_symbols_in_groups_of_four() -> None:
    for _ in range(200):
        code = codes.new_code()
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(codes.ALPHABET)
        assert not set("".join(groups)) & set("01OIL")


def test_codes_do_not_repeat() -> None:
    assert len({codes.new_code() for _ in range(10_000)}) == 10_000


def test_a_code_is_read_regardless_of_case_spaces_and_dashes() -> None:
    code = codes.new_code()
    assert codes.canonical(code.lower().replace("-", " ")) == code
    assert codes.canonical(code.replace("-", "")) == code


def test_a_code_with_a_foreign_symbol_or_length_is_not_one_of_ours() -> None:
    assert codes.canonical("ABCD-EFGH-IJK0") is None
    assert codes.canonical("ABCD-EFGH") is None


def _offer(**targets: Any) -> Offer:
    return Offer(tenant_id=uuid.uuid4(), name="x", kind="percentage", created_by="t", **targets)


def _member(**facts: Any) -> AudienceMember:
    return AudienceMember(tenant_id=uuid.uuid4(), customer_id=uuid.uuid4(), **facts)


def test_an_untargeted_offer_is_for_everyone() -> None:
    assert in_audience(_offer(), None)


def test_a_targeted_offer_needs_one_matching_fact() -> None:
    offer = _offer(target_segments=["loyal"], target_tiers=["Gold"], target_advocates=True)
    assert in_audience(offer, _member(segment="loyal"))
    assert in_audience(offer, _member(tier="gold"))
    assert in_audience(offer, _member(advocate=True))
    assert not in_audience(offer, _member(segment="new", tier="silver", influencer=True))
    assert not in_audience(offer, None)


def test_a_tier_may_be_named_by_its_id() -> None:
    tier_id = str(uuid.uuid4())
    assert in_audience(_offer(target_tiers=[tier_id]), _member(tier="gold", tier_id=tier_id))
