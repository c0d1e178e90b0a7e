"""Reading requests: JSON bodies (typed, size-limited, JSON-only) and list query parameters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TypeVar, cast

import msgspec
from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import _default_expect_handler

from ..errors import InvalidRequest, RequestTimeout, UnsupportedMediaType
from ..index.paging import Order
from ..keys import CONFIG
from ..requests import REQUEST_DECODERS
from ..store.lines import too_deep

T = TypeVar("T")
BODY_SECONDS = 60  # for the whole body: 4 MB (max_body_bytes) at ~70 KB/s
_CODINGS = {"", "identity", "gzip", "deflate"}  # what aiohttp decodes (br, zstd: api/unparsed.py)


async def json_body(request: web.Request, type_: type[T]) -> T:
    """Decode the body as `type_`. Only `application/json` is accepted: a browser can send a
    cross-site form or `text/plain` POST without a CORS preflight, and that must create nothing.
    An empty body with no Content-Type is `{}` unless a browser sent it (it carries an Origin)."""
    has_type = "Content-Type" in request.headers
    codings = request.headers.getall(hdrs.CONTENT_ENCODING, ())
    if codings and (len(codings) > 1 or codings[0].strip().lower() not in _CODINGS):
        # aiohttp reads a body in a coding it does not know as it is, and of several headers
        # it heeds the last one only.
        coding = ", ".join(codings)
        raise UnsupportedMediaType(f"Unsupported Content-Encoding '{coding[:40]}': send the "
                                   "body as it is, or in gzip or deflate.")
    try:
        # A body that stops arriving must not hold its connection (and a task) for ever.
        async with asyncio.timeout(BODY_SECONDS):
            body = await request.read()
    except TimeoutError:
        raise RequestTimeout(f"Request body did not arrive within {BODY_SECONDS} s.") from None
    if has_type:
        if request.content_type != "application/json":
            raise UnsupportedMediaType(
                f"Unsupported Content-Type '{request.content_type}': send application/json.")
        charset = request.charset  # JSON is UTF-8 (RFC 8259): any other would be misread
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Unsupported charset '{charset[:40]}': send the JSON "
                                       "body in UTF-8.")
    elif body.strip() or "Origin" in request.headers:
        raise UnsupportedMediaType("Missing Content-Type: send application/json.")
    if not body.strip():
        body = b"{}"
    if too_deep(body):  # a fixed bound: the parser's own depends on how deep the stack is
        raise InvalidRequest("Request body is nested too deeply.")
    try:
        return cast(T, REQUEST_DECODERS[type_].decode(body))
    # Neither is a msgspec error: invalid UTF-8 in a string, and nesting past the parser's depth
    # (should the depth check above ever let one through); both are the client's fault.
    except UnicodeDecodeError:
        raise InvalidRequest("Request body is not valid UTF-8.") from None
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply.") from None
    except msgspec.DecodeError as exc:
        # msgspec says a high surrogate escape with no low one after it (`"\ud800"`) ends the
        # input: "truncated" would send the client looking for a cut-off body.
        if type(exc) is msgspec.DecodeError and str(exc) == "Input data was truncated" \
                and _parses(body):
            raise InvalidRequest("Request body is not valid JSON: a string holds a UTF-16 "
                                 "surrogate escape without its pair (such as \\ud800).") from None
        raise


async def expect_continue(request: web.Request) -> None:
    """`Expect: 100-continue` (curl sends it before a body over 1 MB): a body declared larger
    than the limit is refused before the client sends it (aiohttp's own handler says 100, and
    the 413 came after the whole upload); any other expectation is a 417. Raises the refusal;
    else says 100 Continue. Called by the gate (api/gate.py), after its checks."""
    if request.headers.get(hdrs.EXPECT, "").strip().lower() != "100-continue":
        raise web.HTTPExpectationFailed(reason="Unsupported Expect header: only 100-continue "
                                        "is.")
    limit = request.app[CONFIG].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
    await _default_expect_handler(request)


def _parses(body: bytes) -> bool:
    """Whether Python's own parser, which takes unpaired surrogate escapes, reads `body`."""
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def query(request: web.Request) -> Mapping[str, str]:
    """The query parameters, the first value of each (as `request.query.get` gives them). A
    query with nothing escaped, such as every list request the SDKs send, is split here: yarl's
    full parse (percent-decoding, a multidict) costs several times more than the rest of the
    parameters' handling; anything escaped still goes through it."""
    qs = request.query_string
    if "%" in qs or "+" in qs:
        return request.query
    params: dict[str, str] = {}
    for part in qs.split("&"):
        if part:
            key, _, value = part.partition("=")
            params.setdefault(key, value)
    return params


class ListParams:
    __slots__ = ("after", "before", "limit", "order")

    def __init__(self, query: Mapping[str, str]) -> None:
        raw_limit = query.get("limit", "20")
        # Plain decimal digits (int() would also take "1_0", " 5" or fullwidth digits).
        digits = raw_limit[1:] if raw_limit.startswith("-") else raw_limit
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidRequest(f"Invalid 'limit': expected an integer, got '{raw_limit}'.",
                                 param="limit")
        # A long one is out of range whatever it is (and int() of thousands of digits is slow).
        self.limit = (int(raw_limit) if len(digits.lstrip("0")) <= 9
                      else -1 if raw_limit[0] == "-" else 101)
        if not 1 <= self.limit <= 100:
            raise InvalidRequest(f"Invalid 'limit': {raw_limit} is not between 1 and 100.",
                                 param="limit")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest(f"Invalid 'order': expected 'asc' or 'desc', got '{order}'.",
                                 param="order")
        self.order: Order = cast(Order, order)
        self.after: str | None = query.get("after") or None
        self.before: str | None = query.get("before") or None
