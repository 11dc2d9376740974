"""Listening: trackers (keywords, hashtags, phrases) matched on every ingested text."""
