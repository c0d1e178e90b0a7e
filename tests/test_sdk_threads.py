"""The official openai SDK (strict response validation) against every thread endpoint."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from pathlib import Path

import openai
import pytest
from openai.pagination import AsyncCursorPage
from openai.types.beta import Thread

from tests.conftest import MakeServer
from tests.jan import jan_thread, write_thread
from tests.sdk import open_sdk


async def test_create_thread_with_messages_metadata_and_tool_resources(
        sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    thread = await sdk.beta.threads.create(
        messages=[{"role": "user", "content": "Hello, what is AI?"},
                  {"role": "assistant", "content": "A field of computer science.",
                   "metadata": {"model": "llama"}}],
        metadata={"project": "demo", "owner": "ana"},
        tool_resources={"code_interpreter": {"file_ids": ["file-a", "file-b"]},
                        "file_search": {"vector_store_ids": ["vs_1"]}},
    )
    assert thread.id.startswith("thread_")
    assert thread.object == "thread"
    assert thread.metadata == {"project": "demo", "owner": "ana"}
    assert thread.tool_resources is not None
    assert thread.tool_resources.code_interpreter is not None
    assert thread.tool_resources.code_interpreter.file_ids == ["file-a", "file-b"]
    assert thread.tool_resources.file_search is not None
    assert thread.tool_resources.file_search.vector_store_ids == ["vs_1"]

    messages = [m async for m in sdk.beta.threads.messages.list(thread.id, order="asc")]
    assert [(m.role, m.content[0].text.value) for m in messages  # type: ignore[union-attr]
            ] == [("user", "Hello, what is AI?"), ("assistant", "A field of computer science.")]
    assert messages[1].metadata == {"model": "llama"}
    assert all(m.thread_id == thread.id for m in messages)

    folder = data_dir / "threads" / thread.id
    stored = json.loads((folder / "thread.json").read_text())
    assert stored["metadata"] == {"project": "demo", "owner": "ana"}
    lines = (folder / "messages.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [m.id for m in messages]


async def test_create_thread_with_no_arguments_is_empty(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create()
    assert thread.metadata == {}
    page = await sdk.beta.threads.messages.list(thread.id)
    assert page.data == []


async def test_retrieve_thread_returns_what_create_returned(sdk: openai.AsyncOpenAI) -> None:
    created = await sdk.beta.threads.create(metadata={"a": "1"})
    assert await sdk.beta.threads.retrieve(created.id) == created


async def test_update_thread_changes_only_what_is_given(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create(
        metadata={"a": "1"}, tool_resources={"code_interpreter": {"file_ids": ["file-a"]}})
    updated = await sdk.beta.threads.update(thread.id, metadata={"b": "2"})
    assert updated.metadata == {"b": "2"}
    assert updated.tool_resources == thread.tool_resources
    assert updated.created_at == thread.created_at

    updated = await sdk.beta.threads.update(
        thread.id, tool_resources={"file_search": {"vector_store_ids": ["vs_9"]}})
    assert updated.metadata == {"b": "2"}
    assert updated.tool_resources is not None and updated.tool_resources.file_search is not None
    assert updated.tool_resources.file_search.vector_store_ids == ["vs_9"]
    assert await sdk.beta.threads.retrieve(thread.id) == updated


async def test_update_keeps_unknown_fields_of_a_jan_thread_json(
        start_server: MakeServer, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1717666232", jan_thread("jan_1717666232", "Trip"), [])
    async with open_sdk(await start_server()) as sdk:
        served = await sdk.beta.threads.retrieve("jan_1717666232")
        assert served.metadata == {"lastMessage": "hello", "title": "Trip"}  # from thread.json
        updated = await sdk.beta.threads.update("jan_1717666232",
                                                metadata={**served.metadata, "lastMessage": "bye"})
    assert updated.metadata == {"lastMessage": "bye", "title": "Trip"}
    stored = json.loads((folder / "thread.json").read_text())
    assert stored["title"] == "Trip"
    assert stored["assistants"][0]["assistant_id"] == "jan"
    assert stored["metadata"] == {"lastMessage": "bye"}  # the title is Jan's, beside it


async def test_delete_thread_removes_its_folder(sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    deleted = await sdk.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (thread.id, True, "thread.deleted")
    assert list((data_dir / "threads").iterdir()) == []
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.beta.threads.retrieve(thread.id)
    assert err.value.body == {"message": f"No thread found with id '{thread.id}'.",
                              "type": "invalid_request_error", "param": "thread_id",
                              "code": None}
    with pytest.raises(openai.NotFoundError):
        await sdk.beta.threads.delete(thread.id)


async def test_unknown_thread_is_not_found_on_every_sdk_call(sdk: openai.AsyncOpenAI) -> None:
    calls: list[Awaitable[object]] = [
        sdk.beta.threads.retrieve("thread_nope"),
        sdk.beta.threads.update("thread_nope", metadata={}),
        sdk.beta.threads.delete("thread_nope"),
        sdk.beta.threads.messages.create("thread_nope", role="user", content="x"),
        sdk.beta.threads.messages.list("thread_nope"),
        sdk.beta.threads.messages.retrieve("msg_x", thread_id="thread_nope"),
        sdk.beta.threads.messages.update("msg_x", thread_id="thread_nope", metadata={}),
        sdk.beta.threads.messages.delete("msg_x", thread_id="thread_nope"),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as err:
            await call
        assert err.value.message.endswith("No thread found with id 'thread_nope'.")


async def test_list_threads_newest_first_with_sdk_pagination(sdk: openai.AsyncOpenAI) -> None:
    created = [await sdk.beta.threads.create(metadata={"n": str(i)}) for i in range(7)]
    pager = sdk.get_api_list("/threads", model=Thread, page=AsyncCursorPage[Thread],
                             options={"params": {"limit": 3}})
    listed = [t async for t in pager]
    assert [t.id for t in listed] == [t.id for t in reversed(created)]
    assert listed[0] == created[-1]

    asc = sdk.get_api_list("/threads", model=Thread, page=AsyncCursorPage[Thread],
                           options={"params": {"limit": 2, "order": "asc"}})
    assert [t.id async for t in asc] == [t.id for t in created]


async def test_list_threads_includes_jan_threads_by_creation_time(
        start_server: MakeServer, data_dir: Path) -> None:
    for ts in (1717000000, 1700000000):
        write_thread(data_dir, f"jan_{ts}", jan_thread(f"jan_{ts}", created_ms=ts * 1000), [])
    async with open_sdk(await start_server()) as sdk:
        ours = await sdk.beta.threads.create()
        pager = sdk.get_api_list("/threads", model=Thread, page=AsyncCursorPage[Thread])
        assert [t.id async for t in pager] == [ours.id, "jan_1717000000", "jan_1700000000"]


@pytest.mark.parametrize("file_search", [
    {"vector_stores": [{"file_ids": ["file-a"]}]},
    {"vector_stores": [{"file_ids": ["file-a"], "chunking_strategy": {"type": "auto"},
                        "metadata": {"k": "v"}}]},
    {"vector_stores": [{"chunking_strategy": {"type": "static", "static": {
        "max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}}]},
    {"vector_stores": [{"metadata": None}]},  # the spec's Metadata is nullable
])
async def test_a_new_vector_store_in_a_thread_create_is_accepted_and_kept(
        sdk: openai.AsyncOpenAI, data_dir: Path, file_search: dict[str, object]) -> None:
    thread = await sdk.beta.threads.create(
        tool_resources={"file_search": file_search})  # type: ignore[typeddict-item]
    stored = json.loads((data_dir / "threads" / thread.id / "thread.json").read_text())
    assert stored["tool_resources"]["file_search"] == file_search


@pytest.mark.parametrize("file_search", [
    {},  # the spec takes exactly one of the two
    {"vector_store_ids": ["vs_1"], "vector_stores": [{"file_ids": []}]},
    {"vector_stores": [{"file_ids": [1]}]},
    {"vector_stores": [{"chunking_strategy": {"type": "nope"}}]},
    {"vector_stores": [{"chunking_strategy": {"type": "static", "static": {
        "max_chunk_size_tokens": 50, "chunk_overlap_tokens": 10}}}]},
    {"vector_stores": [{"chunking_strategy": {"type": "static", "static": {
        "max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401}}}]},
    {"vector_stores": [{"metadata": {"k": 1}}]},
    {"vector_stores": [{"x": 1}]},
    {"vector_stores": [{}, {}]},
])
async def test_an_invalid_file_search_in_a_thread_create_is_400(
        sdk: openai.AsyncOpenAI, data_dir: Path, file_search: dict[str, object]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.beta.threads.create(
            tool_resources={"file_search": file_search})  # type: ignore[typeddict-item]
    assert caught.value.status_code == 400
    assert not list((data_dir / "threads").glob("*"))


async def test_an_error_has_a_request_id_the_sdk_exposes(sdk: openai.AsyncOpenAI) -> None:
    ids = []
    for _ in range(2):
        with pytest.raises(openai.NotFoundError) as err:
            await sdk.beta.threads.retrieve("thread_nope")
        ids.append(err.value.request_id)
    assert all(i is not None and i.startswith("req_") for i in ids) and ids[0] != ids[1]


async def test_metadata_jan_wrote_past_the_limits_can_be_sent_back_changed(
        sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    """Jan keeps objects in metadata (served as their JSON text, here longer than 512 characters)
    and may keep more than 16 keys: a client that reads the metadata, changes one key and sends
    it all back is not refused for what Jan wrote; what it adds or changes is held to the limits."""
    doc = jan_thread("jan_meta")
    doc["metadata"] = {"assistant": {"instructions": "be brief " * 80}, "lastMessage": "hi"}
    write_thread(data_dir, "jan_meta", doc, [])
    thread = await sdk.beta.threads.retrieve("jan_meta")
    assert thread.metadata is not None and len(thread.metadata["assistant"]) > 512
    updated = await sdk.beta.threads.update("jan_meta",
                                            metadata={**thread.metadata, "starred": "1"})
    assert updated.metadata == {**thread.metadata, "starred": "1"}
    stored = json.loads((data_dir / "threads" / "jan_meta" / "thread.json").read_text())
    assert stored["metadata"]["assistant"] == doc["metadata"]["assistant"]  # still an object
    with pytest.raises(openai.BadRequestError) as caught:  # a long value of its own: refused
        await sdk.beta.threads.update("jan_meta", metadata={**thread.metadata, "x": "v" * 513})
    assert caught.value.param == "metadata"  # type: ignore[attr-defined]

    many = {f"k{i}": str(i) for i in range(20)}
    write_thread(data_dir, "jan_many", {**jan_thread("jan_many"), "metadata": many}, [])
    thread = await sdk.beta.threads.retrieve("jan_many")
    assert thread.metadata == many  # 20 keys: Jan's title is not added to them
    assert (await sdk.beta.threads.update("jan_many", metadata=many)).metadata == many
    fewer = {k: v for k, v in many.items() if k != "k0"}
    assert (await sdk.beta.threads.update("jan_many", metadata=fewer)).metadata == fewer
    with pytest.raises(openai.BadRequestError):  # a change to 19 keys: over 16
        await sdk.beta.threads.update("jan_many", metadata={**fewer, "k1": "changed"})
