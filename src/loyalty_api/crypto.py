"""Encryption at rest and blind indexes for personal data and stored secrets.

One master key (settings.encryption_key) feeds HKDF to derive three independent keys: an AES-256-GCM key that
encrypts values, an HMAC-SHA256 key that turns a normalised value into a lookup hash (a blind index), so an
exact-match lookup by phone or e-mail needs no plaintext in the database, and an HMAC-SHA256 key that signs
what the service hands out to come back (a member's QR code).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"
# How every value `Vault.encrypt` makes begins: how a query tells a ciphertext from a plain value.
CIPHERTEXT_PREFIX = f"{_VERSION}:"
_NONCE_BYTES = 12


class InvalidEncryptionKey(ValueError):
    pass


class DecryptionFailed(ValueError):
    pass


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def check_key(key: str) -> None:
    """InvalidEncryptionKey (a ValueError) says why `key` cannot be the master key."""
    _decode_key(key)


def _decode_key(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidEncryptionKey("the encryption key is not url-safe base64") from exc
    if len(raw) != 32:
        raise InvalidEncryptionKey("the encryption key must be 32 bytes (url-safe base64)")
    return raw


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"loyalty-api/" + purpose).derive(
        master
    )


class Vault:
    def __init__(self, key: str) -> None:
        master = _decode_key(key)
        self._aead = AESGCM(_derive(master, b"encrypt"))
        self._index_key = _derive(master, b"blind-index")
        self._signing_key = _derive(master, b"sign")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return CIPHERTEXT_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise DecryptionFailed(f"unknown ciphertext version {version!r}")
        raw = base64.b64decode(body)
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode("utf-8")
        except InvalidTag as exc:
            raise DecryptionFailed("ciphertext does not match the encryption key") from exc

    def sign(self, kind: str, message: bytes) -> bytes:
        """A keyed MAC of `message` (HMAC-SHA256); `kind` keeps the messages of different uses apart."""
        return hmac.new(self._signing_key, kind.encode() + b":" + message, hashlib.sha256).digest()

    def blind_index(self, kind: str, normalised_value: str) -> str:
        """A keyed hash for exact-match lookups; `kind` keeps equal values of different fields apart."""
        message = f"{kind}:{normalised_value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
