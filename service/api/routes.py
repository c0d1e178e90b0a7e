"""The URL table."""

from __future__ import annotations

from aiohttp import hdrs, web

from .. import openapi
from ..keys import CONFIG, METRICS
from . import health, messages, sse, summaries, threads
from .dispatch import fast_resolve
from .gate import UNMATCHED, Gate, unmatched
from .metrics import metrics_handler
from .ui import ui_routes

T = "/v1/threads/{thread_id}"
M = T + "/messages/{message_id}"


def setup_routes(app: web.Application) -> None:
    """Every route, each handler behind the gate (call once the app's metrics exist)."""
    gate = Gate(app[CONFIG], app[METRICS])
    # aiohttp tries resources in the order added: the hot reads go first.
    table = [
        (hdrs.METH_GET, M, messages.get_message),
        (hdrs.METH_POST, M, messages.modify_message),
        (hdrs.METH_DELETE, M, messages.delete_message),
        (hdrs.METH_GET, T + "/messages", messages.list_messages),
        (hdrs.METH_POST, T + "/messages", messages.create_message),
        # OpenAI's create-and-run (runs are out of scope): not a modify of a thread named "runs".
        (hdrs.METH_POST, "/v1/threads/runs", unmatched),
        (hdrs.METH_GET, T, threads.get_thread),
        (hdrs.METH_POST, T, threads.modify_thread),
        (hdrs.METH_DELETE, T, threads.delete_thread),
        (hdrs.METH_POST, "/v1/threads", threads.create_thread),
        (hdrs.METH_GET, "/v1/threads", threads.list_threads),
        (hdrs.METH_GET, M + "/files", messages.list_message_files),
        (hdrs.METH_GET, M + "/files/{file_id}", messages.get_message_file),
        (hdrs.METH_GET, T + "/events", sse.thread_events),
        (hdrs.METH_GET, "/v1/events", sse.all_events),
        (hdrs.METH_GET, "/v1/thread_summaries", summaries.thread_summaries),
        (hdrs.METH_GET, "/healthz", health.healthz),
        (hdrs.METH_GET, "/metrics", metrics_handler),
        (hdrs.METH_GET, "/openapi.json", openapi.openapi_json),
        *ui_routes(),
    ]
    gets: dict[str, web.AbstractRoute] = {}
    for method, path, handler in table:
        label = UNMATCHED if handler is unmatched else path
        if method == hdrs.METH_GET:
            gets[path] = app.router.add_get(path, gate(label, handler),  # and HEAD
                                            expect_handler=gate.expect(label))
        else:
            app.router.add_route(method, path, gate(label, handler),
                                 expect_handler=gate.expect(label))
    # The two hot GETs are matched without the router's walk (api/dispatch.py): a route added
    # under `/v1/threads/{thread_id}/messages/...` with a fixed segment where a message id goes
    # must be matched there too, or it would be answered as a message get.
    fast_resolve(app.router, gets[M], gets[T + "/messages"])
    # Last: what no route above matched (any method, any path) gets its 404/405 envelope here.
    app.router.add_route(hdrs.METH_ANY, "/{path:.*}", gate(UNMATCHED, unmatched),
                         expect_handler=gate.expect(UNMATCHED))
