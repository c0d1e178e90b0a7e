"""Thread endpoints: create, list (Jan's extension), get, modify, delete."""

from __future__ import annotations

from aiohttp import web

from ..keys import REPO
from ..requests import CreateThread, ModifyThread
from .request import ListParams, json_body, json_response, query


async def create_thread(request: web.Request) -> web.Response:
    req = await json_body(request, CreateThread)
    entry = await request.app[REPO].create_thread(req)
    return json_response(entry.thread_bytes)


async def list_threads(request: web.Request) -> web.Response:
    p = ListParams(query(request))
    return json_response(await request.app[REPO].list_threads(p.limit, p.order, p.after,
                                                              p.before))


async def get_thread(request: web.Request) -> web.Response:
    entry = await request.app[REPO].thread(request.match_info["thread_id"])
    return json_response(entry.thread_bytes)


async def modify_thread(request: web.Request) -> web.Response:
    repo = request.app[REPO]
    thread_id = request.match_info["thread_id"]
    await repo.thread(thread_id)  # 404 before reading a body for a thread that does not exist
    entry = await repo.modify_thread(thread_id, await json_body(request, ModifyThread))
    return json_response(entry.thread_bytes)


async def delete_thread(request: web.Request) -> web.Response:
    return json_response(await request.app[REPO].delete_thread(request.match_info["thread_id"]))
