"""Coupon codes: cryptographically random, in an alphabet that cannot be misread.

A code is 12 symbols from 31 (digits and capitals without 0/O, 1/I/L), shown in groups of
four: ``7KQM-X4TZ-PRW9`` — about 59 bits, so guessing one of a tenant's codes is hopeless and
a collision (refused by the database's unique constraint, and retried) practically never
happens. Codes are read forgivingly: case, spaces and dashes do not matter.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 12
GROUP = 4


def new_code() -> str:
    """A fresh random code in its canonical form."""
    return _grouped("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))


def canonical(text: str) -> str | None:
    """The canonical form of a code as typed, or None if it cannot be one of ours."""
    symbols = "".join(ch for ch in text.upper() if ch not in " -")
    if len(symbols) != LENGTH or any(ch not in ALPHABET for ch in symbols):
        return None
    return _grouped(symbols)


def _grouped(symbols: str) -> str:
    return "-".join(symbols[i : i + GROUP] for i in range(0, len(symbols), GROUP))
