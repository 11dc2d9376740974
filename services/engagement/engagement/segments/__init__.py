"""Participation segments: creators, occasional participants, observers and the inactive."""
