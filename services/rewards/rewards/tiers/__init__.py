"""Tiers: levels customers reach by points earned or engagement in a rolling window."""
