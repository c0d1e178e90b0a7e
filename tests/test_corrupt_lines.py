"""Lines that are not messages are skipped, counted in /healthz and kept byte for byte on every
rewrite (blank lines, which hold nothing, are dropped); a last line without its newline is never
indexed until the newline arrives."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.envelope import expect_error, no_message
from tests.jan import jan_message, jan_thread, write_thread

OpenClient = Callable[..., Awaitable[TestClient]]

CORRUPT: list[bytes] = [
    b'{"id": "broken", "content": ',  # bad JSON (a crash mid-write, later closed)
    b"[1, 2, 3]",  # JSON, not an object
    b'"just a string"',
    b'{"role": "user", "content": "no id"}',
    b'{"id": "", "content": "empty id"}',
    b'{"id": null}',
    b'{"id": {"nested": 1}}',
    b'{"id": "utf8-in-id-\xff\xfe"}',  # invalid UTF-8 in the id
    b'{"id": "bad-escape", "content": "\\x"}',  # an escape JSON does not have
    b'{"id": "nul-in-string", "content": "a\x00b"}',
    b"\x00\x00\x00\x00",
    b'{"id": "deep", "content": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"id": "m9"} trailing',
]


def msg(n: int) -> dict[str, Any]:
    return jan_message(f"m{n}", "jan_1", f"text {n}", created_ms=1717666240000 + n)


def mixed_lines() -> list[dict[str, Any] | bytes]:
    """m0..m4 with the corrupt lines spread between them (and a blank line, not a message)."""
    out: list[dict[str, Any] | bytes] = [msg(0), *CORRUPT[:4], msg(1), *CORRUPT[4:9], b"",
                                         msg(2), *CORRUPT[9:], msg(3), msg(4)]
    return out


def lines_of(folder: Path) -> list[bytes]:
    return (folder / "messages.jsonl").read_bytes().split(b"\n")


async def served_ids(client: TestClient, thread_id: str = "jan_1") -> list[str]:
    resp = await client.get(f"/v1/threads/{thread_id}/messages", params={"order": "asc",
                                                                         "limit": "100"})
    assert resp.status == 200
    return [m["id"] for m in (await resp.json())["data"]]


async def health(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/healthz")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def corrupt_spans(folder: Path) -> list[list[int]]:
    """[offset, length] of each corrupt line, computed from the file independently."""
    data = (folder / "messages.jsonl").read_bytes()
    spans, pos = [], 0
    for line in data.split(b"\n")[:-1]:
        if line in CORRUPT:
            spans.append([pos, len(line)])
        pos += len(line) + 1
    return spans


async def test_corrupt_lines_are_skipped_and_counted(open_client: OpenClient, data_dir: Path
                                                     ) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), mixed_lines())
    write_thread(data_dir, "jan_2", jan_thread("jan_2"), [msg(0)])
    client = await open_client()
    assert await served_ids(client) == ["m0", "m1", "m2", "m3", "m4"]
    for mid in ("broken", "bad-escape", "nul-in-string", "deep", "m9"):
        resp = await client.get(f"/v1/threads/jan_1/messages/{mid}")
        await expect_error(resp, 404, no_message(mid))
    body = await health(client)
    assert body["corrupt_lines"] == len(CORRUPT)
    assert body["messages"] == 6
    assert body["corrupt"] == {"jan_1": corrupt_spans(folder)}


async def test_corrupt_lines_are_kept_byte_for_byte_after_a_modify(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), mixed_lines())
    before = lines_of(folder)
    assert before.count(b"") == 2  # the blank line, and after the last newline
    client = await open_client()
    resp = await client.post("/v1/threads/jan_1/messages/m2", json={"metadata": {"k": "v"}})
    assert resp.status == 200
    assert (await resp.json())["metadata"] == {"k": "v"}
    after = lines_of(folder)
    # The blank line is gone (the Jan app's reader fails on one); every other line is kept.
    before.remove(b"")
    assert len(after) == len(before) and after[-1] == b"" and b"" not in after[:-1]
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    edited = json.loads(after[changed[0]])
    assert (edited["id"], edited["metadata"], edited["type"]) == ("m2", {"k": "v"}, "Thread")
    assert await served_ids(client) == ["m0", "m1", "m2", "m3", "m4"]
    body = await health(client)
    assert body["corrupt_lines"] == len(CORRUPT)
    assert body["corrupt"]["jan_1"] == corrupt_spans(folder)


async def test_corrupt_lines_are_kept_byte_for_byte_after_a_delete(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), mixed_lines())
    before = lines_of(folder)
    client = await open_client()
    resp = await client.delete("/v1/threads/jan_1/messages/m1")
    assert resp.status == 200
    before.remove(b"")  # the blank line: dropped by the rewrite
    assert lines_of(folder) == [line for line in before if not line.startswith(b'{"id": "m1"')]
    assert await served_ids(client) == ["m0", "m2", "m3", "m4"]
    assert (await health(client))["corrupt"]["jan_1"] == corrupt_spans(folder)


async def test_a_rewrite_drops_every_kind_of_blank_line(open_client: OpenClient,
                                                        data_dir: Path) -> None:
    m = [json.dumps(msg(i)).encode() for i in range(4)]
    body = (b"\n \n" + m[0] + b"\n\n\n\n" + m[1] + b"\n\t \r\n\r\n" + m[2] + b"\n\x0b\x0c\n"
            + b"garbage\n" + m[3] + b"\n\n" + b'{"id": "torn')
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [])
    (folder / "messages.jsonl").write_bytes(body)
    client = await open_client()
    assert (await client.delete("/v1/threads/jan_1/messages/m1")).status == 200
    assert (folder / "messages.jsonl").read_bytes() == (
        m[0] + b"\n" + m[2] + b"\n" + b"garbage\n" + m[3] + b"\n" + b'{"id": "torn')
    assert await served_ids(client) == ["m0", "m2", "m3"]


async def test_counts_are_the_same_after_a_restart(open_client: OpenClient, data_dir: Path
                                                   ) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), mixed_lines())
    first = await open_client()
    assert (await first.delete("/v1/threads/jan_1/messages/m0")).status == 200
    resp = await first.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 200
    counts = await health(first)
    second = await open_client()
    again = await health(second)
    assert (again["corrupt"], again["messages"]) == (counts["corrupt"], counts["messages"])


async def test_an_unreadable_value_in_a_skipped_field_never_fails_a_read(
        open_client: OpenClient, data_dir: Path) -> None:
    huge_int = b'{"id": "big", "role": "user", "metadata": {"n": ' + b"9" * 5000 + b"}}"
    huge_float = b'{"id": "inf", "role": "user", "metadata": {"x": 1e400}, "content": "ok"}'
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0), huge_int, huge_float])
    client = await open_client()
    assert await served_ids(client) == ["m0", "big", "inf"]
    resp = await client.get("/v1/threads/jan_1/messages/inf")
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"] == {"x": "Infinity"}
    assert body["content"][0]["text"]["value"] == "ok"
    assert (await client.get("/v1/threads/jan_1/messages/big")).status == 200


# --- half-written lines --------------------------------------------------------------------------


def write_torn(data_dir: Path) -> tuple[Path, bytes]:
    """m0, m1 complete, then the first half of m2 with no newline (a writer mid-write)."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0), msg(1)])
    line = json.dumps(msg(2)).encode()
    with (folder / "messages.jsonl").open("ab") as f:
        f.write(line[:30])
    return folder, line


