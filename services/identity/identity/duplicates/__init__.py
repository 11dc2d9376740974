"""Duplicate-customer suggestions: likely duplicates by contact points, names and shared
profiles, with evidence and a score, for staff to merge or dismiss; never merged here."""
