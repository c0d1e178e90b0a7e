"""Every shape the Jan app (and other writers) left in real data folders loads, and is served in
canonical OpenAI form that the SDK's strict validation accepts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.pagination import AsyncCursorPage
from openai.types.beta import Thread
from openai.types.beta.threads import Message

from service.models import Message as StoredMessage
from service.models import encoder, text_part
from tests.conftest import MakeServer
from tests.jan import (
    ULID,
    UUID,
    jan06_message,
    jan06_thread,
    jan_message,
    jan_thread,
    openai_message,
    write_thread,
)
from tests.sdk import open_sdk

MESSAGE_FIELDS = {"id", "object", "created_at", "thread_id", "status", "incomplete_details",
                  "completed_at", "incomplete_at", "role", "content", "assistant_id", "run_id",
                  "attachments", "metadata"}


async def raw_get(server: TestServer, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(server.make_url(path)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def serve_line(data_dir: Path, start_server: MakeServer, line: dict[str, Any]
                     ) -> tuple[Message, dict[str, Any]]:
    """Write one Jan thread holding `line`; return it as the SDK (strictly) and raw JSON see it."""
    base = {"thread_id": "jan_1", "role": "user", "content": "x"}
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [{**base, **line}])
    server = await start_server()
    async with open_sdk(server) as sdk:
        (listed,) = (await sdk.beta.threads.messages.list("jan_1")).data
        got = await sdk.beta.threads.messages.retrieve(listed.id, thread_id="jan_1")
    assert got == listed
    raw = await raw_get(server, f"/v1/threads/jan_1/messages/{listed.id}")
    assert set(raw) == MESSAGE_FIELDS
    return got, raw


@pytest.mark.parametrize(("stored", "created_at"), [
    ({"created_at": 1717666240}, 1717666240),
    ({"created_at": 1717666240.987}, 1717666240),
    ({"created_at": 1717666240987}, 1717666240),
    ({"created_at": 1717666240987.25}, 1717666240),
    ({"created": 1717666240987, "updated": 1717666299000}, 1717666240),
    ({"updated": 1717666299000}, 1717666299),
    ({"created_at": "1717666240"}, 1717666240),
    ({"created_at": None, "created": 1717666240000}, 1717666240),
    ({"created_at": True}, 0),
    ({}, 0),
])
async def test_timestamps_of_every_era_are_seconds(
        data_dir: Path, start_server: MakeServer, stored: dict[str, Any], created_at: int) -> None:
    msg, _ = await serve_line(data_dir, start_server, {"id": ULID, **stored})
    assert msg.created_at == created_at


async def test_completed_and_incomplete_at_in_ms_are_seconds(
        data_dir: Path, start_server: MakeServer) -> None:
    msg, _ = await serve_line(data_dir, start_server, {
        "id": ULID, "created_at": 1746000000123, "completed_at": 1746000002623,
        "incomplete_at": 1746000003.5})
    assert (msg.created_at, msg.completed_at, msg.incomplete_at) == (
        1746000000, 1746000002, 1746000003)


@pytest.mark.parametrize(("stored", "served"), [
    ("ready", "completed"), ("pending", "in_progress"), ("error", "incomplete"),
    ("stopped", "incomplete"), ("completed", "completed"), ("in_progress", "in_progress"),
    ("incomplete", "incomplete"), ("something-new", "completed"), (None, "completed"),
])
async def test_jan_statuses_map_to_openai_ones(data_dir: Path, start_server: MakeServer,
                                               stored: str | None, served: str) -> None:
    msg, _ = await serve_line(data_dir, start_server, {"id": ULID, "status": stored})
    assert msg.status == served


async def test_incomplete_details_keep_a_known_reason_and_drop_others(
        data_dir: Path, start_server: MakeServer) -> None:
    msg, _ = await serve_line(data_dir, start_server, {
        "id": ULID, "status": "error", "incomplete_details": {"reason": "max_tokens"}})
    assert msg.incomplete_details is not None
    assert msg.incomplete_details.reason == "max_tokens"


async def test_unknown_incomplete_reason_is_dropped(data_dir: Path, start_server: MakeServer
                                                   ) -> None:
    msg, _ = await serve_line(data_dir, start_server, {
        "id": ULID, "incomplete_details": {"reason": "gpu_on_fire"}})
    assert msg.incomplete_details is None


CITATION = {"type": "file_citation", "text": "【0†src】", "file_citation": {"file_id": "file-1"},
            "start_index": 3, "end_index": 9}


@pytest.mark.parametrize(("content", "served"), [
    ("plain string", [{"type": "text", "text": {"value": "plain string", "annotations": []}}]),
    ([{"type": "text", "text": {"value": "v", "annotations": []}}],
     [{"type": "text", "text": {"value": "v", "annotations": []}}]),
    ([{"type": "text", "text": "bare"}], [{"type": "text", "text": {"value": "bare",
                                                                   "annotations": []}}]),
    ([{"type": "text", "text": {"value": "c", "annotations": [CITATION, {"bogus": 1},
                                                              {"type": "file_path"}]}}],
     [{"type": "text", "text": {"value": "c", "annotations": [CITATION]}}]),
    ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                          "detail": "auto"}}],
     [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                          "detail": "auto"}}]),
    ([{"type": "image_url", "image_url": {"url": "https://x.test/i.png", "detail": "huge"}}],
     [{"type": "image_url", "image_url": {"url": "https://x.test/i.png"}}]),
    ([{"type": "image_url", "image_url": "https://x.test/i.png"}],
     [{"type": "image_url", "image_url": {"url": "https://x.test/i.png"}}]),
    ([{"type": "image_file", "image_file": {"file_id": "file-img"}}],
     [{"type": "image_file", "image_file": {"file_id": "file-img"}}]),
    ([{"type": "image", "image_url": {"url": "https://x.test/old.png"}}],
     [{"type": "image_url", "image_url": {"url": "https://x.test/old.png"}}]),
    # Served URLs are URIs (the spec's `format: uri`): spaces and non-ASCII percent-encoded;
    # a bare path is no URL at all, so it is served as text.
    ([{"type": "image_url", "image_url": {"url": "https://x.test/a b/ü.png"}}],
     [{"type": "image_url", "image_url": {"url": "https://x.test/a%20b/%C3%BC.png"}}]),
    ([{"type": "image", "url": "images/cat.png"}],
     [{"type": "text", "text": {"value": "images/cat.png", "annotations": []}}]),
    ([{"type": "image_url", "image_url": {"url": "/Users/me/cat.png", "detail": "low"}}],
     [{"type": "text", "text": {"value": "/Users/me/cat.png", "annotations": []}}]),
    ([{"type": "image_url", "image_url": "C:\\Users\\me\\cat.png"}],
     [{"type": "text", "text": {"value": "C:\\Users\\me\\cat.png", "annotations": []}}]),
    ([{"type": "image", "image_url": {"url": "cat.png"}}],
     [{"type": "text", "text": {"value": "cat.png", "annotations": []}}]),
    ([{"type": "pdf", "text": {"value": "report.pdf", "annotations": []}}],
     [{"type": "text", "text": {"value": "report.pdf", "annotations": []}}]),
    ([{"type": "pdf", "name": "notes.pdf", "size": 1234}],
     [{"type": "text", "text": {"value": "notes.pdf", "annotations": []}}]),
    ([{"type": "refusal", "refusal": "no"}], [{"type": "refusal", "refusal": "no"}]),
    ([{"type": "video", "frames": 3}], [{"type": "text", "text": {"value": "",
                                                                  "annotations": []}}]),
    (None, []),
])
async def test_content_shapes_become_openai_parts(data_dir: Path, start_server: MakeServer,
                                                  content: Any, served: list[Any]) -> None:
    _, raw = await serve_line(data_dir, start_server, {"id": ULID, "content": content})
    assert raw["content"] == served


@pytest.mark.parametrize(("stored_id", "served_id"), [
    (ULID, ULID), (UUID, UUID), ("jan_1717666240", "jan_1717666240"),
    ("msg_abc123", "msg_abc123"), (42, "42"),
])
async def test_ids_of_any_shape_are_served_and_retrievable(
        data_dir: Path, start_server: MakeServer, stored_id: Any, served_id: str) -> None:
    msg, _ = await serve_line(data_dir, start_server, {"id": stored_id})
    assert msg.id == served_id


async def test_unknown_fields_and_odd_values_are_not_served(
        data_dir: Path, start_server: MakeServer) -> None:
    msg, raw = await serve_line(data_dir, start_server, {
        "id": ULID, "type": "Thread", "object": "thread.message", "role": "system",
        "thread_id": "some_other_thread", "assistant_id": {"id": "jan"}, "run_id": "",
        "attachments": [{"file_id": "file-1", "tools": [{"type": "retrieval"}]}, {"x": 1}],
        "metadata": {"tokenSpeed": {"tokenSpeed": 23.4}, "n": 3, "ok": "yes", "none": None},
        "future_field": [1, 2, 3]})
    assert msg.thread_id == "jan_1"
    assert msg.role == "assistant"
    assert raw["assistant_id"] == '{"id": "jan"}'
    assert raw["run_id"] is None
    assert raw["attachments"] == [{"file_id": "file-1", "tools": []}]
    assert msg.metadata == {"tokenSpeed": '{"tokenSpeed": 23.4}', "n": "3", "ok": "yes",
                            "none": "null"}


async def test_a_canonical_looking_line_in_milliseconds_is_served_in_seconds(
        data_dir: Path, start_server: MakeServer) -> None:
    msg, _ = await serve_line(data_dir, start_server, {
        **openai_message(ULID, "jan_1", "hi", 0), "created_at": 1717666240123})
    assert msg.created_at == 1717666240


# --- whole folders -------------------------------------------------------------------------------


def build_jan_data_dir(data_dir: Path) -> None:
    """A data folder as a long-time Jan user has it: threads from several app versions."""
    write_thread(data_dir, "jan_1717666232", jan_thread("jan_1717666232", "Trip to Lisbon"), [
        jan_message("01HZX5GJ2Y0K7E1V0T9B4QW8NS", "jan_1717666232", "Plan a trip"),
        jan_message("01HZX5GQ3V9PZ0W6J7X8Y9Z0AB", "jan_1717666232", "Day 1: ...", "assistant",
                    1717666245000, "ready"),
        jan_message("01HZX5H0000000000000000000", "jan_1717666232", "(stopped)", "assistant",
                    1717666250000, "stopped"),
    ])
    write_thread(data_dir, ULID, jan06_thread(ULID), [
        {**jan06_message("01JRK0000000000000000000AA", ULID, "What can I cook?", role="user"),
         "assistant_id": None, "completed_at": None},
        jan06_message("01JRK0000000000000000000AB", ULID, "Pasta."),
        {**jan06_message("01JRK0000000000000000000AC", ULID, "", created_ms=1746000009000),
         "status": "pending", "content": []},
    ])
    write_thread(data_dir, UUID, {"id": UUID, "object": "thread", "created_at": 1700000000.5,
                                  "metadata": {}}, [
        openai_message("msg_1", UUID, "from a script", 1700000001.25),
        {**openai_message("msg_2", UUID, "string content", 1700000002), "content": "plain"},
    ])
    write_thread(data_dir, "jan_1690000000", None, [  # messages only, no thread.json
        jan_message("01H0000000000000000000000A", "jan_1690000000", "orphan")])
    folder = write_thread(data_dir, "jan_1680000000", None, [
        jan_message("01G0000000000000000000000A", "jan_1680000000", "bad thread.json")])
    (folder / "thread.json").write_text("{ not json")


async def test_a_real_looking_jan_folder_is_served_strictly_valid(
        data_dir: Path, start_server: MakeServer) -> None:
    build_jan_data_dir(data_dir)
    server = await start_server()
    async with open_sdk(server) as sdk:
        pager = sdk.get_api_list("/threads", model=Thread, page=AsyncCursorPage[Thread],
                                 options={"params": {"limit": 2}})
        threads = [t async for t in pager]
        assert {t.id for t in threads} == {"jan_1717666232", ULID, UUID, "jan_1690000000",
                                           "jan_1680000000"}
        created = [t.created_at for t in threads]
        assert created == sorted(created, reverse=True)
        count = 0
        for thread in threads:
            assert await sdk.beta.threads.retrieve(thread.id) == thread
            async for msg in sdk.beta.threads.messages.list(thread.id, limit=2):
                assert msg.thread_id == thread.id
                assert await sdk.beta.threads.messages.retrieve(msg.id, thread_id=thread.id
                                                                ) == msg
                count += 1
        assert count == 10
    health = await raw_get(server, "/healthz")
    assert (health["threads"], health["messages"], health["corrupt_lines"]) == (5, 10, 0)


async def test_jan_thread_json_shapes_become_openai_threads(
        data_dir: Path, start_server: MakeServer) -> None:
    build_jan_data_dir(data_dir)
    async with open_sdk(await start_server()) as sdk:
        jan04 = await sdk.beta.threads.retrieve("jan_1717666232")
        # Jan's title is served inside metadata, where OpenAI clients look for one.
        assert (jan04.created_at, jan04.metadata) == (1717666232, {"lastMessage": "hello",
                                                                   "title": "Trip to Lisbon"})
        jan06 = await sdk.beta.threads.retrieve(ULID)
        assert (jan06.created_at, jan06.metadata) == (1746000000, {
            "is_favorite": "false", "order": "2", "title": "Recipes"})
        scripted = await sdk.beta.threads.retrieve(UUID)
        assert scripted.created_at == 1700000000
        for no_json in ("jan_1690000000", "jan_1680000000"):  # dated by their first message
            thread = await sdk.beta.threads.retrieve(no_json)
            assert (thread.created_at, thread.metadata) == (1717666240, {})
        msgs = [m async for m in sdk.beta.threads.messages.list(ULID, order="asc")]
        assert [m.status for m in msgs] == ["completed", "completed", "in_progress"]
        assert msgs[1].metadata is not None
        assert json.loads(msgs[1].metadata["tokenSpeed"]) == {"tokenSpeed": 23.4,
                                                              "tokenCount": 118}
        assert msgs[1].completed_at == 1746000002


async def test_jans_reasoning_and_tool_call_parts_and_unset_times_are_not_served_as_content(
        data_dir: Path, start_server: MakeServer) -> None:
    """Newer Jan versions keep the model's reasoning and its tool calls as content parts beside
    the reply, and write `completed_at: 0` for "not set"; OpenAI's message content has neither
    kind of part (served as text, the reasoning read as part of the reply), and 0 reads as 1970."""
    reply = {**jan06_message("m1", ULID, "final answer"), "content": [
        {"type": "reasoning", "text": {"value": "thinking...", "annotations": []}},
        {"type": "tool_call", "tool_call_id": "c1", "tool_name": "search",
         "input": {"q": "x"}, "output": "y"},
        {"type": "text", "text": {"value": "final answer", "annotations": []}}]}
    unset = {**jan06_message("m2", ULID, "plain"), "completed_at": 0}  # the typed fast path
    tool_only = {**jan06_message("m3", ULID, ""), "completed_at": 0, "attachments": [],
                 "content": [{"type": "tool_call", "tool_call_id": "c2", "tool_name": "t"}]}
    write_thread(data_dir, ULID, jan06_thread(ULID), [reply, unset, tool_only])
    async with open_sdk(await start_server()) as sdk:
        msgs = [m async for m in sdk.beta.threads.messages.list(ULID, order="asc")]
        assert [[p.text.value for p in m.content if p.type == "text"] for m in msgs] == [
            ["final answer"], ["plain"], []]
        assert [len(m.content) for m in msgs] == [1, 1, 0]
        assert [m.completed_at for m in msgs] == [1746000002, None, None]


async def test_a_part_whose_type_is_a_list_or_an_object_is_served_leniently(
        data_dir: Path, start_server: MakeServer) -> None:
    """A part's `type` that is no string (a list, an object: unhashable) is an unknown part like
    any other; it was a 500 on every get, page, summary and modify touching its line, and ended
    every event stream replaying it."""
    odd = [{**jan_message(f"m{i}", "jan_1", "x"), "content": [{"type": kind, "text": "kept"}]}
           for i, kind in enumerate(([], {"a": 1}, ["text"]))]
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [*odd, jan_message("m9", "jan_1", "after")])
    server = await start_server()
    async with open_sdk(server) as sdk:
        listed = [m async for m in sdk.beta.threads.messages.list("jan_1", order="asc")]
        assert [[p.text.value for p in m.content if p.type == "text"] for m in listed] == [
            ["kept"], ["kept"], ["kept"], ["after"]]
        got = await sdk.beta.threads.messages.retrieve("m1", thread_id="jan_1")
        assert got.content[0].type == "text"
        modified = await sdk.beta.threads.messages.update("m0", thread_id="jan_1",
                                                          metadata={"k": "v"})
        assert modified.metadata == {"k": "v"}
    async with aiohttp.ClientSession() as http, http.get(
            str(server.make_url("/v1/threads/jan_1/events")), params={"after": "m0"},
            timeout=aiohttp.ClientTimeout(total=10)) as resp:
        assert resp.status == 200
        data = b""
        while b"after" not in data:  # the replay gets past the odd lines
            data += await resp.content.readany()
        assert data.count(b"event: thread.message.created") >= 3


async def test_a_time_of_zero_is_served_as_null_whatever_the_lines_shape(
        data_dir: Path, start_server: MakeServer) -> None:
    """0 is Jan's "not set": a modify that sends it stores null, and a line in the canonical
    shape holding it (another program's) is not served as stored."""
    canonical = StoredMessage(id="m1", created_at=1746000000, thread_id="jan_1", status="completed",
                        completed_at=0, incomplete_at=0, role="user", content=[text_part("a")])
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [encoder.encode(canonical), jan_message("m2", "jan_1", "b")])
    async with open_sdk(await start_server()) as sdk:
        assert (await sdk.beta.threads.messages.retrieve("m1", thread_id="jan_1")
                ).completed_at is None
        listed = [m async for m in sdk.beta.threads.messages.list("jan_1", order="asc")]
        assert [(m.completed_at, m.incomplete_at) for m in listed] == [(None, None)] * 2
        modified = await sdk.beta.threads.messages.update(
            "m2", thread_id="jan_1", extra_body={"completed_at": 0, "incomplete_at": 0})
        assert (modified.completed_at, modified.incomplete_at) == (None, None)
    stored = [json.loads(x) for x in (data_dir / "threads/jan_1/messages.jsonl").read_text()
              .splitlines()]
    assert (stored[1]["completed_at"], stored[1]["incomplete_at"]) == (None, None)


