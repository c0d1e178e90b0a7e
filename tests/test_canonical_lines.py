"""Which stored lines are served as stored: the test of a line, the test of a page of lines (one
decode for the page) and their verdicts as the reader keeps them."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestClient

from service.index import canon
from service.index.messages import CANONICAL, NORMALIZE, UNKNOWN
from service.keys import CATALOG

from .jan import jan_message, jan_thread, write_thread
from .procs import canonical_line

TID = "thread_x"




def test_a_line_is_canonical_only_as_threadline_writes_it() -> None:
    line = canonical_line("msg_1", TID, "hello")
    assert canon.line(line, TID, b"msg_1")
    assert not canon.line(line, "thread_y", b"msg_1")  # another thread's line
    assert not canon.line(line, TID, b"msg_2")
    assert not canon.line(line.replace(b'"hello"', b'"hello", "x":1'), TID, b"msg_1")
    assert not canon.line(line.replace(b'"status":"completed"', b'"status":"ready"'), TID,
                          b"msg_1")
    spaced = json.dumps(json.loads(line)).encode()  # same object, other spelling
    assert not canon.may_be(spaced, b"msg_1") and not canon.line(spaced, TID, b"msg_1")


def test_a_page_is_canonical_only_if_every_line_is() -> None:
    lines = [canonical_line(f"msg_{i}", TID, f"text {i} é") for i in range(5)]
    mids = [f"msg_{i}".encode() for i in range(5)]
    assert canon.page(b"\n".join(lines), TID, mids)
    assert all(canon.line(x, TID, m) for x, m in zip(lines, mids, strict=True))
    for i in range(5):
        changed = list(lines)
        changed[i] = changed[i].replace(b'"status":"completed"', b'"status":"ready"')
        assert not canon.page(b"\n".join(changed), TID, mids)
    assert not canon.page(b"\n".join(lines), TID, mids[:4])  # a line more than the slots
    assert not canon.page(b"\n".join(lines), TID, [*mids[:4], b"msg_x"])
    assert not canon.page(b"\n".join(lines), "thread_y", mids)
    two_on_one = lines[0] + b"," + lines[1]  # two messages on one line
    assert not canon.page(b"\n".join([two_on_one, *lines[2:]]), TID, [mids[0], *mids[2:]])


def test_a_line_whose_image_url_is_no_uri_is_not_canonical() -> None:
    """Another program may write a line in exactly Threadline's form with an image URL that is no
    URI: it must be normalized (the URL percent-encoded), not served as stored."""
    def with_url(mid: str, url: str) -> bytes:
        obj = json.loads(canonical_line(mid, TID, "x"))
        obj["content"] = [{"type": "image_url", "image_url": {"url": url}}]
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    good = with_url("msg_1", "https://x.test/a%20b.png")
    bad = with_url("msg_2", "https://x.test/a b")
    assert canon.line(good, TID, b"msg_1")
    assert not canon.line(bad, TID, b"msg_2")
    assert canon.page(good, TID, [b"msg_1"])
    assert not canon.page(good + b"\n" + bad, TID, [b"msg_1", b"msg_2"])


def test_a_page_rewritten_into_halves_of_messages_is_not_canonical() -> None:
    """Another program rewrites the file in place, keeping a newline wherever the index expects
    one: line 0 now holds message a and the first half of b (cut inside a string that has a comma
    where the newline goes), line 1 the rest of b. Joined with commas the page reads as three
    canonical messages; line by line it is not, and neither line may be served as stored."""
    a = canonical_line("a", TID, "x")
    b = json.dumps({**json.loads(canonical_line("b", TID, "x")), "metadata": {"k": "p},q"}},
                   separators=(",", ":")).encode()
    c = canonical_line("c", TID, "x")
    cut = b.index(b"p},q") + 2
    page = a + b"," + b[:cut] + b"\n" + b[cut + 1:] + b"\n" + c
    assert canon.page(b"\n".join([a, b, c]), TID, [b"a", b"b", b"c"])
    assert not canon.page(page, TID, [b"a", b"b", b"c"])


async def test_a_page_of_unseen_canonical_lines_is_tested_once_and_served_as_stored(
        client: TestClient, data_dir: Path) -> None:
    # Written by another program (or a previous run) in the canonical form: unclassified.
    lines = [canonical_line(f"msg_{i:02}", "thread_c", f"line {i}") for i in range(30)]
    odd = json.loads(lines[25])
    odd["thread_id"] = "thread_elsewhere"  # canonical-looking, but not this thread's line
    lines[25] = json.dumps(odd, separators=(",", ":")).encode()
    write_thread(data_dir, "thread_c", {"id": "thread_c", "created_at": 1}, lines)
    resp = await client.get("/v1/threads/thread_c/messages",
                            params={"order": "asc", "limit": "10", "after": "msg_04"})
    assert resp.status == 200
    page = await resp.json()
    assert page["data"] == [json.loads(x) for x in lines[5:15]]
    flags = client.app[CATALOG].get("thread_c").messages.canon
    assert flags[5:15] == bytes([CANONICAL]) * 10  # the page, and only it, was classified
    assert flags.count(UNKNOWN) == 20
    resp = await client.get("/v1/threads/thread_c/messages",
                            params={"order": "desc", "limit": "10", "before": "msg_19"})
    page = await resp.json()
    assert [m["id"] for m in page["data"]] == [f"msg_{i:02}" for i in range(29, 19, -1)]
    assert all(m["thread_id"] == "thread_c" for m in page["data"])  # 25 normalized
    assert page["data"][4] == {**json.loads(lines[25]), "thread_id": "thread_c"}
    assert flags[25] == NORMALIZE and flags[20:25] == bytes([CANONICAL]) * 5


async def test_jan_lines_are_classified_without_the_canonical_decode(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_q", jan_thread("jan_q"),
                 [jan_message(f"j{i}", "jan_q", f"jan {i} 🙂") for i in range(4)])
    resp = await client.get("/v1/threads/jan_q/messages", params={"order": "asc"})
    page = await resp.json()
    assert [m["content"][0]["text"]["value"] for m in page["data"]] == [
        f"jan {i} 🙂" for i in range(4)]
    assert client.app[CATALOG].get("jan_q").messages.canon == bytes([NORMALIZE]) * 4