async def test_a_half_written_last_line_is_not_served_until_its_newline(
        open_client: OpenClient, data_dir: Path) -> None:
    folder, line = write_torn(data_dir)
    client = await open_client()
    assert await served_ids(client) == ["m0", "m1"]
    await expect_error(await client.get("/v1/threads/jan_1/messages/m2"), 404)
    body = await health(client)
    assert (body["messages"], body["corrupt_lines"]) == (2, 0)

    with (folder / "messages.jsonl").open("ab") as f:
        f.write(line[30:])  # complete, but still no newline
    restarted = await open_client()
    assert await served_ids(restarted) == ["m0", "m1"]

    with (folder / "messages.jsonl").open("ab") as f:
        f.write(b"\n")
    restarted = await open_client()
    assert await served_ids(restarted) == ["m0", "m1", "m2"]
    resp = await restarted.get("/v1/threads/jan_1/messages/m2")
    assert resp.status == 200
    assert (await resp.json())["content"][0]["text"]["value"] == "text 2"


async def test_a_create_after_a_torn_line_starts_a_fresh_line(
        open_client: OpenClient, data_dir: Path) -> None:
    folder, line = write_torn(data_dir)
    client = await open_client()
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 200
    new_id = (await resp.json())["id"]
    lines = lines_of(folder)
    assert lines[2] == line[:30]  # the torn bytes, kept, closed by a newline: a corrupt line
    assert json.loads(lines[3])["id"] == new_id
    assert lines[4:] == [b""]
    assert await served_ids(client) == ["m0", "m1", new_id]
    torn_at = len(lines[0]) + 1 + len(lines[1]) + 1
    assert (await health(client))["corrupt"] == {"jan_1": [[torn_at, 30]]}


