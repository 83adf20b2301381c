"""Signing secrets in the Standard Webhooks format."""

from __future__ import annotations

import base64
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` + standard base64 (with padding) of 32 random bytes, as `standardwebhooks.Webhook` takes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
