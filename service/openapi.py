"""`GET /openapi.json`: the API described from the app's own route table and msgspec models.

Paths come from the router, so a route cannot exist undocumented; `OPERATIONS` only says, per route,
which request and response Structs the handler uses (the same ones it decodes and encodes with), and
the schemas are generated from those Structs by msgspec. A route missing from `OPERATIONS` is still
listed, with its handler's docstring and no schema.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import msgspec
from aiohttp import web

from . import __version__
from .api.gate import unanswered
from .api.summaries import SummaryList
from .keys import CONFIG
from .models import DeletedMessage, DeletedThread, ErrorBody, Message, MessageFile, Thread
from .requests import CreateMessage, CreateThread, ModifyMessage, ModifyThread

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """The list envelope. `repo.list_envelope` writes it as bytes around stored lines (no decode);
    tests validate real list responses against this schema."""

    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any]
    where: Literal["query", "header"] = "query"


def _q(name: str, description: str, **schema: Any) -> Param:
    return Param(name, description, {"type": "string", **schema})


LIST_PARAMS = (
    _q("limit", "Page size.", type="integer", minimum=1, maximum=100, default=20),
    _q("order", "Sort order by position.", enum=["asc", "desc"], default="desc"),
    _q("after", "An id: the page starts after it."),
    _q("before", "An id: the page ends before it."),
)


def _resume(pattern: str) -> tuple[Param, Param]:
    return (Param("Last-Event-ID", "Resume after this event id (sent by EventSource on "
                  "reconnect).", {"type": "string", "pattern": pattern}, "header"),
            _q("last_event_id", "Same as the Last-Event-ID header.", pattern=pattern))


RESUME = _resume("^[0-9]{1,18}$")
# A thread stream's replay of messages older than the journal sends position ids too:
# `0:<message id>`.
THREAD_RESUME = _resume("^(?:[0-9]{1,18}|0:.+)$")
SSE_DESCRIPTION = (
    "Server-sent events: `thread.created`, `thread.updated`, `thread.deleted`, "
    "`thread.message.created`, `thread.message.updated`, `thread.message.deleted`; each `data:` is "
    "the object as the REST API returns it (a deleted object for deletions) and each event has an "
    "`id:` to resume from. A `: ping` comment is sent while idle."
)


@dataclass(frozen=True)
class Operation:
    summary: str
    body: Any = None  # request Struct
    response: Any = None  # 200 response type (a Struct, or Page[...])
    params: tuple[Param, ...] = ()
    content_type: str = "application/json"
    operation_id: str | None = None  # OpenAI's, where it has the operation


TP = "/v1/threads/{thread_id}"
MP = TP + "/messages/{message_id}"
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/threads"): Operation("Create a thread", CreateThread, Thread,
        operation_id="createThread"),
    ("GET", "/v1/threads"): Operation("List threads (Jan extension)", None, Page[Thread],
                                      LIST_PARAMS),
    ("GET", TP): Operation("Retrieve a thread", None, Thread,
        operation_id="getThread"),
    ("POST", TP): Operation("Modify a thread", ModifyThread, Thread,
        operation_id="modifyThread"),
    ("DELETE", TP): Operation("Delete a thread", None, DeletedThread,
        operation_id="deleteThread"),
    ("POST", TP + "/messages"): Operation("Create a message", CreateMessage, Message,
        operation_id="createMessage"),
    ("GET", TP + "/messages"): Operation(
        "List messages", None, Page[Message],
        (*LIST_PARAMS, _q("run_id", "Only messages of this run.")), operation_id="listMessages"),
    ("GET", MP): Operation("Retrieve a message", None, Message,
        operation_id="getMessage"),
    ("POST", MP): Operation("Modify a message", ModifyMessage, Message,
        operation_id="modifyMessage"),
    ("DELETE", MP): Operation("Delete a message", None, DeletedMessage,
        operation_id="deleteMessage"),
    ("GET", MP + "/files"): Operation("List a message's files", None, Page[MessageFile],
                                      LIST_PARAMS, operation_id="listMessageFiles"),
    ("GET", MP + "/files/{file_id}"): Operation("Retrieve a message file", None, MessageFile,
        operation_id="getMessageFile"),
    ("GET", TP + "/events"): Operation(
        "Stream a thread's events",
        params=(*THREAD_RESUME, _q("after", "Start after this message id.")),
        content_type="text/event-stream"),
    ("GET", "/v1/events"): Operation("Stream every thread's events", params=RESUME,
                                     content_type="text/event-stream"),
    ("GET", "/v1/thread_summaries"): Operation(
        "Summaries of threads (Jan extension)", None, SummaryList,
        (_q("ids", "Comma-separated thread ids."),)),
    ("GET", "/healthz"): Operation("Health: 200 once the index is built"),
    ("GET", "/metrics"): Operation("Prometheus metrics", content_type="text/plain"),
    ("GET", "/openapi.json"): Operation("This document"),
}

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
REF = "#/components/schemas/{name}"


def _path_params(path: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PATH_PARAM.findall(path)]


def _operation_id(method: str, path: str) -> str:
    """A unique id for an operation OpenAI does not have: `getV1ThreadSummaries`, say."""
    words = re.findall(r"[A-Za-z0-9]+", _PATH_PARAM.sub("", path))
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _operation(method: str, path: str, op: Operation, schemas: dict[Any, Any], secured: bool
               ) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if op.content_type == "text/event-stream":
        ok = {"description": SSE_DESCRIPTION,
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    elif op.response is not None:
        ok["content"] = {"application/json": {"schema": schemas[op.response]}}
    elif op.content_type != "application/json":
        ok["content"] = {op.content_type: {"schema": {"type": "string"}}}
    out: dict[str, Any] = {
        "operationId": op.operation_id or _operation_id(method, path),
        "summary": op.summary,
        "parameters": _path_params(path) + [
            {"name": p.name, "in": p.where, "description": p.description, "schema": p.schema}
            for p in op.params],
        "responses": {"200": ok},
    }
    if path.startswith("/v1"):
        out["responses"]["default"] = {
            "description": "An error in OpenAI's envelope",
            "content": {"application/json": {"schema": schemas[ErrorBody]}}}
        out["security"] = [{"bearerAuth": []}] if secured else []
    if op.body is not None:
        out["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": schemas[op.body]}}}
    return out


def _routes(app: web.Application) -> list[tuple[str, str, Operation]]:
    """(method, path template, operation) for every route; HEAD twins of GETs left out, and
    routes that only answer what matches no route (POST /v1/threads/runs, OpenAI's
    create-and-run, a 404 here rather than a modify of a thread named "runs")."""
    routes = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*") or unanswered(route):
            continue
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", resource.canonical)
        op = OPERATIONS.get((route.method, path))
        if op is None:
            doc = (route.handler.__doc__ or "").strip().splitlines()
            op = Operation(doc[0] if doc else f"{route.method} {path}")
        routes.append((route.method, path, op))
    return routes


def build(app: web.Application) -> dict[str, Any]:
    routes = _routes(app)
    types = sorted({t for _, _, op in routes for t in (op.body, op.response) if t is not None}
                   | {ErrorBody}, key=repr)
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = dict(zip(types, refs, strict=True))
    # Every field of a response object is always sent (a null where it has no value), as in
    # OpenAI's spec: required, so generated clients do not type them optional.
    responses = {op.response for _, _, op in routes if op.response is not None} | {ErrorBody}
    for name in [schemas[t]["$ref"].rsplit("/", 1)[1] for t in responses] + ["ErrorDetail"]:
        component = components.get(name, {})
        if "properties" in component:
            component["required"] = list(component["properties"])
    secured = bool(app[CONFIG].api_keys)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in routes:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, schemas,
                                                                secured)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Threadline", "version": __version__,
                 "description": "OpenAI-compatible Threads & Messages API (Assistants v2 shapes) "
                                "over the Jan app's data folder."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


_encoder = msgspec.json.Encoder()
# Built on first request (the router is frozen by then), once per app: it takes milliseconds.
_documents: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


async def openapi_json(request: web.Request) -> web.Response:
    """This document."""
    body = _documents.get(request.app)
    if body is None:
        body = _documents[request.app] = _encoder.encode(build(request.app))
    return web.Response(body=body, content_type="application/json")
