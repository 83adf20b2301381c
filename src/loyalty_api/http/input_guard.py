"""Refuse request input that parses but that nothing behind the edge should have to handle.

- JSON nested deeper than settings.max_json_depth: recursive code further on (validation, encoders) would
  spend the stack on it.
- Duplicate keys in one JSON object: a parser keeps the last, so `{"points": 1, …, "points": 1000}` could
  mean one thing to a proxy or a log reader and another to us.
- Numbers of more than 4,300 digits: valid JSON, but past what Python converts to an int and what pydantic's
  JSON parser reads ("number out of range"), so they would be refused as a body that does not parse.
- NUL characters (JSON "\\u0000", query %00) and lone surrogates ("\\ud800"): pydantic passes them, but
  PostgreSQL text and JSONB cannot store NUL and no UTF-8 encoder takes a lone surrogate, so they would
  fail inside the database as a 500.
- Other control characters (BEL, TAB, line breaks, DEL, C1) in any string of a REST call: names, reasons
  and descriptions end up on receipts, POS screens and exports. GraphQL documents keep their line breaks.

The walk is iterative, so no input shape can exhaust the stack here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import QueryParams

from loyalty_api.errors import LoyaltyError
from loyalty_api.http.errors import MalformedJson

# An answer names at most this many problems, each field path cut to this length: a hostile body must not
# make the error larger than the input.
_MAX_ERRORS = 20
_MAX_FIELD = 100


class InvalidInput(LoyaltyError):
    """The body or query string parses, but holds what the service refuses to take in: JSON nested too deep, a
    key twice in one object, a NUL or other control character (a tab, a line break) or a lone surrogate in a
    string, a number of more than 4,300 digits, or a GraphQL document with too many tokens. `errors` names
    each one.

    Send plain JSON: each key once in an object, no control characters, numbers of sane length, nesting
    within the limit.
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


def string_problem(value: str, *, controls: bool = True) -> tuple[str, str] | None:
    if "\x00" in value:
        return "must not contain NUL characters", "string_nul"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)", "string_unicode"
    if controls and _CONTROL.search(value):
        return "must not contain control characters (tabs, line breaks and the like)", "string_control"
    return None


# Python's limit on the digits of an int it reads from text (sys.int_info.default_max_str_digits), which
# pydantic's JSON parser keeps too. No field of ours takes a number of more than a few dozen.
LONGEST_NUMBER = 4_300


class _TooLongNumber:
    """What a number of more than LONGEST_NUMBER digits is read as, until the walk names its field."""


_TOO_LONG = _TooLongNumber()


def _walk(document: Any, max_depth: int, *, controls: bool) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    pending: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if len(path) > max_depth:
            field = ".".join(path[:max_depth])
            return [field_error(field, "body", f"nests deeper than {max_depth} levels", "json_too_deep")]
        if value is _TOO_LONG:
            message = f"is a number of more than {LONGEST_NUMBER:,} digits"
            errors.append(field_error(".".join(path), "body", message, "number_too_long"))
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
    body: bytes, *, max_depth: int, controls: bool = True, read_fraction: Callable[[str], Any] = float
) -> Any:
    """The parsed body; MalformedJson if it is not JSON, InvalidInput if it is JSON the service refuses.
    `controls=False` lets control characters through (a GraphQL document has line breaks and tabs);
    `read_fraction` reads a number written with a fraction or an exponent (a float by default)."""
    try:
        # UTF-8 and nothing else (no byte order mark, no UTF-16), as the strict validation reads the body.
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):
            raise MalformedJson("The body starts with a byte order mark: send UTF-8 without one.")
        too_long: list[str] = []
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_not_a_json_number,
            # Only a body longer than LONGEST_NUMBER can hold such a number: a till's is read as it was.
            **(
                _number_readers(too_long, read_fraction)
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
    if too_long or _may_hold_bad_strings(text) or _deeper_than(text, document, max_depth):
        errors = _walk(document, max_depth, controls=controls)
        if errors:
            raise InvalidInput(errors)
    return document


def _number_readers(too_long: list[str], read_fraction: Callable[[str], Any]) -> dict[str, Any]:
    """json.loads' number hooks that read a number of more than LONGEST_NUMBER digits as _TOO_LONG (noted in
    `too_long`) rather than fail the whole body (int) or read it as infinity (float)."""

    def digits_over(number: str) -> bool:
        return len(number) > LONGEST_NUMBER and sum(c.isdigit() for c in number) > LONGEST_NUMBER

    def read_int(number: str) -> Any:
        if digits_over(number):
            too_long.append(number)
            return _TOO_LONG
        return int(number)

    def read_float(number: str) -> Any:
        if digits_over(number):
            too_long.append(number)
            return _TOO_LONG
        return read_fraction(number)

    return {"parse_int": read_int, "parse_float": read_float}


# Outside JSON's escapes, a string can hold only what the text holds literally: the parser refuses C0
# controls there, and UTF-8 cannot spell a lone surrogate. So a text without a backslash, DEL or C1 control
# has no string the walk would refuse, and the walk (a tenth of a quote's CPU) is only needed for depth.
_ESCAPE_OR_CONTROL = re.compile(r"[\\\x7f-\x9f]")


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
