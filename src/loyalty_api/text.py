"""What a text the service takes in may hold, in one place for REST, GraphQL and the OpenAPI document.

The input guard (http.input_guard) refuses, in every string of a request, control characters and Unicode's
bidirectional controls. The classes below are written as the body of a regular expression's character class
that Python and ECMA-262 (OpenAPI's `pattern`) both read, so the document's patterns say exactly what is
taken.
"""

from __future__ import annotations

# Embeddings and overrides (U+202A-U+202E, with their pop U+202C) and isolates (U+2066-U+2069): a name or a
# reason holding U+202E is shown reversed on the screen that shows it ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = r"\u202a-\u202e\u2066-\u2069"
# What no string of a request holds: C0 controls with NUL, DEL, C1 controls, bidirectional controls.
NOT_TEXT = r"\u0000-\u001f\u007f-\u009f" + BIDI_CONTROLS

# The pattern of any string a request alone carries.
PLAIN_TEXT = f"^[^{NOT_TEXT}]*$"
