"""Cursor pagination by position on `GET /v1/threads/{id}/messages` and `GET /v1/threads`, checked
against a plain model of OpenAI's semantics at every cursor, limit and order."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from service.api.request import query
from tests.envelope import expect_error
from tests.jan import jan_message, jan_thread, write_thread
from tests.test_fuzz import budget

OpenClient = Callable[..., Awaitable[TestClient]]


def expected_page(ids: list[str], limit: int, order: str, after: str | None,
                  before: str | None) -> tuple[list[str], bool]:
    """OpenAI's semantics: in the requested order, the items strictly between `after` and
    `before`; a page that only has `before` ends next to it (the page before it)."""
    seq = ids if order == "asc" else ids[::-1]
    lo = seq.index(after) + 1 if after else 0
    hi = seq.index(before) if before else len(seq)
    window = seq[lo:hi] if lo < hi else []
    page = window[-limit:] if before and not after else window[:limit]
    return page, len(window) > limit


async def list_page(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    query = {k: str(v) for k, v in params.items() if v is not None}
    resp = await client.get(path, params=query)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list"
    ids = [item["id"] for item in body["data"]]
    assert body["first_id"] == (ids[0] if ids else None)
    assert body["last_id"] == (ids[-1] if ids else None)
    return body


async def check_every_cursor(client: TestClient, path: str, ids: list[str],
                             limits: tuple[int, ...]) -> None:
    cursors: list[str | None] = [None, *ids]
    for order, limit, after, before in itertools.product(("asc", "desc"), limits, cursors,
                                                         cursors):
        body = await list_page(client, path, limit=limit, order=order, after=after,
                               before=before)
        want, more = expected_page(ids, limit, order, after, before)
        got = [item["id"] for item in body["data"]]
        assert (got, body["has_more"]) == (want, more), (order, limit, after, before)


async def new_thread(client: TestClient, n: int) -> tuple[str, list[str]]:
    resp = await client.post("/v1/threads", json={
        "messages": [{"role": "user", "content": f"m{i}"} for i in range(n)]})
    assert resp.status == 200
    thread_id = (await resp.json())["id"]
    ids: list[str] = []
    while True:
        body = await list_page(client, f"/v1/threads/{thread_id}/messages", order="asc",
                               limit=100, after=ids[-1] if ids else None)
        ids += [m["id"] for m in body["data"]]
        if not body["has_more"]:
            return thread_id, ids


# --- messages ------------------------------------------------------------------------------------


async def test_every_cursor_limit_and_order_matches_the_model(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 6)
    await check_every_cursor(client, f"/v1/threads/{thread_id}/messages", ids, (1, 2, 5, 6, 7))


async def test_defaults_are_twenty_newest_first(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 25)
    body = await list_page(client, f"/v1/threads/{thread_id}/messages")
    assert [m["id"] for m in body["data"]] == ids[::-1][:20]
    assert body["has_more"] is True


async def test_limit_one_and_a_hundred_are_the_bounds(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 101)
    path = f"/v1/threads/{thread_id}/messages"
    body = await list_page(client, path, limit=100, order="asc")
    assert ([m["id"] for m in body["data"]], body["has_more"]) == (ids[:100], True)
    body = await list_page(client, path, limit=100, order="asc", after=ids[0])
    assert ([m["id"] for m in body["data"]], body["has_more"]) == (ids[1:], False)
    body = await list_page(client, path, limit=1)
    assert ([m["id"] for m in body["data"]], body["has_more"]) == ([ids[-1]], True)


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=x", "limit=-1", "limit=1.5", "limit=", "limit=1e400",
    "order=up", "order=ASC", "order=",
])
async def test_bad_limit_or_order_is_400(client: TestClient, query: str) -> None:
    thread_id, _ = await new_thread(client, 1)
    for path in (f"/v1/threads/{thread_id}/messages", "/v1/threads"):
        resp = await client.get(f"{path}?{query}")
        error = await expect_error(resp, 400)
        assert error["param"] in ("limit", "order")


async def test_empty_thread_has_null_ids_and_no_more(client: TestClient) -> None:
    thread_id, _ = await new_thread(client, 0)
    for order in ("asc", "desc"):
        body = await list_page(client, f"/v1/threads/{thread_id}/messages", order=order)
        assert body == {"object": "list", "data": [], "first_id": None, "last_id": None,
                        "has_more": False}


async def test_single_message_thread_at_both_ends(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 1)
    await check_every_cursor(client, f"/v1/threads/{thread_id}/messages", ids, (1, 2))


async def test_before_and_after_together_give_the_window_between(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 10)
    path = f"/v1/threads/{thread_id}/messages"
    body = await list_page(client, path, order="asc", after=ids[2], before=ids[7], limit=3)
    assert ([m["id"] for m in body["data"]], body["has_more"]) == (ids[3:6], True)
    body = await list_page(client, path, order="desc", after=ids[7], before=ids[2], limit=10)
    assert ([m["id"] for m in body["data"]], body["has_more"]) == (ids[6:2:-1], False)
    body = await list_page(client, path, order="asc", after=ids[7], before=ids[2])
    assert (body["data"], body["has_more"]) == ([], False)  # crossed cursors: empty window


async def test_pagination_stays_right_after_deletions(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 9)
    path = f"/v1/threads/{thread_id}/messages"
    for gone in (ids[0], ids[4], ids[8]):
        resp = await client.delete(f"{path}/{gone}")
        assert resp.status == 200
    left = [i for i in ids if i not in (ids[0], ids[4], ids[8])]
    await check_every_cursor(client, path, left, (1, 2, 6, 7))


@pytest.mark.parametrize("restarted", [False, True])
async def test_a_deleted_message_as_cursor_pages_on_from_where_it_stood(
        client: TestClient, open_client: Callable[..., Awaitable[TestClient]],
        restarted: bool) -> None:
    """A client deleting the messages it pages through asks for the page after one it deleted
    (the SDKs' iterators do): the cursor stands where the message stood, also when its
    neighbours went too, and also in a process that never held the message (a restart here;
    another worker in test_peers.py): the thread folder notes where deleted messages stood."""
    thread_id, ids = await new_thread(client, 9)
    path = f"/v1/threads/{thread_id}/messages"
    gone = [ids[0], ids[4], ids[5], ids[8]]
    for mid in gone:
        assert (await client.delete(f"{path}/{mid}")).status == 200
    if restarted:
        client = await open_client()
    for cursor in gone:
        at = ids.index(cursor)
        for order, name in itertools.product(("asc", "desc"), ("after", "before")):
            later = name == "after" if order == "asc" else name == "before"
            window = [i for i in ids if i not in gone and (ids.index(i) > at) == later]
            if order == "desc":
                window.reverse()
            want = window[-2:] if name == "before" else window[:2]
            body = await list_page(client, path, order=order, limit=2, **{name: cursor})
            got = [m["id"] for m in body["data"]]
            assert (got, body["has_more"]) == (want, len(window) > 2), (cursor, order, name)
    await expect_error(await client.get(f"{path}?after=msg_never_there"), 400)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_deleting_each_message_while_iterating_with_the_sdk_empties_the_thread(
        sdk: openai.AsyncOpenAI, order: str) -> None:
    thread = await sdk.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(45)])
    deleted = 0
    async for m in sdk.beta.threads.messages.list(thread.id, order=order):  # type: ignore[arg-type]
        await sdk.beta.threads.messages.delete(m.id, thread_id=thread.id)
        deleted += 1
    assert deleted == 45
    assert [m async for m in sdk.beta.threads.messages.list(thread.id)] == []


async def test_walking_pages_with_after_visits_each_message_once(client: TestClient) -> None:
    thread_id, ids = await new_thread(client, 23)
    path = f"/v1/threads/{thread_id}/messages"
    for order in ("asc", "desc"):
        seen: list[str] = []
        after = None
        while True:
            body = await list_page(client, path, order=order, limit=4, after=after)
            seen += [m["id"] for m in body["data"]]
            if not body["has_more"]:
                break
            after = body["last_id"]
        assert seen == (ids if order == "asc" else ids[::-1])


@pytest.mark.parametrize("name", ["after", "before"])
async def test_unknown_cursor_is_400_in_the_envelope(client: TestClient, name: str) -> None:
    thread_id, _ = await new_thread(client, 3)
    resp = await client.get(f"/v1/threads/{thread_id}/messages", params={name: "msg_nope"})
    error = await expect_error(resp, 400,
                               f"Invalid '{name}': no message found with id 'msg_nope'.")
    assert error["param"] == name


async def test_run_id_filter_pages_over_the_runs_messages(
        open_client: OpenClient, data_dir: Path) -> None:
    lines = []
    for i in range(12):
        line = jan_message(f"m{i:02d}", "jan_1", f"text {i}", created_ms=1717666240000 + i)
        if i % 3 == 0:
            line["run_id"] = "run_a"
        elif i % 3 == 1:
            line["run_id"] = "run_b"
        lines.append(line)
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines)
    client = await open_client()
    path = "/v1/threads/jan_1/messages"
    run_a = [f"m{i:02d}" for i in range(0, 12, 3)]
    for order, limit in itertools.product(("asc", "desc"), (1, 2, 4, 5)):
        body = await list_page(client, path, run_id="run_a", order=order, limit=limit)
        want, more = expected_page(run_a, limit, order, None, None)
        assert ([m["id"] for m in body["data"]], body["has_more"]) == (want, more)
        assert all(m["run_id"] == "run_a" for m in body["data"])
    # Cursors of the run, and of messages outside it, bound the window by position.
    body = await list_page(client, path, run_id="run_a", order="asc", after="m03")
    assert [m["id"] for m in body["data"]] == ["m06", "m09"]
    body = await list_page(client, path, run_id="run_a", order="asc", after="m04", before="m10")
    assert [m["id"] for m in body["data"]] == ["m06", "m09"]
    body = await list_page(client, path, run_id="run_b", order="desc", limit=2)
    assert ([m["id"] for m in body["data"]], body["has_more"]) == (["m10", "m07"], True)
    body = await list_page(client, path, run_id="run_zzz")
    assert (body["data"], body["first_id"], body["has_more"]) == ([], None, False)


async def test_run_id_filter_sees_appended_runs_after_a_modify(
        open_client: OpenClient, data_dir: Path) -> None:
    line = jan_message("m0", "jan_1", "a")
    line["run_id"] = "run_a"
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [line, jan_message("m1", "jan_1", "b")])
    client = await open_client()
    resp = await client.post("/v1/threads/jan_1/messages/m1", json={"metadata": {"x": "y"}})
    assert resp.status == 200
    body = await list_page(client, "/v1/threads/jan_1/messages", run_id="run_a")
    assert [m["id"] for m in body["data"]] == ["m0"]


# --- threads -------------------------------------------------------------------------------------


async def test_thread_list_every_cursor_newest_first(open_client: OpenClient, data_dir: Path
                                                     ) -> None:
    ids = [f"jan_{1717000000 + i * 100}" for i in range(5)]  # oldest first
    for i, thread_id in enumerate(ids):
        write_thread(data_dir, thread_id, jan_thread(thread_id, created_ms=(1717000000 + i * 100)
                                                     * 1000), [])
    client = await open_client()
    body = await list_page(client, "/v1/threads")
    assert [t["id"] for t in body["data"]] == ids[::-1]
    await check_every_cursor(client, "/v1/threads", ids, (1, 2, 4, 5, 6))


async def test_thread_list_empty_and_unknown_cursor(client: TestClient) -> None:
    body = await list_page(client, "/v1/threads")
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None,
                    "has_more": False}
    resp = await client.get("/v1/threads", params={"after": "thread_nope"})
    await expect_error(resp, 400, "Invalid 'after': no thread found with id 'thread_nope'.")


async def test_thread_list_after_deleting_threads(client: TestClient) -> None:
    ids = []
    for _ in range(5):
        resp = await client.post("/v1/threads", json={})
        ids.append((await resp.json())["id"])
    for gone in (ids[0], ids[2]):
        assert (await client.delete(f"/v1/threads/{gone}")).status == 200
    left = [ids[1], ids[3], ids[4]]
    await check_every_cursor(client, "/v1/threads", left, (1, 2, 3))


@budget(300)
@given(st.text(alphabet="ab=&;%+2é_", max_size=24))
def test_query_parameters_read_as_aiohttp_reads_them(qs: str) -> None:
    """Unescaped queries are split by hand (the fast path of every list request); each key reads
    as `request.query.get` reads it, for any query at all."""
    request = make_mocked_request("GET", "/v1/threads?" + qs if qs else "/v1/threads")
    assert dict(query(request)) == {key: request.query.get(key) for key in request.query}


async def test_a_cursor_sent_percent_encoded_is_the_same_cursor(client: TestClient) -> None:
    thread = await (await client.post("/v1/threads", json={})).json()
    ids = []
    for text in "abc":
        resp = await client.post(f"/v1/threads/{thread['id']}/messages",
                                 json={"role": "user", "content": text})
        ids.append((await resp.json())["id"])
    url = f"/v1/threads/{thread['id']}/messages"
    plain = await (await client.get(f"{url}?order=asc&after={ids[0]}")).json()
    escaped = await (await client.get(
        f"{url}?order=%61sc&after={ids[0].replace('_', '%5F')}")).json()
    assert [m["id"] for m in plain["data"]] == ids[1:] == [m["id"] for m in escaped["data"]]
