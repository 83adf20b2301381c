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
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

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
# that follows it (a HINT, SQLAlchemy's `[SQL: …]`, the blank line before a chained exception).
_DETAIL = re.compile(r"^DETAIL:.*?(?=^HINT:|^\[SQL|^\(Background|^$|\Z)", re.MULTILINE | re.DOTALL)


class JsonFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return _DETAIL.sub("DETAIL:  (left out: it may name personal data)\n", super().formatException(ei))

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
