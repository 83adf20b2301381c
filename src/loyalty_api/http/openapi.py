"""The OpenAPI document as committed in openapi/openapi.json."""

from __future__ import annotations

import json

from loyalty_api import crypto
from loyalty_api.settings import Settings


def openapi_document() -> str:
    from loyalty_api.app import create_app

    # The document does not depend on the key or the database; a throwaway key lets the app be built.
    app = create_app(Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