async def test_a_create_waits_for_the_newline_of_a_line_another_writer_is_writing(
        open_client: OpenClient, data_dir: Path) -> None:
    """The Jan app (0.6) appends a message as two writes, the JSON and then its newline. A create
    landing between them used to close the line itself, and Jan's newline then made an empty
    line, which Jan's reader fails on (the whole thread shows empty there)."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0), msg(1)])
    client = await open_client()
    with (folder / "messages.jsonl").open("ab") as f:
        f.write(json.dumps(msg(2)).encode())  # the JSON: its newline comes in the next write
    create = asyncio.create_task(
        client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"}))
    await asyncio.sleep(0.04)  # the create reached the file (it used to append at once)
    with (folder / "messages.jsonl").open("ab") as f:
        f.write(b"\n")
    resp = await create
    assert resp.status == 200
    new_id = (await resp.json())["id"]
    lines = lines_of(folder)
    assert lines[-1] == b"" and b"" not in lines[:-1]  # no empty line
    assert [json.loads(x)["id"] for x in lines[:-1]] == ["m0", "m1", "m2", new_id]
    assert await served_ids(client) == ["m0", "m1", "m2", new_id]
    assert (await health(client))["corrupt_lines"] == 0


async def test_a_file_emptied_while_a_create_waits_for_its_newline_takes_the_create(
        open_client: OpenClient, data_dir: Path) -> None:
    """The writer of the torn line rewrites the file in place instead (truncate, then write)."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0)])
    client = await open_client()
    with (folder / "messages.jsonl").open("ab") as f:
        f.write(json.dumps(msg(1)).encode())  # no newline yet
    create = asyncio.create_task(
        client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"}))
    await asyncio.sleep(0.03)
    os.truncate(folder / "messages.jsonl", 0)
    resp = await create
    assert resp.status == 200
    new_id = (await resp.json())["id"]
    assert [json.loads(x)["id"] for x in lines_of(folder)[:-1]] == [new_id]


@pytest.mark.parametrize("how", ["in place", "renamed over"])
async def test_a_file_rewritten_while_a_create_waits_for_its_newline_keeps_the_create(
        open_client: OpenClient, data_dir: Path, how: str) -> None:
    """The writer of the torn line rewrites the whole file instead: in place (truncated, then
    written from its start a moment later, as Node's writeFileSync does; an append in between
    was written over), or a new file renamed over it (an append to the old one was lost with
    it). Either way the acknowledged create is in the file, after the writer's lines."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0)])
    path = folder / "messages.jsonl"
    client = await open_client()
    with path.open("ab") as f:
        f.write(json.dumps(msg(1)).encode())  # no newline yet
    create = asyncio.create_task(
        client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"}))
    await asyncio.sleep(0.03)
    rewritten = b"".join(json.dumps(msg(i)).encode() + b"\n" for i in (0, 1, 2))
    if how == "in place":
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        await asyncio.sleep(0.01)
        os.write(fd, rewritten)  # at offset 0: what was appended meanwhile is written over
        os.close(fd)
    else:
        (folder / "new.tmp").write_bytes(rewritten)
        os.replace(folder / "new.tmp", path)
    resp = await create
    assert resp.status == 200
    new_id = (await resp.json())["id"]
    assert [json.loads(x)["id"] for x in lines_of(folder)[:-1]] == ["m0", "m1", "m2", new_id]


async def test_a_torn_line_left_long_ago_is_closed_by_the_next_create(
        open_client: OpenClient, data_dir: Path) -> None:
    folder, line = write_torn(data_dir)
    os.utime(folder / "messages.jsonl", (1_700_000_000, 1_700_000_000))  # its writer is gone
    client = await open_client()
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 200
    lines = lines_of(folder)
    assert lines[2] == line[:30] and json.loads(lines[3])["id"] == (await resp.json())["id"]


async def test_a_rewrite_keeps_a_half_written_tail_byte_for_byte(
        open_client: OpenClient, data_dir: Path) -> None:
    folder, line = write_torn(data_dir)
    client = await open_client()
    assert (await client.delete("/v1/threads/jan_1/messages/m0")).status == 200
    assert (folder / "messages.jsonl").read_bytes().endswith(b"\n" + line[:30])
    assert await served_ids(client) == ["m1"]
    with (folder / "messages.jsonl").open("ab") as f:
        f.write(line[30:] + b"\n")
    assert await served_ids(await open_client()) == ["m1", "m2"]


async def test_a_rewrite_closes_a_torn_tail_left_long_ago(
        open_client: OpenClient, data_dir: Path) -> None:
    """Its writer is gone: copied open, the new file's fresh mtime would have the next append
    wait for a newline that never comes. Closed, it is one corrupt line, as an append makes it."""
    folder, line = write_torn(data_dir)
    os.utime(folder / "messages.jsonl", (1_700_000_000, 1_700_000_000))
    client = await open_client()
    assert (await client.delete("/v1/threads/jan_1/messages/m0")).status == 200
    assert (folder / "messages.jsonl").read_bytes().endswith(b"\n" + line[:30] + b"\n")
    assert await served_ids(client) == ["m1"]
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 200
    lines = lines_of(folder)
    assert lines[1] == line[:30] and json.loads(lines[2])["id"] == (await resp.json())["id"]
    assert (await health(client))["corrupt_lines"] == 1


async def test_invalid_utf8_inside_a_string_is_served_leniently(open_client: OpenClient,
                                                                data_dir: Path) -> None:
    """Indexing does not validate every byte (that would halve the start-up rate); a message
    whose text holds a stray Latin-1 byte is still a message, served with U+FFFD in its place."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                          [msg(0), b'{"id": "latin1", "role": "user", "content": "caf\xe9"}'])
    before = (folder / "messages.jsonl").read_bytes()
    client = await open_client()
    assert await served_ids(client) == ["m0", "latin1"]
    resp = await client.get("/v1/threads/jan_1/messages/latin1")
    assert resp.status == 200
    assert (await resp.json())["content"][0]["text"]["value"] == "caf\ufffd"
    assert (await health(client))["corrupt_lines"] == 0
    assert (folder / "messages.jsonl").read_bytes() == before


async def test_a_line_that_cannot_be_written_back_exactly_is_not_modified(
        open_client: OpenClient, data_dir: Path) -> None:
    """1e400 reads as infinity and a stray byte as U+FFFD when serving; writing such a line back
    would change fields nobody asked to change, so a modify is refused and the file kept."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [
        msg(0), b'{"id": "huge", "role": "user", "content": "x", "score": 1e400}',
        b'{"id": "latin1", "role": "user", "content": "caf\xe9"}'])
    before = (folder / "messages.jsonl").read_bytes()
    client = await open_client()
    for mid in ("huge", "latin1"):
        assert (await client.get(f"/v1/threads/jan_1/messages/{mid}")).status == 200
        resp = await client.post(f"/v1/threads/jan_1/messages/{mid}", json={"metadata": {"a": "b"}})
        await expect_error(resp, 409)
    assert (folder / "messages.jsonl").read_bytes() == before


async def test_files_of_a_message_unreadable_beyond_its_id_are_an_empty_list(
        open_client: OpenClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [b'{"id": "big", "role": "user", "n": 1' + b"1" * 5000 + b"}"])
    client = await open_client()
    resp = await client.get("/v1/threads/jan_1/messages/big/files")
    assert resp.status == 200
    body = await resp.json()
    assert (body["data"], body["has_more"]) == ([], False)


async def test_a_stray_byte_in_a_run_id_keeps_the_message(open_client: OpenClient,
                                                          data_dir: Path) -> None:
    """The index checks the UTF-8 of the id and the run id it decodes: a stray byte in the run id
    is read as U+FFFD there too, as the message is served; one in the id is a corrupt line."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [
        msg(0), b'{"id": "r1", "role": "user", "content": "hi", "run_id": "run\xff"}',
        b'{"id": "bad\xff", "role": "user", "content": "hi"}'])
    client = await open_client()
    assert await served_ids(client) == ["m0", "r1"]
    resp = await client.get("/v1/threads/jan_1/messages/r1")
    assert resp.status == 200 and (await resp.json())["run_id"] == "run\ufffd"
    resp = await client.get("/v1/threads/jan_1/messages", params={"run_id": "run\ufffd"})
    assert [m["id"] for m in (await resp.json())["data"]] == ["r1"]
    assert (await health(client))["corrupt"] == {"jan_1": corrupt_spans_of(folder, [b"bad\xff"])}
    # The same when another program appends such a line while the server runs (the tail path).
    with open(folder / "messages.jsonl", "ab") as f:
        f.write(b'{"id": "r2", "role": "user", "content": "hi", "run_id": "late\xfe"}\n')
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "x"})
    assert resp.status == 200  # a write syncs the thread first: the appended line is indexed
    assert (await served_ids(client))[:3] == ["m0", "r1", "r2"]


