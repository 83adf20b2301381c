"""Refusals of the HTTP exchange itself, before any field is looked at: a body that is not JSON, a body sent
as something other than JSON (or in a content coding), a method the path does not have; and the answer
when the database is out of reach, the one failure of ours a caller should simply retry."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers

from loyalty_api.errors import LoyaltyError

JSON_MEDIA_TYPE = "application/json"


class MalformedJson(LoyaltyError):
    """The body is not JSON: it does not parse (a stray character, a cut-off document, text that is not
    UTF-8). Nothing was done.

    Send the body as one JSON document encoded in UTF-8, with `Content-Type: application/json`.
    """

    code = "malformed_json"
    status = 400
    title = "The body is not valid JSON"

    @classmethod
    def at(cls, line: int, column: int) -> MalformedJson:
        return cls(f"The body does not parse as JSON (line {line}, column {column}).")


class UnsupportedMediaType(LoyaltyError):
    """A body came with a `Content-Type` other than JSON, or with none; or with a `Content-Encoding` (gzip,
    br, deflate), which the service does not decode (the reply's `Accept-Encoding: identity` says so, as RFC
    9110 has it). Nothing was done.

    Send `Content-Type: application/json` with a JSON body, as it is, without `Content-Encoding`.
    """

    code = "unsupported_media_type"
    status = 415
    title = "The body must be JSON"

    @classmethod
    def of(cls, content_type: str | None) -> UnsupportedMediaType:
        sent = f"`{content_type[:100]}`" if content_type else "no Content-Type"
        return cls(f"The body was sent with {sent}: send it as JSON, with `Content-Type: {JSON_MEDIA_TYPE}`.")

    @classmethod
    def coded(cls, content_encoding: str) -> UnsupportedMediaType:
        error = cls(
            f"The body was sent with `Content-Encoding: {content_encoding[:100]}`: send it without a content "
            "coding, as plain JSON."
        )
        error.headers = {"Accept-Encoding": "identity"}
        return error


class MethodNotAllowed(LoyaltyError):
    """The path exists, but not with this method (a DELETE where only GET and PATCH are offered). `Allow` in
    the reply, and `allowed_methods` in the body, list the methods it has.

    Use one of the listed methods.
    """

    code = "method_not_allowed"
    status = 405
    title = "This path does not take this method"

    @classmethod
    def allowing(cls, methods: Iterable[str]) -> MethodNotAllowed:
        allowed = sorted(set(methods))
        error = cls(f"This path takes {', '.join(allowed)}.", allowed_methods=allowed)
        error.headers = {"Allow": ", ".join(allowed)}
        return error


class DatabaseUnavailable(LoyaltyError):
    """The service could not reach its database (a restart, a failover, a network fault, every connection
    it may open busy for as long as a request waits for one, or, on SQLite, its write lock held by another
    process for as long), so the request was not done; when the connection was lost while the work was being
    committed, `detail` says that it may have been.

    Retry after `Retry-After` seconds with the same Idempotency-Key: the work is done at most once. (When the
    service could not free the key, `Retry-After` is the time until the key's hold ends.) `/readyz` says when
    the database answers again.
    """

    code = "database_unavailable"
    status = 503
    title = "The database is out of reach"
    final = False

    def __init__(self, detail: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(
            detail or "The service could not reach its database; the request was not done. Retry shortly."
        )
        self.headers = {"Retry-After": str(retry_after)}

    @classmethod
    def while_committing(cls) -> DatabaseUnavailable:
        return cls(
            "The connection to the database was lost while the work was being committed, so it may have been "
            "done. Retry with the same Idempotency-Key: if it was done, the retry answers what it did. "
            "Without a key, look before doing it again."
        )

    @classmethod
    def pool_busy(cls) -> DatabaseUnavailable:
        return cls(
            "Every connection the service may open to its database stayed busy while the request waited for "
            "one; the request was not done. Retry shortly."
        )

    @classmethod
    def locked(cls) -> DatabaseUnavailable:
        return cls(
            "Another process held the database's write lock (SQLite) for as long as the request waited for "
            "it; the request was not done. Retry shortly."
        )

    @classmethod
    def key_held(cls, seconds: int) -> DatabaseUnavailable:
        return cls(
            "The service lost its database during the request and could not free its Idempotency-Key, which "
            f"answers 409 `idempotency_request_in_flight` for {seconds} s more. Retry after that with the "
            "same key: it answers what the request did, or does it.",
            retry_after=seconds,
        )


def is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, with any parameters (`; charset=utf-8`)."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def refuse_unless_plain_json(headers: Headers) -> None:
    """Refuse a body the service cannot read as it is (UnsupportedMediaType): one sent in a content coding
    (gzip, br: it would have to be decoded first, and read as it is only looks like JSON that does not
    parse), or sent as something other than JSON. REST's routes and GraphQL's POST ask this of every body."""
    for line in headers.getlist("content-encoding"):
        if any(coding.strip().lower() not in ("", "identity") for coding in line.split(",")):
            raise UnsupportedMediaType.coded(", ".join(headers.getlist("content-encoding")))
    if not is_json(headers.get("content-type")):
        raise UnsupportedMediaType.of(headers.get("content-type"))