async def test_a_title_set_or_cleared_in_metadata_is_jans_title_too(
        data_dir: Path, start_server: MakeServer) -> None:
    """metadata.title is where clients see Jan's title: a modify moves both, so the Jan app
    shows a rename, and metadata sent without a title is served as sent."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1", title="Old title"), [])
    async with open_sdk(await start_server()) as sdk:
        t = await sdk.beta.threads.update("jan_1", metadata={"title": "New title"})
        assert t.metadata == {"title": "New title"}
        stored = json.loads((folder / "thread.json").read_text())
        assert (stored["title"], stored["metadata"]) == ("New title", {})
        # Jan renames it (its own rewrite of thread.json): the API shows Jan's title.
        (folder / "thread.json").write_text(json.dumps({**stored, "title": "Jan's title"}))
        for _ in range(250):  # the watcher's turn
            if (await sdk.beta.threads.retrieve("jan_1")).metadata == {"title": "Jan's title"}:
                break
            await asyncio.sleep(0.02)
        assert (await sdk.beta.threads.retrieve("jan_1")).metadata == {"title": "Jan's title"}
        t = await sdk.beta.threads.update("jan_1", metadata={"k": "v"})
        assert t.metadata == {"k": "v"}
        assert (await sdk.beta.threads.retrieve("jan_1")).metadata == {"k": "v"}
        assert json.loads((folder / "thread.json").read_text())["title"] == ""


async def test_a_title_given_at_creation_is_jans_title(data_dir: Path,
                                                       start_server: MakeServer) -> None:
    """A thread made through the API with a title shows that title in the Jan app, which reads
    the top-level `title` of thread.json (a create used to leave it inside the metadata)."""
    async with open_sdk(await start_server()) as sdk:
        t = await sdk.beta.threads.create(metadata={"title": "Made by API", "k": "v"})
        assert t.metadata == {"title": "Made by API", "k": "v"}
        stored = json.loads((data_dir / "threads" / t.id / "thread.json").read_text())
        assert (stored["title"], stored["metadata"]) == ("Made by API", {"k": "v"})
        assert (await sdk.beta.threads.retrieve(t.id)).metadata == t.metadata
        untitled = await sdk.beta.threads.create(metadata={"k": "v"})
        stored = json.loads((data_dir / "threads" / untitled.id / "thread.json").read_text())
        assert "title" not in stored and untitled.metadata == {"k": "v"}


async def test_a_title_not_served_or_served_cut_is_kept_whole_by_a_modify(
        data_dir: Path, start_server: MakeServer) -> None:
    """A title hidden by 16 metadata keys is not cleared by a modify that could not send it;
    one served cut to 512 characters and sent back unchanged keeps its whole length."""
    full = {**jan_thread("jan_16", title="Sixteen"), "metadata": {f"k{i}": "v" for i in range(16)}}
    folder16 = write_thread(data_dir, "jan_16", full, [])
    long_title = "t" * 600
    folder_long = write_thread(data_dir, "jan_long", jan_thread("jan_long", title=long_title), [])
    async with open_sdk(await start_server()) as sdk:
        t = await sdk.beta.threads.retrieve("jan_16")
        assert t.metadata is not None and "title" not in t.metadata
        await sdk.beta.threads.update("jan_16", metadata={**t.metadata, "k0": "changed"})
        t = await sdk.beta.threads.retrieve("jan_long")
        assert t.metadata is not None and t.metadata["title"] == long_title[:512]
        await sdk.beta.threads.update("jan_long", metadata={**t.metadata, "k": "v"})
    assert json.loads((folder16 / "thread.json").read_text())["title"] == "Sixteen"
    assert json.loads((folder_long / "thread.json").read_text())["title"] == long_title


async def test_an_empty_title_and_a_metadata_title_of_its_own_are_served_as_sent(
        data_dir: Path, start_server: MakeServer) -> None:
    """An empty title is served as set. A thread.json whose metadata has a title of its own
    (null here, served "null") keeps it, and Jan's title, through an unchanged round trip; a
    rename goes to both."""
    folder = write_thread(data_dir, "jan_e", jan_thread("jan_e", title="Chat"), [])
    own = {**jan_thread("jan_o", title="Top"), "metadata": {"title": None, "x": 1}}
    folder_own = write_thread(data_dir, "jan_o", own, [])
    async with open_sdk(await start_server()) as sdk:
        t = await sdk.beta.threads.update("jan_e", metadata={"title": "", "k": "v"})
        assert t.metadata == {"title": "", "k": "v"}
        assert (await sdk.beta.threads.retrieve("jan_e")).metadata == {"title": "", "k": "v"}
        t = await sdk.beta.threads.retrieve("jan_o")
        assert t.metadata == {"title": "null", "x": "1"}
        t = await sdk.beta.threads.update("jan_o", metadata={**t.metadata, "y": "z"})
        assert t.metadata == {"title": "null", "x": "1", "y": "z"}
        stored = json.loads((folder_own / "thread.json").read_text())
        assert (stored["title"], stored["metadata"]) == ("Top", {"title": None, "x": 1, "y": "z"})
        t = await sdk.beta.threads.update("jan_o", metadata={"title": "Renamed"})
        assert t.metadata == {"title": "Renamed"}
    assert json.loads((folder / "thread.json").read_text())["title"] == ""
    stored = json.loads((folder_own / "thread.json").read_text())
    assert (stored["title"], stored["metadata"]) == ("Renamed", {})  # Jan's renames show now


async def test_a_title_the_client_never_saw_is_not_cleared_and_jan_renames_keep_showing(
        data_dir: Path, start_server: MakeServer) -> None:
    own = {**jan_thread("jan_o", title="Top"), "metadata": {"title": "Meta", "a": "1"}}
    folder_own = write_thread(data_dir, "jan_o", own, [])
    folder = write_thread(data_dir, "jan_e", jan_thread("jan_e", title="Chat"), [])
    async with open_sdk(await start_server()) as sdk:
        await sdk.beta.threads.update("jan_o", metadata={"a": "2"})  # "Top" was never served
        assert json.loads((folder_own / "thread.json").read_text())["title"] == "Top"
        await sdk.beta.threads.update("jan_e", metadata={"title": ""})
        await sdk.beta.threads.update("jan_e", metadata={"title": "New"})
        stored = json.loads((folder / "thread.json").read_text())
        (folder / "thread.json").write_text(json.dumps({**stored, "title": "Jan name"}))
        for _ in range(250):  # the watcher's turn
            t = await sdk.beta.threads.retrieve("jan_e")
            if t.metadata == {"title": "Jan name"}:
                break
            await asyncio.sleep(0.02)
        assert t.metadata == {"title": "Jan name"}


async def test_jans_object_metadata_survives_a_read_modify_write(
        data_dir: Path, start_server: MakeServer) -> None:
    """Jan 0.6 keeps objects, booleans and numbers in metadata; they are served as JSON text. A
    client that sends the served metadata back with one key changed leaves the others as Jan
    wrote them, not as strings, and the changed one keeps its type when it is sent as its
    type's JSON text (Jan reads `"false"` as true)."""
    message = {**jan06_message(ULID, ULID, "hi")}
    message["metadata"] = {**message["metadata"], "gone": None}  # null survives too
    thread = jan06_thread(ULID)
    folder = write_thread(data_dir, ULID, thread, [message])
    others = [f"jan_{n}" for n in range(4)]  # each with Jan's {"is_favorite": false, "order": 2}
    for other in others:
        write_thread(data_dir, other, jan06_thread(other), [])
    async with open_sdk(await start_server()) as sdk:
        served = await sdk.beta.threads.messages.retrieve(ULID, thread_id=ULID)
        assert served.metadata is not None
        await sdk.beta.threads.messages.update(ULID, thread_id=ULID,
                                               metadata={**served.metadata, "n": "4"})
        t = await sdk.beta.threads.retrieve(ULID)
        assert t.metadata is not None
        await sdk.beta.threads.update(ULID, metadata={**t.metadata, "order": "3"})
        stored_thread = json.loads((folder / "thread.json").read_text())
        assert stored_thread["metadata"] == {"is_favorite": False, "order": 3}
        assert stored_thread["title"] == "Recipes"
        await sdk.beta.threads.update(ULID, metadata={"is_favorite": "true", "order": "2.5"})
        stored_thread = json.loads((folder / "thread.json").read_text())
        assert stored_thread["metadata"] == {"is_favorite": True, "order": 2.5}
        # Text that is no JSON of the stored type, or not as such a value is served, is stored
        # as the string it is: a client reads back what it sent (and thread.json stays JSON).
        for other, sent in zip(others, ({"is_favorite": "yes", "order": "NaN"},
                                        {"order": "1e400"}, {"order": "1.50"}, {"order": " 2"}),
                               strict=True):
            t = await sdk.beta.threads.update(other, metadata=sent)
            assert t.metadata == sent  # the title not sent: cleared
            stored = data_dir / "threads" / other / "thread.json"
            assert json.loads(stored.read_text())["metadata"] == sent
            assert (await sdk.beta.threads.retrieve(other)).metadata == sent
        stored = json.loads((folder / "messages.jsonl").read_text())
        assert stored["metadata"] == {**message["metadata"], "n": 4}  # Jan's number: still one
        await sdk.beta.threads.messages.update(ULID, thread_id=ULID, metadata={
            **served.metadata, "tokenSpeed": '{"tokenSpeed": 1}', "gone": "x"})
    stored = json.loads((folder / "messages.jsonl").read_text())
    assert stored["metadata"] == {**message["metadata"], "tokenSpeed": {"tokenSpeed": 1},
                                  "gone": "x"}


