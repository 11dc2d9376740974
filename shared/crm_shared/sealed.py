"""Secrets at rest (platform tokens, client secrets): sealed with a key ring from the settings.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``): each value carries its own IV and
MAC, so a changed byte is refused, never decrypted to garbage. The ring's first key seals; every
key opens. Rotation: put a new key first, keep the old ones until :meth:`KeyRing.reseal` has
been applied to every stored value (it re-seals with the first key), then drop them.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealedSecretError(Exception):
    """A sealed value no key of the ring opens (tampered with, or its key was dropped)."""


class KeyRing:
    """Seal and open secrets with the keys of the settings (url-safe base64, 32 bytes each)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("a key ring needs at least one key (Fernet.generate_key())")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        self._first = Fernet(keys[0].encode())

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealedSecretError("no key of the ring opens this value") from None

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` is sealed with the ring's first key (rotation done for it)."""
        try:
            self._first.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, sealed: str) -> str:
        """``sealed`` sealed again with the first key (the step of a key rotation)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SealedSecretError("no key of the ring opens this value") from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()
