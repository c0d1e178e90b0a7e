"""The two baseline servers, each run as its own process:

    python -m bench.baselines hello --port P [--uvloop]
    python -m bench.baselines wholefile --data-dir D --port P

`hello` is the ceiling: a bare aiohttp handler returning a fixed JSON body for any path (so the
same wrk scripts drive it). `wholefile` serves get-by-id and list the way Jan and cortex.cpp do:
read the whole `messages.jsonl` and parse every line on each request, then find the message or
the cursor. Both answer `/healthz` like Threadline, and neither logs requests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiohttp import web

HELLO = b'{"object":"hello","message":"world"}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


def hello_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    return app


def _load(data_dir: Path, thread_id: str) -> list[dict[str, object]]:
    """Every message of the thread, parsed (what Jan's `readFile` + `JSON.parse` per line does)."""
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    out = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def wholefile_app(data_dir: Path) -> web.Application:
    async def get_message(request: web.Request) -> web.Response:
        messages = _load(data_dir, request.match_info["thread_id"])
        mid = request.match_info["message_id"]
        for m in messages:
            if m.get("id") == mid:
                return web.json_response(m)
        raise web.HTTPNotFound()

    async def list_messages(request: web.Request) -> web.Response:
        messages = _load(data_dir, request.match_info["thread_id"])
        limit = int(request.query.get("limit", "20"))
        if request.query.get("order", "desc") == "desc":
            messages.reverse()
        after = request.query.get("after")
        start = 0
        if after:
            start = next((i + 1 for i, m in enumerate(messages) if m.get("id") == after), 0)
        page = messages[start:start + limit]
        return web.json_response({
            "object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(messages),
        })

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/threads/{thread_id}/messages", list_messages)
    app.router.add_get("/v1/threads/{thread_id}/messages/{message_id}", get_message)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["hello", "wholefile"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    if args.kind == "hello":
        app = hello_app()
    elif args.data_dir is None:
        parser.error("wholefile needs --data-dir")
    else:
        app = wholefile_app(args.data_dir)
    loop = None
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