def corrupt_spans_of(folder: Path, marks: list[bytes]) -> list[list[int]]:
    """[offset, length] of the lines holding one of `marks`."""
    spans, pos = [], 0
    for line in (folder / "messages.jsonl").read_bytes().split(b"\n")[:-1]:
        if any(m in line for m in marks):
            spans.append([pos, len(line)])
        pos += len(line) + 1
    return spans


async def test_each_corrupt_line_is_logged_once(open_client: OpenClient, data_dir: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), mixed_lines())
    caplog.set_level(logging.WARNING, logger="service.index.damage")
    client = await open_client()
    logged = [r.getMessage() for r in caplog.records if r.name == "service.index.damage"]
    spans = corrupt_spans(folder)
    assert len(logged) == 11 and len(spans) == len(CORRUPT) > 10  # ten, then a count
    for (start, length), line in zip(spans[:10], logged[:10], strict=True):
        assert f"thread jan_1: corrupt line skipped at byte {start} ({length} bytes)" in line
    assert f"{len(spans) - 10} more corrupt lines" in logged[10]
    caplog.clear()
    # A rewrite by the server itself keeps them all: nothing new to log.
    resp = await client.post("/v1/threads/jan_1/messages/m1", json={"metadata": {"a": "b"}})
    assert resp.status == 200
    assert not [r for r in caplog.records if r.name == "service.index.damage"]
    # One appended by another program is logged when it is indexed.
    size = (folder / "messages.jsonl").stat().st_size
    with open(folder / "messages.jsonl", "ab") as f:
        f.write(b"not json\n")
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "x"})
    assert resp.status == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "service.index.damage"]
    assert logged == [f"thread jan_1: corrupt line skipped at byte {size} (8 bytes); "
                      "`threadline check` says why"]


