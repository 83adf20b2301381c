from loyalty_api.errors import Conflict, LoyaltyError


class IdempotencyKeyReused(LoyaltyError):
    """This API key used the same Idempotency-Key for a different request (another method, path or body)
    within the last 24 hours; nothing was done.

    Use a new key for a new request; to get the first request's response again, send exactly that request.
    """

    code = "idempotency_key_reused"
    status = 422
    title = "This Idempotency-Key was used for a different request"


class IdempotencyRequestInFlight(Conflict):
    """A request with this Idempotency-Key is still being processed, so this one was not run.

    Wait a moment, then retry with the same key and body: once the first request has finished, its response is
    replayed.
    """

    code = "idempotency_request_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyClaimLost(IdempotencyRequestInFlight):
    """This request ran so long that a retry with the same Idempotency-Key took the key over: this request's
    work was rolled back, and the retry's is the one kept.

    Retry with the same key and body to get the outcome that was kept.
    """


class InvalidIdempotencyKey(LoyaltyError):
    """The Idempotency-Key header is empty, longer than 255 characters, holds characters other than visible
    ASCII (a space, a control character, an accented letter), or was sent more than once; nothing was done.

    Send a key of 1 to 255 visible ASCII characters, such as a UUID made once for each operation.
    """

    code = "invalid_idempotency_key"
    status = 422
    title = "The Idempotency-Key header must be 1 to 255 visible ASCII characters"
