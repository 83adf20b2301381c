"""The outbox: every domain writes its events here, in its own transaction; webhooks delivers them."""
