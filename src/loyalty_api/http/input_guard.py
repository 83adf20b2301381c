"""Refuse request input that parses but that nothing behind the edge should have to handle.

- JSON nested deeper than settings.max_json_depth: recursive code further on (validation, encoders) would
  spend the stack on it.
- Duplicate keys in one JSON object: a parser keeps the last, so `{"points": 1, …, "points": 1000}` could
  mean one thing to a proxy or a log reader and another to us.
- Numbers of more than 4,300 digits: valid JSON, but past what Python converts to an int and what pydantic's
  JSON parser reads ("number out of range"), so they would be refused as a body that does not parse.
- Numbers with a fraction or an exponent that a float does not hold as written (`1.00000000000000000001`,
  `1e400`): pydantic's JSON parser reads every such number as a float, a rate included (pydantic-core reads
  JSON into a Decimal through a float), so the rate would be another number than the one sent, and pass the
  bounds that number passes. Every field that takes a fraction takes 13 significant digits at most and every
  integer field stops at 10^12, so no such number is one a field would take, read exactly: it is refused
  here, named, rather than rounded.
- NUL characters (JSON "\\u0000", query %00) and lone surrogates ("\\ud800"): pydantic passes them, but
  PostgreSQL text and JSONB cannot store NUL and no UTF-8 encoder takes a lone surrogate, so they would
  fail inside the database as a 500.
- Other control characters (BEL, TAB, line breaks, DEL, C1) in any string of a REST call: names, reasons
  and descriptions end up on receipts, POS screens and exports. GraphQL documents keep their line breaks.
- Unicode's bidirectional controls (embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069), for
  the same reason: a name or a reason holding U+202E is shown reversed on the screen that shows it
  ("Trojan Source"). Right-to-left text needs none of them (its letters carry their direction); the
  marks U+200E/U+200F, which only nudge neutral characters, are taken.

The walk is iterative, so no input shape can exhaust the stack here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import QueryParams

from loyalty_api.errors import LoyaltyError
from loyalty_api.http.errors import MalformedJson
from loyalty_api.text import BIDI_CONTROLS

# An answer names at most this many problems, each field path cut to this length: a hostile body must not
# make the error larger than the input.
_MAX_ERRORS = 20
_MAX_FIELD = 100


class InvalidInput(LoyaltyError):
    """The body or query string parses, but holds what the service refuses to take in: JSON nested too deep, a
    key twice in one object, a NUL or other control character (a tab, a line break), a bidirectional control
    (U+202A-U+202E, U+2066-U+2069) or a lone surrogate in a string, a number of more than 4,300 digits, a
    number with a fraction or an exponent that is not read exactly as written (more than 15 significant
    digits, or out of a float's range), or a GraphQL document with too many tokens. `errors` names each one.

    Send plain JSON: each key once in an object, no control or bidirectional characters, numbers of sane
    length and with the digits they mean (a rate to six decimals at most), nesting within the limit.
    """

    code = "validation_error"
    status = 422
    title = "Invalid input"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        errors = errors[:_MAX_ERRORS]
        fields = ", ".join(e["field"] or e["location"] for e in errors)
        super().__init__(f"The request has invalid or missing values: {fields}", errors=errors)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def field_error(field: str, location: str, message: str, kind: str) -> dict[str, str]:
    """One entry of a problem's `errors`, its field path cut short and made encodable."""
    if len(field) > _MAX_FIELD:
        field = field[:_MAX_FIELD] + "…"
    field = field.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate in a key, echoed
    return {"field": field, "location": location, "message": message, "type": kind}


# C0 controls but NUL (reported on its own), DEL and C1 controls: a BEL or a TAB in a name or a reason would
# reach receipts, POS screens and CSV exports.
_CONTROL = re.compile("[\x01-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates (and their PDF and PDI).
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def string_problem(value: str, *, controls: bool = True) -> tuple[str, str] | None:
    if "\x00" in value:
        return "must not contain NUL characters", "string_nul"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)", "string_unicode"
    if controls and _CONTROL.search(value):
        return "must not contain control characters (tabs, line breaks and the like)", "string_control"
    if controls and _BIDI.search(value):
        return "must not contain bidirectional controls (U+202A-U+202E, U+2066-U+2069)", "string_bidi"
    return None


# Python's limit on the digits of an int it reads from text (sys.int_info.default_max_str_digits), which
# pydantic's JSON parser keeps too. No field of ours takes a number of more than a few dozen.
LONGEST_NUMBER = 4_300


class _RefusedNumber:
    """What a number the service does not read is read as, until the walk names its field."""

    # How many numbers were read so, by any parse: one after which it moved may hold one, and is walked. A
    # count, not a list made for each body: a till's body has no such number, and a closure and its list were
    # a tenth of what the guard spent on an earn's body (counted by callgrind).
    read = 0

    def __init__(self, message: str, kind: str) -> None:
        self.message = message
        self.kind = kind

    def count(self) -> _RefusedNumber:
        _RefusedNumber.read += 1
        return self


_TOO_LONG = _RefusedNumber(f"is a number of more than {LONGEST_NUMBER:,} digits", "number_too_long")
_NOT_EXACT = _RefusedNumber(
    "is a number that is not read exactly as written: one with a fraction or an exponent is read to 15 "
    "significant digits, within a float's range; refused, not rounded",
    "number_not_exact",
)


def _as_written(number: str, read: float) -> bool:
    """Whether `read`, the float JSON's `number` parses to, is that number: whether what a rate is made of
    (pydantic's Decimal of a JSON float, and `money.decimal_text`, both take its shortest repr) equals it."""
    if not math.isfinite(read):
        return False
    try:
        return Decimal(repr(read)) == Decimal(number)
    except InvalidOperation:  # an exponent of twenty digits or more: only a zero is read as it is
        return read == 0 and Decimal(number.lower().partition("e")[0]) == 0


def _read_exactly(number: str) -> Any:
    """json.loads' `parse_float` for a REST body: the float when it is the number as written, else
    _NOT_EXACT. A till's body has no such number, so it never calls this."""
    read = float(number)
    # Sixteen characters with a point and no exponent are fifteen digits at most, between 1e-14 and 1e16: a
    # float keeps every such number, and its shortest repr writes it (Python's float.__repr__).
    if (len(number) <= 16 and "e" not in number and "E" not in number) or _as_written(number, read):
        return read
    return _NOT_EXACT.count()


def _walk(document: Any, max_depth: int, *, controls: bool) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    pending: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if len(path) > max_depth:
            field = ".".join(path[:max_depth])
            return [field_error(field, "body", f"nests deeper than {max_depth} levels", "json_too_deep")]
        if isinstance(value, _RefusedNumber):
            errors.append(field_error(".".join(path), "body", value.message, value.kind))
        elif isinstance(value, str):
            problem = string_problem(value, controls=controls)
            if problem is not None:
                errors.append(field_error(".".join(path), "body", *problem))
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = string_problem(key, controls=controls)
                if problem is not None:
                    errors.append(field_error(".".join((*path, key)), "body", *problem))
                pending.append((item, (*path, key)))
        elif isinstance(value, list):
            pending.extend((item, (*path, str(index))) for index, item in enumerate(value))
    return errors


def check_strings(document: Any, *, max_depth: int) -> None:
    """InvalidInput for strings anywhere in `document` the service must not take in (NUL, lone surrogates,
    control characters): what `load_json` checks of a REST body, for input that arrived another way (a
    GraphQL mutation's input, whose document may spell a tab as `\\t`)."""
    errors = _walk(document, max_depth, controls=True)
    if errors:
        raise InvalidInput(errors)


def _not_a_json_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(
    body: bytes,
    *,
    max_depth: int,
    controls: bool = True,
    read_fraction: Callable[[str], Any] | None = None,
) -> Any:
    """The parsed body; MalformedJson if it is not JSON, InvalidInput if it is JSON the service refuses.
    `controls=False` lets control characters through (a GraphQL document has line breaks and tabs);
    `read_fraction` reads a number written with a fraction or an exponent (by default a float, and such a
    number refused as `number_not_exact` when the float is not the number as written)."""
    # Moved by this parse if it refused a number (or by another thread's parse: then a walk for nothing).
    refused = _RefusedNumber.read
    if read_fraction is None:
        read_fraction = _read_exactly
    try:
        # UTF-8 and nothing else (no byte order mark, no UTF-16), as the strict validation reads the body.
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):
            raise MalformedJson("The body starts with a byte order mark: send UTF-8 without one.")
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_not_a_json_number,
            # Only a body longer than LONGEST_NUMBER can hold such a number: a till's is read as it was.
            **(
                _number_readers(read_fraction)
                if len(text) > LONGEST_NUMBER
                else {"parse_float": read_fraction}
            ),
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson.at(exc.lineno, exc.colno) from None
    except UnicodeDecodeError:
        raise MalformedJson("The body is not UTF-8 text.") from None
    except _DuplicateKey as exc:
        raise InvalidInput(
            [field_error(exc.key, "body", "appears twice in one object", "json_duplicate_key")]
        ) from None
    except RecursionError:
        raise InvalidInput(
            [field_error("", "body", f"nests deeper than {max_depth} levels", "json_too_deep")]
        ) from None
    except ValueError:  # NaN or Infinity (_not_a_json_number), which are no JSON
        raise MalformedJson() from None
    if (
        _RefusedNumber.read != refused
        or _may_hold_bad_strings(text)
        or _deeper_than(text, document, max_depth)
    ):
        errors = _walk(document, max_depth, controls=controls)
        if errors:
            raise InvalidInput(errors)
    return document


