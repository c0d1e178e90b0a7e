"""The one error path: typed errors raised anywhere, rendered as OpenAI's error envelope here.

Handlers and the store raise `ApiError` subclasses; `render` (called by api/gate.py for every
route) turns them, msgspec validation/decoding errors and aiohttp's HTTP exceptions into
`{"error": {...}}`. Nothing else builds error bodies.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import PurePath

import msgspec
from aiohttp import web

from .models import ErrorBody, ErrorDetail, encoder

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None
    # False: the answer says `x-should-retry: false`, which the official SDKs obey (they retry a
    # 408, 409, 429 or 5xx otherwise): for a state that no retry can change.
    retry: bool | None = None
    close = False  # the answer closes the connection

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ApiError):
    pass


class NotFound(ApiError):
    status = 404


class Unauthorized(ApiError):
    status = 401
    code = "invalid_api_key"


class Forbidden(ApiError):
    status = 403


class PayloadTooLarge(ApiError):
    status = 413
    code = "request_too_large"


class RequestTimeout(ApiError):
    status = 408
    retry = False  # a client this slow would only be slow again
    close = True  # the rest of its body may still come: the connection cannot be reused


class UnsupportedMediaType(ApiError):
    status = 415


class Unavailable(ApiError):
    status = 503
    type = "server_error"


class Conflict(ApiError):
    """The thread's files are in a state this write cannot work with (a FIFO for a file, a line
    that does not parse): it stays so until someone repairs them, so no retry helps."""
    status = 409
    retry = False


def thread_not_found(thread_id: str) -> NotFound:
    return NotFound(f"No thread found with id '{thread_id}'.", param="thread_id")


class UnknownMessage(NotFound):
    """No such message in the index (which may be a few milliseconds behind another writer)."""


def message_not_found(message_id: str) -> NotFound:
    return UnknownMessage(f"No message found with id '{message_id}'.", param="message_id")


def error_response(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None
) -> web.Response:
    # A message may quote request bytes that were not UTF-8 (aiohttp keeps them as surrogates).
    message = message.encode(errors="replace").decode()
    body = ErrorBody(error=ErrorDetail(message=message, type=type_, param=param, code=code))
    return web.Response(status=status, body=encoder.encode(body), content_type="application/json")


# msgspec: "... - at `$.messages[0]`", "Object contains unknown field `x`[ - at `$...`]"
_PATH_RE = re.compile(r" - at (?:`[^`]*` in )?`\$\.?([^`]*)`$")
_FIELD_RE = re.compile(r"(?:missing required|unknown) field `(.*?)`(?= - at `|$)")


def _validation_param(message: str) -> str | None:
    """The field a msgspec error names (`$.metadata[...]`, or `key` in `$.metadata`), as
    OpenAI names params: `metadata`; a missing or unknown field by its own name
    (`messages[0].content`)."""
    match = _PATH_RE.search(message)
    path = match.group(1).replace("[...]", "") if match else ""
    if field := _FIELD_RE.search(message):
        return f"{path}.{field.group(1)}" if path else field.group(1)
    return path or None


SHOULD_RETRY = "x-should-retry"  # the official SDKs' override of their own retry rules
_HTTP_TYPES = {401: "invalid_request_error", 404: "invalid_request_error"}


def render(exc: BaseException) -> web.Response:
    """The OpenAI error envelope for any exception a request can raise."""
    if isinstance(exc, ApiError):
        response = error_response(exc.status, exc.message, exc.type, exc.param, exc.code)
        if exc.retry is not None:
            response.headers[SHOULD_RETRY] = "true" if exc.retry else "false"
        if exc.close:
            response.force_close()
        return response
    if isinstance(exc, msgspec.ValidationError):  # before DecodeError: it is its subclass
        msg = str(exc)
        return error_response(400, f"Invalid request body: {msg}", "invalid_request_error",
                              _validation_param(msg))
    if isinstance(exc, msgspec.DecodeError):
        return error_response(400, f"Request body is not valid JSON: {exc}",
                              "invalid_request_error")
    if isinstance(exc, web.RequestPayloadError):  # e.g. a body not in its Content-Encoding
        cause = getattr(exc.__cause__, "message", None) or "the body is not what its headers say"
        response = error_response(400, f"Request body could not be read: {cause}.",
                                  "invalid_request_error")
        response.force_close()  # the rest of the stream cannot be read either
        return response
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_response(413, "Request body is too large.", "invalid_request_error",
                              code="request_too_large")
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        type_ = _HTTP_TYPES.get(exc.status, "invalid_request_error" if exc.status < 500
                                else "server_error")
        reason = exc.reason if exc.status != 404 else "Not found."
        response = error_response(exc.status, reason, type_)
        for name in ("Allow", "WWW-Authenticate"):  # a 405 must say what is allowed (RFC 9110)
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    if isinstance(exc, OSError) and exc.errno in _STORAGE:
        # The data folder, not the request: a file made unreadable, a full or read-only disk.
        # Said as such (the file's name, no path), logged without a traceback.
        name = PurePath(str(exc.filename)).name if exc.filename else "the data folder"
        log.warning("cannot use %s: %s", exc.filename or "the data folder", exc.strerror)
        response = error_response(503, f"The data folder cannot be used: {exc.strerror} "
                                  f"({name}).", "server_error")
        if exc.errno not in _PASSING:  # what no retry in the next second can change
            response.headers[SHOULD_RETRY] = "false"
        return response
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "The server had an error while processing your request.",
                          "server_error")


_STORAGE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO,
            errno.ELOOP, errno.ENXIO, errno.EFBIG}  # ENXIO: a socket where a file was; EFBIG:
# a file grown past the size the system allows this process (RLIMIT_FSIZE)
_PASSING = {errno.ENOSPC, errno.EDQUOT, errno.EIO}  # room may be made, a disk may come back
