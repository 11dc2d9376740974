"""Connectors: the brand's own platform accounts, pulled from and published to by the system."""
