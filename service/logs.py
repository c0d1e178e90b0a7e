"""Logging: plain lines for people, or one JSON object per line for log collectors.

`setup(config)` configures the root logger once, at start-up (never at import). The access log
goes through the same handler: `AccessLogger` logs one record per request whose fields (method,
path, status, ...) ride along as `extra`, so the JSON form carries them as keys and the plain form
reads like a classic access line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from .config import Config

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(PLAIN_FORMAT)


def setup(config: Config) -> None:
    """Send every logger (the access log included) to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(config.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # watchfiles logs every batch of file events at info: that is debug detail here.
    logging.getLogger("watchfiles").setLevel(
        logging.DEBUG if config.log_level == "debug" else logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    server.filters[:] = [f for f in server.filters if not isinstance(f, MalformedRequests)]
    server.addFilter(MalformedRequests())


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it could not parse (a port scanner's, a client's framing mistake:
    a header line too long, a bad chunk size) as an error with its traceback, and its message
    quotes the offending bytes, which may be an `Authorization` header. Neither the server's
    error nor safe to keep: a line at debug, without the bytes (the client got its 400)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # A body not in its Content-Encoding too: after the 400, aiohttp drains the rest of the
        # body and meets the same error again (a RequestPayloadError caused by a parser's).
        if not isinstance(exc, HttpProcessingError | web.RequestPayloadError):
            return True
        record.msg, record.args = "could not parse a request: %s", (type(exc).__name__,)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class AccessLogger(AbstractAccessLogger):
    """One record per request; never logs headers (they may carry an API key)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "remote": request.remote,
            "method": request.method,
            "path": request.path_qs,
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000, 3),
        }
        self.logger.info('%s "%s %s" %d %dB %.1fms', fields["remote"], fields["method"],
                         fields["path"], fields["status"], fields["bytes"], fields["duration_ms"],
                         extra=fields)
