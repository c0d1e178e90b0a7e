"""Requests aiohttp cannot parse as HTTP, answered in the error envelope too.

A request head aiohttp's parser refuses (a line over 64 KiB, a bad chunk size, both
`Transfer-Encoding` and `Content-Length`, a method that is no token) never reaches the app: the
connection's `RequestHandler.handle_error` answers it, in plain text, quoting the offending
bytes (which may be an API key). `web.run_app` has no hook for that handler, so `install` wraps
the method once: aiohttp still logs (logs.py keeps such records to one debug line without the
bytes) and still refuses to answer when a response has begun; the answer it gives is replaced
by the envelope, with the same status, and the connection is closed as before.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from ..errors import error_response

_aiohttps = RequestHandler.handle_error


def _handle_error(self: RequestHandler, request: web.BaseRequest, status: int = 500,
                  exc: BaseException | None = None, message: str | None = None
                  ) -> web.StreamResponse:
    plain = _aiohttps(self, request, status, exc, message)
    if plain.status >= 500:
        response = error_response(plain.status, "The server had an error while processing "
                                  "your request.", "server_error")
    elif isinstance(exc, ContentEncodingError):
        # br and zstd: aiohttp's decoders for them (with Brotli / backports.zstd installed)
        # take a corrupt or cut stream for an empty or partial body, so they are not offered.
        response = error_response(415, "This Content-Encoding is not supported: send the "
                                  "body as it is, or in gzip or deflate.",
                                  "invalid_request_error")
    elif isinstance(exc, LineTooLong):
        response = error_response(plain.status, "A line of the request's head is too long "
                                  "(64 KiB at most).", "invalid_request_error")
    else:
        response = error_response(plain.status, "The request is not valid HTTP/1.1 "
                                  f"({type(exc).__name__ if exc else 'unreadable'}).",
                                  "invalid_request_error")
    response.force_close()
    return response


def install() -> None:
    """Answer unparsable requests in the envelope (idempotent; every worker calls it)."""
    RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
