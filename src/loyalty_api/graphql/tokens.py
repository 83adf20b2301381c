"""Counting a GraphQL document's tokens before the parser does.

graphql-core's lexer is pure Python and costs about 12 µs a token here, so a document refused by its token
limit still cost up to the limit's worth of lexing (25 ms at 2,000 tokens). A regular expression finds the
same tokens at C speed and stops counting one past the limit. The parser's own `max_tokens` stays the
authority; this is the cheap early answer, and the count prices the call against the key's rate limit.
"""

from __future__ import annotations

import re

# Strings match possessively and may run to the end unclosed: an unclosed quote then costs one scan, not one
# scan from every position after it (which made a 16 KB document of quotes take over a second).
_TOKEN = re.compile(
    r'"""(?:[^"\\]|\\.?|"(?!""))*+(?:"""|\Z)'  # block string
    r'|"(?:[^"\\\n]|\\.?)*+"?'  # string
    r"|#[^\n]*"  # comment: not a token
    r"|\.\.\."
    r"|[_A-Za-z][_0-9A-Za-z]*"
    r"|-?[0-9][0-9.eE+-]*"
    r"|[!$&():=@\[\]{|}]"
)


def count_tokens(document: str, limit: int) -> int:
    """The number of tokens in `document`, counted no further than `limit + 1`."""
    count = 0
    for match in _TOKEN.finditer(document):
        if match.group()[0] != "#":
            count += 1
            if count > limit:
                break
    return count
