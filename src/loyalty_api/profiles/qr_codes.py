"""The member's QR code: what a member's app shows at the till, a short-lived signed token naming the member.

A code is `LQ1` and 48 characters of base32 (QR codes' alphanumeric mode holds them densely): the member's id,
when the code stops working, and a MAC over both, made with a key derived from the encryption key. It is
good for QR_CODE_LIFETIME, so a screenshot or a photo of one stops working minutes later; the app asks for a
new one each time it shows it. Nothing is stored: the till's lookup checks the MAC and the time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loyalty_api.clock import format_instant
from loyalty_api.crypto import Vault
from loyalty_api.profiles.errors import QrCodeExpired, QrCodeInvalid

QR_CODE_LIFETIME = timedelta(minutes=5)
_PREFIX = "LQ1"
_MAC_BYTES = 10  # 80 bits: too many to guess online, one lookup at a time, even unthrottled
# The member id and the end in seconds (4 bytes: until 2106); with the MAC, 30 bytes: base32 without padding.
_BODY_BYTES = 16 + 4
_KIND = "member-qr"


@dataclass(frozen=True, slots=True)
class QrCode:
    code: str
    expires_at: datetime


def issue(vault: Vault, member_id: uuid.UUID, now: datetime) -> QrCode:
    # Whole seconds, as the code carries them.
    expires_at = (now + QR_CODE_LIFETIME).replace(microsecond=0)
    body = member_id.bytes + int(expires_at.timestamp()).to_bytes(4, "big")
    mac = vault.sign(_KIND, body)[:_MAC_BYTES]
    return QrCode(code=_PREFIX + base64.b32encode(body + mac).decode("ascii"), expires_at=expires_at)


def member_of(vault: Vault, code: str, now: datetime) -> uuid.UUID:
    """The member a code names; QrCodeInvalid when it is not one this service made, QrCodeExpired past its
    time."""
    if not code.startswith(_PREFIX):
        raise QrCodeInvalid()
    try:
        raw = base64.b32decode(code[len(_PREFIX) :])
    except (binascii.Error, ValueError):
        raise QrCodeInvalid() from None
    if len(raw) != _BODY_BYTES + _MAC_BYTES:
        raise QrCodeInvalid()
    body, mac = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
    if not hmac.compare_digest(mac, vault.sign(_KIND, body)[:_MAC_BYTES]):
        raise QrCodeInvalid()
    expires_at = datetime.fromtimestamp(int.from_bytes(body[16:], "big"), UTC)
    if now >= expires_at:
        ended = format_instant(expires_at)
        raise QrCodeExpired(f"The code stopped working at {ended}", expired_at=ended)
    return uuid.UUID(bytes=body[:16])
