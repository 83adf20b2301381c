"""What a text the service takes in may hold, in one place for REST, GraphQL and the OpenAPI document.

The input guard (http.input_guard) refuses, in every string of a request, control characters and Unicode's
bidirectional controls; a required text a person reads (FilledText) must hold something besides blanks.
The classes below are written as the body of a regular expression's character class that Python and
ECMA-262 (OpenAPI's `pattern`) both read, so the document's patterns say exactly what is taken.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

# Embeddings and overrides (U+202A-U+202E, with their pop U+202C) and isolates (U+2066-U+2069): a name or a
# reason holding U+202E is shown reversed on the screen that shows it ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = r"\u202a-\u202e\u2066-\u2069"
# What no string of a request holds: C0 controls with NUL, DEL, C1 controls, bidirectional controls.
NOT_TEXT = r"\u0000-\u001f\u007f-\u009f" + BIDI_CONTROLS
# Characters that show nothing: Unicode's white space that is no control (what Python's str.strip() takes
# off, less the controls), and the zero-width space, joiners and no-break space, U+180E and U+2060.
BLANK = r" \u00a0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"

# The pattern of any string a request alone carries, and that of a FilledText.
PLAIN_TEXT = f"^[^{NOT_TEXT}]*$"
FILLED_TEXT = f"^[^{NOT_TEXT}]*[^{NOT_TEXT}{BLANK}][^{NOT_TEXT}]*$"

_BLANK_ONLY = re.compile(f"[{BLANK}]*")


def _filled(value: str) -> str:
    if _BLANK_ONLY.fullmatch(value):
        raise PydanticCustomError("string_blank", "must not be blank (spaces or invisible characters alone)")
    return value


# A text a person reads that must say something: a name, an operator's reason (shown in the member's ledger
# and the audit log), a description. Spaces alone, or the invisible characters of BLANK alone, are refused
# (422 validation_error, `errors[].type` `string_blank`) in REST and in GraphQL, whose inputs are read by
# the same models; otherwise the text is kept as sent. Its schema's pattern says so, with what the input
# guard refuses in any string. The field gives its own `max_length`.
FilledText = Annotated[
    str, Field(min_length=1, json_schema_extra={"pattern": FILLED_TEXT}), AfterValidator(_filled)
]
