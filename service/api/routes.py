"""The URL table."""

from __future__ import annotations

from aiohttp import web

from .. import openapi
from . import health, messages, sse, summaries, threads
from .metrics import metrics_handler
from .ui import setup_ui

T = "/v1/threads/{thread_id}"
M = T + "/messages/{message_id}"


def setup_routes(app: web.Application) -> None:
    # aiohttp tries resources in the order added: the hot reads go first.
    app.router.add_routes([
        web.get(M, messages.get_message),
        web.post(M, messages.modify_message),
        web.delete(M, messages.delete_message),
        web.get(T + "/messages", messages.list_messages),
        web.post(T + "/messages", messages.create_message),
        web.get(T, threads.get_thread),
        web.post(T, threads.modify_thread),
        web.delete(T, threads.delete_thread),
        web.post("/v1/threads", threads.create_thread),
        web.get("/v1/threads", threads.list_threads),
        web.get(M + "/files", messages.list_message_files),
        web.get(M + "/files/{file_id}", messages.get_message_file),
        web.get(T + "/events", sse.thread_events),
        web.get("/v1/events", sse.all_events),
        web.get("/v1/thread_summaries", summaries.thread_summaries),
        web.get("/healthz", health.healthz),
        web.get("/metrics", metrics_handler),
        web.get("/openapi.json", openapi.openapi_json),
    ])
    setup_ui(app)
