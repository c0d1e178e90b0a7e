"""Message endpoints, and the v1 message-files endpoints."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidRequest, NotFound
from ..index.paging import page
from ..keys import REPO
from ..models import encoder
from ..repo import list_envelope
from ..requests import CreateMessage, ModifyMessage
from .request import ListParams, json_body, json_response, query


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["thread_id"], request.match_info["message_id"]


async def create_message(request: web.Request) -> web.Response:
    repo = request.app[REPO]
    thread_id = request.match_info["thread_id"]
    await repo.thread(thread_id)
    return json_response(await repo.create_message(thread_id, await json_body(request,
                                                                               CreateMessage)))


async def list_messages(request: web.Request) -> web.Response:
    params = query(request)
    p = ListParams(params)
    run_id = params.get("run_id") or None
    body = await request.app[REPO].list_messages(request.match_info["thread_id"], p.limit,
                                                 p.order, p.after, p.before, run_id)
    return json_response(body)


async def get_message(request: web.Request) -> web.Response:
    return json_response(await request.app[REPO].get_message(*_ids(request)))


async def modify_message(request: web.Request) -> web.Response:
    repo = request.app[REPO]
    thread_id, message_id = _ids(request)
    await repo.thread(thread_id)
    req = await json_body(request, ModifyMessage)
    return json_response(await repo.modify_message(thread_id, message_id, req))


async def delete_message(request: web.Request) -> web.Response:
    return json_response(await request.app[REPO].delete_message(*_ids(request)))


async def list_message_files(request: web.Request) -> web.Response:
    p = ListParams(query(request))
    files = await request.app[REPO].message_files(*_ids(request))
    ids = [f.id for f in files]
    positions = {f: i for i, f in enumerate(ids)}
    cursors = []
    for name, value in (("after", p.after), ("before", p.before)):
        if value and value not in positions:
            raise InvalidRequest(f"Invalid '{name}': no file found with id '{value}'.",
                                 param=name)
        cursors.append(positions[value] if value else None)
    picks, more = page(range(len(files)), p.limit, p.order, cursors[0], cursors[1])
    data = b",".join([encoder.encode(files[i]) for i in picks])
    return json_response(list_envelope(data, files[picks[0]].id if picks else None,
                                       files[picks[-1]].id if picks else None, more))


async def get_message_file(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    for f in await request.app[REPO].message_files(*_ids(request)):
        if f.id == file_id:
            return json_response(encoder.encode(f))
    raise NotFound(f"No file found with id '{file_id}'.", param="file_id")
