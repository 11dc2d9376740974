"""The one vocabulary of channels every service uses (docs/events.md): a social profile lives
on one of them, an interaction arrives on one of them (or on ``other``, engagement's catch-all
for sources that name no platform)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A platform someone can be found on."""

    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    REDDIT = "reddit"
    TIKTOK = "tiktok"
    WEB = "web"
    EMAIL = "email"


# Where an interaction may come from: every channel, plus a source that names no platform.
OTHER_CHANNEL = "other"
INTERACTION_CHANNELS: tuple[str, ...] = (*(c.value for c in Channel), OTHER_CHANNEL)
