"""One vocabulary of channels: identity's profiles and engagement's interactions agree."""

from __future__ import annotations

from typing import get_args

from crm_shared.channels import INTERACTION_CHANNELS, Channel
from engagement.ingestion.normalized import Channel as NormalizedChannel
from engagement.interactions.models import CHANNELS
from identity.profiles.models import Channel as ProfileChannel


def test_interactions_take_every_profile_channel_and_other() -> None:
    assert ProfileChannel is Channel
    assert set(get_args(NormalizedChannel)) == set(INTERACTION_CHANNELS) == set(CHANNELS)
    assert set(INTERACTION_CHANNELS) == {c.value for c in Channel} | {"other"}
