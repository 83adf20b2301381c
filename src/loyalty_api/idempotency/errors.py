from loyalty_api.errors import Conflict, LoyaltyError


class IdempotencyKeyReused(LoyaltyError):
    code = "idempotency_key_reused"
    status = 422
    title = "This Idempotency-Key was used for a different request"


class IdempotencyRequestInFlight(Conflict):
    code = "idempotency_request_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyClaimLost(IdempotencyRequestInFlight):
    """This request outlived its claim and a retry took the key over: the retry's work is the one kept."""


class InvalidIdempotencyKey(LoyaltyError):
    code = "invalid_idempotency_key"
    status = 422
    title = "The Idempotency-Key header must be 1 to 255 printable characters"