async def test_thread_json_id_is_the_folder_name(data_dir: Path, start_server: MakeServer
                                                ) -> None:
    write_thread(data_dir, "jan_2", {**jan_thread("jan_1"), "id": "jan_1"}, [])
    async with open_sdk(await start_server()) as sdk:
        assert (await sdk.beta.threads.retrieve("jan_2")).id == "jan_2"
        with pytest.raises(openai.NotFoundError):
            await sdk.beta.threads.retrieve("jan_1")


async def test_lone_surrogate_escapes_are_read_as_replacement_characters(
        data_dir: Path, start_server: MakeServer) -> None:
    """JavaScript's JSON.stringify writes a string cut mid-emoji as a lone `\\ud83d` escape: valid
    JSON, but not Unicode text. Such a message is served (with U+FFFD) rather than skipped as
    corrupt, and such a thread.json keeps its title and settings through a modify."""
    cut = "\\ud83d"  # as the file holds it: a backslash escape, not the character
    folder = write_thread(data_dir, "jan_1", None, [
        json.dumps(jan_message("m1", "jan_1", "a")).replace('"a"', f'"cut here {cut}"'),
        json.dumps(jan_message("m2", "jan_1", "b")).replace('"b"', '"a pair \\ud83d\\ude00"'),
        json.dumps(jan_message("m3", "jan_1", "c")).replace('"c"', '"escaped \\\\ud83d"'),
    ])
    thread = {**jan_thread("jan_1", title="Trip"), "assistants": [{"id": "jan"}]}
    (folder / "thread.json").write_text(json.dumps(thread).replace('"Trip"', f'"Trip {cut}"'))
    server = await start_server()
    async with open_sdk(server) as sdk:
        msgs = [m async for m in sdk.beta.threads.messages.list("jan_1", order="asc")]
        texts = [m.content[0].text.value for m in msgs]  # type: ignore[union-attr]
        assert texts == ["cut here \ufffd", "a pair \U0001F600", "escaped \\ud83d"]
        got = await sdk.beta.threads.messages.retrieve("m1", thread_id="jan_1")
        assert got.content[0].text.value == "cut here \ufffd"  # type: ignore[union-attr]
        edited = await sdk.beta.threads.messages.update("m1", thread_id="jan_1",
                                                        metadata={"k": "v"})
        assert edited.metadata == {"k": "v"}
        assert edited.content[0].text.value == "cut here \ufffd"  # type: ignore[union-attr]
        t = await sdk.beta.threads.retrieve("jan_1")
        assert t.metadata is not None and t.metadata["title"] == "Trip \ufffd"
        await sdk.beta.threads.update("jan_1", metadata={**t.metadata, "k": "v"})
    stored = json.loads((folder / "thread.json").read_text())
    assert stored["title"] == "Trip \ufffd" and stored["assistants"] == [{"id": "jan"}]
    assert stored["metadata"]["k"] == "v"
    assert not list(folder.glob(".thread.json.unreadable-*"))


async def test_a_byte_order_mark_at_the_start_of_the_file_loses_no_message(
        data_dir: Path, start_server: MakeServer) -> None:
    """An editor saving messages.jsonl as "UTF-8 with BOM": the first message is still one."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                          [jan_message("m1", "jan_1", "first"), jan_message("m2", "jan_1", "b")])
    path = folder / "messages.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    server = await start_server()
    async with open_sdk(server) as sdk:
        msgs = [m async for m in sdk.beta.threads.messages.list("jan_1", order="asc")]
        assert [m.id for m in msgs] == ["m1", "m2"]
        got = await sdk.beta.threads.messages.retrieve("m1", thread_id="jan_1")
        assert got.content[0].text.value == "first"  # type: ignore[union-attr]
    health = await raw_get(server, "/healthz")
    assert health["corrupt_lines"] == 0