async def test_corrupt_lines_moved_by_another_programs_rewrite_are_not_logged_again(
        open_client: OpenClient, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                          [msg(0), b"garbage one", msg(1), b"garbage two", msg(2)])
    caplog.set_level(logging.WARNING, logger="service.index.damage")
    client = await open_client()
    assert len([r for r in caplog.records if r.name == "service.index.damage"]) == 2
    caplog.clear()

    async def rewrite(lines: list[bytes]) -> list[str]:
        """Another program replaces the file (temp file, rename); a write through the API syncs
        the thread first. The damage logged meanwhile."""
        caplog.clear()
        tmp = folder / "messages.jsonl.tmp"
        tmp.write_bytes(b"".join(line + b"\n" for line in lines))
        tmp.replace(folder / "messages.jsonl")
        resp = await client.post("/v1/threads/jan_1/messages",
                                 json={"role": "user", "content": "x"})
        assert resp.status == 200
        return [r.getMessage() for r in caplog.records if r.name == "service.index.damage"]

    m = [json.dumps(msg(i)).encode() for i in range(3)]
    # m0 dropped: both corrupt lines move, neither is new.
    assert await rewrite([b"garbage one", m[1], b"garbage two", m[2]]) == []
    # One swapped for another of the same count: only the new one is logged.
    logged = await rewrite([b"garbage one", m[1], b"garbage 3!", m[2]])
    start = len(b"garbage one\n") + len(m[1]) + 1
    assert logged == [f"thread jan_1: corrupt line skipped at byte {start} (10 bytes); "
                      "`threadline check` says why"]


async def test_a_create_right_after_another_program_shortened_the_file_is_indexed(
        open_client: OpenClient, data_dir: Path) -> None:
    """The index's end was past where the create's line landed (the new file is shorter): the
    line must still be indexed, and the file read again, before the create answers. No watcher,
    so nothing else would."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), [msg(0), msg(1), msg(2)])
    client = await open_client(watch=False)
    assert await served_ids(client) == ["m0", "m1", "m2"]
    tmp = folder / "messages.jsonl.tmp"
    tmp.write_bytes(json.dumps(msg(1)).encode() + b"\n")  # m0 and m2 deleted by Jan
    tmp.replace(folder / "messages.jsonl")
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "x"})
    assert resp.status == 200
    created = (await resp.json())["id"]
    assert await served_ids(client) == ["m1", created]  # a list reads the index as it stands
    assert (await client.get(f"/v1/threads/jan_1/messages/{created}")).status == 200