def _number_readers(read_fraction: Callable[[str], Any]) -> dict[str, Any]:
    """json.loads' number hooks that read a number of more than LONGEST_NUMBER digits as _TOO_LONG rather
    than fail the whole body (int) or read it as infinity (float)."""

    def digits_over(number: str) -> bool:
        return len(number) > LONGEST_NUMBER and sum(c.isdigit() for c in number) > LONGEST_NUMBER

    def read_int(number: str) -> Any:
        if digits_over(number):
            return _TOO_LONG.count()
        return int(number)

    def read_float(number: str) -> Any:
        if digits_over(number):
            return _TOO_LONG.count()
        return read_fraction(number)

    return {"parse_int": read_int, "parse_float": read_float}


# Outside JSON's escapes, a string can hold only what the text holds literally: the parser refuses C0
# controls there, and UTF-8 cannot spell a lone surrogate. So a text without a backslash, DEL, C1 control or
# bidirectional control has no string the walk would refuse, and the walk (a tenth of a quote's CPU) is
# only needed for depth.
_ESCAPE_OR_CONTROL = re.compile(r"[\\\x7f-\x9f" + BIDI_CONTROLS + "]")


def _may_hold_bad_strings(text: str) -> bool:
    if text.isascii():  # known without a scan (CPython keeps it with the string): DEL is the one control left
        return "\\" in text or "\x7f" in text
    return _ESCAPE_OR_CONTROL.search(text) is not None


def _deeper_than(text: str, document: Any, max_depth: int) -> bool:
    # Each level of nesting opens a bracket in the text, so a text with no more brackets than the limit (a
    # till's earn has two) is within it without a count level by level.
    if text.count("{") + text.count("[") <= max_depth:
        return False
    level, depth = [document], 0
    while level:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            return False
        depth += 1
        if depth > max_depth:
            return True
        level = [item for c in containers for item in (c.values() if isinstance(c, dict) else c)]
    return False


def screen(query: QueryParams, body: bytes, *, max_depth: int) -> Any:
    """The body's JSON document (None without a body, as for a body of `null`: the caller knows which);
    InvalidInput for a query string or JSON body the service must not take in."""
    errors = [
        field_error(name if "\x00" not in name else "", "query", *problem)
        for name, value in query.multi_items()
        for problem in [string_problem(name) or string_problem(value)]
        if problem is not None
    ]
    if errors:
        raise InvalidInput(errors)
    return load_json(body, max_depth=max_depth) if body else None
