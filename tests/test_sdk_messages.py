"""The official openai SDK (strict response validation) against every message endpoint, plus the
v1 message-files routes the 3.x SDK no longer has (raw HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import MakeServer
from tests.envelope import expect_error, no_message
from tests.jan import jan_message, jan_thread, write_thread
from tests.sdk import open_sdk


async def test_create_message_with_string_content(sdk: openai.AsyncOpenAI, data_dir: Path
                                                  ) -> None:
    thread = await sdk.beta.threads.create()
    msg = await sdk.beta.threads.messages.create(thread.id, role="user", content="Hi there")
    assert msg.id.startswith("msg_")
    assert (msg.object, msg.thread_id, msg.role, msg.status) == (
        "thread.message", thread.id, "user", "completed")
    assert msg.content[0].type == "text"
    assert msg.content[0].text.value == "Hi there"
    assert msg.content[0].text.annotations == []
    assert (msg.attachments, msg.metadata, msg.run_id, msg.assistant_id) == ([], {}, None, None)
    line = (data_dir / "threads" / thread.id / "messages.jsonl").read_bytes()
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert set(json.loads(line)) == {
        "id", "object", "created_at", "thread_id", "status", "incomplete_details", "completed_at",
        "incomplete_at", "role", "content", "assistant_id", "run_id", "attachments", "metadata"}


async def test_create_message_with_every_kind_of_part(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create()
    msg = await sdk.beta.threads.messages.create(
        thread.id, role="assistant",
        content=[{"type": "text", "text": "Look:"},
                 {"type": "image_url", "image_url": {"url": "https://x.test/a.png",
                                                     "detail": "high"}},
                 {"type": "image_file", "image_file": {"file_id": "file-img", "detail": "low"}}],
        attachments=[{"file_id": "file-doc", "tools": [{"type": "file_search"}]},
                     {"file_id": "file-csv", "tools": [{"type": "code_interpreter"}]}],
        metadata={"source": "test"})
    assert [p.type for p in msg.content] == ["text", "image_url", "image_file"]
    assert msg.content[0].text.value == "Look:"  # type: ignore[union-attr]
    assert msg.content[1].image_url.url == "https://x.test/a.png"  # type: ignore[union-attr]
    assert msg.content[1].image_url.detail == "high"  # type: ignore[union-attr]
    assert msg.content[2].image_file.file_id == "file-img"  # type: ignore[union-attr]
    assert msg.attachments is not None
    assert [(a.file_id, [t.type for t in a.tools or []]) for a in msg.attachments] == [
        ("file-doc", ["file_search"]), ("file-csv", ["code_interpreter"])]
    assert msg.metadata == {"source": "test"}
    assert await sdk.beta.threads.messages.retrieve(msg.id, thread_id=thread.id) == msg


async def test_list_retrieve_update_delete_round_trip(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create()
    ids = [(await sdk.beta.threads.messages.create(thread.id, role="user", content=f"m{i}")).id
           for i in range(3)]
    page = await sdk.beta.threads.messages.list(thread.id)
    assert [m.id for m in page.data] == ids[::-1]  # default order: desc
    envelope = page.model_dump()
    assert (envelope["first_id"], envelope["last_id"], page.has_more) == (ids[2], ids[0], False)

    updated = await sdk.beta.threads.messages.update(ids[1], thread_id=thread.id,
                                                     metadata={"starred": "yes"})
    assert updated.metadata == {"starred": "yes"}
    assert updated.content[0].text.value == "m1"  # type: ignore[union-attr]
    assert await sdk.beta.threads.messages.retrieve(ids[1], thread_id=thread.id) == updated

    deleted = await sdk.beta.threads.messages.delete(ids[1], thread_id=thread.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        ids[1], True, "thread.message.deleted")
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.beta.threads.messages.retrieve(ids[1], thread_id=thread.id)
    assert err.value.body == {"message": no_message(ids[1]), "type": "invalid_request_error",
                              "param": "message_id", "code": None}
    with pytest.raises(openai.NotFoundError):
        await sdk.beta.threads.messages.delete(ids[1], thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.beta.threads.messages.update(ids[1], thread_id=thread.id, metadata={})
    assert [m.id async for m in sdk.beta.threads.messages.list(thread.id, order="asc")] == [
        ids[0], ids[2]]


async def test_update_with_null_metadata_clears_it(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "x",
                                                      "metadata": {"a": "b"}}])
    (msg,) = (await sdk.beta.threads.messages.list(thread.id)).data
    updated = await sdk.beta.threads.messages.update(msg.id, thread_id=thread.id, metadata=None)
    assert updated.metadata == {}


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_auto_pagination_walks_a_long_thread_once_in_order(
        sdk: openai.AsyncOpenAI, order: str) -> None:
    thread = await sdk.beta.threads.create(
        messages=[{"role": "user", "content": f"message {i}"} for i in range(50)])
    stored = [m.id async for m in sdk.beta.threads.messages.list(thread.id, order="asc",
                                                                   limit=100)]
    assert len(stored) == 50
    walked = [m async for m in sdk.beta.threads.messages.list(
        thread.id, limit=7, order=order)]  # type: ignore[arg-type]
    expected = stored if order == "asc" else stored[::-1]
    assert [m.id for m in walked] == expected
    texts = [m.content[0].text.value for m in walked]  # type: ignore[union-attr]
    numbers = [int(t.split()[1]) for t in texts]
    assert numbers == sorted(numbers, reverse=order == "desc")


# --- v1 message files (raw HTTP) ------------------------------------------------------------------


async def _get(server: TestServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.make_url(path)) as resp:
        return resp.status, await resp.json()


async def test_message_files_list_the_attachments(sdk: openai.AsyncOpenAI, server: TestServer
                                                  ) -> None:
    thread = await sdk.beta.threads.create()
    msg = await sdk.beta.threads.messages.create(
        thread.id, role="user", content="see files",
        attachments=[{"file_id": "file-1", "tools": [{"type": "file_search"}]},
                     {"file_id": "file-2"},
                     {"file_id": "file-1", "tools": [{"type": "code_interpreter"}]}])
    base = f"/v1/threads/{thread.id}/messages/{msg.id}/files"
    status, body = await _get(server, base)
    assert status == 200
    assert body == {"object": "list", "data": [  # newest first by default, like every list
        {"id": f, "object": "thread.message.file", "created_at": msg.created_at,
         "message_id": msg.id} for f in ("file-2", "file-1")],
        "first_id": "file-2", "last_id": "file-1", "has_more": False}
    status, one = await _get(server, base + "/file-1")
    assert (status, one) == (200, body["data"][1])
    status, page = await _get(server, base + "?limit=1&order=asc")
    assert (status, [f["id"] for f in page["data"]], page["has_more"]) == (200, ["file-1"], True)
    status, page = await _get(server, base + "?order=asc&after=file-1")
    assert (status, [f["id"] for f in page["data"]], page["has_more"]) == (200, ["file-2"], False)


async def test_message_files_of_a_message_without_files_is_empty(
        sdk: openai.AsyncOpenAI, server: TestServer) -> None:
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    (msg,) = (await sdk.beta.threads.messages.list(thread.id)).data
    status, body = await _get(server, f"/v1/threads/{thread.id}/messages/{msg.id}/files")
    assert (status, body) == (200, {"object": "list", "data": [], "first_id": None,
                                    "last_id": None, "has_more": False})


async def test_message_files_read_legacy_file_ids_and_404_unknown(
        start_server: MakeServer, data_dir: Path) -> None:
    line = jan_message("01HZX5GJ2Y0K7E1V0T9B4QW8NS", "jan_1", "with files")
    line["file_ids"] = ["file-old"]
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [line])
    server = await start_server()
    base = "/v1/threads/jan_1/messages/01HZX5GJ2Y0K7E1V0T9B4QW8NS/files"
    status, body = await _get(server, base)
    assert status == 200
    assert [f["id"] for f in body["data"]] == ["file-old"]
    assert body["data"][0]["created_at"] == 1717666240
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(base + "/file-nope")) as resp:
            await expect_error(resp, 404, "No file found with id 'file-nope'.")
        async with http.get(server.make_url("/v1/threads/jan_1/messages/msg_nope/files")) as resp:
            await expect_error(resp, 404, no_message("msg_nope"))
        async with http.get(server.make_url(base + "?after=file-nope")) as resp:
            await expect_error(resp, 400)


async def test_jan_messages_round_trip_through_the_sdk(start_server: MakeServer, data_dir: Path
                                                       ) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message("01HZX5GJ2Y0K7E1V0T9B4QW8NS", "jan_1", "old one")])
    async with open_sdk(await start_server()) as sdk:
        msg = await sdk.beta.threads.messages.retrieve("01HZX5GJ2Y0K7E1V0T9B4QW8NS",
                                                       thread_id="jan_1")
        assert (msg.created_at, msg.status) == (1717666240, "completed")
        updated = await sdk.beta.threads.messages.update(msg.id, thread_id="jan_1",
                                                         metadata={"k": "v"})
        assert updated.metadata == {"k": "v"}
        assert updated.content == msg.content
    stored = json.loads((data_dir / "threads" / "jan_1" / "messages.jsonl").read_bytes())
    assert stored["type"] == "Thread"  # the Jan fields it had are kept
    assert stored["created"] == 1717666240000


async def test_message_metadata_jan_wrote_past_the_limits_can_be_sent_back_changed(
        sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    """As for threads: Jan's objects in a message's metadata are served as JSON text longer than
    512 characters; sent back with a key added, they are kept as Jan wrote them."""
    line = jan_message("01JAN", "jan_m", "hello")
    line["metadata"] = {"tokenSpeed": {"samples": list(range(200))}, "model": "llama"}
    write_thread(data_dir, "jan_m", jan_thread("jan_m"), [line])
    message = await sdk.beta.threads.messages.retrieve("01JAN", thread_id="jan_m")
    assert message.metadata is not None
    assert len(message.metadata["tokenSpeed"]) > 512  # type: ignore[index]
    metadata = {**message.metadata, "starred": "1"}  # type: ignore[dict-item]
    updated = await sdk.beta.threads.messages.update("01JAN", thread_id="jan_m",
                                                     metadata=metadata)
    assert updated.metadata == metadata
    stored = json.loads((data_dir / "threads" / "jan_m" / "messages.jsonl").read_text())
    assert stored["metadata"]["tokenSpeed"] == line["metadata"]["tokenSpeed"]  # an object still
    with pytest.raises(openai.BadRequestError):
        await sdk.beta.threads.messages.update(
            "01JAN", thread_id="jan_m", metadata={**metadata, "tokenSpeed": "x" * 600})


async def test_a_message_stored_with_null_metadata_can_be_given_some(
        sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    thread = await sdk.beta.threads.create()
    made = await sdk.beta.threads.messages.create(thread.id, role="user", content="hi")
    path = data_dir / "threads" / thread.id / "messages.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"metadata":{}', b'"metadata":null'))
    updated = await sdk.beta.threads.messages.update(made.id, thread_id=thread.id,
                                                     metadata={"k": "v"})
    assert updated.metadata == {"k": "v"}
