"""Structured JSON logs, one object per line, each with the request id of the request it belongs to.

Log lines name routes by their template (`/v1/members/{member_id}`), never the raw URL or query string,
which can carry phone numbers or e-mail addresses.

Libraries log too, and two of them would print what ours never does, so their records are corrected at their
loggers (filters run before any handler, ours or a host process's or pytest's, sees a record):

- the webhook sender sends to operators' URLs, whose query strings (and user info) carry receivers' tokens,
  and aiohttp, its client, names URLs in what it logs (a warning about a connection, an unclosed session);
  httpx, in the same process as a caller's client (tests, an embedding host), logs every request at INFO
  (`HTTP Request: POST <url> "HTTP/1.1 204 No Content"`): every URL in a line from aiohttp's client loggers,
  httpx or httpcore is cut to scheme://host[:port]/path.
- aiosqlite logs every statement it runs at DEBUG with its parameters, the values written (webhook URLs, the
  replies kept for Idempotency-Keys): its DEBUG records are dropped. (SQLAlchemy's own statement log is the
  explicit `database_echo`, and its engines hide parameters.)

The filters are installed when this module is imported (the app, the worker and the CLI all import it), so
they hold whoever configures logging; `configure_logging` installs them again, which is harmless.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi.exceptions import ValidationException
from pydantic import ValidationError
from sqlalchemy.exc import StatementError

from loyalty_api.clock import format_instant

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes of a record that are not extras: the standard ones, and uvicorn's `color_message`, the message
# again with a terminal's colour codes (escape bytes in a JSON line).
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


# PostgreSQL's DETAIL of a broken constraint names the row's values (`Key (partner_customer_ref)=(…) already
# exists`, `Failing row contains (…)`), and asyncpg puts it in the error's text, which an unexpected database
# error's traceback prints (hide_parameters hides only the statement's parameters): left out, up to the part
# that follows it (a HINT, SQLAlchemy's `[SQL: …]`, the blank line before a chained exception). A backstop:
# the errors of PostgreSQL and asyncpg are written without their text at all (_withheld).
_DETAIL = re.compile(r"^DETAIL:.*?(?=^HINT:|^\[SQL|^\(Background|^$|\Z)", re.MULTILINE | re.DOTALL)
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
# What an error of PostgreSQL's carries besides its text: names, never values.
_NAMES = ("table_name", "column_name", "data_type_name", "constraint_name")


class JsonFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        error = ei[1]
        withheld = _withheld(error) if isinstance(error, BaseException) else set()
        text = _traceback(error, withheld, set()).rstrip("\n") if withheld else super().formatException(ei)
        return _DETAIL.sub("DETAIL:  (left out: it may name personal data)\n", text)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": format_instant(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=_written, ensure_ascii=False)


def _links(error: BaseException) -> list[BaseException]:
    """The error and every exception chained to it, as causes or contexts."""
    links: dict[int, BaseException] = {}
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop()
        if link is not None and id(link) not in links:
            links[id(link)] = link
            pending += [link.__cause__, link.__context__]
    return list(links.values())


def _withheld(error: BaseException) -> set[int]:
    """The ids of the exceptions of `error`'s chain whose text is written as its codes instead.

    PostgreSQL's messages quote the values they refused, not only in a DETAIL (`value "+8613912345678" is out
    of range for type integer`), and so do asyncpg's when it cannot encode a parameter (`invalid input for
    query argument $1: '+8613912345678' (invalid UUID …)`), as does the codec's error beneath: a bug that
    hands a statement a member's phone where an id belongs would write the phone in the log, and the language
    of the server's messages is the server's, so no pattern finds them. Withheld: every error carrying a
    SQLSTATE (PostgreSQL's, asyncpg's DataError, SQLAlchemy's adaptor of either, a direct statement's),
    whatever caused them, and SQLAlchemy's statement errors around them, whose text repeats theirs. asyncpg's
    other errors of its own (`another operation is in progress`) and SQLite's (which name tables, columns
    and constraints, never values) stay.

    So are pydantic's validation errors and FastAPI's around them, which quote every value they refused
    (`input_value='li.na@example.com'`): a response model that a bug hands a member's e-mail where a number
    belongs, or a model a job builds from a row, would write it. Their locations and error types are kept."""
    withheld: set[int] = set()
    for link in _links(error):
        if isinstance(link, ValidationError | ValidationException):
            withheld.add(id(link))
        if isinstance(getattr(link, "sqlstate", None), str):
            cause: BaseException | None = link
            while cause is not None and id(cause) not in withheld:
                withheld.add(id(cause))
                cause = cause.__cause__
    for link in _links(error):
        if isinstance(link, StatementError) and id(link.orig) in withheld:
            withheld.add(id(link))
    return withheld


def _traceback(error: BaseException, withheld: set[int], seen: set[int]) -> str:
    """`error`'s traceback as Python writes it, its chain first, but the withheld exceptions' text replaced by
    their codes (what went wrong and where: the frames, the type, the SQLSTATE, the names, the statement)."""
    seen.add(id(error))
    text = ""
    if error.__cause__ is not None and id(error.__cause__) not in seen:
        text = _traceback(error.__cause__, withheld, seen) + _CAUSE
    elif (
        error.__context__ is not None and not error.__suppress_context__ and id(error.__context__) not in seen
    ):
        text = _traceback(error.__context__, withheld, seen) + _CONTEXT
    if error.__traceback__ is not None:
        text += "Traceback (most recent call last):\n" + "".join(traceback.format_tb(error.__traceback__))
    if id(error) not in withheld:
        return text + "".join(traceback.format_exception_only(error))
    return text + f"{_qualified(error)}: {_codes(error)}\n"


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _codes(error: BaseException) -> str:
    """A withheld exception's codes in place of its text."""
    if isinstance(error, ValidationError | ValidationException):
        refused = "; ".join(
            f"{'.'.join(str(part) for part in found.get('loc', ()))} ({found.get('type')})"
            for found in error.errors()
        )
        return f"{refused} (the values left out: they may be personal data)"
    if isinstance(error, StatementError):
        around = f"({_qualified(error.orig)}) {_codes(error.orig)}\n" if error.orig is not None else ""
        return f"{around}[SQL: {error.statement}]"
    said = []
    for field, called in (("sqlstate", "SQLSTATE"), *((name, name.removesuffix("_name")) for name in _NAMES)):
        # SQLAlchemy's adaptor of asyncpg's error has its SQLSTATE only; asyncpg's, beneath it, has the names.
        found = (getattr(link, field, None) for link in (error, error.__cause__))
        value = next((value for value in found if isinstance(value, str)), None)
        if value is not None:
            said.append(f"{called} {value}")
    return f"{', '.join(said)} (the message left out: it may quote values)".lstrip()


def _written(value: object) -> str:
    """A value json cannot write: an instant as everywhere else, anything else as its text."""
    return format_instant(value) if isinstance(value, datetime) and value.tzinfo is not None else str(value)


def configure_logging(level: str) -> None:
    # Where a line was logged from, and in which thread and process: our lines print none of it, so logging
    # need not work it out for every request (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    protect_library_loggers()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints the raw path with its query string: ours replaces it (see http/middleware).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>\\]+")
_URL_LOGGERS = (
    "aiohttp.client",
    "aiohttp.internal",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_STATEMENT_LOGGERS = ("aiosqlite",)


def redact_url(url: str) -> str:
    """`scheme://host[:port]/path`: the URL without user info, query string or fragment, where receivers
    put their tokens. A URL that does not parse keeps its scheme only."""
    scheme = url.partition("://")[0]
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return f"{scheme}://…"
    if not host:
        return f"{scheme}://…"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}{parts.path}"


class RedactUrls(logging.Filter):
    """Rewrites every URL in a record's message with `redact_url`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # its handler would print the arguments as they are, URL and all
            record.msg, record.args = f"(a {record.name} message that could not be formatted)", None
            return True
        if "://" in message:
            record.msg, record.args = _URL.sub(lambda found: redact_url(found.group()), message), None
        return True


class DropDebug(logging.Filter):
    """Lets through records above DEBUG only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_REDACT_URLS = RedactUrls()
_DROP_DEBUG = DropDebug()


def protect_library_loggers() -> None:
    """Install the filters described above on the libraries' loggers (again is harmless)."""
    for name in _URL_LOGGERS:
        logging.getLogger(name).addFilter(_REDACT_URLS)
    for name in _STATEMENT_LOGGERS:
        logging.getLogger(name).addFilter(_DROP_DEBUG)


protect_library_loggers()
